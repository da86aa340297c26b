//! NexaCore control plane: the tenant catalog, provisioning of one Postgres database per
//! company, identity (users, logins, EdDSA tokens, JWKS), bulk schema migrations of every tenant
//! database, and the operator API.
//!
//! Entry point: [`App::build`] then [`App::run_until_stopped`]. See ARCHITECTURE.md.

pub mod app;
pub mod backups;
pub mod catalog;
pub mod config;
pub mod doctor;
pub mod domain;
pub mod fleet;
pub mod http;
pub mod identity;
pub mod lifecycle;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod migrations;
pub mod moves;
pub mod people;
pub mod provision;
pub mod rate_limit;
pub mod releases;
pub mod secrets;
pub mod state;

pub use app::{App, StartError};
pub use config::Config;
