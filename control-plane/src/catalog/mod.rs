//! The catalog: the control plane's own database. Opening it creates it when missing and brings
//! it to the latest catalog schema (refinery migrations under `control-plane/migrations`).

pub mod access;
pub mod audit;
pub mod backups;
pub mod invitations;
pub mod mail;
pub mod migration_runs;
pub mod moves;
pub mod password_resets;
pub mod refresh_tokens;
pub mod servers;
pub mod settings;
pub mod spares;
pub mod tenants;
pub mod users;

use std::str::FromStr;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use crate::domain::DbName;

mod embedded {
    refinery::embed_migrations!("migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the admin database URL is invalid: {0}")]
    BadUrl(String),
    #[error("cannot reach the catalog's Postgres server: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrating the catalog failed: {0}")]
    Migrate(#[from] tenant_schema::SchemaError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Parses a Postgres URL without ever echoing it (it may hold a password).
pub fn parse_url(url: &secrecy::SecretString) -> Result<PgConnectOptions, CatalogError> {
    PgConnectOptions::from_str(url.expose_secret())
        .map_err(|_| CatalogError::BadUrl("not a postgres:// URL (value not shown)".into()))
}

/// Connects to the catalog database, creating and migrating it first when needed.
pub async fn open(admin: &PgConnectOptions, catalog: &DbName) -> Result<PgPool, CatalogError> {
    let mut conn = PgConnection::connect_with(admin).await.map_err(CatalogError::Connect)?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(catalog.as_str())
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        let sql = format!("CREATE DATABASE {}", catalog.quoted());
        match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
            Ok(_) => tracing::info!(database = %catalog, "created the catalog database"),
            // Another replica created it between our check and our CREATE.
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await.ok();

    // The catalog is ours alone: nothing a tenant could have planted runs here, so its sessions
    // keep the normal search path (only sessions in tenant databases pin theirs).
    let options = admin.clone().database(catalog.as_str()).application_name("nexacore-control-plane");
    let mut conn = PgConnection::connect_with(&options).await.map_err(CatalogError::Connect)?;
    let runner = embedded::migrations::runner();
    let report = tenant_schema::migrate_with(&mut conn, runner.get_migrations()).await?;
    if !report.applied.is_empty() {
        tracing::info!(version = ?report.current_version, "migrated the catalog");
    }
    conn.close().await.ok();

    PgPoolOptions::new().max_connections(16).connect_with(options).await.map_err(CatalogError::Connect)
}

/// True when Postgres refused a CREATE because the object already exists.
pub fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(error.as_database_error().and_then(|e| e.code()).as_deref(), Some("42P04" | "42710" | "23505"))
}

/// True when Postgres refused a write because of a unique constraint; returns its name.
pub fn unique_violation(error: &sqlx::Error) -> Option<String> {
    let db = error.as_database_error()?;
    (db.code().as_deref() == Some("23505")).then(|| db.constraint().unwrap_or_default().to_owned())
}
