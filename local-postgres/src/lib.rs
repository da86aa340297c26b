//! A real PostgreSQL server with zero configuration, for the dev stack and for every
//! integration test: throwaway clusters for tests, a persistent one for `ops up`.
//!
//! The server binaries come from the machine (see [`find_binaries`]); clusters are created with
//! `initdb` and run with `pg_ctl` in a session of their own: they listen on 127.0.0.1 only,
//! keep their Unix socket in their own directory, and survive a Ctrl-C aimed at their owner,
//! which stops them when it is ready to. As root, the tools run as the `postgres` user.
//!
//! Entry points: [`shared_test_server`] and [`create_fresh_database`] for tests,
//! [`LocalCluster::start_persistent`] for the dev stack.
//!
//! The API is synchronous (std::process) so it works from a `OnceLock` and from
//! `spawn_blocking`; only the database helpers are async.

mod binaries;
mod cluster;
mod error;
mod port;
mod process;
mod scratch;
mod server;
mod watchdog;

pub use binaries::{DumpTools, PgBinaries, find_binaries, find_dump_tools};
pub use cluster::{LocalCluster, SslFiles};
pub use error::ClusterError;
pub use server::{PgServer, create_fresh_database, second_test_server, shared_test_server};
