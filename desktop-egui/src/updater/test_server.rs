//! A small real HTTP/1.1 server for the updater's tests: it serves a release envelope and an
//! artifact over a real socket, and can misbehave on purpose the way real servers and networks
//! do (cut the body short, ignore `Range`, answer 416, serve other bytes). One request per
//! connection (`Connection: close`) keeps it short; the updater's client handles that as any.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    None,
    /// The first artifact response promises the whole file but ends after this many bytes.
    CutFirstBodyAt(usize),
    /// Every artifact request gets `200` and the whole file, whatever its `Range`.
    IgnoreRange,
    /// Every ranged request gets `416`.
    Always416,
}

#[derive(Debug)]
pub struct Served {
    pub envelope: Option<String>,
    pub artifact: Vec<u8>,
    pub etag: String,
    pub misbehaviour: Misbehaviour,
    /// The `Range` header of each artifact request, in order.
    pub ranges: Vec<Option<String>>,
    /// The body of each `POST /releases/events`, in order.
    pub events: Vec<String>,
}

pub struct TestServer {
    pub base: String,
    pub served: Arc<Mutex<Served>>,
}

impl TestServer {
    pub async fn start(artifact: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Served {
            envelope: None,
            artifact,
            etag: "\"v1\"".into(),
            misbehaviour: Misbehaviour::None,
            ranges: Vec::new(),
            events: Vec::new(),
        }));
        let shared = served.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { base, served }
    }

    pub fn artifact_url(&self) -> String {
        format!("{}/artifact.zip", self.base)
    }

    pub fn set(&self, edit: impl FnOnce(&mut Served)) {
        edit(&mut self.served.lock().unwrap());
    }

    pub fn ranges(&self) -> Vec<Option<String>> {
        self.served.lock().unwrap().ranges.clone()
    }

    pub fn events(&self) -> Vec<String> {
        self.served.lock().unwrap().events.clone()
    }
}

async fn serve(mut socket: tokio::net::TcpStream, served: Arc<Mutex<Served>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
        })
    };
    let (range, if_range) = (header("range"), header("if-range"));
    let length = header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let mut request_body = vec![0u8; length.min(1 << 16)];
    if socket.read_exact(&mut request_body).await.is_err() {
        return;
    }
    let (status, headers, body, cut) = {
        let mut s = served.lock().unwrap();
        if path.starts_with("/releases/latest") {
            match &s.envelope {
                Some(json) => {
                    ("200 OK", "Content-Type: application/json\r\n".to_owned(), json.clone().into_bytes(), None)
                }
                None => ("204 No Content", String::new(), Vec::new(), None),
            }
        } else if path.starts_with("/releases/events") {
            s.events.push(String::from_utf8_lossy(&request_body).into_owned());
            ("202 Accepted", String::new(), Vec::new(), None)
        } else {
            s.ranges.push(range.clone());
            let first = s.ranges.len() == 1;
            let len = s.artifact.len();
            let tag = format!("ETag: {}\r\n", s.etag);
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|r| r.parse::<usize>().ok())
                .filter(|_| if_range.as_deref().is_none_or(|v| v == s.etag));
            let cut = match s.misbehaviour {
                Misbehaviour::CutFirstBodyAt(n) if first => Some(n),
                _ => None,
            };
            match (s.misbehaviour, start) {
                (Misbehaviour::Always416, Some(_)) => {
                    ("416 Range Not Satisfiable", format!("Content-Range: bytes */{len}\r\n"), Vec::new(), None)
                }
                (Misbehaviour::IgnoreRange, _) | (_, None) => ("200 OK", tag, s.artifact.clone(), cut),
                (_, Some(start)) if start >= len => {
                    ("416 Range Not Satisfiable", format!("Content-Range: bytes */{len}\r\n"), Vec::new(), None)
                }
                (_, Some(start)) => (
                    "206 Partial Content",
                    format!("{tag}Content-Range: bytes {start}-{}/{len}\r\n", len - 1),
                    s.artifact[start..].to_vec(),
                    cut,
                ),
            }
        }
    };
    let response = format!("HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = socket.write_all(response.as_bytes()).await;
    let sent = cut.unwrap_or(body.len()).min(body.len());
    let _ = socket.write_all(&body[..sent]).await;
    let _ = socket.shutdown().await;
}
