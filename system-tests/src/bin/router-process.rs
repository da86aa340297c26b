//! A tenant router in a process of its own, configured from `NEXACORE_*` like the real binary
//! (which lives in the router crate, out of reach of `CARGO_BIN_EXE_*` here): the tests of
//! two replicas start one.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = stack::RouterConfig::from_env().context("reading configuration")?;
    stack::router::App::build(config)
        .await
        .context("starting the tenant router")?
        .run_until_stopped(http_api::shutdown_signal())
        .await
        .context("serving")
}
