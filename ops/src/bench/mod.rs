//! `ops bench …`: performance benchmarks. Each prints its figures and a baseline measured in the
//! same run, as a ratio, never a pass/fail on wall-clock time alone.

pub mod migrate;
pub mod passwords;
pub mod provision;
pub mod realtime;
pub mod router;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Bulk migration of many tenants by the engine against a sequential process-per-database loop.
    Migrate(migrate::MigrateBenchArgs),
    /// Login and signup throughput with the password throttle and bounded hashing, against unbounded hashing.
    Passwords(passwords::PasswordsBenchArgs),
    /// Provisioning latency through the API against a raw CREATE ROLE + CREATE DATABASE baseline.
    Provision(provision::ProvisionBenchArgs),
    /// Router overhead against a minimal poem + sqlx service, and behaviour under many tenants.
    Router(router::RouterBenchArgs),
    /// WebSocket fan-out: commit-to-client latency across two router replicas, deliveries/s, memory.
    Realtime(realtime::RealtimeBenchArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Migrate(args) => migrate::run(args).await,
        BenchCommand::Passwords(args) => passwords::run(args).await,
        BenchCommand::Provision(args) => provision::run(args).await,
        BenchCommand::Router(args) => router::run(args).await,
        BenchCommand::Realtime(args) => realtime::run(args).await,
    }
}
