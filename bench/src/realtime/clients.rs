//! The realtime benchmark's clients: WebSocket sockets in this process, bound to several
//! loopback source addresses, each read by a task that records every event's seq and the
//! instant it was read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use indicatif::ProgressBar;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::replicas::{Router, Tenant};
use super::{CLIENT_READ_BUFFER, CONNECT_CONCURRENCY, SOURCE_ADDRESSES};

type Ws = WebSocketStream<TcpStream>;

#[derive(Clone, Copy)]
pub struct ClientSpec {
    pub tenant: usize,
    /// 0 = A (the writing replica), 1 = B.
    pub replica: usize,
}

/// One event as a client read it.
pub struct Got {
    pub seq: i64,
    pub at: Instant,
    /// The event's `ts` in unix microseconds, when asked for.
    pub ts_us: Option<i64>,
}

#[derive(Default)]
pub struct ClientLog {
    pub events: Vec<Got>,
    /// System messages and anything else that is not an event.
    pub other: u32,
    /// How the socket ended, if it ended before the phase stopped it.
    pub ended: Option<String>,
}

/// The open clients of a phase: one reading task per socket.
pub struct Clients {
    open: Vec<(ClientSpec, JoinHandle<ClientLog>)>,
    stop: watch::Sender<bool>,
    /// Events read by all clients so far.
    delivered: Arc<AtomicU64>,
    pub failed: usize,
    pub first_error: Option<String>,
    keep_ts: bool,
}

impl Clients {
    pub fn new(keep_ts: bool) -> Self {
        Self {
            open: Vec::new(),
            stop: watch::channel(false).0,
            delivered: Arc::new(AtomicU64::new(0)),
            failed: 0,
            first_error: None,
            keep_ts,
        }
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Connects one socket per spec (`CONNECT_CONCURRENCY` handshakes at a time); failures are
    /// counted, not fatal. Returns how many of `specs` connected.
    pub async fn open(
        &mut self,
        specs: &[ClientSpec],
        routers: &[&Router],
        tenants: &[Tenant],
        bar: &ProgressBar,
    ) -> usize {
        let first = self.open.len();
        let mut connecting = futures::stream::iter(specs.iter().enumerate())
            .map(|(i, spec)| {
                let addr = routers[spec.replica].addr;
                let source = Ipv4Addr::new(127, 0, 0, 2 + ((first + i) % usize::from(SOURCE_ADDRESSES)) as u8);
                let token = tenants[spec.tenant].token.clone();
                async move { (*spec, connect(addr, IpAddr::V4(source), &token).await) }
            })
            .buffer_unordered(CONNECT_CONCURRENCY);
        let mut opened = 0;
        while let Some((spec, connected)) = connecting.next().await {
            match connected {
                Ok(ws) => {
                    let task =
                        tokio::spawn(read_events(ws, self.stop.subscribe(), self.delivered.clone(), self.keep_ts));
                    self.open.push((spec, task));
                    opened += 1;
                }
                Err(error) => {
                    self.failed += 1;
                    self.first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
            bar.inc(1);
        }
        opened
    }

    /// Waits until `expected` events were read in all, or `patience` passed without progress.
    pub async fn wait_for(&self, expected: u64, patience: Duration) {
        let mut last = self.delivered();
        let mut last_progress = Instant::now();
        while self.delivered() < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.delivered();
            if now != last {
                (last, last_progress) = (now, Instant::now());
            } else if last_progress.elapsed() > patience {
                return;
            }
        }
    }

    /// Stops every reader (closing its socket) and returns what each read.
    pub async fn close(self) -> anyhow::Result<Vec<(ClientSpec, ClientLog)>> {
        let _ = self.stop.send(true);
        let mut logs = Vec::with_capacity(self.open.len());
        for (spec, task) in self.open {
            logs.push((spec, task.await.context("a client task panicked")?));
        }
        Ok(logs)
    }
}

async fn connect(addr: SocketAddr, source: IpAddr, token: &str) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4().context("creating a socket")?;
    socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("binding to {source}"))?;
    let stream = tokio::time::timeout(Duration::from_secs(30), socket.connect(addr))
        .await
        .context("TCP connect timed out")?
        .context("TCP connect")?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    // The token as a protocol entry, as the desktop app sends it.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/ws"))?;
    request.headers_mut().insert("sec-websocket-protocol", format!("nexacore.v1, nexacore.bearer.{token}").parse()?);
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")?
    .context("WebSocket handshake")?;
    Ok(ws)
}

/// Reads until stopped, recording each event's seq and the instant it was read. Pings are
/// answered by the library as the socket is read.
async fn read_events(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
    keep_ts: bool,
) -> ClientLog {
    let mut log = ClientLog::default();
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = stop.changed() => break,
        };
        match message {
            Some(Ok(Message::Text(text))) => {
                let at = Instant::now();
                match event_of(&text, keep_ts) {
                    Some((seq, ts_us)) => {
                        log.events.push(Got { seq, at, ts_us });
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    None => log.other += 1,
                }
            }
            Some(Ok(Message::Close(frame))) => {
                log.ended = Some(frame.map_or("closed by the router".into(), |f| {
                    format!("closed by the router: {} {}", u16::from(f.code), f.reason)
                }));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                log.ended = Some(format!("socket error: {error}"));
                break;
            }
            None => {
                log.ended = Some("socket closed".into());
                break;
            }
        }
    }
    // Best effort: the router is stopped next anyway.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    log
}

/// The seq (and `ts`) of a change event; `None` for a system message. Events are
/// `{"action","channel","data","seq","ts"}` with `seq` after `data`, so the last `"seq":` is the
/// event's own: no JSON parse per message, which would cost more than the router's send.
pub fn event_of(text: &str, keep_ts: bool) -> Option<(i64, Option<i64>)> {
    if text.contains(r#""channel":"system""#) {
        return None;
    }
    let start = text.rfind(r#""seq":"#)? + r#""seq":"#.len();
    let digits = text[start..].split(|c: char| !c.is_ascii_digit()).next()?;
    let seq = digits.parse().ok()?;
    let ts = keep_ts.then(|| ts_micros(text)).flatten();
    Some((seq, ts))
}

fn ts_micros(text: &str) -> Option<i64> {
    let start = text.rfind(r#""ts":""#)? + r#""ts":""#.len();
    let end = start + text[start..].find('"')?;
    let ts = OffsetDateTime::parse(&text[start..end], &Rfc3339).ok()?;
    i64::try_from(ts.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_without_a_json_parse_and_system_messages_are_not_events() {
        let event = r#"{"action":"created","channel":"employees","data":{"id":"x","version":3},"seq":42,"ts":"2024-01-15T10:00:00.123456Z"}"#;
        assert_eq!(event_of(event, false), Some((42, None)));
        assert_eq!(event_of(event, true), Some((42, Some(1_705_312_800_123_456))));
        let resync = r#"{"action":"resync","channel":"system","data":{"seq":7},"ts":"2024-01-15T10:00:00Z"}"#;
        assert_eq!(event_of(resync, true), None);
    }
}
