//! The self-updater: check → download → verify → stage → swap → relaunch → first-run health →
//! commit, or roll back at the next launch.
//!
//! Each step is its own module and takes what it needs (the HTTP client, the time, the paths) as
//! arguments, so tests drive it against a real local server and real files:
//! - [`check`] here: asks the control plane, verifies the envelope against the compiled-in keys,
//!   applies the offer rules and remembers the highest version seen;
//! - [`download`]: the resumable, verified download;
//! - [`install`]: staging, the swap that keeps the previous version, the launch-time rollback;
//! - [`state`]: the update-state file;
//! - [`launch`]: what a start does first (finish or undo the last update) and the first-run
//!   watchdog;
//! - [`unattended`]: `--update`, the same steps without a window.

pub mod download;
pub mod install;
pub mod launch;
pub mod state;
pub mod unattended;

use api_types::Version;
use api_types::releases::{Channel, Platform, ReleaseEvent, ReleaseEventKind, SignedRelease};
use release::Manifest;
use release::trust::{Installed, OfferError, TrustedKeys, VerifyError};
use time::OffsetDateTime;

use state::UpdateState;

/// This build's version, platform and channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThisBuild {
    pub version: Version,
    pub platform: Platform,
    pub channel: Channel,
}

/// A release this install may take, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub manifest: Manifest,
    /// The artifact's absolute URL (a manifest may name a path on the control plane).
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot reach the update server: {0}")]
    Unreachable(String),
    #[error("the update server answered {0}")]
    Status(u16),
    #[error("the offered release is not trustworthy: {0}")]
    Untrusted(#[from] VerifyError),
    #[error("the offered release is refused: {0}")]
    Refused(#[from] OfferError),
    #[error("cannot save the update state: {0}")]
    State(#[from] std::io::Error),
}

/// Asks `base` (the control plane) for a newer release and verifies what it answers.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    http: &reqwest::Client,
    base: &str,
    build: ThisBuild,
    trusted: &TrustedKeys,
    state: &mut UpdateState,
    state_file: &std::path::Path,
    now: OffsetDateTime,
    manual: bool,
) -> Result<Option<Offer>, CheckError> {
    let base = base.trim_end_matches('/');
    let response = http
        .get(format!("{base}/releases/latest"))
        .query(&[
            ("platform", build.platform.as_str()),
            ("channel", build.channel.as_str()),
            ("current", &build.version.to_string()),
            ("install_id", &state.install_id),
            ("manual", if manual { "true" } else { "false" }),
        ])
        .send()
        .await
        .map_err(|e| CheckError::Unreachable(e.to_string()))?;
    match response.status().as_u16() {
        204 => return Ok(None),
        200 => {}
        other => return Err(CheckError::Status(other)),
    }
    let envelope: SignedRelease = response.json().await.map_err(|e| CheckError::Unreachable(e.to_string()))?;
    let verified = trusted.verify(&envelope)?;
    if !manual && state.rolled_back.contains(&verified.manifest.version.to_string()) {
        return Ok(None);
    }
    let highest_seen = state.highest_seen(build.channel).unwrap_or(build.version).max(build.version);
    let installed =
        Installed { version: build.version, platform: build.platform, channel: build.channel, highest_seen };
    verified.offer_to(&installed, now)?;
    // Remembered before anything else happens: a later replay of an older manifest is refused
    // even if this update is rolled back.
    if verified.manifest.version > highest_seen {
        state.set_highest_seen(build.channel, verified.manifest.version);
        state.save(state_file)?;
    }
    let url = if verified.manifest.url.starts_with('/') {
        format!("{base}{}", verified.manifest.url)
    } else {
        verified.manifest.url.clone()
    };
    Ok(Some(Offer { manifest: verified.manifest, url }))
}

/// Reports a step to the control plane; best effort (an update never waits on its report).
pub async fn report(
    http: &reqwest::Client,
    base: &str,
    build: ThisBuild,
    version: &Version,
    install_id: &str,
    kind: ReleaseEventKind,
    reason: Option<String>,
) -> bool {
    let event = ReleaseEvent {
        version: version.to_string(),
        channel: build.channel,
        platform: build.platform,
        install_id: install_id.to_owned(),
        kind,
        reason,
    };
    let url = format!("{}/releases/events", base.trim_end_matches('/'));
    http.post(url).json(&event).send().await.is_ok_and(|r| r.status().is_success())
}

#[cfg(test)]
mod test_server;
#[cfg(test)]
#[path = "updater_tests.rs"]
mod tests;

/// Downloads, verifies, stages and swaps in `offer`, reporting each step; afterwards the app
/// restarts into the new version. The installed program is unchanged unless every step held.
pub async fn install_offer(
    http: &reqwest::Client,
    base: &str,
    build: ThisBuild,
    offer: &Offer,
    paths: &launch::UpdatePaths,
    progress: impl FnMut(download::Progress),
) -> Result<(), String> {
    let m = &offer.manifest;
    let _lock = launch::UpdateLock::acquire(paths).map_err(|e| e.to_string())?;
    let mut state = UpdateState::load_or_create(&paths.state_file()).map_err(|e| e.to_string())?;
    let target = download::Target {
        url: offer.url.clone(),
        size: m.size,
        sha256: m.sha256,
        part: paths.dir.join(format!("nexacore-{}.zip.part", m.version)),
    };
    let zip = download::download(http, &target, &download::RetryPolicy::default(), progress)
        .await
        .map_err(|e| e.to_string())?;
    report(http, base, build, &m.version, &state.install_id, ReleaseEventKind::Downloaded, None).await;
    report(http, base, build, &m.version, &state.install_id, ReleaseEventKind::Verified, None).await;
    let (dir, version, from) = (paths.dir.clone(), m.version.to_string(), build.version.to_string());
    let state_file = paths.state_file();
    let swapped = tokio::task::spawn_blocking(move || {
        let program = launch::program_path().ok_or_else(|| std::io::Error::other("the program's path is unknown"))?;
        let staged = install::stage(&zip, &dir, &version).map_err(std::io::Error::other)?;
        install::self_test(&staged, &version, std::time::Duration::from_secs(30)).map_err(std::io::Error::other)?;
        install::swap(program, &staged, &dir, &state_file, &mut state, &from, &version)
            .map_err(std::io::Error::other)?;
        let _ = std::fs::remove_file(&zip);
        Ok::<_, std::io::Error>(state)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    report(http, base, build, &m.version, &swapped.install_id, ReleaseEventKind::Applied, None).await;
    Ok(())
}

impl Offer {
    /// Whether this install must take it before going on: mandatory, or its `min_supported` is
    /// above the installed version.
    pub fn is_required_for(&self, installed: Version) -> bool {
        self.manifest.mandatory || self.manifest.min_supported.is_some_and(|min| min > installed)
    }
}

/// Starts the (new) program and ends this one.
pub fn restart() -> ! {
    let program = launch::program_path().expect("the program's path, known since the start");
    let _ = std::process::Command::new(program).args(std::env::args().skip(1)).spawn();
    std::process::exit(0);
}

/// This build, as the updater describes it, on the channel the settings name.
pub fn this_build(channel: Channel) -> Option<ThisBuild> {
    Some(ThisBuild { version: crate::client_version().parse().ok()?, platform: Platform::current()?, channel })
}
