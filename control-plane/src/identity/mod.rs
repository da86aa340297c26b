//! Identity: password hashing, signing keys and the JWKS, access tokens, login throttling.

pub mod keys;
pub mod password;
pub mod throttle;
pub mod tokens;
