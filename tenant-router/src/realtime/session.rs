//! One WebSocket session: replay from the outbox after `since`, then live events from the
//! tenant's hub, with heartbeats, token expiry, slow-client cut-off and shutdown.
//!
//! Generic over any `Sink`/`Stream` of poem WebSocket messages, so the loop can be driven by
//! channels as well as by a real socket.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use api_types::live::{Resync, SystemNotice, TokenExpiring};
use futures::{Sink, SinkExt, Stream, StreamExt};
use poem::web::websocket::Message;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, sleep_until};

use super::hub::Hub;
use super::messages::{Event, Item, close, system};
use super::stats::RealtimeStats;
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
    /// The token's user and membership epoch (a change of the membership closes the session).
    pub user: uuid::Uuid,
    pub epoch: i64,
}

/// Why a session ended (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    ClientClosed,
    Closed(u16),
}

pub struct Session<'a> {
    pub hub: &'a Arc<Hub>,
    pub pools: &'a PoolManager,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Events read from the outbox at a time during a replay.
const REPLAY_BATCH: i64 = 200;

/// The close reason when the outbox cannot be read: the client reconnects with `since`.
const UNREADABLE: &str = "cannot read missed events now; reconnect with since";

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
                    Ok(Item::MembershipChanged { user, epoch }) if user == params.user && epoch != Some(params.epoch) => {
                        Step::End(close_with(&mut sink, close::TOKEN_EXPIRED, "your access changed: sign in again").await)
                    }
                    Ok(Item::MembershipChanged { .. }) => Step::Continue,
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
                    let notice = SystemNotice::TokenExpiring(TokenExpiring { expires_at: params.token_expires_at });
                    send(&mut sink, Message::Text(system(notice).to_string()), config.send_timeout).await
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
    ///
    /// In batches, each read on a pooled connection that goes back to the pool before the
    /// batch is sent: a client that reads slowly holds its socket, never a connection of the
    /// server's budget.
    async fn start<S>(&mut self, sink: &mut S, params: &SessionParams) -> Result<i64, Ended>
    where
        S: Sink<Message> + Unpin,
    {
        let timeout = self.hub.config.send_timeout;
        let Some(since) = params.since else { return Ok(params.live_from) };
        let bounds = async {
            let mut conn = self.pools.acquire(&params.route).await.ok()?;
            let first = tenant_schema::outbox::first_seq(&mut conn).await.ok()?;
            let last = tenant_schema::outbox::last_seq(&mut conn).await.ok()?;
            Some((first, last))
        };
        let Some((first, last)) = bounds.await else {
            return Err(close_with(sink, close::GOING_AWAY, UNREADABLE).await);
        };
        let pruned = first.is_some_and(|first| since + 1 < first) || (first.is_none() && since < last);
        if pruned || since > last {
            // Events after `since` are gone (or `since` is from another life): start afresh.
            let notice =
                SystemNotice::Resync(Resync { reason: "events after since are no longer retained".into(), seq: last });
            RealtimeStats::count(&self.hub.stats.resyncs);
            if let Step::End(e) = send(sink, Message::Text(system(notice).to_string()), timeout).await {
                return Err(e);
            }
            return Ok(last);
        }
        let mut sent = since;
        loop {
            let Some(batch) = self.events_after(params, sent, REPLAY_BATCH).await else {
                // Never pretend the replay is complete: the client resumes from what it got.
                return Err(close_with(sink, close::GOING_AWAY, UNREADABLE).await);
            };
            let n = batch.len() as i64;
            for e in batch {
                let wanted = params.channels.as_ref().is_none_or(|c| c.contains(&e.channel));
                if wanted
                    && let Step::End(ended) =
                        send(sink, Message::Text(Event::from_outbox(&e).text.to_string()), timeout).await
                {
                    return Err(ended);
                }
                if wanted {
                    RealtimeStats::count(&self.hub.stats.replayed);
                }
                sent = e.seq;
            }
            if n < REPLAY_BATCH {
                return Ok(sent);
            }
        }
    }

    /// The tenant's outbox events after `after`; `None` if they cannot be read now.
    async fn events_after(
        &self,
        params: &SessionParams,
        after: i64,
        limit: i64,
    ) -> Option<Vec<tenant_schema::outbox::OutboxEvent>> {
        let mut conn = self.pools.acquire(&params.route).await.ok()?;
        tenant_schema::outbox::events_after(&mut conn, after, limit).await.ok()
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
        // the hub's buffer): read them from the outbox, the truth, before this one. If they
        // cannot be read now, the socket is closed rather than the events skipped: the client
        // reconnects with `since` and gets them then.
        while event.seq > *sent + 1 {
            let limit = (event.seq - *sent - 1).min(500);
            let Some(missing) = self.events_after(params, *sent, limit).await else {
                return Step::End(close_with(sink, close::GOING_AWAY, UNREADABLE).await);
            };
            if missing.first().is_none_or(|e| e.seq > *sent + 1) {
                // Committed before this event yet gone (all or the oldest of them): pruned by
                // retention. The client must reload, as after a `since` older than the window.
                let reason = "missed events are no longer retained".into();
                let notice = SystemNotice::Resync(Resync { reason, seq: event.seq - 1 });
                RealtimeStats::count(&self.hub.stats.resyncs);
                if let Step::End(ended) = send(sink, Message::Text(system(notice).to_string()), timeout).await {
                    return Step::End(ended);
                }
                break;
            }
            for e in missing.iter().filter(|e| e.seq < event.seq) {
                if channels.as_ref().is_none_or(|c| c.contains(&e.channel)) {
                    if let Step::End(ended) =
                        send(sink, Message::Text(Event::from_outbox(e).text.to_string()), timeout).await
                    {
                        return Step::End(ended);
                    }
                    RealtimeStats::count(&self.hub.stats.replayed);
                }
                *sent = e.seq;
            }
        }
        *sent = event.seq;
        if channels.as_ref().is_some_and(|c| !c.contains(&event.channel)) {
            return Step::Continue;
        }
        let step = send(sink, Message::Text(event.text.to_string()), timeout).await;
        if matches!(step, Step::Continue) {
            RealtimeStats::count(&self.hub.stats.deliveries);
        }
        step
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::channel::mpsc;
    use tenancy::{DbName, RoleName, TenantStatus};
    use uuid::Uuid;

    use super::*;
    use crate::realtime::hub::tests::offline_hub;

    /// The server's end of a socket, as channels: what the client sends, what the server sent.
    struct ChannelSocket {
        incoming: mpsc::UnboundedReceiver<Result<Message, std::io::Error>>,
        outgoing: mpsc::UnboundedSender<Message>,
    }

    impl Stream for ChannelSocket {
        type Item = Result<Message, std::io::Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.incoming.poll_next_unpin(cx)
        }
    }

    impl Sink<Message> for ChannelSocket {
        type Error = mpsc::SendError;

        fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.outgoing.poll_ready(cx)
        }

        fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            self.outgoing.start_send(item)
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.outgoing.close_channel();
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_gap_that_cannot_be_read_closes_the_socket_for_a_resume_instead_of_skipping_events() {
        let (hub, pools) = offline_hub();
        let hub = Arc::new(hub);
        let id = tenancy::TenantId(Uuid::new_v4());
        let (tenant, _slot) = hub.join(id, None).expect("under the limit");
        let live = tenant.subscribe();
        // The tenant's database is a closed port: reading the outbox fails.
        let route = Arc::new(TenantRoute {
            id,
            status: TenantStatus::Active,
            server_id: Uuid::new_v4(),
            host: "127.0.0.1".into(),
            port: 1,
            database: DbName::parse("t_0123456789abcdef0123456789abcdef").expect("a database name"),
            role: RoleName::parse("t_0123456789abcdef0123456789abcdef").expect("a role name"),
            schema_version: None,
            maintenance: None,
            migrating: false,
        });
        let params = SessionParams {
            route,
            live_from: 5,
            since: None,
            channels: None,
            token_expires_at: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
            user: uuid::Uuid::nil(),
            epoch: 0,
        };
        let (_client_tx, incoming) = mpsc::unbounded();
        let (outgoing, mut sent_to_client) = mpsc::unbounded();
        let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
        let session = {
            let (hub, pools) = (hub.clone(), pools.clone());
            tokio::spawn(async move {
                let session = Session { hub: &hub, pools: &pools, shutdown };
                session.run(ChannelSocket { incoming, outgoing }, params, live).await
            })
        };

        // Seq 6 never reached this socket; 7 arrives.
        tenant.send(Item::Event(Arc::new(Event { seq: 7, channel: "employees".into(), text: "{\"seq\":7}".into() })));

        let ended = tokio::time::timeout(Duration::from_secs(30), session).await.expect("the session ends").unwrap();
        assert_eq!(ended, Ended::Closed(close::GOING_AWAY));
        let first = sent_to_client.next().await.expect("a message before the end");
        match first {
            Message::Close(Some((code, reason))) => {
                assert_eq!(u16::from(code), close::GOING_AWAY);
                assert!(reason.contains("since"), "{reason}");
            }
            other => panic!("expected a close frame, not {other:?} (seq 7 must not be sent without seq 6)"),
        }
    }
}
