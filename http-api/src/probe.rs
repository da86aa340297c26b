//! `--probe URL`: a health check the service binaries run on themselves, for container images
//! that ship no `curl` or shell (`HEALTHCHECK CMD ["tenant-router", "--probe", "http://127.0.0.1:8081/ready"]`).
//! One plain-HTTP GET with short timeouts; healthy means a 2xx status line. Kubernetes probes
//! the services with its own `httpGet` instead.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0:?}: expected http://host:port/path (the probe speaks plain HTTP to the local listener)")]
    BadUrl(String),
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url} answered {status:?}")]
    Unhealthy { url: String, status: String },
}

/// GETs `url` and succeeds on a 2xx answer.
pub fn probe(url: &str) -> Result<(), ProbeError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(char::is_whitespace) {
        return Err(ProbeError::BadUrl(url.to_owned()));
    }
    let io = |source| ProbeError::Io { url: url.to_owned(), source };
    let address = if authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let target = address.to_socket_addrs().map_err(io)?.next().ok_or_else(|| ProbeError::BadUrl(url.to_owned()))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: nexacore-probe\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    // The status line is all that matters; it fits in the first read of any sane server.
    let mut head = [0u8; 256];
    let mut read = 0;
    while read < head.len() && !head[..read].contains(&b'\n') {
        match stream.read(&mut head[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]).lines().next().unwrap_or("").trim().to_owned();
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if status_line.starts_with("HTTP/1.") && code.len() == 3 && code.starts_with('2') {
        Ok(())
    } else {
        Err(ProbeError::Unhealthy { url: url.to_owned(), status: status_line })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering `answer` to the first request, on a free local port.
    fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(answer.as_bytes());
        });
        format!("http://127.0.0.1:{port}/ready")
    }

    #[test]
    fn a_2xx_answer_is_healthy_and_anything_else_is_not() {
        assert!(probe(&serve_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).is_ok());
        let error = probe(&serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n")).unwrap_err();
        assert!(error.to_string().contains("503 Service Unavailable"), "{error}");
        assert!(matches!(probe(&serve_once("garbage")), Err(ProbeError::Unhealthy { .. })));
    }

    #[test]
    fn a_closed_port_or_a_url_it_cannot_speak_is_an_error_naming_the_url() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/health");
        assert!(probe(&url).unwrap_err().to_string().starts_with(&url));
        for bad in ["https://127.0.0.1:8080/ready", "127.0.0.1:8080", "http:///ready", "http://u:p@host/"] {
            assert!(matches!(probe(bad), Err(ProbeError::BadUrl(_))), "{bad}");
        }
    }
}
