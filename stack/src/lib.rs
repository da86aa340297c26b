//! The whole platform in one process: a control plane and N tenant-router replicas on a Postgres
//! server, each through its real `App::build`, on port 0 or chosen ports. `ops up`, the
//! benchmarks and the cross-service tests start it here, so "how the services are wired to each
//! other" (catalog role, role key, JWKS URL, router URL) is written once.
//!
//! The Postgres server's life is the caller's: `local-postgres` starts one (a persistent
//! cluster for `ops up`, a throwaway one for tests and benchmarks).

mod company;
mod platform;
mod service;
pub mod smtp_sink;
pub mod tls;
pub mod wiring;

pub use company::{Company, TEST_PASSWORD};
pub use platform::{Platform, PlatformBuilder};
pub use service::{ControlPlaneHandle, RouterHandle};
pub use tls::LocalTls;
/// The services' configurations, for builder tweaks in crates that depend on no service.
pub use {control_plane::Config as ControlPlaneConfig, tenant_router::Config as RouterConfig};

/// What the benchmarks name of the tenant router besides [`RouterConfig`]: its pool settings,
/// and the state a running replica shares ([`RouterHandle::state`]) with its admission gates, so
/// that one benchmark can time each step of a request alone.
pub mod router {
    pub use tenant_router::config::PoolConfig;
    pub use tenant_router::{App, AppState, Lookup, admit};
}

/// What the benchmarks name of the control plane besides [`ControlPlaneConfig`]: settings they
/// vary, the migration list they hand a control plane, the password hash a signup pays, and, for
/// tenants copied from the template without the signup API, the catalog rows and the role that
/// owns a fresh copy's objects.
pub mod control {
    pub use control_plane::catalog::tenants::{NewTenantRow, activate, insert_provisioning};
    pub use control_plane::fleet::CreateDatabaseStrategy;
    pub use control_plane::fleet::SCHEMA_OWNER_ROLE;
    pub use control_plane::identity::hashing::HashingConfig;
    pub use control_plane::identity::password::hash as hash_password;
    pub use control_plane::migrations::MigrationSet;
}

/// Why the platform did not start, or a call through it failed.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("starting the control plane: {0}")]
    ControlPlane(#[from] control_plane::StartError),
    #[error("starting a tenant router: {0}")]
    Router(#[from] tenant_router::StartError),
    #[error("preparing the databases: {0}")]
    Database(String),
    #[error("calling the platform: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{call} answered HTTP {status}: {body}")]
    Refused { call: String, status: u16, body: String },
    #[error("a service stopped with an error: {0}")]
    Serve(#[from] std::io::Error),
    #[error("a service task panicked")]
    Panicked,
    #[error("{0}")]
    Wiring(String),
    #[error("TLS: {0}")]
    Tls(#[from] tls::LocalTlsError),
}

impl From<sqlx::Error> for StackError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e.to_string())
    }
}

/// A name no other run uses: `prefix` and ten hex digits.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}
