//! What a bulk migration records about where things stand: a run's state, each tenant's status
//! within the run, and each attempt of each migration. The catalog keeps them as text (the same
//! words the API shows); `as_str` gives that text and `parse` reads it back.
//!
//! This module depends on nothing in the crate, so the catalog's queries can take and return
//! these types while the engine, recovery and the service depend on the catalog.

/// Declares a status kept as text: the enum, every value in order (`ALL`), its text (`as_str`,
/// `Display`) and back (`parse`, and decoding from a catalog row). One list of variant and text,
/// so the two directions cannot drift apart.
macro_rules! text_status {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$doc:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$doc])* $variant, )+
        }

        impl $name {
            pub const ALL: [$name; [$($text),+].len()] = [$(Self::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|s| s.as_str() == raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        // Read from the catalog's text column; a word this code does not know is a decoding error.
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                Self::parse(raw).ok_or_else(|| format!("unknown {} {raw:?}", stringify!($name)).into())
            }
        }
    };
}

text_status! {
    /// The state of a run (`migration_runs.state`).
    pub enum RunState {
        Running = "running",
        /// No tenant starts; those in flight finish. `resume` continues.
        Paused = "paused",
        /// Cancel requested: those in flight finish, then `Cancelled`.
        Cancelling = "cancelling",
        Cancelled = "cancelled",
        /// Stopped by the failure policy, a failed canary or a failed template; `retry` continues.
        Stopped = "stopped",
        /// Every tenant had its turn (some may have failed under `continue`).
        Completed = "completed",
        /// The engine died (crash, `kill -9`) or the control plane shut down; `resume` continues.
        Interrupted = "interrupted",
    }
}

impl RunState {
    /// Finished for good: nothing more happens unless an operator retries.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Cancelled | Self::Stopped | Self::Completed)
    }
}

text_status! {
    /// A tenant's status within a run (`migration_run_tenants.status`), also how one tenant's
    /// turn ended. A template database's entry in `migration_runs.templates` uses the same words
    /// (`Succeeded`, `Planned`, `Drifted` or `Failed`).
    #[derive(Default)]
    pub enum RunTenantStatus {
        /// Waiting for its turn: the column's default.
        #[default]
        Pending = "pending",
        Running = "running",
        /// At (or beyond) the run's target version: migrated now, or already there.
        Succeeded = "succeeded",
        /// Its transaction was rolled back; `error` holds the database's error text.
        Failed = "failed",
        /// Its history departs from the code; it was not touched; `error` holds the reason.
        Drifted = "drifted",
        /// It left the fleet (deleted) after the run was created.
        Skipped = "skipped",
        /// Dry run: inspected; `pending` lists what a run would apply.
        Planned = "planned",
    }
}

text_status! {
    /// One migration's attempt on one database (`migration_attempts.status`).
    pub enum AttemptStatus {
        /// Recorded before the migration runs; left so only by an engine that died.
        Running = "running",
        /// Applied, and its database's transaction committed.
        Succeeded = "succeeded",
        /// The migration that failed; `error` holds the database's error text.
        Failed = "failed",
        /// Applied, then undone with the transaction (a later step or the commit failed).
        RolledBack = "rolled_back",
        /// Not reached: an earlier migration of the transaction failed.
        Skipped = "skipped",
        /// Its engine died; the database rolled the transaction back (see `recover`).
        Interrupted = "interrupted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words are stored in the catalog and shown by the API: they must never change.
    #[test]
    fn statuses_keep_their_catalog_words_and_read_back() {
        let words = |all: &[&'static str]| all.join(" ");
        assert_eq!(
            words(&RunState::ALL.map(|s| s.as_str())),
            "running paused cancelling cancelled stopped completed interrupted"
        );
        assert_eq!(
            words(&RunTenantStatus::ALL.map(|s| s.as_str())),
            "pending running succeeded failed drifted skipped planned"
        );
        assert_eq!(
            words(&AttemptStatus::ALL.map(|s| s.as_str())),
            "running succeeded failed rolled_back skipped interrupted"
        );
        assert!(RunState::ALL.into_iter().all(|s| RunState::parse(s.as_str()) == Some(s)));
        assert!(RunTenantStatus::ALL.into_iter().all(|s| RunTenantStatus::parse(s.as_str()) == Some(s)));
        assert!(AttemptStatus::ALL.into_iter().all(|s| AttemptStatus::parse(s.as_str()) == Some(s)));
        assert_eq!(RunTenantStatus::parse("Pending"), None);
    }
}
