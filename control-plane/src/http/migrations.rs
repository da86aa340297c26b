//! Operator routes of bulk migrations: create a run (or a dry run: the plan), follow it, list
//! its tenants and attempts, pause, resume, cancel, retry. Wire types live here, converted from
//! the catalog rows at the edge.

use std::sync::Arc;
use std::time::Duration;

use poem_openapi::param::{Path, Query};
use poem_openapi::{Enum, Object, OpenApi, payload::Json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::security::OperatorAuth;
use crate::catalog::migration_runs::{self as runs, AttemptRow, RunTenantRow, TimingSummary};
use crate::migrations::{Canary, CreateError, FailurePolicy, RunActionError, RunRequest, RunSummary, RunTenantStatus};
use crate::state::AppState;
use http_api::{ApiError, ErrorBody, JsonBody};

#[derive(Debug, Clone, Copy, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicyInput {
    /// Start no more tenants once `max_failures` tenants have failed.
    Stop,
    /// Give every tenant its turn; report the failures at the end.
    Continue,
}

#[derive(Debug, Object, serde::Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateRunRequest {
    /// The version to bring every tenant to; the newest migration of this build when absent.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub target_version: Option<i32>,
    /// Tenants migrated at once, over all servers (1–256).
    #[oai(validator(minimum(value = "1"), maximum(value = "256")))]
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub concurrency: Option<u32>,
    /// Tenants migrated at once on one Postgres server (1–256).
    #[oai(validator(minimum(value = "1"), maximum(value = "256")))]
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub per_server_concurrency: Option<u32>,
    /// The canary wave: the run's first n tenants must all succeed before the others start.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub canary_count: Option<u32>,
    /// The canary wave as a list of tenants (ids or slugs), instead of `canary_count`.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub canary_tenants: Option<Vec<String>>,
    /// `stop` (default) or `continue`.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub failure_policy: Option<FailurePolicyInput>,
    /// With `stop`: stop once this many tenants have failed (default 1).
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub max_failures: Option<u32>,
    /// Only inspect (the plan): per tenant, its version, what would be applied, and drift.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub dry_run: Option<bool>,
    /// How long a tenant's migration may wait for a lock before that tenant fails.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub lock_timeout_ms: Option<u32>,
    /// How long one statement of a tenant's migration may run before that tenant fails.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub statement_timeout_ms: Option<u32>,
    /// Only these tenants (ids or slugs); every active or suspended tenant when absent.
    #[serde(default, deserialize_with = "http_api::not_null")]
    pub tenants: Option<Vec<String>>,
}

/// How many of the run's tenants are in each status.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunTotalsView {
    pub tenants: i64,
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub drifted: i64,
    pub skipped: i64,
    /// Dry run: inspected tenants.
    pub planned: i64,
}

/// One phase of the tenants' attempts: total and median milliseconds.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PhaseView {
    pub total_ms: f64,
    pub p50_ms: f64,
}

/// Where the time of the run's tenant migrations went.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TimingsView {
    /// Tenants with timings (those that were migrated, successfully or not).
    pub tenants: i64,
    /// Opening a connection to the tenant database.
    pub connect: PhaseView,
    /// Transaction, timeouts, role, the database's migration lock, reading its history.
    pub lock: PhaseView,
    /// Recording the attempt and flagging the tenant `migrating` in the catalog.
    pub flag: PhaseView,
    /// The migrations' statements.
    pub ddl: PhaseView,
    /// The tenant database's commit.
    pub commit: PhaseView,
    /// One tenant, from connecting to its commit.
    pub attempt: PhaseView,
    pub attempt_p95_ms: f64,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunView {
    pub id: Uuid,
    /// running, paused, cancelling, cancelled, stopped, completed or interrupted.
    pub state: String,
    pub dry_run: bool,
    pub target_version: i32,
    pub concurrency: i32,
    pub per_server_concurrency: i32,
    pub canary_count: i32,
    pub failure_policy: String,
    pub max_failures: i32,
    pub lock_timeout_ms: i32,
    pub statement_timeout_ms: i32,
    /// Why the run stopped or was interrupted.
    pub stop_reason: Option<String>,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub totals: RunTotalsView,
    /// True when the run is over and every tenant is at (or beyond) the target version.
    pub reached_target: bool,
    /// Per server: its template database, before and after.
    pub templates: Vec<serde_json::Value>,
    pub timings: Option<TimingsView>,
}

fn phase(total: Option<f64>, p50: Option<f64>) -> PhaseView {
    PhaseView { total_ms: total.unwrap_or(0.0), p50_ms: p50.unwrap_or(0.0) }
}

fn timings_view(t: &TimingSummary) -> Option<TimingsView> {
    (t.tenants_timed > 0).then(|| TimingsView {
        tenants: t.tenants_timed,
        connect: phase(t.connect_total, t.connect_p50),
        lock: phase(t.lock_total, t.lock_p50),
        flag: phase(t.flag_total, t.flag_p50),
        ddl: phase(t.ddl_total, t.ddl_p50),
        commit: phase(t.commit_total, t.commit_p50),
        attempt: phase(t.attempt_total, t.attempt_p50),
        attempt_p95_ms: t.attempt_p95.unwrap_or(0.0),
    })
}

impl From<RunSummary> for RunView {
    fn from(s: RunSummary) -> Self {
        let t = s.totals;
        let over = s.run.state.is_final();
        let reached_target = over && !s.run.dry_run && t.pending + t.running + t.failed + t.drifted + t.planned == 0;
        let templates = s.run.templates.as_array().cloned().unwrap_or_default();
        Self {
            id: s.run.id,
            state: s.run.state.to_string(),
            dry_run: s.run.dry_run,
            target_version: s.run.target_version,
            concurrency: s.run.concurrency,
            per_server_concurrency: s.run.per_server_concurrency,
            canary_count: s.run.canary_count,
            failure_policy: s.run.failure_policy,
            max_failures: s.run.max_failures,
            lock_timeout_ms: s.run.lock_timeout_ms,
            statement_timeout_ms: s.run.statement_timeout_ms,
            stop_reason: s.run.stop_reason,
            created_by: s.run.created_by,
            created_at: s.run.created_at,
            updated_at: s.run.updated_at,
            finished_at: s.run.finished_at,
            totals: RunTotalsView {
                tenants: t.tenants,
                pending: t.pending,
                running: t.running,
                succeeded: t.succeeded,
                failed: t.failed,
                drifted: t.drifted,
                skipped: t.skipped,
                planned: t.planned,
            },
            reached_target,
            templates,
            timings: timings_view(&s.timings),
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PendingMigrationView {
    pub version: i32,
    pub name: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunTenantView {
    pub tenant_id: Uuid,
    pub slug: String,
    pub position: i32,
    pub canary: bool,
    pub server_id: Uuid,
    /// pending, running, succeeded, failed, drifted, skipped or planned.
    pub status: String,
    /// The version found before the last attempt.
    pub from_version: Option<i32>,
    /// The version after it.
    pub to_version: Option<i32>,
    /// Dry run: what a run would apply.
    pub pending: Vec<PendingMigrationView>,
    pub attempts: i32,
    /// A failure: the database's error text. Drift: why the tenant was not touched.
    pub error: Option<String>,
    /// The last attempt's phases in milliseconds (connect_ms, lock_ms, flag_ms, ddl_ms, commit_ms).
    pub timings: Option<serde_json::Value>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<f64>,
}

impl From<RunTenantRow> for RunTenantView {
    fn from(r: RunTenantRow) -> Self {
        let pending = r
            .pending
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|m| PendingMigrationView {
                        version: m["version"].as_i64().unwrap_or_default() as i32,
                        name: m["name"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            tenant_id: r.tenant_id,
            slug: r.slug,
            position: r.position,
            canary: r.canary,
            server_id: r.server_id,
            status: r.status.to_string(),
            from_version: r.from_version,
            to_version: r.to_version,
            pending,
            attempts: r.attempts,
            error: r.error,
            timings: r.timings,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.duration_ms,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunTenantPage {
    pub items: Vec<RunTenantView>,
    /// Pass as `after` for the next page.
    pub next_cursor: Option<i32>,
}

/// One attempt of one migration on one database.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AttemptView {
    pub id: i64,
    /// Absent for a template database.
    pub tenant_id: Option<Uuid>,
    pub server_id: Uuid,
    pub database: String,
    /// The tenant's attempt number within the run.
    pub attempt: i32,
    pub version: i32,
    pub name: String,
    /// running, succeeded, failed, rolled_back, skipped or interrupted.
    pub status: String,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(a: AttemptRow) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            server_id: a.server_id,
            database: a.database_name,
            attempt: a.attempt,
            version: a.version,
            name: a.name,
            status: a.status.to_string(),
            started_at: a.started_at,
            finished_at: a.finished_at,
            duration_ms: a.duration_ms,
            error: a.error,
        }
    }
}

pub struct MigrationsApi(pub Arc<AppState>);

#[OpenApi(tag = "super::signup::Tag::Operations")]
impl MigrationsApi {
    /// Starts a bulk migration run (or, with `dry_run`, the plan). Templates go first, then the
    /// canary wave, then every other tenant. Refused with 409 while another run is open.
    #[oai(path = "/migrations/runs", method = "post")]
    async fn create(&self, auth: OperatorAuth, body: JsonBody<CreateRunRequest>) -> Result<Json<RunView>, ApiError> {
        let b = body.0;
        let canary = match (b.canary_count, b.canary_tenants) {
            (Some(_), Some(_)) => {
                return Err(ApiError::field(
                    "canary_tenants",
                    "canary_tenants: give canary_count or canary_tenants, not both",
                ));
            }
            (Some(0), None) | (None, None) => Canary::None,
            (Some(n), None) => Canary::First(n),
            (None, Some(list)) => Canary::Tenants(list),
        };
        let failure_policy = match (b.failure_policy, b.max_failures) {
            (Some(FailurePolicyInput::Continue), Some(_)) => {
                return Err(ApiError::field("max_failures", "max_failures: applies only to failure_policy stop"));
            }
            (Some(FailurePolicyInput::Continue), None) => FailurePolicy::Continue,
            (_, max) => FailurePolicy::Stop { max_failures: max.unwrap_or(1) },
        };
        let request = RunRequest {
            target_version: b.target_version,
            concurrency: b.concurrency,
            per_server_concurrency: b.per_server_concurrency,
            canary,
            failure_policy: Some(failure_policy),
            dry_run: b.dry_run.unwrap_or(false),
            lock_timeout: b.lock_timeout_ms.map(|ms| Duration::from_millis(ms.into())),
            statement_timeout: b.statement_timeout_ms.map(|ms| Duration::from_millis(ms.into())),
            tenants: b.tenants,
        };
        let summary = self.0.migrations.create(&auth.0, request).await.map_err(|e| match e {
            CreateError::Invalid { field, message } => ApiError::field(field, message),
            CreateError::RunOpen { .. } => ApiError::conflict(ErrorBody::new("run_in_progress", e.to_string())),
            CreateError::Sql(inner) => ApiError::internal(inner),
        })?;
        Ok(Json(summary.into()))
    }

    /// Recent runs, newest first; `before` (a run id) pages back.
    #[oai(path = "/migrations/runs", method = "get")]
    async fn list(
        &self,
        _auth: OperatorAuth,
        before: Query<Option<Uuid>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<RunView>>, ApiError> {
        let limit = limit.0.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::field("limit", "limit: must be between 1 and 100"));
        }
        let runs = self.0.migrations.list(before.0, limit).await?;
        Ok(Json(runs.into_iter().map(RunView::from).collect()))
    }

    /// A run: its state, totals, templates and where the time went.
    #[oai(path = "/migrations/runs/:id", method = "get")]
    async fn get(&self, _auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<RunView>, ApiError> {
        let summary = self
            .0
            .migrations
            .summary(id.0)
            .await?
            .ok_or_else(|| ApiError::not_found("no migration run with this id"))?;
        Ok(Json(summary.into()))
    }

    /// A run's tenants in order, optionally only those in one status.
    #[oai(path = "/migrations/runs/:id/tenants", method = "get")]
    async fn tenants(
        &self,
        _auth: OperatorAuth,
        id: Path<Uuid>,
        status: Query<Option<String>>,
        after: Query<Option<i32>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))] limit: Query<Option<i64>>,
    ) -> Result<Json<RunTenantPage>, ApiError> {
        let status = match status.0.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match RunTenantStatus::parse(&s) {
                Some(status) => Some(status),
                None => {
                    let all = RunTenantStatus::ALL.map(|status| status.as_str());
                    return Err(ApiError::field("status", format!("status: must be one of {}", all.join(", "))));
                }
            },
        };
        let limit = limit.0.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::field("limit", "limit: must be between 1 and 1000"));
        }
        if self.0.migrations.summary(id.0).await?.is_none() {
            return Err(ApiError::not_found("no migration run with this id"));
        }
        let mut rows = runs::run_tenants(&self.0.catalog, id.0, status, after.0, limit + 1).await?;
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.position)
        } else {
            None
        };
        Ok(Json(RunTenantPage { items: rows.into_iter().map(RunTenantView::from).collect(), next_cursor }))
    }

    /// Every attempt of every migration of a run, in order (optionally of one tenant).
    #[oai(path = "/migrations/runs/:id/attempts", method = "get")]
    async fn attempts(
        &self,
        _auth: OperatorAuth,
        id: Path<Uuid>,
        tenant: Query<Option<Uuid>>,
        after: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "5000")))] limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<AttemptView>>, ApiError> {
        let limit = limit.0.unwrap_or(500);
        if !(1..=5000).contains(&limit) {
            return Err(ApiError::field("limit", "limit: must be between 1 and 5000"));
        }
        if self.0.migrations.summary(id.0).await?.is_none() {
            return Err(ApiError::not_found("no migration run with this id"));
        }
        let rows = runs::attempts(&self.0.catalog, id.0, tenant.0, after.0, limit).await?;
        Ok(Json(rows.into_iter().map(AttemptView::from).collect()))
    }

    /// Starts no more tenants; those in flight finish. `resume` continues.
    #[oai(path = "/migrations/runs/:id/pause", method = "post")]
    async fn pause(&self, auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<RunView>, ApiError> {
        Ok(Json(self.0.migrations.pause(&auth.0, id.0).await.map_err(action_error)?.into()))
    }

    /// Continues a paused run, or one interrupted by a restart or crash of the control plane.
    #[oai(path = "/migrations/runs/:id/resume", method = "post")]
    async fn resume(&self, auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<RunView>, ApiError> {
        Ok(Json(self.0.migrations.resume(&auth.0, id.0).await.map_err(action_error)?.into()))
    }

    /// Cancels a run: tenants in flight finish, no more start.
    #[oai(path = "/migrations/runs/:id/cancel", method = "post")]
    async fn cancel(&self, auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<RunView>, ApiError> {
        Ok(Json(self.0.migrations.cancel(&auth.0, id.0).await.map_err(action_error)?.into()))
    }

    /// Retries the failed tenants of a finished (or paused) run, and migrates any left pending.
    #[oai(path = "/migrations/runs/:id/retry", method = "post")]
    async fn retry(&self, auth: OperatorAuth, id: Path<Uuid>) -> Result<Json<RunView>, ApiError> {
        Ok(Json(self.0.migrations.retry(&auth.0, id.0).await.map_err(action_error)?.into()))
    }
}

fn action_error(e: RunActionError) -> ApiError {
    match e {
        RunActionError::NotFound => ApiError::not_found(e.to_string()),
        RunActionError::WrongState { .. } => ApiError::conflict(ErrorBody::new("wrong_state", e.to_string())),
        RunActionError::RunOpen { .. } => ApiError::conflict(ErrorBody::new("run_in_progress", e.to_string())),
        RunActionError::Sql(inner) => ApiError::internal(inner),
    }
}
