//! The Postgres side of a move: logical replication from the tenant's database on the source
//! server into a fresh database on the target, and the checks and closings around it.
//!
//! **Who runs what, and why it is safe (SECURITY.md).**
//! - The schema is copied by `pg_dump --schema-only` and `pg_restore` **as the tenant's role**
//!   into a database created from `template0` and owned by that role: the restore's mechanism.
//! - The publication and the replication slot are created by a **tenant session** on the
//!   source; the walsender that decodes and sends the changes (and the initial `COPY`) logs in
//!   as the tenant's role too, which holds `REPLICATION` only for the move's duration. No
//!   superuser reads a tenant table on the source.
//! - On the target, PostgreSQL 15 lets only a superuser own a subscription (16 added
//!   `pg_create_subscription` and apply-as-table-owner), so the apply worker runs as a
//!   superuser. It sets `search_path` to empty and `session_replication_role = replica`, so
//!   ordinary triggers do not fire; what it does evaluate is constraints, index expressions,
//!   generated columns and domain checks. [`check_target_schema`] therefore refuses, before any
//!   row is copied, a target schema with an `ENABLE ALWAYS`/`REPLICA` trigger, or where
//!   anything the apply evaluates depends on a function that is not byte-for-byte the
//!   template's own (the platform's code, not the tenant's), or on any user-defined operator
//!   or cast. The schema on the target cannot change meanwhile: only the control plane and
//!   the apply worker enter it until the route names it.
//! - Superuser sessions otherwise only create, grant, revoke, terminate and drop, with
//!   `search_path = pg_catalog` ([`crate::fleet::pin_search_path`]).

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::domain::{DbName, RoleName};
use crate::fleet::{Fleet, FleetError, ServerHandle, TenantLogin, database_exists};

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The tenant's schema cannot be moved this way; the text says why (no SQL, no hosts).
    #[error("{0}")]
    Refused(String),
    #[error("{0} did not happen within {1:?}")]
    Timeout(&'static str, Duration),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Creates the publication of every table of the tenant's database, from a tenant session.
/// Every table needs a primary key (or replica identity): logical replication finds updated and
/// deleted rows by it, and the source refuses an UPDATE of a published table without one.
pub async fn create_publication(tenant: &mut PgConnection, name: &DbName) -> Result<(), ReplicationError> {
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "SELECT format('%I.%I', n.nspname, c.relname),
                c.relreplident = 'f' OR (c.relreplident = 'd' AND EXISTS
                    (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
                    OR (c.relreplident = 'i' AND EXISTS
                    (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND c.relpersistence = 'p'
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
         ORDER BY 1",
    )
    .fetch_all(&mut *tenant)
    .await?;
    if let Some((table, _)) = tables.iter().find(|(_, identified)| !identified) {
        return Err(ReplicationError::Refused(format!(
            "table {table} has no primary key, so its updates cannot be replicated"
        )));
    }
    if tables.is_empty() {
        return Err(ReplicationError::Refused("the tenant's database has no table".into()));
    }
    // The names were quoted by Postgres's own `format('%I')`; none comes from a request.
    let list = tables.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(", ");
    let sql = format!("CREATE PUBLICATION {} FOR TABLE {list}", name.quoted());
    sqlx::query(AssertSqlSafe(sql)).execute(&mut *tenant).await?;
    Ok(())
}

/// The logical replication slot the subscription will read, created from a tenant session (it
/// holds `REPLICATION` meanwhile). Made here rather than by `CREATE SUBSCRIPTION` so that the
/// move owns its name, and a move between two databases of one cluster does not deadlock.
pub async fn create_slot(tenant: &mut PgConnection, name: &DbName) -> Result<(), ReplicationError> {
    sqlx::query("SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')")
        .bind(name.as_str())
        .execute(&mut *tenant)
        .await?;
    Ok(())
}

/// Gives (or takes back) the tenant role `REPLICATION` on a server. Its password is known only
/// to the control plane and the routers, which can already reach every tenant's data.
pub async fn set_replication(server: &ServerHandle, role: &RoleName, on: bool) -> Result<(), ReplicationError> {
    let attribute = if on { "REPLICATION" } else { "NOREPLICATION" };
    let sql = format!("ALTER ROLE {} {attribute}", role.quoted());
    match sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await {
        Ok(_) => Ok(()),
        // Undoing on a server where the role is already gone.
        Err(e) if !on && e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42704") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Refuses a target schema whose copy would run tenant code as the (superuser) apply worker;
/// see the module docs. A superuser session that reads catalogs only.
pub async fn check_target_schema(
    server: &ServerHandle,
    target: &DbName,
    template: &DbName,
) -> Result<(), ReplicationError> {
    let mut conn = server.connect_to(target).await?;
    let checked = check_schema_on(&mut conn, server, template).await;
    conn.close().await.ok();
    checked
}

async fn check_schema_on(
    conn: &mut PgConnection,
    server: &ServerHandle,
    template: &DbName,
) -> Result<(), ReplicationError> {
    let firing: Option<String> = sqlx::query_scalar(
        "SELECT format('%s on %s', t.tgname, t.tgrelid::regclass) FROM pg_catalog.pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgenabled IN ('A', 'R') LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(trigger) = firing {
        return Err(ReplicationError::Refused(format!(
            "trigger {trigger} fires during replication; only triggers that replication skips can be moved"
        )));
    }
    // What the apply evaluates: constraints (tables and domains), indexes, defaults and
    // generated columns, types. Views, policies and ordinary triggers are not evaluated by it.
    let evaluated = "('pg_catalog.pg_constraint'::regclass, 'pg_catalog.pg_class'::regclass, \
        'pg_catalog.pg_attrdef'::regclass, 'pg_catalog.pg_type'::regclass)";
    let other: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0) FROM pg_catalog.pg_depend d
         WHERE d.classid IN {evaluated} AND d.refobjid >= 16384
           AND d.refclassid IN ('pg_catalog.pg_operator'::regclass, 'pg_catalog.pg_cast'::regclass,
                                'pg_catalog.pg_opclass'::regclass, 'pg_catalog.pg_aggregate'::regclass)
         LIMIT 1"
    )))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(object) = other {
        return Err(ReplicationError::Refused(format!("the schema uses {object}, which replication would run")));
    }
    let functions: Vec<FunctionShape> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT DISTINCT {FUNCTION_SHAPE} FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang
         WHERE d.classid IN {evaluated} AND d.refclassid = 'pg_catalog.pg_proc'::regclass AND p.oid >= 16384"
    )))
    .fetch_all(&mut *conn)
    .await?;
    if functions.is_empty() {
        return Ok(());
    }
    let mut template_conn = server.connect_to(template).await?;
    let known: Result<Vec<FunctionShape>, sqlx::Error> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {FUNCTION_SHAPE} FROM pg_catalog.pg_proc p
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang
         WHERE p.oid >= 16384"
    )))
    .fetch_all(&mut template_conn)
    .await;
    template_conn.close().await.ok();
    let known = known?;
    match functions.iter().find(|f| !known.contains(f)) {
        None => Ok(()),
        Some(f) => Err(ReplicationError::Refused(format!(
            "function {}.{}({}) is not the platform's own, and replication would run it",
            f.schema, f.name, f.arguments
        ))),
    }
}

/// A function as far as what it runs is concerned.
const FUNCTION_SHAPE: &str = "n.nspname AS schema, p.proname AS name, \
    pg_catalog.pg_get_function_identity_arguments(p.oid) AS arguments, l.lanname AS language, \
    pg_catalog.md5(p.prosrc) AS body, p.prosecdef AS security_definer, \
    coalesce(p.proconfig::text, '') AS config, p.provolatile::text AS volatility";

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct FunctionShape {
    schema: String,
    name: String,
    arguments: String,
    language: String,
    body: String,
    security_definer: bool,
    config: String,
    volatility: String,
}

/// Creates and enables the subscription in the target database (superuser: Postgres 15 lets
/// no one else), reading the source through the slot made by [`create_slot`] as the tenant's
/// role. `synchronous_commit = on` so the flush position it reports is what it applied.
pub async fn create_subscription(
    server: &ServerHandle,
    target: &DbName,
    name: &DbName,
    source: &TenantLogin,
) -> Result<(), ReplicationError> {
    let conninfo = conninfo(source)?;
    let mut conn = server.connect_to(target).await?;
    let sql = format!(
        "CREATE SUBSCRIPTION {n} CONNECTION '{conninfo}' PUBLICATION {n} \
         WITH (create_slot = false, slot_name = '{slot}', copy_data = true, enabled = false, synchronous_commit = 'on')",
        n = name.quoted(),
        slot = name.as_str()
    );
    let created = async {
        sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
        sqlx::query(AssertSqlSafe(format!("ALTER SUBSCRIPTION {} ENABLE", name.quoted()))).execute(&mut conn).await
    }
    .await;
    conn.close().await.ok();
    created?;
    Ok(())
}

/// The source login as a libpq connection string. Every part is checked to need no quoting
/// (a host name or address, digits, identifiers, a hex password), so none can break out of
/// the SQL literal it goes into.
fn conninfo(login: &TenantLogin) -> Result<String, ReplicationError> {
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
    let password = login.password.expose_secret();
    if !plain(&login.host) || !plain(&login.user) || !plain(&login.database) || !plain(password) {
        return Err(ReplicationError::Refused("the source server's address cannot be used for replication".into()));
    }
    Ok(format!(
        "host={} port={} user={} password={password} dbname={} application_name=nexacore-move connect_timeout=10{}",
        login.host,
        login.port,
        login.user,
        login.database,
        replication_sslmode(login)
    ))
}

/// The target server connects to the source by itself: the control plane's CA file is not on
/// that machine, so certificate checks cannot be asked of it, but a source the control plane
/// reaches only over TLS is never replicated from in clear text (libpq's default, `prefer`,
/// would fall back to it).
fn replication_sslmode(login: &TenantLogin) -> &'static str {
    let mode = login.tls.iter().find(|(name, _)| *name == "PGSSLMODE").map(|(_, mode)| mode.as_str());
    match mode {
        Some("require" | "verify-ca" | "verify-full") => " sslmode=require",
        _ => "",
    }
}

/// Waits until every table of the subscription has copied its rows and caught up (`r`eady).
/// Fails early when the apply or a table copy reports an error.
pub async fn wait_synced(
    server: &ServerHandle,
    target: &DbName,
    name: &DbName,
    timeout: Duration,
) -> Result<(), ReplicationError> {
    let mut conn = server.connect_to(target).await?;
    let started = Instant::now();
    let outcome = loop {
        let (pending, total, errors): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r'), count(r.srrelid),
                    coalesce((SELECT st.apply_error_count + st.sync_error_count
                              FROM pg_catalog.pg_stat_subscription_stats st WHERE st.subid = s.oid), 0)
             FROM pg_catalog.pg_subscription s LEFT JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid
             WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
             GROUP BY s.oid",
        )
        .bind(name.as_str())
        .fetch_one(&mut conn)
        .await?;
        if errors > 0 {
            break Err(ReplicationError::Refused(
                "copying the rows failed on the target (its server log says why)".into(),
            ));
        }
        if total > 0 && pending == 0 {
            break Ok(());
        }
        if started.elapsed() > timeout {
            break Err(ReplicationError::Timeout("the initial copy", timeout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    conn.close().await.ok();
    outcome
}

/// Closes the source database to the tenant's role: `CONNECT` revoked, then its sessions
/// ended (not the walsender, not `keep`, the move's own session), waiting until they are gone.
/// Afterwards nothing can commit there as the tenant. In-flight transactions get `drain` to
/// finish first (routers have stopped admitting writes: the tenant is fenced).
pub async fn close_source(
    server: &ServerHandle,
    db: &DbName,
    role: &RoleName,
    keep: i32,
    drain: Duration,
) -> Result<(), ReplicationError> {
    let pool = server.pool();
    let busy = "SELECT count(*) FROM pg_catalog.pg_stat_activity
         WHERE datname = $1 AND usename = $2 AND pid <> $3 AND backend_type = 'client backend'";
    let started = Instant::now();
    while started.elapsed() < drain {
        let open: i64 = sqlx::query_scalar(AssertSqlSafe(format!("{busy} AND state <> 'idle'")))
            .bind(db.as_str())
            .bind(role.as_str())
            .bind(keep)
            .fetch_one(pool)
            .await?;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sql = format!("REVOKE CONNECT ON DATABASE {} FROM {}", db.quoted(), role.quoted());
    sqlx::query(AssertSqlSafe(sql)).execute(pool).await?;
    let started = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    loop {
        let pids: Vec<i32> = sqlx::query_scalar(AssertSqlSafe(busy.replacen("count(*)", "pid", 1)))
            .bind(db.as_str())
            .bind(role.as_str())
            .bind(keep)
            .fetch_all(pool)
            .await?;
        if pids.is_empty() {
            // A session that passed the CONNECT check just before the REVOKE appears in
            // pg_stat_activity only once it has started: none may show up for a while.
            if quiet_since.get_or_insert_with(Instant::now).elapsed() >= SESSIONS_SETTLE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        quiet_since = None;
        for pid in pids {
            sqlx::query("SELECT pg_catalog.pg_terminate_backend($1)").bind(pid).execute(pool).await?;
        }
        if started.elapsed() > SESSIONS_END_WITHIN {
            return Err(ReplicationError::Timeout("ending the tenant's sessions on the source", SESSIONS_END_WITHIN));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// How long terminated sessions may take to go.
const SESSIONS_END_WITHIN: Duration = Duration::from_secs(10);
/// How long no tenant session may be seen before the source counts as closed.
const SESSIONS_SETTLE: Duration = Duration::from_millis(20);

/// Gives the tenant's role `CONNECT` on the source database back (undoing a fence).
pub async fn reopen_source(server: &ServerHandle, db: &DbName, role: &RoleName) -> Result<(), ReplicationError> {
    let sql = format!("GRANT CONNECT ON DATABASE {} TO {}", db.quoted(), role.quoted());
    match sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await {
        Ok(_) => Ok(()),
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("3D000") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A WAL position on the source at or after every commit of the tenant (call it after
/// [`close_source`]), flushed, so the walsender can send all of it.
///
/// Not `pg_current_wal_lsn()` read first: that is the *write* position, and with
/// `synchronous_commit = off` a commit returns while its record is still only in the WAL
/// buffers, past that position; waiting for it let a move switch before the tenant's last
/// acknowledged writes reached the target. So: first a commit of our own with
/// `synchronous_commit = on`, which flushes every record inserted before it, then the flush
/// position, which is past all of them.
pub async fn current_lsn(server: &ServerHandle) -> Result<String, ReplicationError> {
    let mut conn = server.pool().acquire().await?;
    sqlx::raw_sql("BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_catalog.txid_current(); COMMIT")
        .execute(&mut *conn)
        .await?;
    let lsn: String =
        sqlx::query_scalar("SELECT pg_catalog.pg_current_wal_flush_lsn()::text").fetch_one(&mut *conn).await?;
    Ok(lsn)
}

/// Waits until the subscriber has applied and flushed everything up to `lsn`, as the slot's
/// confirmed position on the source says.
pub async fn wait_caught_up(
    server: &ServerHandle,
    slot: &DbName,
    lsn: &str,
    timeout: Duration,
) -> Result<(), ReplicationError> {
    let started = Instant::now();
    loop {
        let done: Option<bool> = sqlx::query_scalar(
            "SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
        )
        .bind(slot.as_str())
        .bind(lsn)
        .fetch_optional(server.pool())
        .await?;
        match done {
            Some(true) => return Ok(()),
            None => return Err(ReplicationError::Refused("the move's replication slot is gone".into())),
            Some(false) if started.elapsed() > timeout => {
                return Err(ReplicationError::Timeout("the final catch-up", timeout));
            }
            Some(false) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Waits until the target holds every write of the source, as the outbox counter shows: each
/// tenant write bumps `outbox_seq` in its own transaction, and transactions apply in commit
/// order, so equal counters mean nothing is missing. The slot's confirmed position alone
/// was seen to pass a just-acknowledged last write that the target did not have yet.
pub async fn wait_same_outbox(
    source: &mut PgConnection,
    target: &mut PgConnection,
    timeout: Duration,
) -> Result<(), ReplicationError> {
    const LAST: &str = "SELECT last FROM outbox_seq";
    let want: i64 = sqlx::query_scalar(LAST).fetch_one(&mut *source).await?;
    let started = Instant::now();
    loop {
        let have: i64 = sqlx::query_scalar(LAST).fetch_one(&mut *target).await?;
        if have >= want {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(ReplicationError::Timeout("the final catch-up (outbox counter)", timeout));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sequence values do not replicate: each sequence of the target is set to the source's value.
/// Both sessions are the tenant's own.
pub async fn copy_sequences(source: &mut PgConnection, target: &mut PgConnection) -> Result<usize, ReplicationError> {
    let values: Vec<(String, i64)> = sqlx::query_as(
        "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_catalog.pg_sequences
         WHERE last_value IS NOT NULL",
    )
    .fetch_all(&mut *source)
    .await?;
    for (sequence, value) in &values {
        sqlx::query("SELECT pg_catalog.setval($1::regclass, $2, true)")
            .bind(sequence)
            .bind(value)
            .execute(&mut *target)
            .await?;
    }
    Ok(values.len())
}

/// The tenant schema version recorded in a database (tenant session).
pub async fn schema_version(tenant: &mut PgConnection) -> Result<i32, ReplicationError> {
    Ok(sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM refinery_schema_history").fetch_one(tenant).await?)
}

/// Drops the move's subscription from the target database, if both exist, without touching
/// the source (its slot is dropped there by [`drop_source_replication`]).
pub async fn drop_subscription(server: &ServerHandle, target: &DbName, name: &DbName) -> Result<(), ReplicationError> {
    let mut admin = server.pool().acquire().await?;
    if !database_exists(&mut admin, target).await? {
        return Ok(());
    }
    drop(admin);
    let mut conn = server.connect_to(target).await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
                        WHERE s.subname = $1 AND d.datname = current_database())",
    )
    .bind(name.as_str())
    .fetch_one(&mut conn)
    .await?;
    if exists {
        let n = name.quoted();
        // One statement each: DROP SUBSCRIPTION refuses a transaction block, and the slot is
        // dropped on the source's side instead (whatever state the source is in).
        for sql in [
            format!("ALTER SUBSCRIPTION {n} DISABLE"),
            format!("ALTER SUBSCRIPTION {n} SET (slot_name = NONE)"),
            format!("DROP SUBSCRIPTION {n}"),
        ] {
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
        }
    }
    conn.close().await.ok();
    Ok(())
}

/// Drops every replication slot of the source database (the move's, and any table-copy slot a
/// dropped subscription left) and the publication. Superuser sessions; they only drop.
pub async fn drop_source_replication(
    server: &ServerHandle,
    source: &DbName,
    name: &DbName,
) -> Result<(), ReplicationError> {
    let pool = server.pool();
    let started = Instant::now();
    loop {
        let slots: Vec<(String, Option<i32>)> = sqlx::query_as(
            "SELECT slot_name::text, active_pid FROM pg_catalog.pg_replication_slots WHERE database = $1",
        )
        .bind(source.as_str())
        .fetch_all(pool)
        .await?;
        if slots.is_empty() {
            break;
        }
        for (slot, active) in slots {
            if let Some(pid) = active {
                sqlx::query("SELECT pg_catalog.pg_terminate_backend($1)").bind(pid).execute(pool).await?;
                continue;
            }
            // A slot that became active again meanwhile fails here; the loop retries.
            let _ = sqlx::query("SELECT pg_catalog.pg_drop_replication_slot($1)").bind(&slot).execute(pool).await;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(ReplicationError::Timeout("dropping the replication slots", Duration::from_secs(30)));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut admin = pool.acquire().await?;
    if !database_exists(&mut admin, source).await? {
        return Ok(());
    }
    drop(admin);
    let mut conn = server.connect_to(source).await?;
    let dropped =
        sqlx::query(AssertSqlSafe(format!("DROP PUBLICATION IF EXISTS {}", name.quoted()))).execute(&mut conn).await;
    conn.close().await.ok();
    dropped?;
    Ok(())
}

/// Drops the tenant's role on a server if it owns no database there any more (a move's target
/// that is undone; a source that was dropped).
pub async fn drop_role_if_unused(server: &ServerHandle, role: &RoleName) -> Result<(), ReplicationError> {
    let owns: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
                        WHERE r.rolname = $1)",
    )
    .bind(role.as_str())
    .fetch_one(server.pool())
    .await?;
    if !owns {
        sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS {}", role.quoted()))).execute(server.pool()).await?;
    }
    Ok(())
}

/// Creates the tenant's role on the target server unless it is there already (the same role
/// name and derived password on every server).
pub async fn ensure_role(fleet: &Fleet, server: &ServerHandle, role: &RoleName) -> Result<(), ReplicationError> {
    match fleet.create_role(server, role).await {
        Ok(()) => Ok(()),
        Err(FleetError::Sql(e)) if crate::catalog::is_duplicate(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod conninfo_tests {
    use super::*;
    use secrecy::SecretString;

    fn login(tls: &[(&'static str, &str)]) -> TenantLogin {
        TenantLogin {
            host: "10.0.0.7".into(),
            port: 5432,
            user: "t_abc".into(),
            database: "t_abc".into(),
            password: SecretString::from("0123abcd".to_owned()),
            tls: tls.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn a_source_reached_over_tls_is_replicated_from_over_tls_only() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let info = conninfo(&login(&[("PGSSLMODE", mode), ("PGSSLROOTCERT", "/etc/ca.pem")])).unwrap();
            assert!(info.ends_with(" sslmode=require"), "{mode}: {info}");
            assert!(!info.contains("/etc/ca.pem"), "the control plane's file path is not the server's");
        }
        for tls in [&[][..], &[("PGSSLMODE", "prefer")][..], &[("PGSSLMODE", "disable")][..]] {
            assert!(!conninfo(&login(tls)).unwrap().contains("sslmode"), "{tls:?}");
        }
    }

    #[test]
    fn an_address_that_needs_quoting_is_refused() {
        let mut bad = login(&[]);
        bad.host = "h' OR 1=1".into();
        assert!(conninfo(&bad).is_err());
    }
}
