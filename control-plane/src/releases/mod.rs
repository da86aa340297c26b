//! Desktop releases: publishing signed manifests, deciding which install is offered which
//! release, serving the artifacts, and the installs' reports.
//!
//! The control plane never signs and cannot change a manifest: it stores the bytes the operator
//! signed and serves them as they are. It checks an upload the way the app will (signature by a
//! trusted key, not expired, artifact stored with the manifest's size) so a release that no app
//! would accept is refused at publishing, not discovered in the field. What the server does
//! decide is *whether* to offer a release: its state (active, paused, yanked) and the rollout
//! percentage, applied to `hash(install_id)`.
//!
//! Publishing takes a transaction-scoped advisory lock, so "above the channel's latest" holds
//! even for two publishes at once; the release row, the audit entry and `system_settings`'
//! version columns (what `/system/status` and the routers' version gate read) commit together.

pub mod range;
pub mod store;

use std::path::PathBuf;

use api_types::Version;
use api_types::releases::{
    Channel, Platform, ReleaseEvent, ReleaseEventCounts, ReleaseEventKind, ReleaseState, ReleaseView, SignedRelease,
};
use release::{Manifest, TrustedKeys, VerifyError};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::catalog::audit::{self, Actor};
use crate::catalog::settings;
use store::ArtifactStore;

/// `NEXACORE_RELEASE_*`.
#[derive(Debug, Clone)]
pub struct ReleaseSettings {
    /// Where artifacts are stored (`NEXACORE_RELEASE_DIR`, default `./.nexacore/releases`).
    pub dir: PathBuf,
    /// Largest artifact accepted (`NEXACORE_RELEASE_MAX_BYTES`, default 512 MiB).
    pub max_artifact_bytes: u64,
    /// Keys whose signatures are accepted at publishing: the keys compiled into the app, unless
    /// `NEXACORE_RELEASE_TRUSTED_KEYS_FILE` names a PEM file of others (a staging platform).
    pub trusted_keys: TrustedKeys,
    /// A release pauses itself once this many installs report `rolled_back`
    /// (`NEXACORE_RELEASE_ROLLBACK_PAUSE_THRESHOLD`, default 5).
    pub rollback_pause_threshold: i64,
    /// Update checks (`GET /releases/latest`) answered per client address and minute
    /// (`NEXACORE_RELEASE_CHECKS_PER_MINUTE`, default 3000). An install checks at start and when
    /// asked, so even an office of thousands behind one address stays far below; the limit only
    /// caps what one address can make the catalog do.
    pub checks_per_minute: u32,
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(".nexacore/releases"),
            max_artifact_bytes: 512 << 20,
            trusted_keys: TrustedKeys::compiled_in(),
            rollback_pause_threshold: 5,
            checks_per_minute: 3000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("version {offered} is not above the channel's latest, {latest}")]
    NotNewer { offered: Version, latest: Version },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Which releases an operator action applies to: one version on one channel, on every platform
/// unless one is named.
#[derive(Debug, Clone, Copy)]
pub struct Selector {
    pub version: Version,
    pub channel: Channel,
    pub platform: Option<Platform>,
}

/// An install asking for updates.
#[derive(Debug, Clone)]
pub struct UpdateQuery {
    pub platform: Platform,
    pub channel: Channel,
    pub current: Version,
    pub install_id: String,
    /// "Check for updates" pressed by the user: the rollout percentage does not hold it back.
    pub manual: bool,
}

pub struct Releases {
    catalog: PgPool,
    settings: ReleaseSettings,
    store: ArtifactStore,
}

#[derive(sqlx::FromRow)]
struct ReleaseRow {
    id: i64,
    channel: String,
    platform: String,
    version: String,
    manifest: Vec<u8>,
    signature: String,
    key_id: String,
    sha256: String,
    size: i64,
    mandatory: bool,
    min_supported: Option<String>,
    rollout_percent: i16,
    state: String,
    state_reason: Option<String>,
    published_at: OffsetDateTime,
}

const COLUMNS: &str = "id, channel, platform, version, manifest, signature, key_id, sha256, size, mandatory, \
                       min_supported, rollout_percent, state, state_reason, published_at";

impl Releases {
    pub fn new(catalog: PgPool, settings: ReleaseSettings) -> Self {
        let store = ArtifactStore::new(settings.dir.clone(), settings.max_artifact_bytes);
        Self { catalog, settings, store }
    }

    pub fn store(&self) -> &ArtifactStore {
        &self.store
    }

    /// Checks an envelope as the app will, then records it.
    pub async fn publish(&self, envelope: &SignedRelease, actor: &Actor) -> Result<ReleaseView, PublishError> {
        let invalid = |field, message: String| PublishError::Invalid { field, message };
        let verified = self.settings.trusted_keys.verify(envelope).map_err(|e| match e {
            VerifyError::Encoding(what) => {
                invalid(if what == "manifest" { "manifest" } else { "signature" }, e.to_string())
            }
            VerifyError::UnknownKey(_) => invalid("key_id", e.to_string()),
            VerifyError::BadSignature => invalid("signature", e.to_string()),
            VerifyError::Manifest(_) => invalid("manifest", e.to_string()),
        })?;
        let m = &verified.manifest;
        if m.expires <= OffsetDateTime::now_utc() {
            return Err(invalid("manifest", format!("the manifest expired at {}", m.expires)));
        }
        match self.store.size_of(&m.sha256).await {
            None if m.url.starts_with('/') => {
                return Err(invalid("manifest", format!("artifact {} is not uploaded", m.sha256)));
            }
            Some(size) if size != m.size => {
                return Err(invalid("manifest", format!("the stored artifact has {size} bytes, not {}", m.size)));
            }
            _ => {}
        }

        let mut tx = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('nexacore_releases'))").execute(&mut *tx).await?;
        let latest: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT major, minor, patch FROM releases WHERE channel = $1 AND platform = $2 \
             ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
        )
        .bind(m.channel.as_str())
        .bind(m.platform.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((major, minor, patch)) = latest {
            let latest = Version { major: major as u64, minor: minor as u64, patch: patch as u64 };
            if m.version <= latest {
                return Err(PublishError::NotNewer { offered: m.version, latest });
            }
        }
        let row: ReleaseRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO releases (channel, platform, version, major, minor, patch, manifest, signature, key_id, \
             sha256, size, mandatory, min_supported, rollout_percent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLUMNS}"
        )))
        .bind(m.channel.as_str())
        .bind(m.platform.as_str())
        .bind(m.version.to_string())
        .bind(m.version.major as i64)
        .bind(m.version.minor as i64)
        .bind(m.version.patch as i64)
        .bind(&verified.bytes)
        .bind(&envelope.signature)
        .bind(&envelope.key_id)
        .bind(m.sha256.to_hex())
        .bind(m.size as i64)
        .bind(m.mandatory)
        .bind(m.min_supported.map(|v| v.to_string()))
        .bind(i16::from(m.rollout_percent))
        .fetch_one(&mut *tx)
        .await?;
        if m.channel == Channel::Stable {
            follow_published(&mut tx, m).await?;
        }
        let details = serde_json::json!({
            "version": m.version.to_string(), "channel": m.channel.as_str(), "platform": m.platform.as_str(),
            "sha256": m.sha256.to_hex(), "key_id": envelope.key_id,
        });
        audit::record(&mut *tx, actor, "release.publish", None, details).await?;
        tx.commit().await?;
        Ok(view(row, ReleaseEventCounts::default()))
    }

    /// Every release, newest first, with its event counts.
    pub async fn list(&self) -> Result<Vec<ReleaseView>, sqlx::Error> {
        let rows: Vec<ReleaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM releases ORDER BY major DESC, minor DESC, patch DESC, channel, platform"
        )))
        .fetch_all(&self.catalog)
        .await?;
        let counts: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT release_id, kind, count(*) FROM release_events GROUP BY release_id, kind")
                .fetch_all(&self.catalog)
                .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut c = ReleaseEventCounts::default();
                for (_, kind, n) in counts.iter().filter(|(id, _, _)| *id == row.id) {
                    *counter(&mut c, kind) += n;
                }
                view(row, c)
            })
            .collect())
    }

    /// Pauses, resumes or yanks; answers how many releases changed (0: none matched).
    pub async fn set_state(&self, selector: Selector, state: ReleaseState, actor: &Actor) -> Result<u64, sqlx::Error> {
        let mut tx = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('nexacore_releases'))").execute(&mut *tx).await?;
        let changed = sqlx::query(
            "UPDATE releases SET state = $1, state_reason = CASE WHEN $1 = 'active' THEN NULL ELSE 'operator' END \
             WHERE channel = $2 AND version = $3 AND ($4::text IS NULL OR platform = $4) AND state <> 'yanked'",
        )
        .bind(state_text(state))
        .bind(selector.channel.as_str())
        .bind(selector.version.to_string())
        .bind(selector.platform.map(Platform::as_str))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed > 0 {
            if state == ReleaseState::Yanked && selector.channel == Channel::Stable {
                follow_yanked(&mut tx).await?;
            }
            let details = serde_json::json!({
                "version": selector.version.to_string(), "channel": selector.channel.as_str(),
                "platform": selector.platform.map(Platform::as_str), "state": state_text(state),
            });
            audit::record(&mut *tx, actor, "release.state", None, details).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    pub async fn set_rollout(&self, selector: Selector, percent: u8, actor: &Actor) -> Result<u64, sqlx::Error> {
        let mut tx = self.catalog.begin().await?;
        let changed = sqlx::query(
            "UPDATE releases SET rollout_percent = $1 \
             WHERE channel = $2 AND version = $3 AND ($4::text IS NULL OR platform = $4) AND state <> 'yanked'",
        )
        .bind(i16::from(percent))
        .bind(selector.channel.as_str())
        .bind(selector.version.to_string())
        .bind(selector.platform.map(Platform::as_str))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed > 0 {
            let details = serde_json::json!({
                "version": selector.version.to_string(), "channel": selector.channel.as_str(),
                "platform": selector.platform.map(Platform::as_str), "percent": percent,
            });
            audit::record(&mut *tx, actor, "release.rollout", None, details).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The newest active release above `current` that this install is offered, if any. A
    /// release the install must take (mandatory, or its `min_supported` is above `current`) is
    /// offered whatever its rollout percentage, and so is any release on a manual check.
    pub async fn latest(&self, query: &UpdateQuery) -> Result<Option<SignedRelease>, sqlx::Error> {
        let rows: Vec<ReleaseRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM releases WHERE channel = $1 AND platform = $2 AND state = 'active' \
             ORDER BY major DESC, minor DESC, patch DESC"
        )))
        .bind(query.channel.as_str())
        .bind(query.platform.as_str())
        .fetch_all(&self.catalog)
        .await?;
        let offered = rows.into_iter().find(|row| {
            let Ok(version) = row.version.parse::<Version>() else { return false };
            if version <= query.current {
                return false;
            }
            let required = row.mandatory
                || row
                    .min_supported
                    .as_deref()
                    .and_then(|v| v.parse::<Version>().ok())
                    .is_some_and(|min| min > query.current);
            required
                || query.manual
                || release::rollout::is_included(&query.install_id, row.rollout_percent.clamp(0, 100) as u8)
        });
        Ok(offered.map(|row| SignedRelease {
            manifest: base64_encode(&row.manifest),
            signature: row.signature,
            key_id: row.key_id,
        }))
    }

    /// Records an install's report; enough `rolled_back` reports pause the release.
    pub async fn record_event(&self, event: &ReleaseEvent) -> Result<(), EventError> {
        let invalid = |field, message: &str| EventError::Invalid { field, message: message.to_owned() };
        let version: Version = event.version.parse().map_err(|_| invalid("version", "must be a version like 1.4.2"))?;
        let install_id = event.install_id.trim();
        if install_id.is_empty() || install_id.chars().count() > 64 {
            return Err(invalid("install_id", "must be 1 to 64 characters"));
        }
        let reason = event.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(invalid("reason", "must be at most 500 characters"));
        }
        let mut tx = self.catalog.begin().await?;
        let release: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM releases WHERE channel = $1 AND platform = $2 AND version = $3 FOR UPDATE",
        )
        .bind(event.channel.as_str())
        .bind(event.platform.as_str())
        .bind(version.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let (id, state) = release.ok_or_else(|| invalid("version", "no such release on this channel and platform"))?;
        sqlx::query("INSERT INTO release_events (release_id, kind, install_id, reason) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(event.kind.as_str())
            .bind(install_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        if event.kind == ReleaseEventKind::RolledBack && state == "active" {
            let (rollbacks,): (i64,) = sqlx::query_as(
                "SELECT count(DISTINCT install_id) FROM release_events WHERE release_id = $1 AND kind = 'rolled_back'",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if rollbacks >= self.settings.rollback_pause_threshold {
                sqlx::query("UPDATE releases SET state = 'paused', state_reason = 'rollbacks' WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let details = serde_json::json!({
                    "version": version.to_string(), "channel": event.channel.as_str(),
                    "platform": event.platform.as_str(), "rollbacks": rollbacks,
                });
                audit::record(&mut *tx, &Actor::system(), "release.auto_pause", None, details).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A stable release raises `/system/status`' `latest_version`, and its `min_supported` raises
/// `min_client_version` (never lowers either: an operator's own setting stands).
async fn follow_published(tx: &mut sqlx::PgConnection, m: &Manifest) -> Result<(), sqlx::Error> {
    let current = settings::get(&mut *tx).await?;
    let parse = |s: &str| s.parse::<Version>().unwrap_or(Version { major: 0, minor: 0, patch: 0 });
    let latest = parse(&current.latest_version).max(m.version);
    let min = m.min_supported.map_or(parse(&current.min_client_version), |s| s.max(parse(&current.min_client_version)));
    settings::set_client_versions(&mut *tx, &min.to_string(), &latest.to_string()).await
}

/// After a yank, `latest_version` is the newest stable release still standing.
async fn follow_yanked(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    let newest: Option<(String,)> = sqlx::query_as(
        "SELECT version FROM releases WHERE channel = 'stable' AND state <> 'yanked' \
         ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((latest,)) = newest {
        let current = settings::get(&mut *tx).await?;
        settings::set_client_versions(&mut *tx, &current.min_client_version, &latest).await?;
    }
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn state_text(state: ReleaseState) -> &'static str {
    match state {
        ReleaseState::Active => "active",
        ReleaseState::Paused => "paused",
        ReleaseState::Yanked => "yanked",
    }
}

fn counter<'a>(counts: &'a mut ReleaseEventCounts, kind: &str) -> &'a mut i64 {
    match kind {
        "checked" => &mut counts.checked,
        "downloaded" => &mut counts.downloaded,
        "verified" => &mut counts.verified,
        "applied" => &mut counts.applied,
        "first_run_ok" => &mut counts.first_run_ok,
        _ => &mut counts.rolled_back,
    }
}

fn view(row: ReleaseRow, events: ReleaseEventCounts) -> ReleaseView {
    ReleaseView {
        version: row.version,
        channel: Channel::parse(&row.channel).unwrap_or_default(),
        platform: Platform::parse(&row.platform).unwrap_or_default(),
        state: match row.state.as_str() {
            "paused" => ReleaseState::Paused,
            "yanked" => ReleaseState::Yanked,
            _ => ReleaseState::Active,
        },
        state_reason: row.state_reason,
        rollout_percent: row.rollout_percent.clamp(0, 100) as u8,
        mandatory: row.mandatory,
        min_supported: row.min_supported,
        size: row.size.max(0) as u64,
        sha256: row.sha256,
        key_id: row.key_id,
        published_at: row.published_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        events,
    }
}
