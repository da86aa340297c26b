//! Integration tests of local-postgres: real clusters made with initdb and pg_ctl, checked over
//! real connections. One binary, one module per feature.

mod binaries;
mod child;
mod persistent;
mod servers;
mod support;
mod throwaway;
mod watchdog;
