//! Integration tests of the tenant router: a real control plane and a real router on a real
//! Postgres, talking HTTP. One test binary; one module per feature.

mod budget;
mod catalog;
mod data;
mod gates;
mod helpers;
mod isolation;
mod openapi;
mod realtime;
mod revocation;
mod tokens;
