//! What both service binaries share on their command line: where the configuration comes
//! from (`--config` / `NEXACORE_CONFIG_FILE`), `--print-config` (as TOML), `--probe`, and how they log.

use std::path::PathBuf;

use crate::{ConfigSource, ConfigSourceError};

/// The configuration flags; each binary flattens them into its own `Cli`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// A TOML file of settings.
    #[arg(long, env = "NEXACORE_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the resolved configuration as a TOML file for --config (secrets left out) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `--probe`, each binary's own health check for images without curl.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// GET this plain-HTTP URL (e.g. http://127.0.0.1:8080/ready) and exit 0 on a 2xx answer,
    /// 1 otherwise, without reading any configuration: a container healthcheck.
    #[arg(long, value_name = "URL")]
    pub probe: Option<String>,
}

impl ConfigArgs {
    /// The environment, with the `--config` file beneath it when one was given.
    pub fn source(&self) -> Result<ConfigSource, ConfigSourceError> {
        match &self.config {
            Some(path) => ConfigSource::with_file(path),
            None => Ok(ConfigSource::environment()),
        }
    }
}

/// Logs with tracing: `RUST_LOG` or `info,sqlx=warn`; JSON lines when `NEXACORE_LOG_FORMAT=json`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("NEXACORE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
