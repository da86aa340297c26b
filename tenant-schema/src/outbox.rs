//! The tenant's event outbox: appending change events inside a writer's transaction, and
//! reading them back in order.
//!
//! See the `outbox` section of `migrations/V1__initial.sql` for why `seq` comes from the
//! one-row `outbox_seq` counter instead of a sequence.

use sqlx::PgConnection;
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::SchemaError;

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Gap-free position of the event in this company's stream, starting at 1.
    pub seq: i64,
    /// E.g. `"employees"`.
    pub channel: String,
    /// E.g. `"created"`, `"updated"`, `"deleted"`.
    pub action: String,
    /// The changed row, if the event is about one row.
    pub entity_id: Option<Uuid>,
    /// Data for clients (e.g. the employee as JSON).
    pub payload: serde_json::Value,
    /// When the event was written (transaction time).
    pub created_at: OffsetDateTime,
}

impl FromRow<'_, PgRow> for OutboxEvent {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(OutboxEvent {
            seq: row.try_get("seq")?,
            channel: row.try_get("channel")?,
            action: row.try_get("action")?,
            entity_id: row.try_get("entity_id")?,
            payload: row.try_get("payload")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// Appends an event, taking the next `seq` from the counter.
///
/// Call it inside the transaction that makes the change, ideally as its last statement: the
/// counter row stays locked until that transaction ends, which is what keeps `seq` gap-free and
/// in commit order (a rollback undoes both the event and the increment).
pub async fn append(
    conn: &mut PgConnection,
    channel: &str,
    action: &str,
    entity_id: Option<Uuid>,
    payload: &serde_json::Value,
) -> Result<OutboxEvent, SchemaError> {
    Ok(insert_event(conn, channel, action, entity_id, payload).await?)
}

/// [`append`] with the plain sqlx error, for the data layer (whose error type is not
/// [`SchemaError`]).
pub(crate) async fn insert_event(
    conn: &mut PgConnection,
    channel: &str,
    action: &str,
    entity_id: Option<Uuid>,
    payload: &serde_json::Value,
) -> Result<OutboxEvent, sqlx::Error> {
    sqlx::query_as(
        r#"
        WITH next AS (
            UPDATE outbox_seq SET last = last + 1 RETURNING last
        )
        INSERT INTO outbox (seq, channel, action, entity_id, payload)
        SELECT next.last, $1, $2, $3, $4 FROM next
        RETURNING seq, channel, action, entity_id, payload, created_at
        "#,
    )
    .bind(channel)
    .bind(action)
    .bind(entity_id)
    .bind(payload)
    .fetch_one(conn)
    .await
}

/// Events with `seq > after`, oldest first, at most `limit` of them.
pub async fn events_after(conn: &mut PgConnection, after: i64, limit: i64) -> Result<Vec<OutboxEvent>, SchemaError> {
    let events = sqlx::query_as(
        r#"
        SELECT seq, channel, action, entity_id, payload, created_at
        FROM outbox
        WHERE seq > $1
        ORDER BY seq
        LIMIT $2
        "#,
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(events)
}

/// The highest `seq` written so far (0 when there are no events): where a new reader starts.
pub async fn last_seq(conn: &mut PgConnection) -> Result<i64, SchemaError> {
    // Read the counter, not max(seq): it stays right after old events are pruned.
    let last = sqlx::query_scalar("SELECT last FROM outbox_seq").fetch_one(conn).await?;
    Ok(last)
}

/// The oldest seq still in the outbox, if any (events before it were pruned).
pub async fn first_seq(conn: &mut PgConnection) -> Result<Option<i64>, SchemaError> {
    Ok(sqlx::query_scalar("SELECT min(seq) FROM outbox").fetch_one(conn).await?)
}

/// Deletes events older than `keep`, but never the newest one (so `first_seq` still tells a
/// reconnecting client whether it missed pruned events). Returns how many were deleted.
pub async fn prune_older_than(conn: &mut PgConnection, keep: std::time::Duration) -> Result<u64, SchemaError> {
    let done = sqlx::query(
        "DELETE FROM outbox WHERE created_at < now() - make_interval(secs => $1)
           AND seq < (SELECT max(seq) FROM outbox)",
    )
    .bind(keep.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
