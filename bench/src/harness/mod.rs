//! What every benchmark needs and none should write again: the Postgres server it runs on
//! ([`postgres`]), the platform started through the `stack` crate with tenants signed up in
//! bulk ([`platform`]), readings of the machine from /proc ([`machine`]), latency statistics
//! ([`stats`]), and progress bars and tables ([`output`]).

pub mod machine;
pub mod output;
pub mod platform;
pub mod postgres;
pub mod stats;

/// Runs `work` until it ends or Ctrl-C ends it (as an error). The caller cleans up either way:
/// a private Postgres cluster outlives a Ctrl-C aimed at us by design, so only we can stop it.
pub async fn until_interrupted<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        outcome = work => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}
