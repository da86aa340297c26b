//! Catalog rows of the Postgres servers that hold tenant databases, and placement.

use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: Uuid,
    pub name: String,
    pub admin_url_sealed: Vec<u8>,
    pub host: String,
    pub port: i32,
    pub capacity: i32,
    pub status: String,
}

/// A server with how many live tenants it holds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerLoad {
    pub id: Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    pub capacity: i32,
    pub status: String,
    pub tenants: i64,
    pub spares_ready: i64,
}

const SERVER_COLUMNS: &str = "id, name, admin_url_sealed, host, port, capacity, status";

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ServerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SERVER_COLUMNS} FROM database_servers WHERE id = $1")))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn all(db: impl PgExecutor<'_>) -> Result<Vec<ServerRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SERVER_COLUMNS} FROM database_servers ORDER BY created_at, id"
    )))
    .fetch_all(db)
    .await
}

pub async fn insert(db: impl PgExecutor<'_>, row: &ServerRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO database_servers (id, name, admin_url_sealed, host, port, capacity, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(&row.name)
    .bind(&row.admin_url_sealed)
    .bind(&row.host)
    .bind(row.port)
    .bind(row.capacity)
    .bind(&row.status)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn loads(db: impl PgExecutor<'_>) -> Result<Vec<ServerLoad>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.name, s.host, s.port, s.capacity, s.status, count(t.id) AS tenants,
                (SELECT count(*) FROM spare_databases sp WHERE sp.server_id = s.id AND sp.status = 'ready')
                    AS spares_ready
         FROM database_servers s
         LEFT JOIN tenants t ON t.server_id = s.id AND t.status <> 'deleted'
         GROUP BY s.id ORDER BY s.created_at, s.id",
    )
    .fetch_all(db)
    .await
}

/// The active server with the lowest load relative to its capacity; ties go to the server
/// registered first. `None` when no server is active or every active one is full.
pub async fn least_loaded(db: impl PgExecutor<'_>) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT s.id
         FROM database_servers s
         LEFT JOIN tenants t ON t.server_id = s.id AND t.status <> 'deleted'
         WHERE s.status = 'active'
         GROUP BY s.id
         HAVING count(t.id) < s.capacity
         ORDER BY count(t.id)::float8 / s.capacity, s.created_at, s.id
         LIMIT 1",
    )
    .fetch_optional(db)
    .await
}

/// [`least_loaded`] among the servers other than `except` (where a moving tenant is now).
pub async fn least_loaded_except(db: impl PgExecutor<'_>, except: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT s.id
         FROM database_servers s
         LEFT JOIN tenants t ON t.server_id = s.id AND t.status <> 'deleted'
         WHERE s.status = 'active' AND s.id <> $1
         GROUP BY s.id
         HAVING count(t.id) < s.capacity
         ORDER BY count(t.id)::float8 / s.capacity, s.created_at, s.id
         LIMIT 1",
    )
    .bind(except)
    .fetch_optional(db)
    .await
}

/// Sets a server's status (`active`, `draining`, `disabled`); whether it existed.
pub async fn set_status(db: impl PgExecutor<'_>, id: Uuid, status: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE database_servers SET status = $2 WHERE id = $1").bind(id).bind(status).execute(db).await?;
    Ok(done.rows_affected() == 1)
}
