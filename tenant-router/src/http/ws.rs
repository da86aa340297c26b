//! `GET /ws`: the WebSocket of live changes. Authenticated exactly like the REST API, scoped to
//! the token's tenant; `?since=<seq>` resumes, `?channels=a,b` filters (default: all).
//!
//! The token travels as a `Sec-WebSocket-Protocol` entry, `nexacore.bearer.<token>`, next to
//! `nexacore.v1` (the only one echoed back), so it stays out of URLs, which proxies and servers
//! log. A bare JWT as an entry is accepted too. The old `?token=` form still works for clients
//! that predate it, with a deprecation warning in the log (never the token itself).

use std::collections::HashSet;
use std::sync::Arc;

use http_api::{ApiError, ErrorBody};
use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::web::{Data, Query};
use poem::{IntoResponse, Request, handler};
use poem_openapi::payload::Json;

use crate::gates;
use crate::realtime::hub::HubError;
use crate::realtime::messages::close;
use crate::realtime::session::{Ended, Session, SessionParams};
use crate::realtime::stats::RealtimeStats;
use crate::state::AppState;

pub const PROTOCOL: &str = "nexacore.v1";
/// The prefix of the protocol entry that carries the token.
pub const BEARER_PROTOCOL_PREFIX: &str = "nexacore.bearer.";

/// Frame buffers per socket. The library's defaults (128 KiB to read, 128 KiB to write) would
/// make ten thousand idle sockets cost gigabytes; events are a few hundred bytes and clients
/// only send small control messages, so a few KiB suffice and the buffers grow if a frame
/// ever needs more. Client messages over the cap are refused (a socket is not an upload).
fn socket_config() -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4 * 1024;
    config.write_buffer_size = 0;
    config.max_message_size = Some(64 * 1024);
    config.max_frame_size = Some(64 * 1024);
    config
}

#[derive(Debug, serde::Deserialize)]
pub struct WsQuery {
    token: Option<String>,
    since: Option<String>,
    channels: Option<String>,
}

/// The token from the `nexacore.bearer.` protocol entry, a protocol entry that looks like a
/// JWT, or (deprecated) the query.
fn token_of(req: &Request, query: &WsQuery) -> Option<String> {
    let protocols = req.headers().get_all("sec-websocket-protocol");
    let entries = || protocols.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim);
    if let Some(token) = entries().find_map(|p| p.strip_prefix(BEARER_PROTOCOL_PREFIX)).filter(|t| !t.is_empty()) {
        return Some(token.to_owned());
    }
    if let Some(token) = entries().find(|p| p.matches('.').count() == 2 && !p.starts_with("nexacore.")) {
        return Some(token.to_owned());
    }
    let token = query.token.as_deref().filter(|t| !t.is_empty())?;
    tracing::warn!(
        "deprecated: a WebSocket token in the query string (?token=); clients should send it as the \
         Sec-WebSocket-Protocol entry nexacore.bearer.<token>"
    );
    Some(token.to_owned())
}

#[handler]
pub async fn ws(
    req: &Request,
    socket: WebSocket,
    Query(query): Query<WsQuery>,
    Data(state): Data<&Arc<AppState>>,
) -> poem::Result<impl IntoResponse> {
    let token = token_of(req, &query).ok_or_else(|| {
        ApiError::unauthorized("a token is required (Sec-WebSocket-Protocol: nexacore.v1, nexacore.bearer.<token>)")
    })?;
    let session = gates::admit(state, &token).await?;
    let since = match query.since.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .ok_or_else(|| ApiError::field("since", "since: must be a seq (0 or more)"))?,
        ),
    };
    let channels: Option<HashSet<String>> = query
        .channels
        .as_deref()
        .map(|c| c.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
    let (tenant, slot) =
        state.realtime.join(session.route.id, session.route.maintenance.clone()).map_err(|e| match e {
            HubError::TooManyConnections(_) => {
                ApiError::TooManyRequests(Json(ErrorBody::new("too_many_connections", e.to_string())), 10)
            }
            HubError::Unavailable => ApiError::Unavailable(Json(ErrorBody::new("unavailable", e.to_string())), 2),
        })?;
    // Subscribe, then fix where live delivery starts, both before the client is told it is
    // connected: a write the client makes after connecting is then always delivered.
    let live = tenant.subscribe();
    let live_from = state
        .realtime
        .ensure_started(&tenant)
        .await
        .map_err(|e| ApiError::Unavailable(Json(ErrorBody::new("unavailable", e.to_string())), 2))?;
    let params = SessionParams {
        route: session.route.clone(),
        live_from,
        since,
        channels,
        token_expires_at: session.claims.exp,
        user: session.claims.sub,
        epoch: session.claims.ep,
    };
    let state = state.clone();
    Ok(socket.protocols([PROTOCOL]).config(socket_config()).on_upgrade(move |stream| async move {
        // Held for the socket's life: counts against the tenant's connection limit.
        let _slot = slot;
        let session = Session { hub: &state.realtime, pools: &state.pools, shutdown: state.shutdown.clone() };
        RealtimeStats::count(&state.realtime.stats.sessions_opened);
        let ended = session.run(stream, params, live).await;
        if ended == Ended::Closed(close::TOO_SLOW) {
            RealtimeStats::count(&state.realtime.stats.cut_offs);
        }
        tracing::debug!(?ended, "websocket session ended");
    }))
}
