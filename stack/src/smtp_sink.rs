//! A real SMTP listener for tests: it speaks enough SMTP for a client (lettre) to deliver, keeps
//! every message's raw text, and can be stopped and started again on the same port to play an
//! outage. No TLS and no authentication: point `smtp://127.0.0.1:<port>` at it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct SmtpSink {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
    server: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut sink = Self { addr, messages: Arc::default(), server: None };
        sink.serve(listener);
        Ok(sink)
    }

    /// A port no one listens on yet, for a sink started later ([`Self::resume`]).
    pub async fn reserve() -> std::io::Result<Self> {
        let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        Ok(Self { addr, messages: Arc::default(), server: None })
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Stops listening (connections are refused) until [`Self::resume`].
    pub fn pause(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.server.is_none() {
            let listener = TcpListener::bind(self.addr).await?;
            self.serve(listener);
        }
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        let messages = self.messages.clone();
        self.server = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, messages.clone()));
            }
        }));
    }

    /// Every message received so far, raw (headers and body).
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().expect("messages lock").clone()
    }

    /// Waits until a received message satisfies `matches` (up to `timeout`).
    pub async fn wait_for(&self, timeout: Duration, matches: impl Fn(&str) -> bool) -> Option<String> {
        let start = Instant::now();
        loop {
            if let Some(found) = self.messages().into_iter().find(|m| matches(m)) {
                return Some(found);
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.pause();
    }
}

async fn session(stream: TcpStream, messages: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if write.write_all(b"220 nexacore-test-sink ESMTP\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 nexacore-test-sink\r\n",
            "DATA" => {
                if write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                    return;
                }
                let mut message = String::new();
                while let Ok(Some(data)) = lines.next_line().await {
                    if data == "." {
                        break;
                    }
                    // Dot-stuffing: a leading dot was doubled by the client.
                    message.push_str(data.strip_prefix('.').filter(|_| data.starts_with("..")).unwrap_or(&data));
                    message.push('\n');
                }
                messages.lock().expect("messages lock").push(message);
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 ok\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
