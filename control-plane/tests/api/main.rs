//! Integration tests of the control plane, against real PostgreSQL servers and real HTTP.
//! One test binary; one module per feature; `helpers` starts the app on a fresh catalog.

mod abuse;
mod auth;
mod backup_schedule;
mod binary;
mod crash;
mod helpers;
mod isolation;
mod mail_crash;
mod migrations;
mod move_crash;
mod openapi;
mod operator;
mod placement;
mod reconcile;
mod releases;
mod role_auth;
mod signup;
mod spares;
