//! The control-plane binary: reads its configuration (`NEXACORE_*` variables, `*_FILE`
//! variants, an optional TOML file), logs with tracing (JSON when `NEXACORE_LOG_FORMAT=json`),
//! and serves until Ctrl-C or SIGTERM. `--print-config` prints what it resolved as TOML (secrets left
//! out); `--probe URL` is its own container healthcheck.

use anyhow::Context as _;
use clap::Parser;
use control_plane::{App, Config};

/// NexaCore control plane: provisioning, identity and tokens, the operator API.
#[derive(Parser)]
#[command(
    version,
    after_help = "Every setting is a NEXACORE_* variable (README.md, \"Configuration\"): in the environment, as \
                  NAME_FILE (a file holding the value, for Docker and Kubernetes secrets), or in the --config file \
                  (`listen = \"0.0.0.0:8080\"` or `NEXACORE_LISTEN = \"…\"`). The environment wins over the file."
)]
struct Cli {
    #[command(flatten)]
    config: http_api::ConfigArgs,
    #[command(flatten)]
    probe: http_api::ProbeArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(url) = &cli.probe.probe {
        return http_api::probe(url).context("probe");
    }
    let source = cli.config.source()?;
    let config = Config::from_source(&source).context("reading configuration")?;
    if cli.config.print_config {
        print!("{}", source.to_toml(concat!("control-plane ", env!("CARGO_PKG_VERSION"))));
        return Ok(());
    }
    http_api::init_tracing();
    for name in source.unread_file_keys() {
        tracing::warn!(%name, "the configuration file sets something this service does not read; ignored");
    }
    let app = App::build(config).await.context("starting the control plane")?;
    tracing::info!(port = app.port(), "control plane listening");
    app.run_until_stopped(http_api::shutdown_signal()).await.context("serving")?;
    tracing::info!("control plane stopped");
    Ok(())
}
