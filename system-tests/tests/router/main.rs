//! The tenant router against a real control plane on a real Postgres, talking HTTP: the
//! platform as `stack` starts it. One test binary; one module per feature.

mod budget;
mod catalog;
mod data;
mod gates;
mod helpers;
mod isolation;
mod metrics;
mod migrating;
mod moves;
mod openapi;
mod people;
mod readiness;
mod realtime;
mod revocation;
mod sessions;
mod tls;
mod tokens;
mod ws_auth;
