//! Platform-wide settings: global maintenance and the supported client versions.

use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SystemSettings {
    pub maintenance_mode: bool,
    pub maintenance_message: Option<String>,
    pub min_client_version: String,
    pub latest_version: String,
}

pub async fn get(db: impl PgExecutor<'_>) -> Result<SystemSettings, sqlx::Error> {
    sqlx::query_as(
        "SELECT maintenance_mode, maintenance_message, min_client_version, latest_version FROM system_settings",
    )
    .fetch_one(db)
    .await
}

pub async fn set_maintenance(db: impl PgExecutor<'_>, on: bool, message: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE system_settings SET maintenance_mode = $1, maintenance_message = $2, updated_at = now()")
        .bind(on)
        .bind(message)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_client_versions(db: impl PgExecutor<'_>, min: &str, latest: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE system_settings SET min_client_version = $1, latest_version = $2, updated_at = now()")
        .bind(min)
        .bind(latest)
        .execute(db)
        .await?;
    Ok(())
}
