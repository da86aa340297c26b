//! `nexacore-bench`: NexaCore's benchmarks. Each starts what it measures on a private Postgres
//! cluster (or a given server), prints its figures beside a baseline measured in the same run,
//! as a ratio, and fails only when something breaks, never on a missed target.
//!
//! `cargo run --release -p bench -- <router|realtime|provision|migrate|moves|passwords|releases|backups> [flags]`.

mod backups;
mod harness;
mod migrate;
mod moves;
mod passwords;
mod provision;
mod realtime;
mod releases;
mod router;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "nexacore-bench", version, about = "NexaCore benchmarks, each beside a same-run baseline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Router overhead against a minimal poem + sqlx service, and behaviour under many tenants.
    Router(router::RouterBenchArgs),
    /// WebSocket fan-out: commit-to-client latency across two router replicas, deliveries/s, memory.
    Realtime(realtime::RealtimeBenchArgs),
    /// Provisioning latency through the API against a raw CREATE ROLE + CREATE DATABASE baseline.
    Provision(provision::ProvisionBenchArgs),
    /// Bulk migration of many tenants by the engine against a sequential process-per-database loop.
    Migrate(migrate::MigrateBenchArgs),
    /// Write unavailability while a 10 MB and a 100 MB tenant move servers, against a plain fence.
    Moves(moves::MovesBenchArgs),
    /// Login and signup throughput with the password throttle and bounded hashing, against unbounded hashing.
    Passwords(passwords::PasswordsBenchArgs),
    /// The desktop updater's download against curl, and download-complete → new version running.
    Releases(releases::ReleasesBenchArgs),
    /// Backing up every tenant through the control plane against a sequential pg_dump loop.
    Backups(backups::BackupsBenchArgs),
    /// Migrates one database in this process (the per-process baseline of `migrate`).
    #[command(hide = true)]
    MigrateOne(migrate::one::MigrateOneArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Router(args) => router::run(args).await,
            Command::Realtime(args) => realtime::run(args).await,
            Command::Provision(args) => provision::run(args).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Moves(args) => moves::run(args).await,
            Command::Passwords(args) => passwords::run(args).await,
            Command::Releases(args) => releases::run(args).await,
            Command::Backups(args) => backups::run(args).await,
            Command::MigrateOne(args) => migrate::one::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Warnings only by default (`RUST_LOG` overrides), to stderr, so that stdout holds the report.
/// The services' per-request warnings (each 503 while a benchmark fences a tenant, for one) are
/// what the benchmarks count, not news: left out unless asked for.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,http_api::request_log=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("NEXACORE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
