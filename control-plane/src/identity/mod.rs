//! Identity: password hashing (bounded), the throttle every password check goes through,
//! signing keys and the JWKS, access tokens.

pub mod gate;
pub mod hashing;
pub mod keys;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod tokens;
