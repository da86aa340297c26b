//! The messages a WebSocket client receives (`api_types::live`): change events and system
//! messages on channel `system`. Each is serialised once, into an `Arc<str>` that every
//! recipient shares.

use std::sync::Arc;

use api_types::live::{ChangeData, LiveMessage, SystemNotice, channel};
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
        let ts = e.created_at.format(&Rfc3339).unwrap_or_default();
        let (channel, action, seq) = (e.channel.clone(), e.action.clone(), Some(e.seq));
        // Read back into the record's type, so that the event's `data` is written exactly as a
        // GET of the row is (the outbox keeps it as jsonb, which reorders keys).
        let text = match ChangeData::read_exact(&e.channel, &e.action, &e.payload) {
            Some(data) => serde_json::to_string(&LiveMessage { channel, action, data, seq, ts }),
            None => serde_json::to_string(&LiveMessage { channel, action, data: &e.payload, seq, ts }),
        }
        .unwrap_or_default();
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
pub fn system(notice: SystemNotice) -> Arc<str> {
    let ts = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
    let (action, data) = (notice.action().to_owned(), notice.data());
    let message = LiveMessage { channel: channel::SYSTEM.to_owned(), action, data, seq: None, ts };
    serde_json::to_string(&message).unwrap_or_default().into()
}

pub use api_types::live::close;
