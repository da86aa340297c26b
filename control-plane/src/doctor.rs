//! `ops doctor`'s checks, run where the facts are: the control plane reaches the catalog, every
//! server as superuser and its own signing keys, so `ops` needs no database credential.
//!
//! Each check reads, never changes anything, and turns what is wrong into one
//! [`DoctorProblem`] with the fix an operator would apply. A server that cannot be reached is a
//! problem of the check that needed it, not an error of the whole report.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use api_types::doctor::{CheckStatus, DoctorCheck, DoctorProblem, DoctorReport};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::catalog::servers::{self, ServerRow};
use crate::fleet::ServerHandle;
use crate::state::AppState;

/// The most lines one check reports; the rest are counted in a last line.
const MAX_LINES_PER_CHECK: usize = 50;

/// What the control plane cannot know by itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct DoctorInput {
    /// Connections all router replicas together may hold to one server (the sum of their
    /// `NEXACORE_POOL_BUDGET_PER_SERVER`); `None` skips the `max_connections` check.
    pub router_budget: Option<u32>,
}

/// One report under construction.
struct Findings {
    report: DoctorReport,
}

impl Findings {
    fn check(&mut self, name: &str, detail: String, problems: Vec<(String, String, String)>) {
        let status = if problems.is_empty() { CheckStatus::Ok } else { CheckStatus::Problem };
        let total = problems.len();
        for (subject, problem, fix) in problems.into_iter().take(MAX_LINES_PER_CHECK) {
            self.report.problems.push(DoctorProblem { check: name.into(), subject, problem, fix });
        }
        if total > MAX_LINES_PER_CHECK {
            self.report.problems.push(DoctorProblem {
                check: name.into(),
                subject: "…".into(),
                problem: format!("{} more problem(s) of this kind", total - MAX_LINES_PER_CHECK),
                fix: "fix the ones above and run the doctor again".into(),
            });
        }
        self.report.checks.push(DoctorCheck { name: name.into(), status, detail });
    }

    fn skipped(&mut self, name: &str, detail: String) {
        self.report.checks.push(DoctorCheck { name: name.into(), status: CheckStatus::Skipped, detail });
    }
}

type Problems = Vec<(String, String, String)>;

fn problem(subject: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) -> (String, String, String) {
    (subject.into(), what.into(), fix.into())
}

/// Runs every check. Fails only when the catalog itself cannot be read.
pub async fn examine(state: &AppState, input: DoctorInput) -> Result<DoctorReport, sqlx::Error> {
    let mut findings = Findings { report: DoctorReport::default() };
    let catalog_version: i64 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0)::int8 FROM refinery_schema_history")
            .fetch_one(&state.catalog)
            .await?;
    findings.check("catalog", format!("reachable, catalog schema version {catalog_version}"), Vec::new());
    keys(state, &mut findings).await;
    let rows: Vec<ServerRow> =
        servers::all(&state.catalog).await?.into_iter().filter(|s| s.status == "active").collect();
    let mut reachable = Vec::new();
    let mut unreachable = Problems::new();
    for row in &rows {
        match state.fleet.server(row.id).await {
            Ok(handle) => match sqlx::query("SELECT 1").execute(handle.pool()).await {
                Ok(_) => reachable.push(handle),
                Err(e) => unreachable.push(unreachable_problem(&row.name, &e.to_string())),
            },
            Err(e) => unreachable.push(unreachable_problem(&row.name, &e.to_string())),
        }
    }
    findings.check("servers", format!("{} active server(s), {} reachable", rows.len(), reachable.len()), unreachable);
    templates(state, &reachable, &mut findings).await;
    spares(state, &rows, &mut findings).await?;
    connections(state, &reachable, input, &mut findings).await;
    connect_privileges(state, &reachable, &mut findings).await?;
    backups(state, &mut findings).await?;
    Ok(findings.report)
}

fn unreachable_problem(server: &str, error: &str) -> (String, String, String) {
    tracing::warn!(server, error, "doctor: a server cannot be reached");
    problem(
        format!("server {server}"),
        "cannot be reached as its stored superuser (the control plane's log has the error)",
        "start the server, or check its address and credentials (`ops servers list`)",
    )
}

async fn keys(state: &AppState, findings: &mut Findings) {
    let mut problems = Problems::new();
    if let Err(error) = state.keys.reload().await {
        tracing::warn!(%error, "doctor: reloading signing keys failed");
        problems.push(problem(
            "signing keys",
            "cannot be read from the catalog",
            "check the master key (NEXACORE_MASTER_KEY) matches the one the keys were sealed with",
        ));
    }
    let (kid, _) = state.keys.current().await;
    let jwks = state.keys.jwks().await;
    let kids: Vec<&str> = jwks["keys"].as_array().into_iter().flatten().filter_map(|k| k["kid"].as_str()).collect();
    if !kids.contains(&kid.as_str()) {
        problems.push(problem(
            format!("key {kid}"),
            "the key that signs tokens is not in the JWKS: routers reject every new token",
            "rotate the keys (`ops keys rotate`)",
        ));
    }
    findings.check("keys", format!("signing key {kid}; {} key(s) in the JWKS", kids.len()), problems);
}

async fn templates(state: &AppState, servers: &[ServerHandle], findings: &mut Findings) {
    let latest = state.fleet.latest_version();
    let mut problems = Problems::new();
    for server in servers {
        let version = async {
            let mut conn = server.connect_to(state.fleet.template()).await.map_err(|e| e.to_string())?;
            let v: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM public.refinery_schema_history")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::Connection::close(conn).await.ok();
            Ok::<_, String>(v.unwrap_or(0))
        }
        .await;
        match version {
            Ok(v) if v == latest => {}
            Ok(v) => problems.push(problem(
                format!("server {}", server.name),
                format!("template database {} is at schema version {v}, this build's latest is {latest}: new tenants are born outdated", state.fleet.template()),
                "restart a control plane of this build (it migrates every template at start)",
            )),
            Err(error) => {
                tracing::warn!(server = %server.name, %error, "doctor: cannot read a template's version");
                problems.push(problem(
                    format!("server {}", server.name),
                    format!("template database {} cannot be read", state.fleet.template()),
                    "restart a control plane (it creates and migrates the template at start)",
                ));
            }
        }
    }
    findings.check("templates", format!("{} template(s) checked against version {latest}", servers.len()), problems);
}

async fn spares(state: &AppState, rows: &[ServerRow], findings: &mut Findings) -> Result<(), sqlx::Error> {
    let target = state.provisioner.spares().per_server();
    if target == 0 {
        findings.skipped("spares", "the spare pool is off (NEXACORE_SPARE_DATABASES=0)".into());
        return Ok(());
    }
    let loads = servers::loads(&state.catalog).await?;
    let mut problems = Problems::new();
    for load in loads.iter().filter(|l| rows.iter().any(|r| r.id == l.id)) {
        if load.spares_ready < i64::from(target) {
            problems.push(problem(
                format!("server {}", load.name),
                format!("{} of {target} spare databases ready: signups copy the template meanwhile", load.spares_ready),
                "if it stays so, the control plane's log says why the refiller fails (disk, template, permissions)",
            ));
        }
    }
    findings.check("spares", format!("{target} spare database(s) per server wanted"), problems);
    Ok(())
}

async fn connections(state: &AppState, servers: &[ServerHandle], input: DoctorInput, findings: &mut Findings) {
    let Some(router_budget) = input.router_budget else {
        findings.skipped("connections", "give the routers' budget (`ops doctor --router-budget N`)".into());
        return;
    };
    // The control plane's own: its DDL pool per server, its dumps, its migrations.
    let own =
        8 + state.backups.settings().concurrency as i64 + state.migrations.settings().per_server_concurrency as i64;
    let needed = i64::from(router_budget) + own;
    let mut problems = Problems::new();
    for server in servers {
        let limits: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
            "SELECT current_setting('max_connections')::int8,
                    current_setting('superuser_reserved_connections')::int8
                    + coalesce(current_setting('reserved_connections', true), '0')::int8",
        )
        .fetch_one(server.pool())
        .await;
        match limits {
            Ok((max, reserved)) if max - reserved < needed => problems.push(problem(
                format!("server {}", server.name),
                format!(
                    "max_connections {max} leaves {} for clients, but the routers may open {router_budget} and the control plane about {own}",
                    max - reserved
                ),
                format!("raise max_connections to at least {} (restart Postgres), or lower NEXACORE_POOL_BUDGET_PER_SERVER on the routers", needed + reserved),
            )),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(server = %server.name, %error, "doctor: cannot read max_connections");
                problems.push(unreachable_problem(&server.name, &error.to_string()));
            }
        }
    }
    findings.check(
        "connections",
        format!("each server's max_connections against routers {router_budget} + control plane {own}"),
        problems,
    );
}

/// `CONNECT` on every database: a tenant's only for its own role, every other closed to
/// `PUBLIC` (else any tenant role could log into it). Read from the ACLs themselves.
async fn connect_privileges(
    state: &AppState,
    servers: &[ServerHandle],
    findings: &mut Findings,
) -> Result<(), sqlx::Error> {
    let tenants: Vec<(Uuid, String, String, String)> = sqlx::query_as(
        "SELECT server_id, slug, database_name, role_name FROM tenants WHERE status NOT IN ('deleted', 'provisioning')",
    )
    .fetch_all(&state.catalog)
    .await?;
    let mut problems = Problems::new();
    let mut databases = 0;
    for server in servers {
        let owned: HashMap<&str, (&str, &str)> =
            tenants.iter().filter(|t| t.0 == server.id).map(|t| (t.2.as_str(), (t.1.as_str(), t.3.as_str()))).collect();
        // (database, grantee; '' = PUBLIC) for every CONNECT grant to PUBLIC or a login role
        // that is not a superuser; a database without an ACL has the defaults (PUBLIC may).
        let grants: Result<Vec<(String, String)>, sqlx::Error> = sqlx::query_as(
            "SELECT d.datname::text, coalesce(r.rolname::text, '')
             FROM pg_catalog.pg_database d
             CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a
             LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
             WHERE d.datallowconn AND a.privilege_type = 'CONNECT'
               AND (a.grantee = 0 OR (r.rolcanlogin AND NOT r.rolsuper))
             ORDER BY 1, 2",
        )
        .fetch_all(server.pool())
        .await;
        let grants = match grants {
            Ok(g) => g,
            Err(error) => {
                problems.push(unreachable_problem(&server.name, &error.to_string()));
                continue;
            }
        };
        let mut seen = HashSet::new();
        for (db, grantee) in grants {
            seen.insert(db.clone());
            match (owned.get(db.as_str()), grantee.as_str()) {
                (Some(_), "") => problems.push(problem(
                    format!("database {db} on {}", server.name),
                    "tenant database open to PUBLIC: every tenant role may log into it",
                    format!("REVOKE ALL ON DATABASE \"{db}\" FROM PUBLIC"),
                )),
                (Some((_, role)), grantee) if grantee == *role => {}
                (Some((slug, _)), grantee) => problems.push(problem(
                    format!("database {db} on {}", server.name),
                    format!("role {grantee} may connect to tenant {slug}'s database"),
                    format!("REVOKE CONNECT ON DATABASE \"{db}\" FROM \"{grantee}\""),
                )),
                (None, "") => problems.push(problem(
                    format!("database {db} on {}", server.name),
                    "open to PUBLIC: every tenant role may log into it",
                    format!("REVOKE ALL ON DATABASE \"{db}\" FROM PUBLIC"),
                )),
                (None, _) => {}
            }
        }
        databases += seen.len();
    }
    findings.check("connect_privileges", format!("CONNECT grants of {databases} database(s)"), problems);
    Ok(())
}

/// Tenants whose newest finished backup is older than the schedule allows (a missed run and
/// half another), when a schedule is set.
async fn backups(state: &AppState, findings: &mut Findings) -> Result<(), sqlx::Error> {
    let Some(schedule) = state.backups.settings().schedule else {
        findings.skipped("backups", "no backup schedule (NEXACORE_BACKUP_SCHEDULE)".into());
        return Ok(());
    };
    let period = schedule.period();
    let allowed = period + period / 2;
    let cutoff = OffsetDateTime::now_utc() - allowed;
    let stale: Vec<(String, Option<OffsetDateTime>)> = sqlx::query_as(
        "SELECT t.slug, (SELECT max(b.finished_at) FROM backups b WHERE b.tenant_id = t.id AND b.status = 'done')
         FROM tenants t
         WHERE t.status IN ('active', 'suspended') AND t.created_at < $1
           AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.tenant_id = t.id AND b.status = 'done' AND b.finished_at >= $1)
         ORDER BY t.slug",
    )
    .bind(cutoff)
    .fetch_all(&state.catalog)
    .await?;
    let problems = stale
        .into_iter()
        .map(|(slug, last)| {
            let when = last.map_or("never backed up".to_owned(), |t| format!("last backup finished {}", rfc3339(t)));
            problem(
                format!("tenant {slug}"),
                format!("{when}, older than the schedule allows ({})", human(allowed)),
                format!(
                    "see the control plane's log for failed scheduled backups; `ops tenants backup {slug}` meanwhile"
                ),
            )
        })
        .collect();
    findings.check("backups", format!("every live tenant backed up within {}", human(allowed)), problems);
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 { format!("{:.1} h", s as f64 / 3600.0) } else { format!("{s} s") }
}
