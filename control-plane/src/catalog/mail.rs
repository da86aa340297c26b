//! The e-mail outbox (`mail_outbox`): written in the transaction of the action that causes a
//! message, read by the sender. Bodies are sealed by the caller.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

pub struct NewMail<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub tenant_id: Option<Uuid>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body_sealed: Vec<u8>,
}

pub async fn insert(db: impl PgExecutor<'_>, mail: NewMail<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, tenant_id, recipient, subject, body_sealed) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(mail.id)
    .bind(mail.kind)
    .bind(mail.tenant_id)
    .bind(mail.recipient)
    .bind(mail.subject)
    .bind(mail.body_sealed)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueMail {
    pub id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body_sealed: Vec<u8>,
    pub attempts: i32,
}

/// The oldest due message, locked for this transaction: another sender (replica) skips it, and
/// if this one dies mid-delivery the lock goes with its connection and the message stays due.
pub async fn claim_due(tx: &mut PgConnection) -> Result<Option<DueMail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, recipient, subject, body_sealed, attempts FROM mail_outbox
         WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(tx)
    .await
}

pub async fn mark_sent(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL
         WHERE id = $1",
    )
    .bind(id)
    .execute(tx)
    .await?;
    Ok(())
}

/// A failed attempt: due again after `retry_in`, or `failed` for good when `give_up`.
pub async fn mark_failed_attempt(
    tx: &mut PgConnection,
    id: Uuid,
    error: &str,
    retry_in: std::time::Duration,
    give_up: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2,
            next_attempt_at = now() + make_interval(secs => $3),
            status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(retry_in.as_secs_f64())
    .bind(give_up)
    .execute(tx)
    .await?;
    Ok(())
}

/// When the next pending message is due, if any (the sender sleeps until then).
pub async fn next_due(db: impl PgExecutor<'_>) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(next_attempt_at) FROM mail_outbox WHERE status = 'pending'").fetch_one(db).await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MailRow {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

/// The newest messages first, optionally only those with `status`.
pub async fn list(db: impl PgExecutor<'_>, status: Option<&str>, limit: i64) -> Result<Vec<MailRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, tenant_id, recipient, subject, status, attempts, next_attempt_at, last_error, created_at, sent_at
         FROM mail_outbox WHERE ($1::text IS NULL OR status = $1) ORDER BY created_at DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(db)
    .await
}
