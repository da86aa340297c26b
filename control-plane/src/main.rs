//! The control-plane binary: reads `NEXACORE_*` configuration, logs with tracing (JSON when
//! `NEXACORE_LOG_FORMAT=json`), and serves until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use control_plane::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let config = Config::from_env().context("reading configuration")?;
    let app = App::build(config).await.context("starting the control plane")?;
    tracing::info!(port = app.port(), "control plane listening");
    app.run_until_stopped(http_api::shutdown_signal()).await.context("serving")?;
    tracing::info!("control plane stopped");
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,poem=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("NEXACORE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
