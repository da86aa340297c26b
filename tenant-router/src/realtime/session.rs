//! One WebSocket session: replay from the outbox after `since`, then live events from the
//! tenant's hub, with heartbeats, token expiry, slow-client cut-off and shutdown.
//!
//! Generic over any `Sink`/`Stream` of poem WebSocket messages, so the loop can be driven by
//! channels as well as by a real socket.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use poem::web::websocket::Message;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, sleep_until};

use super::hub::{Hub, TenantHub};
use super::messages::{Event, Item, close, system};
use crate::pools::PoolManager;
use crate::routes::TenantRoute;

/// What the session needs to know about its client.
pub struct SessionParams {
    pub route: Arc<TenantRoute>,
    /// The seq live delivery starts after (fixed before the upgrade completed).
    pub live_from: i64,
    /// Resume after this seq (reconnect); `None` = live events only.
    pub since: Option<i64>,
    /// Channels to deliver; `None` = all.
    pub channels: Option<HashSet<String>>,
    /// When the token expires (unix seconds).
    pub token_expires_at: i64,
}

/// Why a session ended (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    Closed(u16),
}

pub struct Session<'a> {
    pub hub: &'a Arc<Hub>,
    pub tenant: Arc<TenantHub>,
    pub pools: &'a PoolManager,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

enum Step {
    Continue,
    End(Ended),
}

impl Session<'_> {
    /// Runs until the client leaves or the session is closed. `live` is the hub's subscription,
    /// taken before `params.live_from` was read, so no event falls between the two.
    pub async fn run<S>(mut self, socket: S, params: SessionParams, mut live: broadcast::Receiver<Item>) -> Ended
    where
        S: Sink<Message> + Stream<Item = Result<Message, std::io::Error>> + Unpin,
    {
        let (mut sink, mut stream) = socket.split();
        let config = self.hub.config.clone();
        let mut sent = match self.start(&mut sink, &params).await {
            Ok(seq) => seq,
            Err(ended) => return ended,
        };
        let mut channels = params.channels.clone();

        let expires_at = Instant::now() + secs_until(params.token_expires_at);
        let warn_at = expires_at.checked_sub(config.token_warning).unwrap_or_else(Instant::now);
        let mut warned = false;
        let mut last_heard = Instant::now();
        let mut next_ping = Instant::now() + config.ping_interval;

        loop {
            let step = tokio::select! {
                item = live.recv() => match item {
                    Ok(Item::Event(event)) => self.deliver(&mut sink, &params, &channels, &mut sent, event).await,
                    Ok(Item::System(text)) => send(&mut sink, Message::Text(text.to_string()), config.send_timeout).await,
                    Ok(Item::Close(code, reason)) => Step::End(close_with(&mut sink, code, reason).await),
                    // Behind the hub's buffer: the next event shows a gap, filled from the
                    // outbox. Only a client that stops taking messages is cut off (see `send`).
                    Err(RecvError::Lagged(_)) => Step::Continue,
                    Err(RecvError::Closed) => Step::End(close_with(&mut sink, close::GOING_AWAY, "going away").await),
                },
                message = stream.next() => match message {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => Step::End(Ended::ClientClosed),
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        apply_client_message(&text, &mut channels);
                        Step::Continue
                    }
                    Some(Ok(_)) => {
                        last_heard = Instant::now();
                        Step::Continue
                    }
                },
                _ = sleep_until(next_ping) => {
                    next_ping = Instant::now() + config.ping_interval;
                    if last_heard.elapsed() > config.idle_timeout {
                        Step::End(close_with(&mut sink, close::IDLE, "idle timeout").await)
                    } else {
                        send(&mut sink, Message::Ping(Vec::new()), config.send_timeout).await
                    }
                },
                _ = sleep_until(warn_at), if !warned => {
                    warned = true;
                    let data = serde_json::json!({ "expires_at": params.token_expires_at });
                    send(&mut sink, Message::Text(system("token_expiring", data).to_string()), config.send_timeout).await
                },
                _ = sleep_until(expires_at) => {
                    Step::End(close_with(&mut sink, close::TOKEN_EXPIRED, "token expired: sign in again").await)
                },
                _ = self.shutdown.changed() => {
                    Step::End(close_with(&mut sink, close::GOING_AWAY, "server shutting down").await)
                },
            };
            if let Step::End(ended) = step {
                return ended;
            }
        }
    }

    /// Replays what the client missed (or tells it to resync); returns the last seq it has.
    async fn start<S>(&mut self, sink: &mut S, params: &SessionParams) -> Result<i64, Ended>
    where
        S: Sink<Message> + Unpin,
    {
        let timeout = self.hub.config.send_timeout;
        let Some(since) = params.since else { return Ok(params.live_from) };
        let mut conn = match self.pools.acquire(&params.route).await {
            Ok(conn) => conn,
            Err(_) => return Err(close_with(sink, close::GOING_AWAY, "database unavailable; retry").await),
        };
        let first = tenant_schema::outbox::first_seq(&mut conn).await.ok().flatten();
        let last = tenant_schema::outbox::last_seq(&mut conn).await.unwrap_or(0);
        let pruned = first.is_some_and(|first| since + 1 < first) || (first.is_none() && since < last);
        if pruned || since > last {
            // Events after `since` are gone (or `since` is from another life): start afresh.
            let data = serde_json::json!({ "reason": "events after since are no longer retained", "seq": last });
            if let Step::End(e) = send(sink, Message::Text(system("resync", data).to_string()), timeout).await {
                return Err(e);
            }
            return Ok(last);
        }
        let mut sent = since;
        loop {
            let batch = tenant_schema::outbox::events_after(&mut conn, sent, 500).await.unwrap_or_default();
            let n = batch.len();
            for e in batch {
                let wanted = params.channels.as_ref().is_none_or(|c| c.contains(&e.channel));
                if wanted
                    && let Step::End(ended) =
                        send(sink, Message::Text(Event::from_outbox(&e).text.to_string()), timeout).await
                {
                    return Err(ended);
                }
                sent = e.seq;
            }
            if n < 500 {
                return Ok(sent);
            }
        }
    }

    /// Sends a live event once: skips what was already sent, fills a gap from the outbox.
    async fn deliver<S>(
        &mut self,
        sink: &mut S,
        params: &SessionParams,
        channels: &Option<HashSet<String>>,
        sent: &mut i64,
        event: Arc<Event>,
    ) -> Step
    where
        S: Sink<Message> + Unpin,
    {
        let timeout = self.hub.config.send_timeout;
        if event.seq <= *sent {
            return Step::Continue;
        }
        // Missed events (the replay ended before the hub caught up, or this socket fell behind
        // the hub's buffer): read them from the outbox, the truth, before this one.
        while event.seq > *sent + 1 {
            let Ok(mut conn) = self.pools.acquire(&params.route).await else { break };
            let limit = (event.seq - *sent - 1).min(500);
            let missing = tenant_schema::outbox::events_after(&mut conn, *sent, limit).await.unwrap_or_default();
            drop(conn);
            if missing.is_empty() {
                break;
            }
            for e in missing.iter().filter(|e| e.seq < event.seq) {
                if channels.as_ref().is_none_or(|c| c.contains(&e.channel))
                    && let Step::End(ended) =
                        send(sink, Message::Text(Event::from_outbox(e).text.to_string()), timeout).await
                {
                    return Step::End(ended);
                }
                *sent = e.seq;
            }
        }
        *sent = event.seq;
        if channels.as_ref().is_some_and(|c| !c.contains(&event.channel)) {
            return Step::Continue;
        }
        send(sink, Message::Text(event.text.to_string()), timeout).await
    }
}

/// `{"type":"subscribe","channels":["employees"]}` changes the channels; anything else is ignored.
fn apply_client_message(text: &str, channels: &mut Option<HashSet<String>>) {
    #[derive(serde::Deserialize)]
    struct ClientMessage {
        r#type: String,
        channels: Option<Vec<String>>,
    }
    if let Ok(m) = serde_json::from_str::<ClientMessage>(text)
        && m.r#type == "subscribe"
    {
        *channels = m.channels.map(|c| c.into_iter().collect());
    }
}

fn secs_until(unix: i64) -> Duration {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Duration::from_secs(u64::try_from(unix - now).unwrap_or(0))
}

/// Sends one message; a client that does not take it within `timeout` is too slow.
async fn send<S: Sink<Message> + Unpin>(sink: &mut S, message: Message, timeout: Duration) -> Step {
    match tokio::time::timeout(timeout, sink.send(message)).await {
        Ok(Ok(())) => Step::Continue,
        Ok(Err(_)) => Step::End(Ended::ClientClosed),
        Err(_) => Step::End(close_with(sink, close::TOO_SLOW, "too slow: reconnect with since").await),
    }
}

async fn close_with<S: Sink<Message> + Unpin>(sink: &mut S, code: u16, reason: &str) -> Ended {
    // Best effort: a client that stopped reading may never get the close frame.
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::close_with(code, reason))).await;
    Ended::Closed(code)
}
