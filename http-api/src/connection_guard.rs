//! What keeps a slow or greedy client from holding a service's connections: a cap on open
//! connections and a deadline for each request's head, applied to every accepted socket
//! ([`GuardedAcceptor`]); poem's idle timeout and [`RequestTimeout`] do the rest.
//!
//! poem (through hyper-util's auto builder) offers no header-read timeout, so the socket is
//! watched at the byte level: from the first byte of a request head (or from the accept, for a
//! connection's first request) the head must end (`\r\n\r\n`) within the deadline, or reads fail
//! and hyper drops the connection. A slowloris client that trickles header lines is cut off;
//! one that sends nothing is closed by the idle timeout. Once a head is complete the body and
//! the handler are the request timeout's business; after the response starts, the next bytes
//! are the next request's head. A `101 Switching Protocols` (WebSocket) or an HTTP/2 preface
//! turns watching off for good.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Limits on connections and requests, the same knobs for both services.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long a request head may take to arrive, from its first byte.
    pub header_timeout: Duration,
    /// A connection with no traffic for this long is closed (longer than the WebSocket ping).
    pub idle_timeout: Duration,
    /// How long a handler may take, body included, before the request answers 503.
    pub request_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ConnectionLimits {
    /// The defaults, overridden by `NEXACORE_MAX_CONNECTIONS`, `NEXACORE_HEADER_TIMEOUT_SECS`,
    /// `NEXACORE_IDLE_TIMEOUT_SECS` and `NEXACORE_REQUEST_TIMEOUT_SECS` (each a positive
    /// integer). An error names the variable.
    pub fn from_source(source: &crate::ConfigSource) -> Result<Self, (&'static str, String)> {
        let mut limits = Self::default();
        let positive = |name: &'static str| -> Result<Option<u64>, (&'static str, String)> {
            match source.get(name).map_err(|e| (name, e.to_string()))? {
                None => Ok(None),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err((name, format!("{v:?}: expected a positive integer"))),
                },
            }
        };
        if let Some(n) = positive("NEXACORE_MAX_CONNECTIONS")? {
            limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = positive("NEXACORE_HEADER_TIMEOUT_SECS")? {
            limits.header_timeout = Duration::from_secs(n);
        }
        if let Some(n) = positive("NEXACORE_IDLE_TIMEOUT_SECS")? {
            limits.idle_timeout = Duration::from_secs(n);
        }
        if let Some(n) = positive("NEXACORE_REQUEST_TIMEOUT_SECS")? {
            limits.request_timeout = Duration::from_secs(n);
        }
        Ok(limits)
    }
}

/// Wraps an acceptor: at most `max_connections` open sockets, each with a head deadline.
pub struct GuardedAcceptor<A> {
    inner: A,
    permits: Arc<Semaphore>,
    header_timeout: Duration,
}

impl<A> GuardedAcceptor<A> {
    pub fn new(inner: A, limits: &ConnectionLimits) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(limits.max_connections)), header_timeout: limits.header_timeout }
    }
}

impl<A: Acceptor> Acceptor for GuardedAcceptor<A> {
    type Io = GuardedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        loop {
            let (io, local, remote, scheme) = self.inner.accept().await?;
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => return Ok((GuardedIo::new(io, permit, self.header_timeout), local, remote, scheme)),
                // Closed at once: a waiting socket would hold a file descriptor all the same.
                Err(_) => tracing::debug!(%remote, "connection limit reached; closing a new connection"),
            }
        }
    }
}

enum Phase {
    /// Waiting for a request head; the deadline runs from its first byte (or from the accept).
    Head { deadline: Option<Pin<Box<Sleep>>>, matched: usize },
    /// A head arrived; the body and the response are under way.
    Request,
    /// A protocol switch (WebSocket) or HTTP/2: no more heads to watch.
    Passthrough,
}

const HEAD_END: &[u8] = b"\r\n\r\n";

/// A socket whose request heads must arrive in time; holds its connection permit until closed.
pub struct GuardedIo<T> {
    inner: T,
    phase: Phase,
    header_timeout: Duration,
    _permit: OwnedSemaphorePermit,
}

impl<T> GuardedIo<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit, header_timeout: Duration) -> Self {
        let deadline = Some(Box::pin(tokio::time::sleep(header_timeout)));
        Self { inner, phase: Phase::Head { deadline, matched: 0 }, header_timeout, _permit: permit }
    }

    /// Follows the bytes just read: starts the head's deadline, ends the head at `\r\n\r\n`.
    fn saw(&mut self, bytes: &[u8]) {
        let Phase::Head { deadline, matched } = &mut self.phase else { return };
        if bytes.is_empty() {
            return;
        }
        if bytes.starts_with(b"PRI * HTTP/2.0") && *matched == 0 {
            self.phase = Phase::Passthrough;
            return;
        }
        if deadline.is_none() {
            *deadline = Some(Box::pin(tokio::time::sleep(self.header_timeout)));
        }
        for &b in bytes {
            *matched = if b == HEAD_END[*matched] {
                *matched + 1
            } else if b == HEAD_END[0] {
                1
            } else {
                0
            };
            if *matched == HEAD_END.len() {
                self.phase = Phase::Request;
                return;
            }
        }
    }

    /// Follows the bytes about to be written: a response ends the request's phase.
    fn writing(&mut self, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Request) || bytes.is_empty() {
            return;
        }
        if bytes.starts_with(b"HTTP/1.1 101") {
            self.phase = Phase::Passthrough;
        } else if !bytes.starts_with(b"HTTP/1.1 100 ") {
            // `100 Continue` comes before the body; anything else is the response.
            self.phase = Phase::Head { deadline: None, matched: 0 };
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Phase::Head { deadline: Some(deadline), .. } = &mut self.phase
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request head not received in time")));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let fresh = buf.filled()[before..].to_vec();
            self.saw(&fresh);
            // A head begun in this read has its deadline now: register for its wake-up.
            if let Phase::Head { deadline: Some(deadline), .. } = &mut self.phase {
                let _ = deadline.as_mut().poll(cx);
            }
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.writing(buf);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            self.writing(first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A handler (body reading included) that runs longer than this answers 503 with `Retry-After`.
pub struct RequestTimeout(pub Duration);

impl<E: Endpoint> Middleware<E> for RequestTimeout {
    type Output = RequestTimeoutEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestTimeoutEndpoint { inner: ep, timeout: self.0, exempt: &[] }
    }
}

/// [`RequestTimeout`] except for the exact paths given: operator uploads and restores of
/// tenant dumps that take as long as their size does (they stay bounded by the idle timeout).
pub struct RequestTimeoutExcept(pub Duration, pub &'static [&'static str]);

impl<E: Endpoint> Middleware<E> for RequestTimeoutExcept {
    type Output = RequestTimeoutEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestTimeoutEndpoint { inner: ep, timeout: self.0, exempt: self.1 }
    }
}

pub struct RequestTimeoutEndpoint<E> {
    inner: E,
    timeout: Duration,
    exempt: &'static [&'static str],
}

impl<E: Endpoint> Endpoint for RequestTimeoutEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if self.exempt.contains(&req.uri().path()) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        match tokio::time::timeout(self.timeout, self.inner.call(req)).await {
            Ok(result) => result.map(IntoResponse::into_response),
            Err(_) => {
                let body = crate::ErrorBody::new("timeout", "the request took too long; try again");
                Ok(poem::web::Json(body)
                    .with_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
                    .with_header(poem::http::header::RETRY_AFTER, "1")
                    .into_response())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    fn guarded(timeout: Duration) -> (GuardedIo<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, client) = duplex(1024);
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        (GuardedIo::new(server, permit, timeout), client)
    }

    async fn read_some(io: &mut GuardedIo<tokio::io::DuplexStream>) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 256];
        let n = io.read(&mut buf).await?;
        Ok(buf[..n].to_vec())
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_trickled_past_the_deadline_fails_the_read() {
        let (mut server, mut client) = guarded(Duration::from_secs(5));
        client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        assert!(read_some(&mut server).await.is_ok());
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            client.write_all(b"X-Slow: 1\r\n").await.unwrap();
            assert!(read_some(&mut server).await.is_ok(), "still within the deadline");
        }
        // Nothing more arrives: the read waits, then fails at the deadline.
        let error = read_some(&mut server).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn complete_heads_bodies_and_keep_alive_requests_pass_at_their_own_pace() {
        let (mut server, mut client) = guarded(Duration::from_secs(5));
        client.write_all(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"body").await.unwrap();
        assert_eq!(read_some(&mut server).await.unwrap(), b"body", "a slow body is the request timeout's business");
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        // Keep-alive: nothing for a while (the idle timeout's business), then a prompt head.
        tokio::time::sleep(Duration::from_secs(60)).await;
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        assert!(matches!(server.phase, Phase::Request));
    }

    #[tokio::test(start_paused = true)]
    async fn a_websocket_upgrade_turns_watching_off() {
        let (mut server, mut client) = guarded(Duration::from_secs(5));
        client.write_all(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").await.unwrap();
        read_some(&mut server).await.unwrap();
        server.write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").await.unwrap();
        client.write_all(b"\x81\x05hello").await.unwrap();
        read_some(&mut server).await.unwrap();
        tokio::time::sleep(Duration::from_secs(600)).await;
        client.write_all(b"\x81\x05again").await.unwrap();
        assert_eq!(read_some(&mut server).await.unwrap(), b"\x81\x05again");
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_timeout_spares_only_the_exempt_paths() {
        use poem::EndpointExt as _;
        #[poem::handler]
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_secs(120)).await;
            "done"
        }
        let app = poem::Route::new()
            .at("/restores", poem::post(slow))
            .at("/other", poem::post(slow))
            .with(RequestTimeoutExcept(Duration::from_secs(30), &["/restores"]));
        let call = |path: &'static str| {
            let request = Request::builder().method(poem::http::Method::POST).uri_str(path).finish();
            app.call(request)
        };
        let exempt = call("/restores").await.unwrap();
        assert_eq!(exempt.status(), poem::http::StatusCode::OK);
        let timed = call("/other").await.unwrap();
        assert_eq!(timed.status(), poem::http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
