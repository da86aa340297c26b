//! The NexaCore tenant database: its schema (refinery migrations run over sqlx) and the seed
//! data written into a new company's database.
//!
//! Every company has its own PostgreSQL database. The control plane keeps a template database
//! at [`latest_version`] with [`migrate_to_latest`], creates each company's database from it,
//! then calls [`seed::seed_company`]. Bulk schema upgrades (the control plane's migration
//! engine) inspect each tenant database with [`check_history`] and apply its pending migrations
//! one by one, in one transaction, with [`lock_for_transaction`] and [`apply_one`]. Writers
//! append live-update events with [`outbox::append`].
//!
//! The tenant router reads and writes company data through [`data`] (employees, departments,
//! accounts), whose writes commit their outbox event in the same transaction.
//!
//! This crate knows nothing of HTTP, of the catalog, or of how connections are obtained: every
//! function takes a `&mut sqlx::PgConnection`.
//!
//! Tables (see `migrations/`): `company_settings`, `roles`, `departments`, `employees`,
//! `accounts`, `outbox`, `outbox_seq`, plus refinery's `refinery_schema_history`.

pub mod data;
mod error;
mod migrate;
pub mod outbox;
pub mod refinery_driver;
pub mod seed;

pub use error::SchemaError;
pub use migrate::{
    AppliedMigration, Drift, HISTORY_TABLE, HistoryCheck, MigrationReport, PendingMigration, applied_version,
    apply_one, check_history, latest_version, lock_for_transaction, migrate_to_latest, migrate_with,
    migration_lock_key, migrations,
};
