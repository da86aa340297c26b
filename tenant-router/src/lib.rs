//! NexaCore tenant router: verifies a user's token, resolves its tenant to a pooled connection
//! to that tenant's own database (as the tenant's own role), and serves the ERP API there.
//!
//! Entry point: [`App::build`] then [`App::run_until_stopped`]. See ARCHITECTURE.md.

pub mod access;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod gates;
pub mod http;
pub mod listener;
pub mod pools;
pub mod realtime;
pub mod routes;
pub mod state;
mod timing;

pub use app::{App, StartError};
pub use config::Config;
