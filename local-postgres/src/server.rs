//! `PgServer`, the server a test talks to (`DATABASE_URL` or a throwaway cluster), the
//! per-process shared test servers, and fresh databases on them.

use std::sync::OnceLock;

use rand::Rng;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::{ClusterError, LocalCluster};

/// PostgreSQL's limit on identifier length, in bytes.
const MAX_IDENTIFIER_LEN: usize = 63;
/// 36^12 ≈ 4.7e18 names: collisions between concurrent tests are not a concern.
const RANDOM_SUFFIX_LEN: usize = 12;
const MAX_PREFIX_LEN: usize = MAX_IDENTIFIER_LEN - RANDOM_SUFFIX_LEN - 1;

/// A PostgreSQL server reachable as a superuser.
pub enum PgServer {
    /// Someone else's server, e.g. CI's service container; we only ever add databases to it.
    External { url: String },
    /// A cluster this process started.
    Local(LocalCluster),
}

impl PgServer {
    /// `DATABASE_URL` (which must be a superuser URL) when set and not empty, else a new
    /// throwaway cluster.
    pub fn from_env_or_throwaway() -> Result<PgServer, ClusterError> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(PgServer::External { url }),
            _ => LocalCluster::start_throwaway().map(PgServer::Local),
        }
    }

    pub fn superuser_url(&self) -> String {
        match self {
            PgServer::External { url } => url.clone(),
            PgServer::Local(cluster) => cluster.superuser_url(),
        }
    }

    /// The superuser URL with its database replaced by `database` (used as given: no escaping).
    pub fn url_for_database(&self, database: &str) -> String {
        with_database(&self.superuser_url(), database)
    }
}

/// The server the tests of this process share: `DATABASE_URL`, else a throwaway cluster
/// started on first use.
///
/// A static is never dropped; the cluster's watchdog removes it when the test binary exits.
/// The first call blocks for about a second (initdb + start); later calls return at once.
///
/// # Panics
/// If there is no `DATABASE_URL` and no cluster can be started: tests cannot run then, and
/// the message says what to install or fix.
pub fn shared_test_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        PgServer::from_env_or_throwaway().unwrap_or_else(|e| panic!("no PostgreSQL server for the tests: {e}"))
    })
}

/// A second throwaway server, independent of [`shared_test_server`] (for tests that place
/// databases on two servers). Never `DATABASE_URL`, which names only one server.
///
/// # Panics
/// If the cluster cannot be started.
pub fn second_test_server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        LocalCluster::start_throwaway()
            .map(PgServer::Local)
            .unwrap_or_else(|e| panic!("no second PostgreSQL server for the tests: {e}"))
    })
}

/// Creates a new, empty database named `prefix` + `_` + a random suffix (only `[a-z0-9_]`)
/// on `server`, and returns its name and a superuser URL for it.
///
/// `prefix` may hold at most 50 characters of `[a-z0-9_]`; anything else is refused rather
/// than rewritten, so the name a test asked for is the name it gets.
pub async fn create_fresh_database(server: &PgServer, prefix: &str) -> Result<(String, String), ClusterError> {
    let name = fresh_database_name(prefix)?;
    let mut connection = PgConnection::connect(&server.superuser_url()).await?;
    // With fsync off, copying the template's files is the fastest way (≈ 20 ms); with fsync on
    // it costs two checkpoints, and the default WAL_LOG strategy is faster. STRATEGY is new in 15.
    let file_copy: bool = sqlx::query_scalar(
        "select current_setting('server_version_num')::int >= 150000 \
         and current_setting('fsync') = 'off'",
    )
    .fetch_one(&mut connection)
    .await?;
    let strategy = if file_copy { " STRATEGY FILE_COPY" } else { "" };
    // Safe: `name` is made of [a-z0-9_] only (checked prefix, generated suffix).
    connection.execute(AssertSqlSafe(format!(r#"CREATE DATABASE "{name}"{strategy}"#))).await?;
    connection.close().await?;
    let url = server.url_for_database(&name);
    Ok((name, url))
}

fn fresh_database_name(prefix: &str) -> Result<String, ClusterError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if prefix.len() > MAX_PREFIX_LEN || !prefix.chars().all(allowed) {
        return Err(ClusterError::InvalidDatabasePrefix { prefix: prefix.to_owned(), max_len: MAX_PREFIX_LEN });
    }
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String =
        (0..RANDOM_SUFFIX_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    let separator = if prefix.is_empty() || prefix.ends_with('_') { "" } else { "_" };
    Ok(format!("{prefix}{separator}{suffix}"))
}

/// `url` with its path (the database name) replaced, keeping user, host, port and query.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    let path_end = url[authority_end..].find(['?', '#']).map_or(url.len(), |i| authority_end + i);
    format!("{}/{database}{}", &url[..authority_end], &url[path_end..])
}
