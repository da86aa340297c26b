//! The catalog records of tenants' migrations (begin: router flag + attempts; end: outcome +
//! flag cleared), committed in batches by one writer task.
//!
//! Why batches: both records change `tenants`, whose trigger NOTIFYs the routers, and Postgres
//! serialises the commits of notifying transactions (a global lock on the notification queue is
//! held through the commit's WAL flush). One record per transaction would cap a run at one
//! tenant per two WAL flushes whatever the concurrency; a batch pays one flush for every record
//! that queued up meanwhile. A batch that fails is retried record by record, so one bad record
//! never fails the others.

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::catalog::migration_runs::{self as runs, AttemptStep, AttemptTarget, TenantEnd};

/// The most records one transaction takes.
const MAX_BATCH: usize = 64;

enum Record {
    Begin {
        target: AttemptTarget,
        from_version: Option<i32>,
        steps: Vec<(i32, String)>,
        reply: oneshot::Sender<Result<Vec<i64>, sqlx::Error>>,
    },
    End {
        run: Uuid,
        tenant: Uuid,
        end: TenantEnd,
        ids: Vec<i64>,
        steps: Vec<AttemptStep>,
        reply: oneshot::Sender<Result<(), sqlx::Error>>,
    },
}

/// What a record's statement returned.
enum Written {
    Ids(Vec<i64>),
    Done,
}

impl Record {
    async fn write(&self, db: &mut sqlx::PgConnection) -> Result<Written, sqlx::Error> {
        match self {
            Record::Begin { target, from_version, steps, .. } => {
                runs::begin_tenant(db, target, *from_version, steps).await.map(Written::Ids)
            }
            Record::End { run, tenant, end, ids, steps, .. } => {
                runs::end_tenant(db, *run, *tenant, end, ids, steps).await.map(|()| Written::Done)
            }
        }
    }

    fn answer(self, result: Result<Written, sqlx::Error>) {
        match self {
            Record::Begin { reply, .. } => {
                let _ = reply.send(result.map(|w| match w {
                    Written::Ids(ids) => ids,
                    Written::Done => Vec::new(),
                }));
            }
            Record::End { reply, .. } => {
                let _ = reply.send(result.map(|_| ()));
            }
        }
    }
}

/// A handle to the writer; cheap to clone. The writer ends when the last handle is dropped.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Record>,
}

impl Recorder {
    pub fn spawn(catalog: PgPool) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx }, tokio::spawn(write_batches(catalog, rx)))
    }

    /// Flags the tenant `migrating` and records its attempts as running; returns their ids.
    pub async fn begin(
        &self,
        target: AttemptTarget,
        from_version: Option<i32>,
        steps: Vec<(i32, String)>,
    ) -> Result<Vec<i64>, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Record::Begin { target, from_version, steps, reply }).map_err(|_| sqlx::Error::WorkerCrashed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }

    /// Records the end of a tenant's turn and clears its flag.
    pub async fn end(
        &self,
        run: Uuid,
        tenant: Uuid,
        end: TenantEnd,
        ids: Vec<i64>,
        steps: Vec<AttemptStep>,
    ) -> Result<(), sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Record::End { run, tenant, end, ids, steps, reply }).map_err(|_| sqlx::Error::WorkerCrashed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }
}

async fn write_batches(catalog: PgPool, mut rx: mpsc::UnboundedReceiver<Record>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        if batch.len() > 1 {
            match write_together(&catalog, &batch).await {
                Ok(results) => {
                    for (record, result) in batch.into_iter().zip(results) {
                        record.answer(Ok(result));
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, records = batch.len(), "a batch of records failed; writing them one by one")
                }
            }
        }
        for record in batch {
            let result = match catalog.acquire().await {
                Ok(mut conn) => record.write(&mut conn).await,
                Err(error) => Err(error),
            };
            record.answer(result);
        }
    }
}

async fn write_together(catalog: &PgPool, batch: &[Record]) -> Result<Vec<Written>, sqlx::Error> {
    let mut tx = catalog.begin().await?;
    let mut results = Vec::with_capacity(batch.len());
    for record in batch {
        results.push(record.write(&mut tx).await?);
    }
    tx.commit().await?;
    Ok(results)
}
