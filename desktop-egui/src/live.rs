//! The live-updates task: holds the WebSocket to the router, reports change events and its
//! own state to the UI, and reconnects with capped exponential backoff and `?since=<last seq>`.
//!
//! Close codes (router): 4001 token expired → wait for a new token, then resume; 4003 company
//! unavailable → stop; 4008 too slow, 1001 going away, any error → back off and resume.
//! On shutdown (the app drops its handle) the task is aborted with the runtime.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::api::wire::{LiveMessage, SystemNotice};

pub use api_types::live::close;

#[derive(Debug, Clone, PartialEq)]
pub enum LiveStatus {
    Connecting,
    Live,
    /// Lost; the next attempt is in `retry_in`.
    Reconnecting {
        attempt: u32,
        retry_in: Duration,
    },
    /// The token expired or was withdrawn (4001): the task waits for [`LiveCommand::NewToken`].
    /// `token` counts the tokens the task was given (0: the first), so the app can tell a
    /// refusal of a token it has already replaced from one of its current token.
    NeedsSignIn {
        token: u32,
    },
    /// Stopped for good (company suspended or deleted, app too old).
    Stopped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LiveUpdate {
    Status(LiveStatus),
    /// A change or system message (`maintenance`, `token_expiring`).
    Message(LiveMessage),
    /// The client's picture may have gaps: reload everything.
    Resync,
    /// The server refused the connection with 426.
    UpgradeRequired,
}

#[derive(Debug)]
pub enum LiveCommand {
    /// A fresh token (after signing in again): reconnect with it, resuming from the last seq.
    NewToken(String),
}

/// Capped exponential backoff: 0.5 s, 1 s, 2 s … up to `max`, with a little jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { attempt: 0, base, max }
    }

    /// The delay before the next attempt, and the attempt's number (from 1).
    pub fn next_delay(&mut self) -> (u32, Duration) {
        self.attempt += 1;
        let exp = self.base.saturating_mul(1u32 << (self.attempt - 1).min(16));
        let capped = exp.min(self.max);
        // Up to 10% jitter so a fleet of clients does not reconnect in lockstep.
        let jitter_ms = (uuid::Uuid::new_v4().as_u128() % 1000) as u64 * capped.as_millis() as u64 / 10_000;
        (self.attempt, capped + Duration::from_millis(jitter_ms))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// What the task knows between connections.
#[derive(Debug, Default)]
pub struct Cursor {
    /// The last seq received; `None` until the first change arrives.
    pub last_seq: Option<i64>,
}

impl Cursor {
    /// Interprets one text frame: updates the seq, and says what to tell the UI.
    pub fn on_text(&mut self, text: &str) -> Option<LiveUpdate> {
        let Ok(message) = serde_json::from_str::<LiveMessage>(text) else {
            tracing::debug!("ignoring a malformed live message");
            return None;
        };
        if let Some(seq) = message.seq {
            self.last_seq = Some(self.last_seq.map_or(seq, |last| last.max(seq)));
        }
        if let Some(SystemNotice::Resync(resync)) = message.system() {
            self.last_seq = Some(resync.seq);
            return Some(LiveUpdate::Resync);
        }
        Some(LiveUpdate::Message(message))
    }
}

/// What to do after a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Reconnect,
    WaitForToken,
    Stop,
}

/// The decision for a close code.
pub fn after_close(code: u16) -> Next {
    match code {
        close::TOKEN_EXPIRED => Next::WaitForToken,
        close::TENANT_UNAVAILABLE => Next::Stop,
        _ => Next::Reconnect,
    }
}

/// The URL of one connection attempt.
pub fn connect_url(ws_url: &str, token: &str, since: Option<i64>) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(ws_url)?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("token", token);
        if let Some(since) = since {
            query.append_pair("since", &since.to_string());
        }
    }
    Ok(url)
}

/// The token the task connects with, and how many came before it.
struct Credentials {
    token: String,
    number: u32,
}

impl Credentials {
    fn renew(&mut self, token: String) {
        self.token = token;
        self.number += 1;
    }
}

/// Runs until stopped: connect, read, reconnect. Reports through `sink` (false: the UI is gone).
pub async fn run<F>(ws_url: String, token: String, sink: F, mut commands: mpsc::UnboundedReceiver<LiveCommand>)
where
    F: Fn(LiveUpdate) -> bool,
{
    let mut token = Credentials { token, number: 0 };
    let mut cursor = Cursor::default();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut first = true;
    loop {
        if !sink(LiveUpdate::Status(LiveStatus::Connecting)) {
            return;
        }
        let next = match connect_url(&ws_url, &token.token, cursor.last_seq) {
            Err(e) => {
                sink(LiveUpdate::Status(LiveStatus::Stopped(format!("bad live URL: {e}"))));
                return;
            }
            Ok(url) => match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((socket, _)) => {
                    // A reconnect without a known seq cannot resume: the app reloads.
                    if !first && cursor.last_seq.is_none() {
                        sink(LiveUpdate::Resync);
                    }
                    first = false;
                    backoff.reset();
                    sink(LiveUpdate::Status(LiveStatus::Live));
                    session(socket, &mut cursor, &sink, &mut commands, &mut token).await
                }
                Err(tungstenite::Error::Http(response)) => match response.status().as_u16() {
                    401 => Next::WaitForToken,
                    426 => {
                        sink(LiveUpdate::UpgradeRequired);
                        Next::Stop
                    }
                    403 | 404 => Next::Stop,
                    _ => Next::Reconnect,
                },
                Err(_) => Next::Reconnect,
            },
        };
        match next {
            Next::Reconnect => {
                let (attempt, delay) = backoff.next_delay();
                sink(LiveUpdate::Status(LiveStatus::Reconnecting { attempt, retry_in: delay }));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    command = commands.recv() => match command {
                        Some(LiveCommand::NewToken(t)) => token.renew(t),
                        None => return,
                    },
                }
            }
            Next::WaitForToken => {
                sink(LiveUpdate::Status(LiveStatus::NeedsSignIn { token: token.number }));
                match commands.recv().await {
                    Some(LiveCommand::NewToken(t)) => token.renew(t),
                    None => return,
                }
            }
            Next::Stop => {
                sink(LiveUpdate::Status(LiveStatus::Stopped("this company is not available".into())));
                return;
            }
        }
    }
}

/// One connection: forwards messages until it closes or a new token arrives.
async fn session<S, F>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    cursor: &mut Cursor,
    sink: &F,
    commands: &mut mpsc::UnboundedReceiver<LiveCommand>,
    token: &mut Credentials,
) -> Next
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    F: Fn(LiveUpdate) -> bool,
{
    let (mut write, mut read) = socket.split();
    loop {
        tokio::select! {
            frame = read.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Some(update) = cursor.on_text(text.as_str())
                        && !sink(update)
                    {
                        return Next::Stop;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return after_close(frame.map_or(close::GOING_AWAY, |f| u16::from(f.code)));
                }
                Some(Ok(Message::Ping(payload))) => {
                    let _ = write.send(Message::Pong(payload)).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Next::Reconnect,
            },
            command = commands.recv() => match command {
                Some(LiveCommand::NewToken(t)) => {
                    // Reconnect at once with the new token, resuming where this one stopped.
                    token.renew(t);
                    let _ = write.send(Message::Close(None)).await;
                    return Next::Reconnect;
                }
                None => return Next::Stop,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay().1.as_millis() as u64).collect();
        for (delay, floor) in delays.iter().zip([500, 1000, 2000, 4000, 4000, 4000]) {
            assert!(*delay >= floor && *delay <= floor + floor / 10, "{delays:?}");
        }
        b.reset();
        assert_eq!(b.next_delay().0, 1);
    }

    #[test]
    fn cursor_tracks_the_last_seq_and_spots_resync() {
        let mut c = Cursor::default();
        let e = r#"{"channel":"employees","action":"created","data":{"id":"00000000-0000-0000-0000-000000000001"},"seq":7,"ts":"x"}"#;
        assert!(matches!(c.on_text(e), Some(LiveUpdate::Message(_))));
        assert_eq!(c.last_seq, Some(7));
        assert_eq!(c.on_text("not json"), None);
        let resync = r#"{"channel":"system","action":"resync","data":{"seq":42}}"#;
        assert_eq!(c.on_text(resync), Some(LiveUpdate::Resync));
        assert_eq!(c.last_seq, Some(42));
    }

    #[test]
    fn close_codes_decide_what_comes_next() {
        assert_eq!(after_close(close::TOKEN_EXPIRED), Next::WaitForToken);
        assert_eq!(after_close(close::TENANT_UNAVAILABLE), Next::Stop);
        assert_eq!(after_close(close::TOO_SLOW), Next::Reconnect);
        assert_eq!(after_close(close::GOING_AWAY), Next::Reconnect);
        let url = connect_url("ws://127.0.0.1:8081/ws", "a.b.c", Some(5)).unwrap();
        assert_eq!(url.as_str(), "ws://127.0.0.1:8081/ws?token=a.b.c&since=5");
    }
}
