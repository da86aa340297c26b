//! A refinery driver over a sqlx Postgres connection, usable with any set of migrations.
//!
//! refinery 0.10 ships drivers for `postgres`/`tokio-postgres` but not for sqlx. This module
//! implements refinery-core's async traits for [`SqlxConnection`], so any
//! [`refinery::Runner`] can run on a sqlx connection:
//!
//! ```no_run
//! # async fn demo(conn: &mut sqlx::PgConnection, runner: refinery::Runner) -> Result<(), refinery::Error> {
//! use tenant_schema::refinery_driver::SqlxConnection;
//! let report = runner.run_async(&mut SqlxConnection(conn)).await?;
//! # Ok(()) }
//! ```
//!
//! Semantics:
//! - every migration script is sent with the simple query protocol ([`sqlx::raw_sql`]), so a
//!   file may hold many statements;
//! - [`AsyncTransaction::execute`] runs all the queries it is given in ONE transaction, committed
//!   at the end and rolled back if any query fails. With `Runner::set_grouped(true)` refinery
//!   hands it every pending migration plus its history rows, so a whole run is atomic;
//! - the transaction is opened through sqlx ([`sqlx::Connection::begin`]): if the wrapped
//!   connection is already inside a sqlx transaction, a savepoint is used instead, so the caller's
//!   transaction is never committed behind its back.
//!
//! refinery takes no lock of its own: callers that may race (several migrators on one database)
//! should hold a Postgres advisory lock around the run, as [`crate::migrate_with`] does.

use refinery_core::traits::r#async::{AsyncQuery, AsyncTransaction};
use refinery_core::{AsyncMigrate, Migration, SchemaVersion};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A sqlx Postgres connection that refinery can migrate.
///
/// `C` is anything that lends a `PgConnection`: an owned `PgConnection`, a `&mut PgConnection`,
/// a pooled connection, or an advisory-lock guard.
#[derive(Debug)]
pub struct SqlxConnection<C>(pub C);

impl<C> SqlxConnection<C> {
    /// Gives the wrapped connection back.
    pub fn into_inner(self) -> C {
        self.0
    }
}

impl<C> AsyncTransaction for SqlxConnection<C>
where
    C: AsMut<PgConnection> + Send,
{
    type Error = sqlx::Error;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let mut tx = self.0.as_mut().begin().await?;
        let mut count = 0;
        for query in queries {
            // The SQL comes from migration files compiled into the binary and from refinery's own
            // history statements, never from user input.
            if let Err(error) = sqlx::raw_sql(AssertSqlSafe(query)).execute(&mut *tx).await {
                // Roll back explicitly rather than on drop, so the connection is clean on return.
                // If the rollback itself fails the connection is broken; the original error is
                // the one worth reporting.
                if let Err(rollback_error) = tx.rollback().await {
                    tracing::warn!(%rollback_error, "rollback after a failed migration failed");
                }
                return Err(error);
            }
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }
}

impl<C> AsyncQuery<Vec<Migration>> for SqlxConnection<C>
where
    C: AsMut<PgConnection> + Send,
{
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, Self::Error> {
        // refinery's history queries select (version, name, applied_on, checksum); applied_on and
        // checksum are stored as text (RFC 3339 and a decimal u64).
        let rows = sqlx::raw_sql(AssertSqlSafe(query)).fetch_all(self.0.as_mut()).await?;
        rows.iter()
            .map(|row| {
                let version: SchemaVersion = row.try_get(0)?;
                let name: String = row.try_get(1)?;
                let applied_on: String = row.try_get(2)?;
                let checksum: String = row.try_get(3)?;
                let applied_on =
                    OffsetDateTime::parse(&applied_on, &Rfc3339).map_err(|e| sqlx::Error::Decode(e.into()))?;
                let checksum = checksum.parse::<u64>().map_err(|e| sqlx::Error::Decode(e.into()))?;
                Ok(Migration::applied(version, name, applied_on, checksum))
            })
            .collect()
    }
}

impl<C> AsyncMigrate for SqlxConnection<C> where C: AsMut<PgConnection> + Send {}
