//! `ops`: the NexaCore operator CLI. `main` parses flags, runs one command, and maps the
//! outcome to an exit code scripts can trust (0 success, 1 failure, 2 usage error).

mod api;
mod backups;
mod deploy;
mod doctor;
mod local_files;
mod migrate;
mod moves;
mod people;
mod releases;
mod system;
mod tenants;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ops", version, about = "NexaCore operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the platform locally: a private Postgres under ./.nexacore/ and the control plane.
    Up(up::UpArgs),
    /// Tenants: list, show, suspend, resume, delete, backup.
    Tenants {
        #[command(subcommand)]
        command: tenants::TenantsCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: tenants::KeysCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// Bulk schema migrations of every tenant database: plan, run, status, retry, pause, resume, cancel.
    Migrate {
        #[command(subcommand)]
        command: migrate::MigrateCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// A tenant's people: list, invite, remove, set-role (`--tenant <id|slug>`).
    Users {
        #[command(subcommand)]
        command: people::UsersCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// A deploy: maintenance on, in-flight requests finish, every tenant migrated, maintenance
    /// off; stops with maintenance on if the migration fails (`--resume` after the fix).
    Deploy {
        #[command(flatten)]
        args: deploy::DeployArgs,
        #[command(flatten)]
        target: api::Target,
    },
    /// Maintenance of the platform or one tenant: on, off.
    Maintenance {
        #[command(subcommand)]
        command: system::MaintenanceCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// The client versions served: set.
    ClientVersions {
        #[command(subcommand)]
        command: system::ClientVersionsCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// The audit log, newest first.
    Audit {
        #[command(flatten)]
        args: system::AuditArgs,
        #[command(flatten)]
        target: api::Target,
    },
    /// Database servers: list, add, drain.
    Servers {
        #[command(subcommand)]
        command: system::ServersCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// Checks the platform end to end; one line per problem with its fix (exit 1), else 0.
    Doctor {
        #[command(flatten)]
        args: doctor::DoctorArgs,
        #[command(flatten)]
        target: api::Target,
    },
    /// The e-mail outbox: what waits, was sent, or failed.
    Mail {
        #[command(subcommand)]
        command: people::MailCommand,
        #[command(flatten)]
        target: api::Target,
    },
    /// Desktop releases: keygen, publish, list, pause, resume, rollout, yank.
    Release {
        #[command(subcommand)]
        command: releases::ReleaseCommand,
        #[command(flatten)]
        target: api::Target,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Up(_)));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::up(args).await,
            Command::Tenants { command, target } => tenants::run(command, target).await,
            Command::Keys { command, target } => tenants::run_keys(command, target).await,
            Command::Migrate { command, target } => migrate::run(command, target).await,
            Command::Users { command, target } => people::run_users(command, target).await,
            Command::Mail { command, target } => people::run_mail(command, target).await,
            Command::Maintenance { command, target } => system::run_maintenance(command, target).await,
            Command::ClientVersions { command, target } => system::run_client_versions(command, target).await,
            Command::Audit { args, target } => system::run_audit(args, target).await,
            Command::Deploy { args, target } => deploy::run(args, target).await,
            Command::Servers { command, target } => system::run_servers(command, target).await,
            Command::Doctor { args, target } => doctor::run(args, target).await,
            Command::Release { command, target } => releases::run(command, target).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<api::UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}

fn init_tracing(verbose: bool) {
    let default = if verbose { "info,sqlx=warn" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("NEXACORE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
