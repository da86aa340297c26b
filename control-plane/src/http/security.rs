//! The operator bearer token, checked in constant time against its digest.

use std::sync::Arc;

use poem::Request;
use poem_openapi::{SecurityScheme, auth::Bearer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::audit::Actor;
use crate::catalog::users;
use crate::people::Caller;
use crate::state::AppState;
use http_api::ApiError;

/// The operator's bearer token (`NEXACORE_OPERATOR_TOKEN`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_operator")]
pub struct OperatorAuth(pub Actor);

async fn check_operator(req: &Request, bearer: Bearer) -> poem::Result<Actor> {
    let state = req.data::<Arc<AppState>>().expect("state is attached to every route");
    if is_operator_token(state, &bearer.token) {
        Ok(Actor::operator(client_address(req).as_deref()))
    } else {
        Err(ApiError::unauthorized("the operator token is missing or wrong").into())
    }
}

pub fn is_operator_token(state: &AppState, token: &str) -> bool {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    bool::from(digest.ct_eq(&state.operator_token_digest))
}

/// A signed-in user's access token: verified as routers verify it, and its membership's epoch
/// read fresh from the catalog, so a removal, role or password change takes effect at once.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_user")]
pub struct UserAuth(pub Caller);

async fn check_user(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req.data::<Arc<AppState>>().expect("state is attached to every route");
    let refused =
        || ApiError::unauthorized("the access token is missing, invalid, expired or withdrawn; sign in again");
    let claims = state.issuer.verify(&state.keys, &bearer.token).await.map_err(|_| refused())?;
    http_api::record_tenant(claims.tid);
    // A suspended company's members keep no access to its people either.
    let epoch =
        users::active_token_epoch(&state.catalog, claims.sub, claims.tid.0).await.map_err(ApiError::internal)?;
    if epoch != Some(claims.ep) {
        return Err(refused().into());
    }
    Ok(Caller::user(claims.sub, claims.tid.0, claims.role))
}

/// True when the request carries the operator token as a bearer token.
pub fn has_operator_token(req: &Request, state: &AppState) -> bool {
    req.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .is_some_and(|t| is_operator_token(state, t.trim()))
}

/// The client's IP address (behind trusted proxies, from `X-Forwarded-For`), for throttling
/// and the audit log.
pub fn client_address(req: &Request) -> Option<String> {
    http_api::client_ip(req)
}
