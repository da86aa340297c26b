//! Who may log into what on the platform's Postgres servers.
//!
//! - **`CONNECT` is closed to `PUBLIC`** on every database that is not a tenant's own: the
//!   catalog, `postgres`, `template1` and each server's template database (tenant databases
//!   are closed as they are created). A tenant role can then log into its own database only,
//!   so it can neither read the catalog nor `LISTEN`/`NOTIFY` on its channels.
//! - **Routers read the catalog as a least-privileged role** ([`router_role`]): `CONNECT` on the
//!   catalog and `SELECT` on the columns routers read, nothing else (not `users`, not
//!   `signing_keys`, not the sealed server credentials). Its password is derived from the
//!   tenant role key like a tenant role's, so a router needs no secret beyond the one it has.
//!
//! Both are applied at every start and at server registration, idempotently, under one
//! server-wide advisory lock: concurrent `GRANT`s on one `pg_database` row fail with "tuple
//! concurrently updated".

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tenancy::TenantRoleKey;

use crate::domain::{DbName, RoleName};

/// Serialises the ACL changes of this module on one server (a session of any database).
const ACCESS_LOCK_KEY: i64 = 0x6e65_7861_6163_6c00;

/// The built-in databases every login role could otherwise connect to (`template0` refuses
/// connections already).
const BUILT_IN_DATABASES: [&str; 2] = ["postgres", "template1"];

/// What routers may read of the catalog, column by column: `(table, columns)`.
pub const ROUTER_GRANTS: [(&str, &str); 4] = [
    (
        "tenants",
        "id, status, server_id, database_name, role_name, schema_version, maintenance_mode, \
         maintenance_message, migrating",
    ),
    ("database_servers", "id, host, port"),
    ("system_settings", "maintenance_mode, maintenance_message, min_client_version, latest_version"),
    // Whether a token still grants access (its membership's epoch), never who the user is.
    ("memberships", "user_id, tenant_id, token_epoch"),
];

/// Revokes every privilege of `PUBLIC` (`CONNECT`, `TEMPORARY`) on the built-in databases and
/// on `ours`, where it is still granted. Runs on any superuser session of the server.
pub async fn close_to_public(conn: &mut PgConnection, ours: &[&DbName]) -> Result<(), sqlx::Error> {
    let mut names: Vec<String> = BUILT_IN_DATABASES.iter().map(|name| (*name).to_owned()).collect();
    names.extend(ours.iter().map(|db| db.as_str().to_owned()));
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)").bind(ACCESS_LOCK_KEY).execute(&mut *tx).await?;
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_catalog.pg_database WHERE datname = ANY($1)
           AND (pg_catalog.has_database_privilege('public', oid, 'CONNECT')
                OR pg_catalog.has_database_privilege('public', oid, 'TEMPORARY'))",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    for name in open {
        // Names come from `pg_database` and are among the ones asked for; parse anyway, so only
        // a checked identifier reaches the statement.
        let Ok(db) = DbName::parse(&name) else { continue };
        let sql = format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", db.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        tracing::info!(database = %db, "closed the database to PUBLIC");
    }
    tx.commit().await
}

/// The routers' login role for one catalog: `<catalog>_router`, or a digest of the catalog's
/// name when that would be too long. One per catalog, so catalogs sharing a server (tests do)
/// never share a role or its password.
pub fn router_role(catalog: &DbName) -> RoleName {
    RoleName::parse(&format!("{catalog}_router")).unwrap_or_else(|_| {
        let digest = hex::encode(&Sha256::digest(catalog.as_str().as_bytes())[..12]);
        RoleName::parse(&format!("nexacore_router_{digest}")).expect("a valid role name")
    })
}

/// The URL routers use for the catalog: the admin URL's host, port and parameters, the router
/// role as user and no password (a router derives it from its role key).
pub fn router_catalog_url(admin_url: &str, catalog: &DbName) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(admin_url)?;
    url.set_username(router_role(catalog).as_str()).map_err(|()| url::ParseError::EmptyHost)?;
    url.set_password(None).map_err(|()| url::ParseError::EmptyHost)?;
    url.set_path(&format!("/{catalog}"));
    Ok(url.to_string())
}

/// Creates (or brings up to date) the routers' catalog role: login, nothing else, its password
/// derived from `role_key`; `CONNECT` on the catalog and `SELECT` on [`ROUTER_GRANTS`]. Run on
/// a superuser session of the catalog database, after the catalog's migrations.
pub async fn ensure_router_role(
    conn: &mut PgConnection,
    catalog: &DbName,
    role_key: &TenantRoleKey,
) -> Result<RoleName, sqlx::Error> {
    let role = router_role(catalog);
    let verifier = crate::secrets::tenant_role_scram_verifier(&role_key.password_for(&role));
    // Same check as for tenant roles: only a SCRAM verifier goes between the quotes.
    assert!(
        verifier.starts_with("SCRAM-SHA-256$")
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"$:+/=-".contains(&b)),
        "a SCRAM verifier from tenant_role_scram_verifier"
    );
    let r = role.quoted();
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)").bind(ACCESS_LOCK_KEY).execute(&mut *tx).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
        .bind(role.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let verb = if exists { "ALTER" } else { "CREATE" };
    // Every start: the password follows the master key, and no one may have widened the role.
    let mut sql = format!(
        "{verb} ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT \
         CONNECTION LIMIT 64 PASSWORD '{verifier}';
         REVOKE ALL ON DATABASE {catalog} FROM PUBLIC;
         GRANT CONNECT ON DATABASE {catalog} TO {r};
         REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE ON SCHEMA public TO {r};
         REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r};",
        catalog = catalog.quoted()
    );
    for (table, columns) in ROUTER_GRANTS {
        sql.push_str(&format!("GRANT SELECT ({columns}) ON public.{table} TO {r};"));
    }
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(role)
}
