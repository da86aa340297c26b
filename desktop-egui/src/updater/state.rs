//! The update-state file: what the updater must remember across restarts, written atomically
//! (temporary file, sync, rename) so a crash or kill -9 leaves the old state or the new one.
//!
//! - `install_id`: a random id, made once; the server's rollout rule hashes it.
//! - `highest_seen` (stable) and `highest_seen_beta`: the highest version any verified manifest of
//!   that channel named here. A validly signed but older manifest (a replay) is refused even after
//!   a rollback lowered the installed version. Kept per channel, so going back from beta to
//!   stable does not refuse stable's next releases as replays of beta's higher numbers.
//! - `phase`: where an update stands between launches (`Swapped` → `FirstRun` → committed or
//!   rolled back), so the next launch knows what to finish or undo.
//! - `last_outcome`: what the next launch tells the user (and reports).

use std::path::{Path, PathBuf};

use api_types::releases::Channel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateState {
    pub install_id: String,
    pub highest_seen: String,
    pub highest_seen_beta: String,
    pub phase: Phase,
    pub last_outcome: Option<Outcome>,
    /// Versions that were rolled back here: never installed again by themselves (a manual check
    /// still offers them), so a release that fails its first run cannot loop.
    pub rolled_back: Vec<String>,
}

impl Default for UpdateState {
    fn default() -> Self {
        Self {
            install_id: uuid::Uuid::new_v4().simple().to_string(),
            highest_seen: String::new(),
            highest_seen_beta: String::new(),
            phase: Phase::Idle,
            last_outcome: None,
            rolled_back: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Idle,
    /// The new program is in place; it has not started yet.
    Swapped { from: String, to: String, previous: PathBuf },
    /// The new program started once and has not yet reported healthy. Finding this at launch
    /// means that start never got there: roll back.
    FirstRun { from: String, to: String, previous: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    Updated { from: String, to: String },
    RolledBack { from: String, to: String, reason: String },
}

impl UpdateState {
    /// Reads the state; a missing or unreadable file is a fresh state (never a reason not to start).
    pub fn load(path: &Path) -> Self {
        std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A name of its own per write: two writers never rename each other's half-written file.
        let temp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&temp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    }

    /// Loads, or creates and saves a fresh state (the install id must not change between runs).
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if path.exists() {
            return Ok(Self::load(path));
        }
        let state = Self::default();
        state.save(path)?;
        Ok(state)
    }

    pub fn highest_seen(&self, channel: Channel) -> Option<api_types::Version> {
        self.highest_seen_of(channel).parse().ok()
    }

    pub fn set_highest_seen(&mut self, channel: Channel, version: api_types::Version) {
        *self.highest_seen_of_mut(channel) = version.to_string();
    }

    fn highest_seen_of(&self, channel: Channel) -> &String {
        match channel {
            Channel::Stable => &self.highest_seen,
            Channel::Beta => &self.highest_seen_beta,
        }
    }

    fn highest_seen_of_mut(&mut self, channel: Channel) -> &mut String {
        match channel {
            Channel::Stable => &mut self.highest_seen,
            Channel::Beta => &mut self.highest_seen_beta,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_survives_a_round_trip_and_a_broken_file_is_a_fresh_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("update-state.json");
        let mut state = UpdateState::load_or_create(&path).unwrap();
        let id = state.install_id.clone();
        assert_eq!(UpdateState::load_or_create(&path).unwrap().install_id, id, "the install id is kept");
        state.highest_seen = "1.3.0".into();
        state.phase = Phase::Swapped { from: "1.2.0".into(), to: "1.3.0".into(), previous: "/x/prev".into() };
        state.save(&path).unwrap();
        assert_eq!(UpdateState::load(&path), state);
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(UpdateState::load(&path).phase, Phase::Idle);
    }
}
