//! The Postgres server a benchmark runs on: a private throwaway cluster (fsync off, quick), a
//! private durable one (fsync on, deleted when done, on error and panic too), or someone else's
//! server given by URL, of which a run drops exactly what it created.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, anyhow};
use local_postgres::LocalCluster;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenancy::{DbName, RoleName};

use super::machine::postmaster_pid;

/// A private throwaway cluster (tuned for tests: fsync off, …) with `settings` on top.
pub async fn start_throwaway(settings: Vec<(String, String)>) -> anyhow::Result<LocalCluster> {
    tokio::task::spawn_blocking(move || {
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        LocalCluster::start_throwaway_with(&settings)
    })
    .await
    .context("starting Postgres panicked")?
    .context("starting a throwaway Postgres cluster")
}

pub async fn stop_throwaway(cluster: LocalCluster) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || cluster.stop())
        .await
        .context("stopping Postgres panicked")?
        .context("stopping the throwaway Postgres cluster")
}

/// Which server the flags chose.
pub enum ServerChoice {
    Durable,
    Throwaway,
    External(String),
}

impl ServerChoice {
    /// `--database-url` wins; else `--fsync-off` asks for a throwaway cluster.
    pub fn from_flags(database_url: Option<String>, fsync_off: bool) -> Self {
        match (database_url, fsync_off) {
            (Some(url), _) => Self::External(url),
            (None, true) => Self::Throwaway,
            (None, false) => Self::Durable,
        }
    }
}

/// The Postgres server under test, and what stopping it involves.
pub enum Server {
    Durable(DurableCluster),
    Throwaway(LocalCluster),
    External(String),
}

impl Server {
    pub async fn start(choice: &ServerChoice) -> anyhow::Result<Self> {
        Ok(match choice {
            ServerChoice::Durable => Self::Durable(
                tokio::task::spawn_blocking(DurableCluster::start).await.context("starting Postgres panicked")??,
            ),
            ServerChoice::Throwaway => Self::Throwaway(start_throwaway(Vec::new()).await?),
            ServerChoice::External(url) => Self::External(url.clone()),
        })
    }

    pub fn admin_url(&self) -> String {
        match self {
            Self::Durable(cluster) => cluster.superuser_url(),
            Self::Throwaway(cluster) => cluster.superuser_url(),
            Self::External(url) => url.clone(),
        }
    }

    /// The server's main process, when it runs on this machine and is ours.
    pub fn postmaster(&self) -> Option<u32> {
        match self {
            Self::Durable(cluster) => cluster.cluster.as_ref().and_then(|c| postmaster_pid(c.data_dir())),
            Self::Throwaway(cluster) => postmaster_pid(cluster.data_dir()),
            Self::External(_) => None,
        }
    }

    /// Our own durable cluster, whose settings we may change.
    pub fn is_private_durable(&self) -> bool {
        matches!(self, Self::Durable(_))
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::Durable(_) => "private durable cluster (fsync on)",
            Self::Throwaway(_) => "private throwaway cluster (tuned for tests, not representative)",
            Self::External(_) => "--database-url",
        }
    }

    /// A private cluster goes with everything in it; on someone else's server,
    /// `drop_run_objects` drops exactly what this run created.
    pub async fn clean_up<F: Future<Output = anyhow::Result<()>>>(
        self,
        drop_run_objects: impl FnOnce(String) -> F,
    ) -> anyhow::Result<()> {
        match self {
            Self::Durable(cluster) => {
                tokio::task::spawn_blocking(move || cluster.stop()).await.context("stopping Postgres panicked")?
            }
            Self::Throwaway(cluster) => stop_throwaway(cluster).await,
            Self::External(url) => drop_run_objects(url).await,
        }
    }
}

/// A persistent (fsync on, default durability) cluster in a temp directory that, unlike the
/// dev stack's, is stopped and deleted when done — on error and panic too, through `Drop`.
pub struct DurableCluster {
    cluster: Option<LocalCluster>,
    dir: PathBuf,
}

impl DurableCluster {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("nexacore-bench-{:08x}", rand::random::<u32>()));
        // The guard exists before the cluster, so a failed initdb still removes the directory.
        let mut guard = Self { cluster: None, dir };
        let cluster =
            LocalCluster::start_persistent(&guard.dir, None).context("starting a durable Postgres cluster")?;
        guard.cluster = Some(cluster);
        Ok(guard)
    }

    fn superuser_url(&self) -> String {
        self.cluster.as_ref().map(LocalCluster::superuser_url).unwrap_or_default()
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down()
    }

    /// Safe to call twice: the second call finds nothing left.
    fn shut_down(&mut self) -> anyhow::Result<()> {
        let stopped = match self.cluster.take() {
            Some(cluster) => cluster.stop().context("stopping the durable Postgres cluster"),
            None => Ok(()),
        };
        let removed = match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow!(e).context(format!("removing {}", self.dir.display())))
            }
            _ => Ok(()),
        };
        stopped.and(removed)
    }
}

impl Drop for DurableCluster {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!(dir = %self.dir.display(), error = %format!("{error:#}"), "benchmark cluster left behind");
        }
    }
}

/// The server's version and durability, for the report's first line.
#[derive(Serialize)]
pub struct ServerInfo {
    pub version: String,
    pub fsync: String,
}

impl ServerInfo {
    pub async fn read(conn: &mut PgConnection) -> sqlx::Result<Self> {
        Ok(Self {
            version: sqlx::query_scalar("SHOW server_version").fetch_one(&mut *conn).await?,
            fsync: sqlx::query_scalar("SHOW fsync").fetch_one(&mut *conn).await?,
        })
    }
}

/// `admin_url` with its database replaced: the superuser URL for one database of the server.
pub fn database_url(admin_url: &str, db: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(admin_url).context("the admin URL")?;
    url.set_path(db);
    Ok(url.to_string())
}

/// Flushes everything written so far, so that a measurement starts from clean state.
pub async fn checkpoint(admin: &PgConnectOptions) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect_with(admin).await?;
    sqlx::query("CHECKPOINT").execute(&mut conn).await?;
    conn.close().await.ok();
    Ok(())
}

/// Drops what a platform created on a server: the tenants its catalog names (and the spare
/// databases it built), the catalog and the template. The schema-owner role stays: other
/// control planes on this server may share it.
pub async fn drop_platform(admin_url: &str, catalog: &DbName, template: &DbName) -> anyhow::Result<()> {
    let admin = PgConnectOptions::from_str(admin_url).context("--database-url is not a postgres:// URL")?;
    let mut conn = PgConnection::connect_with(&admin).await.context("connecting to clean up")?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(catalog.as_str())
        .fetch_one(&mut conn)
        .await?;
    if exists {
        let mut catalog = PgConnection::connect_with(&admin.clone().database(catalog.as_str())).await?;
        // Spare databases carry tenant names (`t_<id>`) before any tenant adopts them.
        let tenants: Vec<(String, String)> = sqlx::query_as(
            "SELECT database_name, role_name FROM tenants
             UNION ALL SELECT 't_' || replace(id::text, '-', ''), 't_' || replace(id::text, '-', '') FROM spare_databases",
        )
        .fetch_all(&mut catalog)
        .await?;
        catalog.close().await.ok();
        for (db, role) in tenants {
            drop_database(&mut conn, &DbName::parse(&db).map_err(|e| anyhow!(e))?).await?;
            drop_role(&mut conn, &RoleName::parse(&role).map_err(|e| anyhow!(e))?).await?;
        }
    }
    drop_database(&mut conn, catalog).await?;
    drop_database(&mut conn, template).await?;
    conn.close().await.ok();
    Ok(())
}

/// Drops a database if it exists, ending its sessions; a template must first stop being one.
pub async fn drop_database(conn: &mut PgConnection, db: &DbName) -> sqlx::Result<()> {
    let is_template: Option<bool> = sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
        .bind(db.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match is_template {
        None => return Ok(()),
        Some(true) => execute(conn, format!("ALTER DATABASE {} IS_TEMPLATE false", db.quoted())).await?,
        Some(false) => {}
    }
    execute(conn, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted())).await
}

pub async fn drop_role(conn: &mut PgConnection, role: &RoleName) -> sqlx::Result<()> {
    execute(conn, format!("DROP ROLE IF EXISTS {}", role.quoted())).await
}

/// Runs DDL built from checked identifiers, in one round trip (simple query protocol).
pub async fn execute(conn: &mut PgConnection, sql: String) -> sqlx::Result<()> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await.map(drop)
}
