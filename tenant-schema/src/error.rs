//! The error type at the crate boundary.

use refinery_core::error::Kind;

/// Everything that can go wrong while migrating or seeding a tenant database.
///
/// Messages may name migrations and constraint-level fields but never hold connection details;
/// they are meant for operators and logs, not for end users as-is.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database records a migration under `version` whose name or checksum differs from the
    /// one compiled into this binary: someone edited an applied migration, or the database was
    /// migrated by a different build. Nothing was applied.
    #[error("migration V{version} in the database ({applied}) differs from the code ({in_code}); refusing to migrate")]
    DivergentHistory {
        /// The migration version.
        version: i32,
        /// Name of the migration recorded in the database.
        applied: String,
        /// Name of the migration in the code.
        in_code: String,
    },

    /// The database's history and the code's migrations do not line up: a migration recorded in
    /// the database is unknown to the code (the database is newer than this binary), or a
    /// migration older than the applied version was never applied. Nothing was applied.
    #[error("migration V{version} ({name}) is missing from the history or from the code; refusing to migrate")]
    MissingMigration {
        /// The migration version.
        version: i32,
        /// The migration name.
        name: String,
    },

    /// Applying the migrations failed (bad SQL, lost connection, ...). The run is grouped in one
    /// transaction, so none of its migrations remain applied.
    #[error("migration failed: {0}")]
    Migration(#[source] refinery_core::Error),

    /// The company database already holds its settings row: it was seeded before.
    #[error("the company database is already seeded")]
    AlreadySeeded,

    /// A seed value was rejected by the schema's constraints.
    #[error("invalid {field}: {reason}")]
    InvalidSeed {
        /// The [`crate::seed::CompanySeed`] field at fault.
        field: &'static str,
        /// Human-readable reason.
        reason: &'static str,
    },

    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<refinery_core::Error> for SchemaError {
    fn from(error: refinery_core::Error) -> Self {
        match error.kind() {
            Kind::DivergentVersion(applied, in_code) => SchemaError::DivergentHistory {
                version: applied.version(),
                applied: applied.name().to_owned(),
                in_code: in_code.name().to_owned(),
            },
            Kind::MissingVersion(migration) => {
                SchemaError::MissingMigration { version: migration.version(), name: migration.name().to_owned() }
            }
            _ => SchemaError::Migration(error),
        }
    }
}
