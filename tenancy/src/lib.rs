//! What a tenant is, as every NexaCore service must agree on it: its id and the identifiers of
//! its database and role, the claims of an access token, how a tenant role's password is
//! derived, and the notifications the catalog sends when tenants change.
//!
//! This crate has no I/O: it is the shared vocabulary of the control plane and the router.

pub mod claims;
pub mod ids;
pub mod notify;
pub mod role_key;

pub use claims::{Claims, Role};
pub use ids::{DbName, RoleName, TenantId, TenantStatus};
pub use role_key::TenantRoleKey;
