//! The provisioning benchmark's baselines: the raw `CREATE ROLE` + `CREATE DATABASE … TEMPLATE`
//! that any provisioning must do, per strategy, and the argon2id hash it spends on purpose.

use std::time::Instant;

use anyhow::Context;
use hdrhistogram::Histogram;
use sqlx::{Connection, PgConnection};
use stack::TEST_PASSWORD;
use stack::control::CreateDatabaseStrategy;
use stack::control::hash_password;

use super::RunNames;
use crate::harness::output::progress;
use crate::harness::postgres::{ServerInfo, drop_database, drop_role, execute};
use crate::harness::stats::{histogram_us, record_us};

/// argon2id hashes timed for the same-run hash figure.
const HASH_SAMPLES: u32 = 30;

/// The raw baseline's latencies, per strategy.
pub struct Baseline {
    pub file_copy: Histogram<u64>,
    pub wal_log: Histogram<u64>,
}

impl Baseline {
    pub fn faster(&self) -> CreateDatabaseStrategy {
        if self.wal_log.value_at_quantile(0.5) < self.file_copy.value_at_quantile(0.5) {
            CreateDatabaseStrategy::WalLog
        } else {
            CreateDatabaseStrategy::FileCopy
        }
    }

    pub fn of(&self, strategy: CreateDatabaseStrategy) -> &Histogram<u64> {
        match strategy {
            CreateDatabaseStrategy::FileCopy => &self.file_copy,
            CreateDatabaseStrategy::WalLog => &self.wal_log,
        }
    }

    fn of_mut(&mut self, strategy: CreateDatabaseStrategy) -> &mut Histogram<u64> {
        match strategy {
            CreateDatabaseStrategy::FileCopy => &mut self.file_copy,
            CreateDatabaseStrategy::WalLog => &mut self.wal_log,
        }
    }
}

/// The raw baseline over one connection: `CREATE ROLE` + `CREATE DATABASE … TEMPLATE` of the
/// control plane's own template (it holds no connection to it while idle), timed together,
/// for both strategies. Everything it creates is dropped again, also when it fails.
pub async fn measure_raw(admin_url: &str, names: &RunNames, samples: u32) -> anyhow::Result<(ServerInfo, Baseline)> {
    let mut conn = PgConnection::connect(admin_url).await.context("connecting for the raw baseline")?;
    let info = ServerInfo::read(&mut conn).await?;
    let mut baseline = Baseline { file_copy: histogram_us(), wal_log: histogram_us() };
    let mut created = Vec::new();
    let bar = progress(u64::from(2 * samples), "raw CREATE DATABASE");
    let measured = async {
        for i in 0..samples {
            for strategy in alternating(i) {
                let (db, role) = names.baseline(2 * i + u32::from(strategy == CreateDatabaseStrategy::WalLog));
                let started = Instant::now();
                execute(&mut conn, format!("CREATE ROLE {} LOGIN", role.quoted())).await?;
                created.push((db.clone(), role.clone()));
                execute(
                    &mut conn,
                    format!(
                        "CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY {}",
                        db.quoted(),
                        role.quoted(),
                        names.template.quoted(),
                        strategy.sql_keyword()
                    ),
                )
                .await?;
                record_us(baseline.of_mut(strategy), started.elapsed());
                bar.inc(1);
            }
        }
        anyhow::Ok(())
    }
    .await;
    bar.finish_and_clear();
    for (db, role) in &created {
        drop_database(&mut conn, db).await?;
        drop_role(&mut conn, role).await?;
    }
    conn.close().await.ok();
    measured.context("measuring the raw baseline")?;
    Ok((info, baseline))
}

/// Alternates which strategy goes first, so drift over the run (checkpoints, cache warmth)
/// does not favour one of them.
fn alternating(i: u32) -> [CreateDatabaseStrategy; 2] {
    use CreateDatabaseStrategy::{FileCopy, WalLog};
    if i.is_multiple_of(2) { [FileCopy, WalLog] } else { [WalLog, FileCopy] }
}

/// The argon2id hash exactly as provisioning runs it (on a blocking thread), timed alone.
pub async fn measure_hash() -> anyhow::Result<Histogram<u64>> {
    let mut h = histogram_us();
    let bar = progress(u64::from(HASH_SAMPLES), "argon2id hash");
    for _ in 0..HASH_SAMPLES {
        let elapsed = tokio::task::spawn_blocking(|| {
            let password = TEST_PASSWORD.to_owned().into();
            let started = Instant::now();
            std::hint::black_box(hash_password(&password));
            started.elapsed()
        })
        .await
        .context("password hashing panicked")?;
        record_us(&mut h, elapsed);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(h)
}
