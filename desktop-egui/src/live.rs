//! The live-updates task: holds the WebSocket to the router, reports change events and its
//! own state to the UI, and reconnects with `?since=<last seq>`.
//!
//! The token goes in the `Sec-WebSocket-Protocol` header (`nexacore.v1, nexacore.bearer.<token>`),
//! never in the URL, which proxies and servers log; `wss://` is checked against [`Trust`].
//!
//! Reconnecting: the first retry is immediate (most drops are a router restart or a network
//! blip), then jittered exponential backoff ([`retry_delay`]). While the router answers its
//! `/health` the wait is capped at [`RETRY_CAP`]; while it does not, at [`RETRY_CAP_DOWN`], but
//! the task probes `/health` every [`PROBE_EVERY`] and retries as soon as it answers, so a
//! recovered server is found within about a second. The UI gets the time of the next attempt
//! (a countdown) and can ask for one at once ([`LiveCommand::ReconnectNow`]).
//!
//! Close codes (router): 4001 token expired → wait for a new token, then resume; 4003 company
//! unavailable → stop; 4008 too slow, 1001 going away, any error → back off and resume.
//! On shutdown (the app drops its handle) the task is aborted with the runtime.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::api::wire::{LiveMessage, SystemNotice};
use crate::tls::Trust;

pub use api_types::live::close;

#[derive(Debug, Clone, PartialEq)]
pub enum LiveStatus {
    Connecting,
    Live,
    /// Lost; the next attempt is at `at` (now or past: under way).
    Reconnecting {
        attempt: u32,
        at: Instant,
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
    /// While waiting to reconnect: try now.
    ReconnectNow,
}

/// The longest wait between attempts while the router answers its health check.
pub const RETRY_CAP: Duration = Duration::from_secs(5);
/// The longest wait while it does not (the health probe cuts it short).
pub const RETRY_CAP_DOWN: Duration = Duration::from_secs(30);
/// How often the health probe runs while the router does not answer.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
const RETRY_BASE: Duration = Duration::from_millis(500);

/// The wait before attempt `attempt` (from 1): none for the first, then 0.5 s, 1 s, 2 s …
/// capped at `cap`, each scaled by `jitter` (0..=1) into its upper half, so a fleet of clients
/// spreads out but none waits longer than the cap.
pub fn retry_delay(attempt: u32, cap: Duration, jitter: f64) -> Duration {
    if attempt <= 1 {
        return Duration::ZERO;
    }
    let step = RETRY_BASE.saturating_mul(1u32 << (attempt - 2).min(16)).min(cap);
    step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The attempts since the last good connection.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The next attempt's number (from 1) and the wait before it.
    pub fn next_delay(&mut self, server_answers: bool) -> (u32, Duration) {
        self.attempt += 1;
        let cap = if server_answers { RETRY_CAP } else { RETRY_CAP_DOWN };
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1001) as f64 / 1000.0;
        (self.attempt, retry_delay(self.attempt, cap, jitter))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// The router's `/health`, next to its WebSocket endpoint.
pub fn health_url(ws_url: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(ws_url).ok()?;
    let scheme = if url.scheme() == "wss" { "https" } else { "http" };
    url.set_scheme(scheme).ok()?;
    url.set_path("/health");
    url.set_query(None);
    Some(url)
}

/// Whether the router answers its health check (quickly).
async fn answers(http: &reqwest::Client, health: Option<&url::Url>) -> bool {
    let Some(health) = health else { return false };
    http.get(health.clone()).send().await.is_ok_and(|r| r.status().is_success())
}

/// How a wait for the next attempt ended.
enum Wait {
    Retry,
    NewToken(String),
    /// The app dropped its handle.
    Closed,
}

/// Waits until `at`, a command, or (while the router is down) its health check answering.
async fn wait_to_retry(
    at: Instant,
    server_answers: bool,
    http: &reqwest::Client,
    health: Option<&url::Url>,
    commands: &mut mpsc::UnboundedReceiver<LiveCommand>,
) -> Wait {
    let deadline = tokio::time::sleep_until(at.into());
    tokio::pin!(deadline);
    let mut probe = tokio::time::interval_at((Instant::now() + PROBE_EVERY).into(), PROBE_EVERY);
    loop {
        tokio::select! {
            _ = &mut deadline => return Wait::Retry,
            command = commands.recv() => return match command {
                Some(LiveCommand::NewToken(t)) => Wait::NewToken(t),
                Some(LiveCommand::ReconnectNow) => Wait::Retry,
                None => Wait::Closed,
            },
            _ = probe.tick(), if !server_answers => {
                if answers(http, health).await {
                    return Wait::Retry;
                }
            }
        }
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

/// The protocol the router speaks (and echoes back).
pub const PROTOCOL: &str = "nexacore.v1";
/// The protocol entry that carries the token.
pub const BEARER_PROTOCOL_PREFIX: &str = "nexacore.bearer.";

/// The URL of one connection attempt (no token: see [`connect_request`]).
pub fn connect_url(ws_url: &str, since: Option<i64>) -> Result<url::Url, url::ParseError> {
    let mut url = url::Url::parse(ws_url)?;
    if let Some(since) = since {
        url.query_pairs_mut().append_pair("since", &since.to_string());
    }
    Ok(url)
}

/// One connection attempt's request: the URL and the token as a protocol entry.
pub fn connect_request(
    ws_url: &str,
    token: &str,
    since: Option<i64>,
) -> Result<tungstenite::handshake::client::Request, String> {
    use tungstenite::client::IntoClientRequest;
    let url = connect_url(ws_url, since).map_err(|e| e.to_string())?;
    let mut request = url.as_str().into_client_request().map_err(|e| e.to_string())?;
    let protocols = format!("{PROTOCOL}, {BEARER_PROTOCOL_PREFIX}{token}");
    let value = tungstenite::http::HeaderValue::from_str(&protocols)
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    request.headers_mut().insert(tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL, value);
    Ok(request)
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
pub async fn run<F>(
    ws_url: String,
    token: String,
    trust: Trust,
    sink: F,
    mut commands: mpsc::UnboundedReceiver<LiveCommand>,
) where
    F: Fn(LiveUpdate) -> bool,
{
    let mut token = Credentials { token, number: 0 };
    let mut cursor = Cursor::default();
    let mut backoff = Backoff::default();
    let http = trust.http(reqwest::Client::builder().timeout(PROBE_EVERY)).build().unwrap_or_default();
    let health = health_url(&ws_url);
    let mut first = true;
    loop {
        if !sink(LiveUpdate::Status(LiveStatus::Connecting)) {
            return;
        }
        let next = match connect_request(&ws_url, &token.token, cursor.last_seq) {
            Err(e) => {
                sink(LiveUpdate::Status(LiveStatus::Stopped(format!("bad live URL: {e}"))));
                return;
            }
            Ok(request) => {
                match tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(trust.websocket()))
                    .await
                {
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
                }
            }
        };
        match next {
            Next::Reconnect => {
                // The first retry goes at once, without asking.
                let server_answers = backoff.attempt == 0 || answers(&http, health.as_ref()).await;
                let (attempt, delay) = backoff.next_delay(server_answers);
                let at = Instant::now() + delay;
                if !sink(LiveUpdate::Status(LiveStatus::Reconnecting { attempt, at })) {
                    return;
                }
                match wait_to_retry(at, server_answers, &http, health.as_ref(), &mut commands).await {
                    Wait::Retry => {}
                    Wait::NewToken(t) => token.renew(t),
                    Wait::Closed => return,
                }
            }
            Next::WaitForToken => {
                sink(LiveUpdate::Status(LiveStatus::NeedsSignIn { token: token.number }));
                loop {
                    match commands.recv().await {
                        Some(LiveCommand::NewToken(t)) => break token.renew(t),
                        // Only a new token can help here.
                        Some(LiveCommand::ReconnectNow) => {}
                        None => return,
                    }
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
                Some(LiveCommand::ReconnectNow) => {}
                None => return Next::Stop,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `retry_delay(attempt, cap, jitter)` in milliseconds.
    fn check(attempt: u32, cap: Duration, jitter: f64, expected_ms: u128) {
        let delay = retry_delay(attempt, cap, jitter).as_millis();
        assert_eq!(delay, expected_ms, "attempt {attempt}, cap {cap:?}, jitter {jitter}");
    }

    #[test]
    fn the_first_retry_is_immediate_then_the_wait_doubles_jittered_up_to_the_cap() {
        for jitter in [0.0, 0.5, 1.0] {
            check(1, RETRY_CAP, jitter, 0);
        }
        check(2, RETRY_CAP, 1.0, 500);
        check(2, RETRY_CAP, 0.0, 250);
        check(3, RETRY_CAP, 1.0, 1000);
        check(4, RETRY_CAP, 1.0, 2000);
        check(5, RETRY_CAP, 1.0, 4000);
        check(6, RETRY_CAP, 1.0, 5000);
        check(6, RETRY_CAP, 0.0, 2500);
        check(60, RETRY_CAP, 1.0, 5000);
        check(60, RETRY_CAP_DOWN, 1.0, 30_000);
        check(3, RETRY_CAP, 7.0, 1000); // jitter out of range is clamped
    }

    #[test]
    fn backoff_is_capped_at_five_seconds_while_the_server_answers_jittered_and_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(true), (1, Duration::ZERO));
        let delays: Vec<Duration> = (0..40).map(|_| b.next_delay(true).1).collect();
        assert!(delays.iter().all(|d| *d <= RETRY_CAP), "{delays:?}");
        let late = &delays[10..];
        assert!(late.iter().all(|d| *d >= RETRY_CAP / 2), "{delays:?}");
        assert!(late.windows(2).any(|w| w[0] != w[1]), "jittered: {delays:?}");
        assert!(b.next_delay(false).1 <= RETRY_CAP_DOWN);
        b.reset();
        assert_eq!(b.next_delay(false), (1, Duration::ZERO));
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
    fn the_token_travels_in_the_protocol_header_never_in_the_url() {
        let request = connect_request("ws://127.0.0.1:8081/ws", "a.b.c", Some(5)).unwrap();
        assert_eq!(request.uri().to_string(), "ws://127.0.0.1:8081/ws?since=5");
        let protocols = request.headers().get("sec-websocket-protocol").unwrap().to_str().unwrap();
        assert_eq!(protocols, "nexacore.v1, nexacore.bearer.a.b.c");
        assert!(connect_request("ws://127.0.0.1:8081/ws", "bad\ntoken", None).is_err());
    }

    #[test]
    fn close_codes_decide_what_comes_next() {
        assert_eq!(after_close(close::TOKEN_EXPIRED), Next::WaitForToken);
        assert_eq!(after_close(close::TENANT_UNAVAILABLE), Next::Stop);
        assert_eq!(after_close(close::TOO_SLOW), Next::Reconnect);
        assert_eq!(after_close(close::GOING_AWAY), Next::Reconnect);
        assert_eq!(health_url("wss://r.example.com/ws?since=3").unwrap().as_str(), "https://r.example.com/health");
        assert_eq!(health_url("ws://127.0.0.1:8081/ws").unwrap().as_str(), "http://127.0.0.1:8081/health");
    }
}
