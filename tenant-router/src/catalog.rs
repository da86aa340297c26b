//! The router's pool of catalog connections: route lookups, platform settings, wake-ups.
//!
//! Every cold tenant's first request waits for a catalog query, so that query gets no extra
//! round trip: the pool hands connections out without sqlx's ping before each checkout, and
//! [`retrying`] runs a query again on another connection when one turns out to have died
//! while idle. Two connections stay open, so the first requests after a start do not also
//! wait for catalog backends to start.

use std::future::Future;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tenancy::{RoleName, TenantRoleKey};

/// The most connections the router keeps to the catalog.
pub const CATALOG_CONNECTIONS: u32 = 8;

/// The catalog's connection options from its URL. A URL without a password gets the one derived
/// from the tenant role key for the URL's user: the control plane gives the routers' catalog role
/// (`<catalog>_router`) exactly that password, so a router needs no second secret.
pub fn options(url: &str, role_key: &TenantRoleKey) -> Result<PgConnectOptions, sqlx::Error> {
    let has_password = url::Url::parse(url).is_ok_and(|u| u.password().is_some());
    let options: PgConnectOptions = url.parse()?;
    if has_password {
        return Ok(options);
    }
    let user = RoleName::parse(options.get_username())
        .map_err(|reason| sqlx::Error::Configuration(format!("the catalog URL's user: {reason}").into()))?;
    Ok(options.password(role_key.password_for(&user).expose_secret()))
}

/// The pool, its sessions named `application_name` (to find them in `pg_stat_activity`).
pub async fn connect(options: &PgConnectOptions, application_name: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(CATALOG_CONNECTIONS)
        .min_connections(2)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone().application_name(application_name))
        .await
}

/// Whether the catalog sessions log in as a superuser (refused unless configured: a flaw in
/// this internet-facing process must not be superuser on the primary server).
pub async fn is_superuser(catalog: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetch_one(catalog).await
}

/// Runs `query` (one statement on a pooled connection), again while it fails because its
/// connection was dead: every pooled connection may have died at once (a server restart), so
/// up to one try more than the pool holds.
pub async fn retrying<T, F, Fut>(mut query: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match query().await {
            Err(error) if is_dead_connection(&error) && tries <= CATALOG_CONNECTIONS => {
                tracing::debug!(%error, "a catalog connection was dead; trying another");
            }
            outcome => return outcome,
        }
    }
}

/// Whether `error` says the connection itself is gone (so another one may work): the socket
/// failed, or the server ended the session (SQLSTATE class 57P: terminated by an administrator,
/// a crash or a shutdown, sent on the idle connection and read by its next query).
fn is_dead_connection(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|code| code.starts_with("57P")),
        _ => false,
    }
}
