//! One tenant's turn in a run: skipped, inspected under its migration lock, flagged, migrated,
//! committed and recorded; or, in a dry run, only inspected and planned.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tenant_schema::PendingMigration;
use uuid::Uuid;

use super::Engine;
use crate::catalog::migration_runs::{self as runs, AttemptStep, AttemptTarget, RunRow, TenantEnd, WorkRow};
use crate::domain::{DbName, RoleName};
use crate::fleet::ServerHandle;
use crate::migrations::database::{self, error_text, millis};
use crate::migrations::recorder::Recorder;
use crate::migrations::status::RunTenantStatus;

impl Engine {
    /// Records the end of a tenant's turn; retried a few times, because a tenant left flagged
    /// `migrating` is refused by every router until someone clears it.
    async fn end(
        &self,
        rec: &Recorder,
        run: &RunRow,
        tenant: Uuid,
        end: TenantEnd,
        attempts: Option<(Vec<i64>, Vec<AttemptStep>)>,
    ) -> Result<(), sqlx::Error> {
        let (ids, steps) = attempts.unwrap_or_default();
        let mut delay = Duration::from_millis(100);
        for attempt in 1.. {
            match rec.end(run.id, tenant, end.clone(), ids.clone(), steps.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if attempt < 5 => {
                    tracing::warn!(%tenant, %error, "recording a tenant's migration failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(error) => return Err(error),
            }
        }
        unreachable!("the loop returns")
    }

    /// A tenant that could not even be inspected: one failed attempt, nothing applied.
    async fn fail_early(
        &self,
        rec: &Recorder,
        run: &RunRow,
        item: &WorkRow,
        error: String,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        tracing::warn!(run = %run.id, tenant = %item.slug, %error, "tenant migration failed");
        let end = TenantEnd {
            status: RunTenantStatus::Failed,
            from_version: None,
            to_version: None,
            error: Some(error),
            timings: None,
            duration_ms: None,
            schema_version: None,
            count_attempt: true,
        };
        self.end(rec, run, item.tenant_id, end, None).await?;
        Ok(RunTenantStatus::Failed)
    }

    /// A tenant the run no longer concerns (deleted meanwhile).
    async fn skip(&self, rec: &Recorder, run: &RunRow, item: &WorkRow) -> Result<Option<RunTenantStatus>, sqlx::Error> {
        if matches!(item.tenant_status.as_str(), "active" | "suspended") {
            return Ok(None);
        }
        let reason = format!("the tenant is {}", item.tenant_status);
        let end = TenantEnd {
            status: RunTenantStatus::Skipped,
            from_version: None,
            to_version: None,
            error: Some(reason),
            timings: None,
            duration_ms: None,
            schema_version: None,
            count_attempt: false,
        };
        self.end(rec, run, item.tenant_id, end, None).await?;
        Ok(Some(RunTenantStatus::Skipped))
    }

    /// One tenant: inspect under its migration lock, then flag, apply, commit, record.
    pub(super) async fn migrate_tenant(
        &self,
        run: &RunRow,
        item: &WorkRow,
        rec: &Recorder,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        if let Some(skipped) = self.skip(rec, run, item).await? {
            return Ok(skipped);
        }
        let (db, role) = match (DbName::parse(&item.database_name), RoleName::parse(&item.role_name)) {
            (Ok(db), Ok(role)) => (db, role),
            _ => {
                return self
                    .fail_early(rec, run, item, "the catalog holds an invalid database or role name".into())
                    .await;
            }
        };
        let server = match self.fleet.server(item.server_id).await {
            Ok(server) => server,
            Err(error) => return self.fail_early(rec, run, item, error.to_string()).await,
        };
        let clock = Instant::now();
        let connecting = Instant::now();
        // As the tenant's own role: nothing the tenant created in its database (a trigger, a
        // view over the history, a search path) can run with more rights than it has.
        let mut conn = match self.fleet.connect_as_tenant(&server, &db, &role).await {
            Ok(conn) => conn,
            Err(error) => {
                return self.fail_early(rec, run, item, format!("cannot connect: {}", error_text(&error))).await;
            }
        };
        let connect = connecting.elapsed();
        let tenant = TenantDatabase { server: &server, db: &db, role: &role };
        let outcome = self.migrate_connected(rec, run, item, tenant, &mut conn, connect, clock).await;
        conn.close().await.ok();
        outcome
    }

    #[allow(clippy::too_many_arguments, reason = "one tenant's migration, split where its connection opens")]
    async fn migrate_connected(
        &self,
        rec: &Recorder,
        run: &RunRow,
        item: &WorkRow,
        tenant: TenantDatabase<'_>,
        conn: &mut PgConnection,
        connect: Duration,
        clock: Instant,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        let locking = Instant::now();
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(error) => return self.fail_early(rec, run, item, error_text(&error)).await,
        };
        let checked = async {
            let can_create = database::prepare_tenant(&mut tx, self.timeouts(run)).await?;
            let check = tenant_schema::check_history(&mut tx, self.set.as_slice(), Some(run.target_version)).await?;
            Ok::<_, tenant_schema::SchemaError>((can_create, check))
        }
        .await;
        let (can_create, check) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                tx.rollback().await.ok();
                return self.fail_early(rec, run, item, error_text(&error)).await;
            }
        };
        let lock = locking.elapsed();

        if let Some(drift) = &check.drift {
            tx.rollback().await.ok();
            let reason = format!("not migrated: its history departs from the code: {drift}");
            tracing::warn!(run = %run.id, tenant = %item.slug, %reason, "drifted tenant skipped");
            let end = TenantEnd {
                status: RunTenantStatus::Drifted,
                from_version: check.applied_version,
                to_version: check.applied_version,
                error: Some(reason),
                timings: None,
                duration_ms: None,
                schema_version: None,
                count_attempt: false,
            };
            self.end(rec, run, item.tenant_id, end, None).await?;
            return Ok(RunTenantStatus::Drifted);
        }
        if check.pending.is_empty() {
            tx.rollback().await.ok();
            let end = TenantEnd {
                status: RunTenantStatus::Succeeded,
                from_version: check.applied_version,
                to_version: check.applied_version,
                error: None,
                timings: None,
                duration_ms: None,
                schema_version: check.applied_version,
                count_attempt: false,
            };
            self.end(rec, run, item.tenant_id, end, None).await?;
            return Ok(RunTenantStatus::Succeeded);
        }

        // The router lock and the attempt records, committed before any DDL.
        let flagging = Instant::now();
        let target = AttemptTarget {
            run: run.id,
            tenant: Some(item.tenant_id),
            server: item.server_id,
            database: item.database_name.clone(),
            attempt: item.attempts + 1,
        };
        let steps: Vec<(i32, String)> = check.pending.iter().map(|m| (m.version, m.name.clone())).collect();
        let ids = match rec.begin(target, check.applied_version, steps).await {
            Ok(ids) => ids,
            Err(error) => {
                tx.rollback().await.ok();
                return Err(error);
            }
        };
        let flag = flagging.elapsed();

        let applying = Instant::now();
        // A tenant provisioned before tenants were given `CREATE` on `public` gets it once, from a
        // superuser session that runs no tenant code; this transaction sees it from its next
        // statement on.
        let granted = match can_create {
            true => Ok(()),
            false => self.fleet.grant_schema_create(tenant.server, tenant.db, tenant.role).await,
        };
        let (applied, failure) = match granted {
            Ok(()) => {
                let (applied, failure) = database::apply_pending(&mut tx, &self.set, &check.pending).await;
                (applied, failure.map(|error| error_text(&error)))
            }
            Err(error) => (Vec::new(), Some(format!("granting CREATE on schema public: {error}"))),
        };
        let ddl = applying.elapsed();
        let committing = Instant::now();
        let (committed, error) = match failure {
            Some(error) => {
                tx.rollback().await.ok();
                (false, Some(error))
            }
            None => match tx.commit().await {
                Ok(()) => (true, None),
                Err(error) => (false, Some(error_text(&error))),
            },
        };
        let commit = committing.elapsed();
        if committed {
            self.after_commit(&item.slug);
        }
        let duration = clock.elapsed();

        let records = database::attempt_records(&check.pending, &applied, committed);
        let reached = committed.then(|| check.pending.last().map(|m| m.version)).flatten();
        let to_version = reached.or(check.applied_version);
        let timings = json!({
            "connect_ms": millis(connect),
            "lock_ms": millis(lock),
            "flag_ms": millis(flag),
            "ddl_ms": millis(ddl),
            "commit_ms": millis(commit),
        });
        let end = TenantEnd {
            status: if committed { RunTenantStatus::Succeeded } else { RunTenantStatus::Failed },
            from_version: check.applied_version,
            to_version,
            error: error.clone(),
            timings: Some(timings),
            duration_ms: Some(millis(duration)),
            schema_version: to_version,
            count_attempt: false,
        };
        if let Some(error) = &error {
            tracing::warn!(run = %run.id, tenant = %item.slug, %error, "tenant migration failed and was rolled back");
        }
        self.end(rec, run, item.tenant_id, end, Some((ids, records))).await?;
        Ok(if committed { RunTenantStatus::Succeeded } else { RunTenantStatus::Failed })
    }

    /// The crash test hook: die right after the n-th commit, before the catalog knows.
    fn after_commit(&self, tenant: &str) {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.settings.crash_after_commits == Some(n) {
            tracing::error!(%tenant, commits = n, "NEXACORE_FAULT_MIGRATION_CRASH_AFTER: aborting the process");
            std::process::abort();
        }
    }

    /// Dry run: what a run would do to this tenant. Reads only; takes no lock.
    pub(super) async fn plan_tenant(
        &self,
        run: &RunRow,
        item: &WorkRow,
        rec: &Recorder,
    ) -> Result<RunTenantStatus, sqlx::Error> {
        if let Some(skipped) = self.skip(rec, run, item).await? {
            return Ok(skipped);
        }
        let inspected = async {
            let db = DbName::parse(&item.database_name).map_err(|e| e.to_string())?;
            let server = self.fleet.server(item.server_id).await.map_err(|e| e.to_string())?;
            let role = RoleName::parse(&item.role_name)?;
            // As the tenant's own role: its history may be a view that calls its own code.
            let mut conn = self
                .fleet
                .connect_as_tenant(&server, &db, &role)
                .await
                .map_err(|e| format!("cannot connect: {}", error_text(&e)))?;
            let check = tenant_schema::check_history(&mut conn, self.set.as_slice(), Some(run.target_version)).await;
            conn.close().await.ok();
            check.map_err(|e| error_text(&e))
        }
        .await;
        let (status, from, pending, reason) = match inspected {
            Ok(check) => match &check.drift {
                Some(drift) => (
                    RunTenantStatus::Drifted,
                    check.applied_version,
                    Vec::new(),
                    Some(format!("would not be migrated: its history departs from the code: {drift}")),
                ),
                None => (RunTenantStatus::Planned, check.applied_version, check.pending, None),
            },
            Err(error) => (RunTenantStatus::Failed, None, Vec::new(), Some(error)),
        };
        runs::record_plan(
            &self.catalog,
            run.id,
            item.tenant_id,
            status,
            from,
            &pending_json(&pending),
            reason.as_deref(),
        )
        .await?;
        Ok(status)
    }
}

/// `[{"version": n, "name": "..."}]`.
pub fn pending_json(pending: &[PendingMigration]) -> Value {
    Value::Array(pending.iter().map(|m| json!({ "version": m.version, "name": m.name })).collect())
}

/// Where a tenant's migration runs: its server, database and role.
#[derive(Clone, Copy)]
struct TenantDatabase<'a> {
    server: &'a ServerHandle,
    db: &'a DbName,
    role: &'a RoleName,
}
