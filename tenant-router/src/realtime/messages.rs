//! The messages a WebSocket client receives (DESIGN.md): change events
//! `{"channel","action","data","seq","ts"}` and system messages on channel `system`. Each is
//! serialised once, into an `Arc<str>` that every recipient shares.

use std::sync::Arc;

use serde_json::{Value, json};
use tenant_schema::outbox::OutboxEvent;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A change event, ready to send.
#[derive(Debug)]
pub struct Event {
    pub seq: i64,
    pub channel: String,
    pub text: Arc<str>,
}

impl Event {
    pub fn from_outbox(e: &OutboxEvent) -> Self {
        let text = json!({
            "channel": e.channel,
            "action": e.action,
            "data": e.payload,
            "seq": e.seq,
            "ts": e.created_at.format(&Rfc3339).unwrap_or_default(),
        })
        .to_string();
        Self { seq: e.seq, channel: e.channel.clone(), text: text.into() }
    }
}

/// What a tenant's hub broadcasts to its sockets.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Event>),
    System(Arc<str>),
    /// Close every socket of the tenant with this code (suspended, deleted).
    Close(u16, &'static str),
    /// One user's membership changed: its sockets whose token has another epoch close
    /// (`epoch: None`: the membership was removed).
    MembershipChanged {
        user: uuid::Uuid,
        epoch: Option<i64>,
    },
}

/// A message on channel `system`.
pub fn system(action: &str, data: Value) -> Arc<str> {
    let ts = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    json!({ "channel": "system", "action": action, "data": data, "ts": ts }).to_string().into()
}

/// Close codes (4000–4999 are the application's own).
pub mod close {
    /// The server is going away (shutdown): reconnect, elsewhere if need be.
    pub const GOING_AWAY: u16 = 1001;
    /// Nothing heard from the client (not even a pong) for the idle timeout.
    pub const IDLE: u16 = 4000;
    /// The access token expired: sign in again, then reconnect with `since`.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The tenant was suspended or deleted.
    pub const TENANT_UNAVAILABLE: u16 = 4003;
    /// The client did not keep up with its events: reconnect with `since`.
    pub const TOO_SLOW: u16 = 4008;
}
