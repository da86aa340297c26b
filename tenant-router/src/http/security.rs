//! The bearer token of a tenant's user: verified, then admitted through the gates.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};

use crate::gates::{self, TenantSession};
use crate::state::AppState;

/// An access token issued by the control plane (EdDSA JWT).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_token")]
pub struct TenantAuth(pub TenantSession);

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<TenantSession> {
    let state = req.data::<Arc<AppState>>().expect("state is attached to every route");
    gates::admit(state, &bearer.token).await.map_err(Into::into)
}
