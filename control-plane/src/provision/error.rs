//! Why provisioning failed (a signup, a spare database, an undo). Kept apart from the
//! provisioner because the spare pool and the reconciler return it too and the provisioner
//! holds a spare pool: here, neither depends back on the other.

use crate::fleet::FleetError;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("the slug {0} is already taken")]
    SlugTaken(String),
    #[error("this e-mail address already has an account; sign up with its current password")]
    EmailTaken,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    #[error("a request with this Idempotency-Key is still being processed")]
    InProgress,
    #[error("no database server has room for another tenant")]
    NoCapacity,
    #[error("too many failed attempts; try again later")]
    Throttled(std::time::Duration),
    #[error("the service is busy checking passwords; try again in a moment")]
    Busy(std::time::Duration),
    #[error("database server: {0}")]
    Fleet(#[from] FleetError),
    #[error("catalog: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("tenant schema: {0}")]
    Schema(#[from] tenant_schema::SchemaError),
}
