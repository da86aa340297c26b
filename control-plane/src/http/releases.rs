//! Desktop releases over HTTP: the operator publishes and steers them; installs ask for the
//! newest one they are offered, download its zip (resumable) and report how it went.

use std::sync::Arc;

use poem::Body;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use super::security::{OperatorAuth, client_address};
use crate::releases::range::{self, RangePlan};
use crate::releases::store::StoreError;
use crate::releases::{EventError, PublishError, Selector, UpdateQuery};
use crate::state::AppState;
use api_types::Version;
use api_types::releases::{Channel, Platform, ReleaseEvent, ReleaseState, ReleaseView, RolloutRequest, SignedRelease};
use http_api::{ApiError, ErrorBody, JsonBody};
use release::Sha256Digest;

pub struct ReleasesApi(pub Arc<AppState>);

#[derive(ApiResponse)]
enum Latest {
    /// The newest release this install is offered: the manifest exactly as signed.
    #[oai(status = 200)]
    Offered(Json<SignedRelease>),
    /// Nothing newer for this install.
    #[oai(status = 204)]
    UpToDate,
}

#[derive(ApiResponse)]
enum Published {
    #[oai(status = 201)]
    Created(Json<ReleaseView>),
}

#[derive(ApiResponse)]
enum Accepted {
    #[oai(status = 202)]
    Accepted,
}

#[derive(Object)]
struct StoredArtifact {
    sha256: String,
    size: u64,
}

#[derive(ApiResponse)]
enum Stored {
    #[oai(status = 201)]
    Created(Json<StoredArtifact>),
}

#[derive(ApiResponse)]
enum Artifact {
    /// The whole zip.
    #[oai(status = 200)]
    Full(
        Binary<Body>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Length")] u64,
    ),
    /// The requested byte range.
    #[oai(status = 206)]
    Partial(
        Binary<Body>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Accept-Ranges")] String,
        #[oai(header = "Content-Length")] u64,
        #[oai(header = "Content-Range")] String,
    ),
    /// The range starts at or past the end; `Content-Range: bytes */<size>`.
    #[oai(status = 416)]
    Unsatisfiable(Json<ErrorBody>, #[oai(header = "Content-Range")] String),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

fn parse_version(field: &str, raw: &str) -> Result<Version, ApiError> {
    raw.parse().map_err(|_| ApiError::field(field, format!("{field}: must be a version like 1.4.2")))
}

fn parse_platform(raw: &str) -> Result<Platform, ApiError> {
    Platform::parse(raw)
        .ok_or_else(|| ApiError::field("platform", "platform: one of linux-x86_64, windows-x86_64, macos-aarch64"))
}

fn parse_channel(raw: Option<&str>) -> Result<Channel, ApiError> {
    match raw {
        None => Ok(Channel::Stable),
        Some(c) => Channel::parse(c).ok_or_else(|| ApiError::field("channel", "channel: stable or beta")),
    }
}

fn not_found(version: &Version) -> ApiError {
    ApiError::not_found(format!("no release {version} on that channel and platform"))
}

impl ReleasesApi {
    fn selector(&self, version: &str, channel: Option<&str>, platform: Option<&str>) -> Result<Selector, ApiError> {
        Ok(Selector {
            version: parse_version("version", version)?,
            channel: parse_channel(channel)?,
            platform: platform.map(parse_platform).transpose()?,
        })
    }

    async fn views_of(&self, selector: &Selector) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        let all = self.0.releases.list().await?;
        let version = selector.version.to_string();
        Ok(Json(
            all.into_iter()
                .filter(|r| r.version == version && r.channel == selector.channel)
                .filter(|r| selector.platform.is_none_or(|p| p == r.platform))
                .collect(),
        ))
    }

    async fn change_state(
        &self,
        auth: OperatorAuth,
        version: &str,
        channel: Option<&str>,
        platform: Option<&str>,
        state: ReleaseState,
    ) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        let selector = self.selector(version, channel, platform)?;
        let changed = self.0.releases.set_state(selector, state, &auth.0).await?;
        if changed == 0 {
            return Err(not_found(&selector.version));
        }
        self.views_of(&selector).await
    }
}

#[OpenApi(tag = "super::signup::Tag::Releases")]
impl ReleasesApi {
    /// Uploads a release zip under its SHA-256 (hex); the bytes must hash to it. Storing the
    /// same zip again changes nothing.
    #[oai(path = "/releases/artifacts/:sha256", method = "put")]
    async fn upload(&self, _auth: OperatorAuth, sha256: Path<String>, body: Binary<Body>) -> Result<Stored, ApiError> {
        let digest =
            Sha256Digest::parse(&sha256.0).ok_or_else(|| ApiError::field("sha256", "sha256: must be 64 hex digits"))?;
        let store = self.0.releases.store();
        let size = match store.size_of(&digest).await {
            Some(size) => size,
            None => store.put(&digest, body.0.into_async_read()).await.map_err(|e| match e {
                StoreError::TooLarge(_) | StoreError::HashMismatch | StoreError::Empty => {
                    ApiError::field("body", format!("body: {e}"))
                }
                StoreError::Io(io) => ApiError::internal(io),
            })?,
        };
        Ok(Stored::Created(Json(StoredArtifact { sha256: digest.to_hex(), size })))
    }

    /// Publishes a signed release whose zip is uploaded. `422` names what is wrong (signature,
    /// key_id, manifest); `409` when the version is not above the channel's latest.
    #[oai(path = "/releases", method = "post")]
    async fn publish(&self, auth: OperatorAuth, body: JsonBody<SignedRelease>) -> Result<Published, ApiError> {
        match self.0.releases.publish(&body.0, &auth.0).await {
            Ok(view) => Ok(Published::Created(Json(view))),
            Err(PublishError::Invalid { field, message }) => Err(ApiError::field(field, format!("{field}: {message}"))),
            Err(e @ PublishError::NotNewer { .. }) => {
                Err(ApiError::conflict(ErrorBody::on_field("version_not_newer", "version", e.to_string())))
            }
            Err(PublishError::Db(e)) => Err(ApiError::internal(e)),
        }
    }

    /// Every release, newest first, with the installs' event counts.
    #[oai(path = "/releases", method = "get")]
    async fn list(&self, _auth: OperatorAuth) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        Ok(Json(self.0.releases.list().await?))
    }

    /// Stops offering a release (every platform unless `platform` is given).
    #[oai(path = "/releases/:version/pause", method = "post")]
    async fn pause(
        &self,
        auth: OperatorAuth,
        version: Path<String>,
        channel: Query<Option<String>>,
        platform: Query<Option<String>>,
    ) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        self.change_state(auth, &version.0, channel.0.as_deref(), platform.0.as_deref(), ReleaseState::Paused).await
    }

    /// Offers a paused release again.
    #[oai(path = "/releases/:version/resume", method = "post")]
    async fn resume(
        &self,
        auth: OperatorAuth,
        version: Path<String>,
        channel: Query<Option<String>>,
        platform: Query<Option<String>>,
    ) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        self.change_state(auth, &version.0, channel.0.as_deref(), platform.0.as_deref(), ReleaseState::Active).await
    }

    /// Withdraws a release for good; `latest_version` falls back to the newest one standing.
    #[oai(path = "/releases/:version/yank", method = "post")]
    async fn yank(
        &self,
        auth: OperatorAuth,
        version: Path<String>,
        channel: Query<Option<String>>,
        platform: Query<Option<String>>,
    ) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        self.change_state(auth, &version.0, channel.0.as_deref(), platform.0.as_deref(), ReleaseState::Yanked).await
    }

    /// Sets the share of installs (0–100) offered the release from now on.
    #[oai(path = "/releases/:version/rollout", method = "put")]
    async fn rollout(
        &self,
        auth: OperatorAuth,
        version: Path<String>,
        channel: Query<Option<String>>,
        platform: Query<Option<String>>,
        body: JsonBody<RolloutRequest>,
    ) -> Result<Json<Vec<ReleaseView>>, ApiError> {
        let selector = self.selector(&version.0, channel.0.as_deref(), platform.0.as_deref())?;
        if body.0.percent > 100 {
            return Err(ApiError::field("percent", "percent: must be between 0 and 100"));
        }
        if self.0.releases.set_rollout(selector, body.0.percent, &auth.0).await? == 0 {
            return Err(not_found(&selector.version));
        }
        self.views_of(&selector).await
    }

    /// The newest release this install is offered (public): `current` is its version,
    /// `install_id` its random id (decides staged rollouts), `manual=true` for a "Check for
    /// updates" the user asked for. `204` when there is nothing newer.
    #[oai(path = "/releases/latest", method = "get")]
    async fn latest(
        &self,
        req: &poem::Request,
        platform: Query<String>,
        channel: Query<Option<String>>,
        current: Query<String>,
        install_id: Query<String>,
        manual: Query<Option<bool>>,
    ) -> Result<Latest, ApiError> {
        if let Err(wait) = self.0.release_check_limiter.hit(client_address(req).as_deref().unwrap_or("unknown")).await {
            return Err(ApiError::TooManyRequests(
                Json(ErrorBody::new("throttled", "too many update checks; slow down")),
                wait.as_secs(),
            ));
        }
        let install_id = install_id.0.trim().to_owned();
        if install_id.is_empty() || install_id.chars().count() > 64 {
            return Err(ApiError::field("install_id", "install_id: must be 1 to 64 characters"));
        }
        let query = UpdateQuery {
            platform: parse_platform(&platform.0)?,
            channel: parse_channel(channel.0.as_deref())?,
            current: parse_version("current", &current.0)?,
            install_id,
            manual: manual.0.unwrap_or(false),
        };
        Ok(match self.0.releases.latest(&query).await? {
            Some(envelope) => Latest::Offered(Json(envelope)),
            None => Latest::UpToDate,
        })
    }

    /// An install's report on a release (public): checked, downloaded, verified, applied,
    /// first_run_ok, or rolled_back with its reason.
    #[oai(path = "/releases/events", method = "post")]
    async fn event(&self, req: &poem::Request, body: JsonBody<ReleaseEvent>) -> Result<Accepted, ApiError> {
        // Public and written to the catalog: throttled per client address like the other
        // public writes (an install sends a handful per update).
        if let Err(wait) = self.0.public_limiter.hit(client_address(req).as_deref().unwrap_or("unknown")).await {
            return Err(ApiError::TooManyRequests(
                Json(ErrorBody::new("throttled", "too many reports; slow down")),
                wait.as_secs(),
            ));
        }
        match self.0.releases.record_event(&body.0).await {
            Ok(()) => Ok(Accepted::Accepted),
            Err(EventError::Invalid { field, message }) => Err(ApiError::field(field, format!("{field}: {message}"))),
            Err(EventError::Db(e)) => Err(ApiError::internal(e)),
        }
    }

    /// A release zip by its SHA-256 (public), resumable: `Range` (one range) answers `206`,
    /// a range past the end `416`; with `If-Range` not matching the `ETag`, the whole file.
    #[oai(path = "/releases/artifacts/:sha256", method = "get")]
    async fn artifact(
        &self,
        sha256: Path<String>,
        #[oai(name = "Range")] range: Header<Option<String>>,
        #[oai(name = "If-Range")] if_range: Header<Option<String>>,
    ) -> Result<Artifact, ApiError> {
        let missing = || Artifact::NotFound(Json(ErrorBody::new("not_found", "no such release artifact")));
        let Some(digest) = Sha256Digest::parse(&sha256.0) else { return Ok(missing()) };
        let path = self.0.releases.store().path_of(&digest);
        let Ok(mut file) = tokio::fs::File::open(&path).await else { return Ok(missing()) };
        let len = file.metadata().await.map_err(ApiError::internal)?.len();
        // Content-addressed: the hash is a strong validator that never changes for this URL.
        let etag = format!("\"{}\"", digest.to_hex());
        let ranges = "bytes".to_owned();
        Ok(match range::plan(range.0.as_deref(), if_range.0.as_deref(), &etag, len) {
            RangePlan::Full => Artifact::Full(Binary(Body::from_async_read(file)), etag, ranges, len),
            RangePlan::Partial { start, end } => {
                file.seek(std::io::SeekFrom::Start(start)).await.map_err(ApiError::internal)?;
                let body = Body::from_async_read(file.take(end - start));
                Artifact::Partial(Binary(body), etag, ranges, end - start, format!("bytes {start}-{}/{len}", end - 1))
            }
            RangePlan::Unsatisfiable => Artifact::Unsatisfiable(
                Json(ErrorBody::new("range_not_satisfiable", format!("the artifact has {len} bytes"))),
                format!("bytes */{len}"),
            ),
        })
    }
}
