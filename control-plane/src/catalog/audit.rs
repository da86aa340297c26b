//! The operator audit log: one row per operator action (and per self-service signup).

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Who did something: the operator token's holder, a public signup, or the control plane itself.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl Actor {
    pub fn operator(client: Option<&str>) -> Self {
        Self(match client {
            Some(addr) => format!("operator@{addr}"),
            None => "operator".into(),
        })
    }

    pub fn system() -> Self {
        Self("control-plane".into())
    }

    pub fn signup(client: Option<&str>) -> Self {
        Self(match client {
            Some(addr) => format!("signup@{addr}"),
            None => "signup".into(),
        })
    }
}

pub async fn record(
    db: impl PgExecutor<'_>,
    actor: &Actor,
    action: &str,
    tenant_id: Option<Uuid>,
    details: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (actor, action, tenant_id, details) VALUES ($1, $2, $3, $4)")
        .bind(&actor.0)
        .bind(action)
        .bind(tenant_id)
        .bind(details)
        .execute(db)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: time::OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub tenant_id: Option<Uuid>,
    pub details: Value,
}

/// The newest entries first, optionally for one tenant, before the id `before` (paging).
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: Option<Uuid>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, actor, action, tenant_id, details FROM audit_log
         WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}
