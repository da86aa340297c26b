//! Scheduled backups: two replicas on one catalog run them one run at a time, each live tenant
//! is dumped, and only the newest `NEXACORE_BACKUP_KEEP` scheduled backups keep their files.
//! And `kill -9` in the middle of a backup: the restart settles the row, ends the orphaned
//! `pg_dump`, leaves no partial file, and the schedule runs again.

use std::time::Duration;

use control_plane::backups::schedule::BackupSchedule;
use control_plane::secrets::MasterKey;
use local_postgres::LocalCluster;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::crash::Stack;
use crate::helpers::{TestApp, eventually, signup_body, unique};

async fn scalar_i64(conn: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for tenant in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(tenant.path()).into_iter().flatten().flatten() {
            found.push(file.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

#[tokio::test]
async fn scheduled_backups_run_one_at_a_time_across_replicas_and_keep_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().to_owned();
    let settings = move |c: &mut control_plane::Config| {
        c.backups.dir = backups.clone();
        c.backups.schedule = Some(BackupSchedule::Every(Duration::from_secs(1)));
        c.backups.keep = 2;
        c.backups.per_server = 1;
    };
    let first = TestApp::spawn_with(settings.clone()).await;
    let second = first.replica(settings).await;
    let mut tenants = Vec::new();
    for _ in 0..2 {
        let created = first.create_tenant(&unique("sched-")).await;
        tenants.push(created["tenant"]["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let mut catalog = first.catalog().await;
    // Runs that started after both tenants existed: four of them, so each tenant had at least
    // four scheduled backups and the oldest were expired.
    let since = time::OffsetDateTime::now_utc();
    let ran = eventually(Duration::from_secs(90), || {
        let catalog_url = first.catalog_url.clone();
        async move {
            let mut c = PgConnection::connect(&catalog_url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM backup_runs WHERE state = 'done' AND started_at > $1 AND tenants = 2 AND done = 2",
            )
            .bind(since)
            .fetch_one(&mut c)
            .await
            .unwrap();
            n >= 4
        }
    })
    .await;
    assert!(ran, "four complete scheduled runs");
    second.stop().await;
    first.stop().await;

    // One run at a time: ordered by start, each run started after the previous one finished.
    let runs: Vec<(time::OffsetDateTime, Option<time::OffsetDateTime>, String)> =
        sqlx::query_as("SELECT started_at, finished_at, state FROM backup_runs ORDER BY started_at")
            .fetch_all(&mut catalog)
            .await
            .unwrap();
    for pair in runs.windows(2) {
        let finished = pair[0].1.expect("every run finished or was settled");
        assert!(pair[1].0 >= finished, "runs overlapped: {pair:?}");
    }
    for tenant in &tenants {
        let rows: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT id, status, file FROM backups WHERE tenant_id = $1 AND kind = 'scheduled' ORDER BY started_at DESC",
        )
        .bind(tenant)
        .fetch_all(&mut catalog)
        .await
        .unwrap();
        let statuses: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(&statuses[..2], ["done", "done"], "the newest two are kept: {statuses:?}");
        assert!(statuses[2..].iter().all(|s| *s == "expired"), "every older one expired: {statuses:?}");
        assert!(statuses.len() >= 4, "{statuses:?}");
        for (id, status, file) in &rows {
            let dump = dir.path().join(file);
            let manifest = dump.with_extension("json");
            let kept = status == "done";
            assert_eq!(dump.exists(), kept, "{id} {status}: dump file");
            assert_eq!(manifest.exists(), kept, "{id} {status}: manifest file");
        }
    }
    let expired = scalar_i64(
        &mut catalog,
        "SELECT count(*) FROM backups WHERE status = 'expired' AND expired_at IS NOT NULL AND manifest IS NOT NULL",
    )
    .await;
    let counted = scalar_i64(&mut catalog, "SELECT coalesce(sum(expired), 0)::int8 FROM backup_runs").await;
    assert_eq!(expired, counted, "each run records what it expired");
    assert!(files_under(dir.path()).iter().all(|f| !f.ends_with(".partial")));
}

#[tokio::test]
async fn a_kill_9_in_the_middle_of_a_scheduled_backup_is_settled_and_the_schedule_runs_again() {
    let cluster = tokio::task::spawn_blocking(LocalCluster::start_throwaway).await.unwrap().expect("a private cluster");
    let stack = Stack {
        admin_url: cluster.superuser_url(),
        master_key: MasterKey::generate_base64(),
        operator_token: format!("op-{}", Uuid::new_v4().simple()),
    };
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().display().to_string();
    let env = |schedule: &str| {
        vec![
            ("NEXACORE_BACKUP_DIR", backup_dir.clone()),
            ("NEXACORE_BACKUP_SCHEDULE", schedule.to_owned()),
            ("NEXACORE_BACKUP_KEEP", "3".to_owned()),
        ]
    };
    // A tenant, created with no schedule.
    let (mut setup, base) = stack.start_with_env(None, 0, &env("off")).await;
    let slug = unique("killbk-");
    let created =
        reqwest::Client::new().post(format!("{base}/tenants")).json(&signup_body(&slug)).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let tenant: Uuid = created["tenant"]["id"].as_str().unwrap().parse().unwrap();
    setup.start_kill().unwrap();
    setup.wait().await.unwrap();

    // A table of the tenant locked: its pg_dump will wait in the middle of the backup.
    let mut tenant_url = url::Url::parse(&stack.admin_url).unwrap();
    tenant_url.set_path(&format!("/t_{}", tenant.simple()));
    let mut blocker = PgConnection::connect(tenant_url.as_str()).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE public.employees IN ACCESS EXCLUSIVE MODE").execute(&mut blocker).await.unwrap();

    let (mut crashing, _) = stack.start_with_env(None, 0, &env("1h")).await;
    let waiting_dumps = || async {
        let mut admin = PgConnection::connect(&stack.admin_url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'nexacore-backup-%' AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        n
    };
    assert!(eventually(Duration::from_secs(60), || async { waiting_dumps().await == 1 }).await, "pg_dump is mid-way");
    crashing.start_kill().unwrap();
    crashing.wait().await.unwrap();
    let mut catalog = PgConnection::connect(&stack.catalog_url()).await.unwrap();
    let state = |sql: &'static str| sqlx::query_scalar::<_, String>(sql);
    assert_eq!(state("SELECT status FROM backups").fetch_all(&mut catalog).await.unwrap(), ["running"]);
    assert_eq!(state("SELECT state FROM backup_runs").fetch_all(&mut catalog).await.unwrap(), ["running"]);
    assert_eq!(waiting_dumps().await, 1, "the killed control plane's pg_dump lives on");

    // The restart settles the row and ends the orphaned pg_dump before its lock is released.
    let (mut restarted, _) = stack.start_with_env(None, 0, &env("1h")).await;
    let settled = eventually(Duration::from_secs(60), || async {
        let mut c = PgConnection::connect(&stack.catalog_url()).await.unwrap();
        let first: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, error FROM backups ORDER BY started_at LIMIT 1")
                .fetch_optional(&mut c)
                .await
                .unwrap();
        first.is_some_and(|(s, e)| s == "failed" && e.is_some_and(|e| e.contains("interrupted")))
    })
    .await;
    assert!(settled, "the interrupted backup is failed");
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    blocker.close().await.ok();
    // The interrupted run is run again (no run finished since the schedule's last slot).
    let rerun = eventually(Duration::from_secs(60), || async {
        let mut c = PgConnection::connect(&stack.catalog_url()).await.unwrap();
        let states: Vec<String> =
            sqlx::query_scalar("SELECT state FROM backup_runs ORDER BY started_at").fetch_all(&mut c).await.unwrap();
        states.first().is_some_and(|s| s == "interrupted") && states.iter().any(|s| s == "done")
    })
    .await;
    assert!(rerun, "the schedule ran again and finished");
    let statuses: Vec<String> =
        state("SELECT status FROM backups ORDER BY started_at").fetch_all(&mut catalog).await.unwrap();
    assert_eq!(statuses.first().map(String::as_str), Some("failed"));
    assert!(statuses.iter().any(|s| s == "done"), "{statuses:?}");
    assert_eq!(waiting_dumps().await, 0);
    // Only whole files remain: the done backup's dump and manifest.
    let mut files = files_under(dir.path());
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with(".dump") || f.ends_with(".json")), "{files:?}");
    restarted.start_kill().unwrap();
    restarted.wait().await.unwrap();
}
