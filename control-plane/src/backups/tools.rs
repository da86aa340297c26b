//! Running `pg_dump` and `pg_restore` as a tenant's own role.
//!
//! Both programs log in with the tenant role's derived password (`PGPASSWORD`, never on a
//! command line): whatever a tenant planted in its database (functions, triggers, casts) can
//! only ever run with the tenant's own rights, never a superuser's (SECURITY.md). They are
//! found the way `local-postgres` finds the server binaries (`NEXACORE_PG_BINDIR`, then the
//! newest `/usr/lib/postgresql/*/bin`, then PATH), so a machine that runs Postgres needs no
//! further step.

use std::path::Path;
use std::process::Stdio;

use local_postgres::DumpTools;

use crate::fleet::TenantLogin;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    NotFound(#[from] local_postgres::ClusterError),
    #[error("cannot start {program}: {source}")]
    Spawn { program: &'static str, source: std::io::Error },
    /// The program's own words stay in the log: they can name hosts and SQL.
    #[error("{program} failed ({status}); the control plane's log has its output")]
    Failed { program: &'static str, status: std::process::ExitStatus },
}

/// Libpq variables an operator's environment may hold that must not change where or how the
/// tools log in.
const INHERITED_PG_VARIABLES: [&str; 6] =
    ["PGOPTIONS", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGHOSTADDR", "PGTARGETSESSIONATTRS"];

/// Dumps the login's database in custom format into `out`, reading the exported snapshot
/// `snapshot` (so the dump is exactly what the caller's open transaction saw). Its session is
/// named `application_name`, so a recovery can find it if this process dies.
pub async fn pg_dump(
    tools: &DumpTools,
    login: &TenantLogin,
    snapshot: &str,
    out: &Path,
    application_name: &str,
) -> Result<(), ToolError> {
    let mut command = tokio::process::Command::new(tools.pg_dump());
    command.arg("--format=custom").arg("--no-password").arg(format!("--snapshot={snapshot}")).arg("--file").arg(out);
    command.env("PGAPPNAME", application_name);
    run("pg_dump", command, login).await
}

/// Dumps the login's database schema only (no rows, publications or subscriptions) in custom
/// format into `out`: what a move restores on the target before replication copies the rows.
pub async fn pg_dump_schema(tools: &DumpTools, login: &TenantLogin, out: &Path) -> Result<(), ToolError> {
    let mut command = tokio::process::Command::new(tools.pg_dump());
    command
        .arg("--format=custom")
        .arg("--no-password")
        .arg("--schema-only")
        .arg("--no-publications")
        .arg("--no-subscriptions")
        .arg("--file")
        .arg(out);
    run("pg_dump", command, login).await
}

/// Restores a custom-format dump into the login's (fresh, empty) database as the login's role:
/// objects are owned by that role whatever the dump says (`--no-owner`), no grants are copied
/// (`--no-privileges`), and it stops at the first error inside one transaction, so a failed
/// restore leaves the database empty.
pub async fn pg_restore(tools: &DumpTools, login: &TenantLogin, dump: &Path) -> Result<(), ToolError> {
    let mut command = tokio::process::Command::new(tools.pg_restore());
    command
        .arg("--no-password")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--exit-on-error")
        .arg("--single-transaction")
        .arg("--dbname")
        .arg(&login.database)
        .arg(dump);
    run("pg_restore", command, login).await
}

async fn run(
    program: &'static str,
    mut command: tokio::process::Command,
    login: &TenantLogin,
) -> Result<(), ToolError> {
    for name in INHERITED_PG_VARIABLES {
        command.env_remove(name);
    }
    // A name the caller gave (a dump's, for recovery) outranks the login's default one.
    let named = command.as_std().get_envs().any(|(key, _)| key == "PGAPPNAME");
    let env = login.env().into_iter().filter(|(key, _)| !(named && *key == "PGAPPNAME"));
    command.envs(env).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let output = command.output().await.map_err(|source| ToolError::Spawn { program, source })?;
    if !output.status.success() {
        tracing::error!(
            program,
            database = %login.database,
            status = %output.status,
            output = %String::from_utf8_lossy(&output.stderr),
            "a Postgres tool failed"
        );
        return Err(ToolError::Failed { program, status: output.status });
    }
    Ok(())
}
