//! Where the services' `NEXACORE_*` settings come from, in order: the environment, then
//! `NAME_FILE` in the environment (the file's contents, trailing newline removed: Docker and
//! Kubernetes secrets are mounted as files), then an optional TOML file (`--config` or
//! `NEXACORE_CONFIG_FILE`), then the fallbacks a launcher such as `ops up` supplies. Each
//! service's `Config::from_source` reads every variable through [`ConfigSource::get`], so the
//! same names work in every form.

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigSourceError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("{name}_FILE ({path}): {reason}")]
    SecretFile { name: String, path: String, reason: String },
}

#[derive(Debug, Default, Clone)]
pub struct ConfigSource {
    /// From the TOML file: `NEXACORE_LISTEN = "…"` or `listen = "…"` (the name without its
    /// prefix, any case).
    file: BTreeMap<String, String>,
    /// A launcher's values, used when nothing else sets the variable.
    fallbacks: BTreeMap<String, String>,
}

impl ConfigSource {
    /// The environment alone.
    pub fn environment() -> Self {
        Self::default()
    }

    /// The environment, then the TOML file at `path` (a flat table of strings, numbers or booleans).
    pub fn with_file(path: &Path) -> Result<Self, ConfigSourceError> {
        let error = |reason: String| ConfigSourceError::File { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Self::from_toml(&text).map_err(error)
    }

    fn from_toml(text: &str) -> Result<Self, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut file = BTreeMap::new();
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(format!("{key}: expected a string, number or boolean, not {}", other.type_str())),
            };
            file.insert(variable_name(&key), value);
        }
        Ok(Self { file, fallbacks: BTreeMap::new() })
    }

    /// Adds a launcher's value for `name`, used only when nothing else sets it.
    pub fn fallback(mut self, name: &str, value: impl Into<String>) -> Self {
        self.fallbacks.insert(name.to_owned(), value.into());
        self
    }

    /// The value of `name`, blank values counting as unset.
    pub fn get(&self, name: &str) -> Result<Option<String>, ConfigSourceError> {
        let present = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        if let Some(v) = present(std::env::var(name).ok()) {
            return Ok(Some(v));
        }
        if let Some(path) = present(std::env::var(format!("{name}_FILE")).ok()) {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigSourceError::SecretFile {
                name: name.to_owned(),
                path: path.clone(),
                reason: e.to_string(),
            })?;
            return Ok(present(Some(text.trim_end_matches(['\n', '\r']).to_owned())));
        }
        Ok(present(self.file.get(name).cloned()).or_else(|| present(self.fallbacks.get(name).cloned())))
    }
}

/// `listen` → `NEXACORE_LISTEN`; a name already prefixed is kept (upper-cased).
fn variable_name(key: &str) -> String {
    let upper = key.to_ascii_uppercase().replace('-', "_");
    if upper.starts_with("NEXACORE_") { upper } else { format!("NEXACORE_{upper}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_variables_with_or_without_the_prefix_and_fallbacks_come_last() {
        let source = ConfigSource::from_toml(
            "listen = \"0.0.0.0:9000\"\nNEXACORE_POOL_MAX_PER_TENANT = 7\nmetrics = false\nrouter_url = \" \"\n",
        )
        .unwrap()
        .fallback("NEXACORE_LISTEN", "127.0.0.1:1")
        .fallback("NEXACORE_MAIL_FROM", "ops@example.com");
        assert_eq!(source.get("NEXACORE_LISTEN").unwrap().as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(source.get("NEXACORE_POOL_MAX_PER_TENANT").unwrap().as_deref(), Some("7"));
        assert_eq!(source.get("NEXACORE_METRICS").unwrap().as_deref(), Some("false"));
        assert_eq!(source.get("NEXACORE_ROUTER_URL").unwrap(), None, "blank counts as unset");
        assert_eq!(source.get("NEXACORE_MAIL_FROM").unwrap().as_deref(), Some("ops@example.com"));
        assert_eq!(source.get("NEXACORE_APP_DOWNLOAD_URL").unwrap(), None);
    }

    #[test]
    fn a_table_or_list_in_the_file_is_refused_with_its_key() {
        let error = ConfigSource::from_toml("[listen]\nport = 1\n").unwrap_err();
        assert!(error.starts_with("listen: expected"), "{error}");
    }
}
