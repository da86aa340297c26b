//! Finding a free TCP port on 127.0.0.1 for a server to listen on.

use std::net::{Ipv4Addr, TcpListener};

use crate::ClusterError;

/// A port that was free a moment ago: the kernel picks it, we release it for the server.
/// Someone else may take it in between, which is why starts retry.
pub(crate) fn free() -> Result<u16, ClusterError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| ClusterError::io("bind a free port on", "127.0.0.1", e))
}

/// Whether the server could bind `port` now. std sets SO_REUSEADDR like PostgreSQL does, so
/// connections of a just-stopped server lingering in TIME_WAIT do not count as "taken".
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}
