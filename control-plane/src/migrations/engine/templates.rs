//! The template databases, brought to the run's target before any tenant (dry run: inspected),
//! so that tenants created during the run are born current.

use std::time::Instant;

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tenant_schema::PendingMigration;
use uuid::Uuid;

use super::Engine;
use super::tenant::pending_json;
use crate::catalog::migration_runs::{self as runs, AttemptTarget, RunRow};
use crate::catalog::servers;
use crate::domain::{DbName, RoleName};
use crate::fleet::{self, SCHEMA_OWNER_ROLE, ServerHandle};
use crate::migrations::database::{self, error_text, millis};
use crate::migrations::status::RunTenantStatus;

impl Engine {
    /// Brings every active server's template database to the target first, so that tenants
    /// created during the run are born current (dry run: inspects them). Returns the reason to
    /// stop when a template cannot be brought there.
    pub(super) async fn templates(&self, run: &RunRow) -> Result<Option<String>, sqlx::Error> {
        let mut entries = Vec::new();
        let mut stop = None;
        for server in servers::all(&self.catalog).await? {
            if server.status != "active" {
                continue;
            }
            let entry = match self.fleet.server(server.id).await {
                Ok(handle) => self.template(run, &handle).await?,
                Err(error) => TemplateEntry::failed(&server.name, error.to_string()),
            };
            if stop.is_none()
                && !run.dry_run
                && let Some(reason) = entry.stop_reason()
            {
                stop = Some(format!("the template database on server {}: {reason}", server.name));
            }
            entries.push(entry.to_json(server.id, self.fleet.template()));
        }
        runs::set_templates(&self.catalog, run.id, &Value::Array(entries)).await?;
        Ok(stop)
    }

    async fn template(&self, run: &RunRow, server: &ServerHandle) -> Result<TemplateEntry, sqlx::Error> {
        let template = self.fleet.template();
        let exists = match server.pool().acquire().await {
            Ok(mut conn) => fleet::database_exists(&mut conn, template).await,
            Err(error) => Err(error),
        };
        match exists {
            Ok(true) => {}
            Ok(false) if run.dry_run => {
                return Ok(TemplateEntry::failed(&server.name, "the template database does not exist".into()));
            }
            // Created (and migrated to the latest version) the way start-up does it.
            Ok(false) => {
                return Ok(match self.fleet.ensure_template(server).await {
                    Ok(()) => TemplateEntry {
                        server: server.name.clone(),
                        status: RunTenantStatus::Succeeded,
                        to_version: Some(self.set.latest_version()),
                        ..TemplateEntry::default()
                    },
                    Err(error) => TemplateEntry::failed(&server.name, error.to_string()),
                });
            }
            Err(error) => {
                return Ok(TemplateEntry::failed(&server.name, format!("cannot connect: {}", error_text(&error))));
            }
        }
        // Exclusive, like `Fleet::ensure_template`: provisioning (shared) waits, so no tenant is
        // copied from a template in mid-migration. Released with the transaction.
        let mut lock = self.catalog.begin().await?;
        if !run.dry_run {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(fleet::template_lock_key(server.id))
                .execute(&mut *lock)
                .await?;
        }
        let clock = Instant::now();
        let entry = match PgConnection::connect_with(&server.options_for(template)).await {
            Ok(mut conn) => {
                let entry = self.template_connected(run, server, &mut conn).await;
                // Closed at once: CREATE DATABASE … TEMPLATE refuses while anyone is connected.
                conn.close().await.ok();
                entry
            }
            Err(error) => Ok(TemplateEntry::failed(&server.name, format!("cannot connect: {}", error_text(&error)))),
        };
        if let Ok(entry) = &entry
            && entry.status == RunTenantStatus::Succeeded
            && entry.to_version != entry.from_version
        {
            // The server's spare databases are copies of the old template: retired before the
            // lock is released, so no signup adopts one (see `provision::spares`).
            let retired = crate::catalog::spares::retire_all(&mut *lock, server.id).await?;
            if retired > 0 {
                tracing::info!(server = %server.name, retired, "retired spare databases of the old template");
            }
        }
        lock.commit().await?;
        let mut entry = entry?;
        entry.duration_ms = Some(millis(clock.elapsed()));
        Ok(entry)
    }

    async fn template_connected(
        &self,
        run: &RunRow,
        server: &ServerHandle,
        conn: &mut PgConnection,
    ) -> Result<TemplateEntry, sqlx::Error> {
        let owner = RoleName::parse(SCHEMA_OWNER_ROLE).expect("a valid role name");
        let failed = |error: String| TemplateEntry::failed(&server.name, error);
        let mut tx = match conn.begin().await {
            Ok(tx) => tx,
            Err(error) => return Ok(failed(error_text(&error))),
        };
        let checked = async {
            let prepared = database::prepare_template(&mut tx, &owner, self.timeouts(run)).await?;
            let check = tenant_schema::check_history(&mut tx, self.set.as_slice(), Some(run.target_version)).await?;
            Ok::<_, tenant_schema::SchemaError>((prepared, check))
        }
        .await;
        let (prepared, check) = match checked {
            Ok(checked) => checked,
            Err(error) => {
                tx.rollback().await.ok();
                return Ok(failed(error_text(&error)));
            }
        };
        let mut entry = TemplateEntry {
            server: server.name.clone(),
            from_version: check.applied_version,
            to_version: check.applied_version,
            pending: check.pending.clone(),
            ..TemplateEntry::default()
        };
        if let Some(drift) = &check.drift {
            tx.rollback().await.ok();
            entry.status = RunTenantStatus::Drifted;
            entry.error = Some(drift.to_string());
            return Ok(entry);
        }
        if run.dry_run || check.pending.is_empty() {
            tx.rollback().await.ok();
            entry.status = if run.dry_run { RunTenantStatus::Planned } else { RunTenantStatus::Succeeded };
            return Ok(entry);
        }
        let (applied, mut failure) = database::apply_pending(&mut tx, &self.set, &check.pending).await;
        if failure.is_none()
            && let Err(error) = database::finish(&mut tx, &owner, prepared).await
        {
            failure = Some(error.into());
        }
        let (committed, error) = match failure {
            Some(error) => {
                tx.rollback().await.ok();
                (false, Some(error_text(&error)))
            }
            None => match tx.commit().await {
                Ok(()) => (true, None),
                Err(error) => (false, Some(error_text(&error))),
            },
        };
        let records = database::attempt_records(&check.pending, &applied, committed);
        let target = AttemptTarget {
            run: run.id,
            tenant: None,
            server: server.id,
            database: self.fleet.template().as_str().to_owned(),
            attempt: 1,
        };
        let mut catalog = self.catalog.acquire().await?;
        let mut record = catalog.begin().await?;
        runs::record_attempts(&mut record, &target, &records).await?;
        record.commit().await?;
        if committed {
            entry.to_version = check.pending.last().map(|m| m.version);
            entry.status = RunTenantStatus::Succeeded;
            tracing::info!(server = %server.name, version = ?entry.to_version, "migrated the template database");
        } else {
            entry.status = RunTenantStatus::Failed;
            entry.error = error;
        }
        Ok(entry)
    }
}

/// What a run did to one server's template database (`migration_runs.templates`).
#[derive(Debug, Clone, Default)]
struct TemplateEntry {
    server: String,
    /// `Succeeded`, `Planned`, `Drifted` or `Failed`.
    status: RunTenantStatus,
    from_version: Option<i32>,
    to_version: Option<i32>,
    pending: Vec<PendingMigration>,
    error: Option<String>,
    duration_ms: Option<f64>,
}

impl TemplateEntry {
    fn failed(server: &str, error: String) -> Self {
        Self { server: server.to_owned(), status: RunTenantStatus::Failed, error: Some(error), ..Self::default() }
    }

    fn stop_reason(&self) -> Option<String> {
        match self.status {
            RunTenantStatus::Failed => Some(format!("failed: {}", self.error.as_deref().unwrap_or("unknown error"))),
            RunTenantStatus::Drifted => {
                Some(format!("has drifted: {}", self.error.as_deref().unwrap_or("unknown drift")))
            }
            _ => None,
        }
    }

    fn to_json(&self, server_id: Uuid, database: &DbName) -> Value {
        json!({
            "server_id": server_id,
            "server": self.server,
            "database": database.as_str(),
            "status": self.status.as_str(),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "pending": pending_json(&self.pending),
            "error": self.error,
            "duration_ms": self.duration_ms,
        })
    }
}
