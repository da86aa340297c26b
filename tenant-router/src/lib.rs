//! NexaCore tenant router: verifies a user's token, resolves its tenant to a pooled connection
//! to that tenant's own database (as the tenant's own role), and serves the ERP API there.
//!
//! Entry point: [`App::build`] then [`App::run_until_stopped`]. See ARCHITECTURE.md.

mod access;
mod app;
mod auth;
mod catalog;
pub mod config;
mod gates;
mod http;
mod listener;
mod metrics;
mod pools;
mod realtime;
mod routes;
mod state;
mod timing;

pub use app::{App, StartError};
pub use config::Config;

// What a process holding a running router (through `App::state()`) may look at: the shared
// state with its counters and caches, for the system tests and for the router benchmark, which
// times each step of a request alone (token, settings, route, gates, pool) to show where the
// router's added time goes. Nothing else of the router's modules is public.

/// The state every request handler shares: verifier, caches, pools, hub and their counters.
pub use state::AppState;

/// A cached route lookup (`state.routes.get(tid)`): the tenant's route, or that there is none.
pub use routes::Lookup;

/// Every admission check a request passes before it reaches a pooled connection: the token,
/// platform maintenance, the route, membership and the tenant's status and schema version.
pub use gates::admit;
