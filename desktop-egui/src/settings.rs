//! What the app remembers between runs: the server URL, the last e-mail and company, the UI
//! scale, the release channel. A JSON file in the platform's config directory (`directories`); every field has a
//! default, so an old or damaged file never stops the app from starting.

use std::path::{Path, PathBuf};

use api_types::releases::Channel;
use serde::{Deserialize, Serialize};

/// `ops up`'s control plane.
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The control plane's base URL.
    pub server_url: String,
    pub last_email: String,
    pub last_company: String,
    /// Points per pixel factor, 1.0–2.0.
    pub ui_scale: f32,
    /// Which releases the updater takes: `stable` (default) or `beta`.
    pub channel: Channel,
    /// A PEM file of CA certificates trusted besides the public roots (a company's own CA);
    /// `NEXACORE_TLS_CA_FILE` wins over it.
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server_url: DEFAULT_SERVER_URL.into(),
            last_email: String::new(),
            last_company: String::new(),
            ui_scale: 1.0,
            channel: Channel::Stable,
            extra_ca_file: None,
        }
    }
}

impl Settings {
    /// `<config dir>/settings.json`, e.g. `~/.config/nexacore/settings.json` on Linux.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("com", "NexaCore", "nexacore").map(|d| d.config_dir().join("settings.json"))
    }

    /// Reads the file; a missing or unreadable one gives the defaults.
    pub fn load(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(%error, path = %path.display(), "ignoring unreadable settings");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Writes the file (atomically: a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_tolerate_old_or_damaged_files() {
        let dir = std::env::temp_dir().join(format!("nexacore-settings-{}", uuid::Uuid::new_v4()));
        let path = dir.join("settings.json");
        assert_eq!(Settings::load(&path), Settings::default());
        let s = Settings {
            server_url: "http://example:1".into(),
            ui_scale: 1.5,
            channel: Channel::Beta,
            ..Settings::default()
        };
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path), s);
        std::fs::write(&path, r#"{"server_url":"http://old:2","unknown":1}"#).unwrap();
        let old = Settings::load(&path);
        assert_eq!(old.server_url, "http://old:2");
        assert_eq!(old.ui_scale, 1.0);
        assert_eq!(old.channel, Channel::Stable);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(Settings::load(&path), Settings::default());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
