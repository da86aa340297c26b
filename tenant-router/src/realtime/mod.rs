//! Realtime: a WebSocket hub per tenant, fed from the tenant's outbox, woken across replicas
//! through one catalog channel. See `hub` (delivery), `session` (one socket), `messages`, `stats`
//! (counters for `/metrics`).

pub mod hub;
pub mod messages;
pub mod session;
pub mod stats;

pub use hub::Hub;
