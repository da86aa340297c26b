//! Scheduled backups with retention, run by the control plane itself.
//!
//! **When.** `NEXACORE_BACKUP_SCHEDULE` is an interval (`30m`, `6h`, `1d`, `90s`) or a daily
//! time in UTC (`02:30`). A run is due when no run has *finished* since the last moment the
//! schedule names (an interval: since `now - interval`), so a run cut off by a crash is simply
//! run again by the next pass.
//!
//! **One run at a time across replicas.** Every replica looks every few seconds; a pass first
//! takes a session advisory lock on a connection of its own and holds it for the whole run.
//! Whoever holds it may settle `backup_runs` rows still `running` (their process died, or it
//! would hold the lock) as `interrupted`, and backups rows through [`Backups::recover`].
//!
//! **How.** Each live tenant gets a `scheduled` backup (the same path as a manual one: a
//! catalog row, `pg_dump` as the tenant's role); at most `per_server` run at once on one
//! database server and the process-wide limit of [`Backups`] overall. After a tenant's backup
//! is done, its scheduled backups past the newest `keep` are expired: the row is marked first,
//! then the files go, so a crash leaves at worst an unreferenced file, never a `done` row whose
//! file is missing. Manual and final backups are never expired by the schedule.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::backups::BackupKind;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};
use uuid::Uuid;

use super::{BackupError, Backups};
use crate::catalog::audit::Actor;
use crate::catalog::tenants::TenantRow;

/// Serialises scheduled runs across every control plane of one catalog.
const SCHEDULE_LOCK_KEY: i64 = 0x6e65_7862_6b73_6368;

/// When scheduled backups run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupSchedule {
    /// A run at most this long after the last finished one.
    Every(Duration),
    /// Once a day at this UTC time (hour, minute).
    DailyAt(u8, u8),
}

impl BackupSchedule {
    /// `90s`, `30m`, `6h`, `1d` (an interval) or `HH:MM` (daily, UTC).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Some((h, m)) = raw.split_once(':') {
            return match (h.parse::<u8>(), m.parse::<u8>()) {
                (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(Self::DailyAt(h, m)),
                _ => Err(format!("{raw:?}: a daily time is HH:MM in UTC, e.g. 02:30")),
            };
        }
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (number, unit) = raw.split_at(split);
        let n: u64 =
            number.parse().map_err(|_| format!("{raw:?}: expected an interval like 6h or a time like 02:30"))?;
        let seconds = match unit {
            "s" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(format!("{raw:?}: the interval's unit is s, m, h or d (e.g. 6h)")),
        };
        if seconds == 0 {
            return Err(format!("{raw:?}: the interval must be positive"));
        }
        Ok(Self::Every(Duration::from_secs(seconds)))
    }

    /// The longest time between two runs.
    pub fn period(&self) -> Duration {
        match self {
            Self::Every(d) => *d,
            Self::DailyAt(..) => Duration::from_secs(86_400),
        }
    }

    /// The last moment at or before `now` at which a run was due.
    pub fn last_slot(&self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Every(d) => now - *d,
            Self::DailyAt(h, m) => {
                let today = now.replace_time(time::Time::from_hms(*h, *m, 0).expect("checked by parse"));
                if today <= now { today } else { today - time::Duration::days(1) }
            }
        }
    }

    /// Whether a run is due, given when the last finished run started.
    pub fn due(&self, last_done_start: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
        last_done_start.is_none_or(|last| last <= self.last_slot(now))
    }

    /// How often replicas look whether a run is due.
    fn poll_interval(&self) -> Duration {
        (self.period() / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
    }
}

/// What one scheduled run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub tenants: i32,
    pub done: i32,
    pub failed: i32,
    pub expired: i32,
}

impl Backups {
    /// Runs scheduled backups until `stop` turns true (no-op without a schedule). On shutdown
    /// no further tenant starts; backups in flight finish and the run is marked `interrupted`.
    pub async fn run_schedule(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(schedule) = self.settings.schedule else { return };
        let mut ticker = tokio::time::interval(schedule.poll_interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.changed() => break,
            }
            match self.scheduled_pass(&schedule, &stop).await {
                Ok(Some(summary)) => tracing::info!(?summary, "scheduled backups done"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "a scheduled backup pass failed"),
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    /// One look: takes the schedule lock, settles dead runs, and runs when due. `None` when
    /// another replica holds the lock or nothing was due.
    pub async fn scheduled_pass(
        self: &Arc<Self>,
        schedule: &BackupSchedule,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<RunSummary>, BackupError> {
        let mut lock = PgConnection::connect_with(&self.catalog.connect_options()).await?;
        let held: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(SCHEDULE_LOCK_KEY).fetch_one(&mut lock).await?;
        if !held {
            lock.close().await.ok();
            return Ok(None);
        }
        let outcome = self.locked_pass(schedule, stop).await;
        // Closing the session releases the lock.
        lock.close().await.ok();
        outcome
    }

    async fn locked_pass(
        self: &Arc<Self>,
        schedule: &BackupSchedule,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<RunSummary>, BackupError> {
        // Holding the lock, every `running` run belongs to a dead process.
        sqlx::query("UPDATE backup_runs SET state = 'interrupted', finished_at = now() WHERE state = 'running'")
            .execute(&self.catalog)
            .await?;
        self.recover().await?;
        let last: Option<OffsetDateTime> =
            sqlx::query_scalar("SELECT max(started_at) FROM backup_runs WHERE state = 'done'")
                .fetch_one(&self.catalog)
                .await?;
        if !schedule.due(last, OffsetDateTime::now_utc()) {
            return Ok(None);
        }
        let run_id = Uuid::now_v7();
        sqlx::query("INSERT INTO backup_runs (id, state) VALUES ($1, 'running')")
            .bind(run_id)
            .execute(&self.catalog)
            .await?;
        let (summary, complete) = self.back_up_everyone(stop).await?;
        sqlx::query(
            "UPDATE backup_runs SET state = $2, tenants = $3, done = $4, failed = $5, expired = $6, finished_at = now()
             WHERE id = $1",
        )
        .bind(run_id)
        .bind(if complete { "done" } else { "interrupted" })
        .bind(summary.tenants)
        .bind(summary.done)
        .bind(summary.failed)
        .bind(summary.expired)
        .execute(&self.catalog)
        .await?;
        Ok(Some(summary))
    }

    /// Every live tenant, `per_server` at a time per server; returns the summary and whether
    /// every tenant had its turn (false when shutdown cut the run short).
    async fn back_up_everyone(
        self: &Arc<Self>,
        stop: &watch::Receiver<bool>,
    ) -> Result<(RunSummary, bool), BackupError> {
        let tenants: Vec<TenantRow> = sqlx::query_as(
            "SELECT id, slug, name, status, server_id, database_name, role_name, schema_version, feature_flags,
                    maintenance_mode, maintenance_message, timezone, currency, chart_template, created_at, updated_at,
                    activated_at, deleted_at
             FROM tenants WHERE status IN ('active', 'suspended') ORDER BY server_id, id",
        )
        .fetch_all(&self.catalog)
        .await?;
        let mut per_server: HashMap<Uuid, Arc<Semaphore>> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut summary = RunSummary { tenants: tenants.len() as i32, ..RunSummary::default() };
        for tenant in tenants {
            let limit = per_server
                .entry(tenant.server_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_server.max(1))))
                .clone();
            let this = self.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let _turn = limit.acquire_owned().await.expect("never closed");
                if *stop.borrow() {
                    return None;
                }
                Some(this.scheduled_backup(tenant).await)
            });
        }
        let mut complete = true;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Some((done, expired))) => {
                    if done {
                        summary.done += 1;
                    } else {
                        summary.failed += 1;
                    }
                    summary.expired += expired;
                }
                Ok(None) => complete = false,
                Err(error) => {
                    tracing::error!(%error, "a scheduled backup task failed");
                    summary.failed += 1;
                }
            }
        }
        Ok((summary, complete))
    }

    /// One tenant's scheduled backup, then its retention: (whether it is done, how many expired).
    async fn scheduled_backup(&self, tenant: TenantRow) -> (bool, i32) {
        let id = match self.record(&tenant, BackupKind::Scheduled, &Actor::system()).await {
            Ok(id) => id,
            Err(error) => {
                tracing::warn!(tenant = %tenant.id, %error, "cannot start a scheduled backup");
                return (false, 0);
            }
        };
        let tenant_id = tenant.id;
        self.run(id, tenant).await;
        let done = matches!(self.get(id).await, Ok(Some(row)) if row.status == "done");
        let expired = if done {
            self.expire_beyond_keep(tenant_id).await.unwrap_or_else(|error| {
                tracing::warn!(tenant = %tenant_id, %error, "cannot expire old backups");
                0
            })
        } else {
            0
        };
        (done, expired)
    }

    /// Expires the tenant's scheduled backups past the newest `keep`: row first, then files.
    pub async fn expire_beyond_keep(&self, tenant: Uuid) -> Result<i32, BackupError> {
        let old: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, file FROM backups WHERE tenant_id = $1 AND kind = 'scheduled' AND status = 'done'
             ORDER BY started_at DESC, id DESC OFFSET $2",
        )
        .bind(tenant)
        .bind(i64::from(self.settings.keep.max(1)))
        .fetch_all(&self.catalog)
        .await?;
        let mut expired = 0;
        for (id, file) in old {
            let marked = sqlx::query(
                "UPDATE backups SET status = 'expired', expired_at = now() WHERE id = $1 AND status = 'done'",
            )
            .bind(id)
            .execute(&self.catalog)
            .await?;
            if marked.rows_affected() == 1 {
                let dump = self.settings.dir.join(&file);
                let _ = tokio::fs::remove_file(dump.with_extension("json")).await;
                let _ = tokio::fs::remove_file(&dump).await;
                expired += 1;
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_intervals_and_daily_times_and_name_what_is_wrong() {
        let check = |raw: &str, expected: Result<BackupSchedule, &str>| {
            let parsed = BackupSchedule::parse(raw);
            match expected {
                Ok(schedule) => assert_eq!(parsed, Ok(schedule), "{raw}"),
                Err(words) => assert!(parsed.as_ref().is_err_and(|e| e.contains(words)), "{raw}: {parsed:?}"),
            }
        };
        check("6h", Ok(BackupSchedule::Every(Duration::from_secs(6 * 3600))));
        check("90s", Ok(BackupSchedule::Every(Duration::from_secs(90))));
        check("30m", Ok(BackupSchedule::Every(Duration::from_secs(1800))));
        check("1d", Ok(BackupSchedule::Every(Duration::from_secs(86_400))));
        check("02:30", Ok(BackupSchedule::DailyAt(2, 30)));
        check("24:00", Err("HH:MM"));
        check("2:300", Err("HH:MM"));
        check("6w", Err("unit"));
        check("0h", Err("positive"));
        check("often", Err("expected an interval"));
    }

    #[test]
    fn a_run_is_due_when_none_finished_since_the_last_slot() {
        let now = time::macros::datetime!(2026-12-04 10:00 UTC);
        let daily = BackupSchedule::DailyAt(2, 30);
        assert_eq!(daily.last_slot(now), time::macros::datetime!(2026-12-04 02:30 UTC));
        assert!(daily.due(None, now));
        assert!(daily.due(Some(time::macros::datetime!(2026-12-04 02:29 UTC)), now));
        assert!(!daily.due(Some(time::macros::datetime!(2026-12-04 02:31 UTC)), now));
        let early = time::macros::datetime!(2026-12-04 01:00 UTC);
        assert_eq!(daily.last_slot(early), time::macros::datetime!(2026-12-03 02:30 UTC));
        let hourly = BackupSchedule::Every(Duration::from_secs(3600));
        assert!(!hourly.due(Some(now - time::Duration::minutes(59)), now));
        assert!(hourly.due(Some(now - time::Duration::minutes(60)), now));
    }
}
