//! HTTPS served by a service itself, from a certificate chain and a key in PEM files
//! (`NEXACORE_TLS_CERT_FILE`, `NEXACORE_TLS_KEY_FILE`); without them the service speaks plain
//! HTTP, for a proxy in front that terminates TLS (the default).
//!
//! The files are read at start (a bad pair stops the start) and again whenever their
//! modification times change ([`ServerTls::reload_if_changed`], polled every
//! [`RELOAD_CHECK_EVERY`]), so a renewed certificate is served without a restart; a pair that no
//! longer loads is logged and the previous one kept. The certificate is picked per handshake by a
//! resolver, so a reload never touches connections already open.
//!
//! [`ServiceAcceptor`] does the handshake inside the connection's first read, not in `accept`:
//! a client that stalls its handshake holds its own connection only, and the connection guard
//! wrapped around it counts the handshake against the request head's deadline.
//!
//! rustls runs on ring, the one crypto backend of the workspace (poem's own `rustls` listener
//! would add aws-lc-rs as a second).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::server::TlsStream;

/// How often the certificate files are checked for a change.
pub const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Where a service's certificate chain and private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `NEXACORE_TLS_CERT_FILE` and `NEXACORE_TLS_KEY_FILE`: both (HTTPS) or neither (plain
    /// HTTP). An error names the variable.
    pub fn from_source(source: &crate::ConfigSource) -> Result<Option<Self>, (&'static str, String)> {
        let get = |name: &'static str| source.get(name).map_err(|e| (name, e.to_string()));
        match (get("NEXACORE_TLS_CERT_FILE")?, get("NEXACORE_TLS_KEY_FILE")?) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(Self { cert: cert.into(), key: key.into() })),
            (Some(_), None) => Err(("NEXACORE_TLS_KEY_FILE", "required with NEXACORE_TLS_CERT_FILE".into())),
            (None, Some(_)) => Err(("NEXACORE_TLS_CERT_FILE", "required with NEXACORE_TLS_KEY_FILE".into())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{cert} and {key} do not make a usable certificate: {reason}")]
    Pair { cert: PathBuf, key: PathBuf, reason: String },
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The chain and key the files hold now.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let file_error = |path: &Path, reason: String| TlsError::File { path: path.to_owned(), reason };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(&files.cert, "no CERTIFICATE in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })
}

/// The two files' modification times: a change of either means "read them again".
fn stamp(files: &TlsFiles) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(&files.cert)?, modified(&files.key)?))
}

/// The certificate handed to each handshake; replaced when the files change.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    loaded_stamp: Mutex<Option<(SystemTime, SystemTime)>>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

/// A service's TLS settings: what its acceptor hands each handshake.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    cert: Arc<ReloadingCert>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("files", &self.cert.files).finish()
    }
}

impl ServerTls {
    /// Reads the files (an error says which file and why) and starts watching them on the
    /// current tokio runtime, until the last clone of this value is dropped.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let provider = provider();
        let loaded_stamp = stamp(files);
        let key = load(files, &provider)?;
        let cert = Arc::new(ReloadingCert {
            files: files.clone(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(key)),
            loaded_stamp: Mutex::new(loaded_stamp),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Pair { cert: files.cert.clone(), key: files.key.clone(), reason: e.to_string() })?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let tls = Self { config: Arc::new(config), cert };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch(Arc::downgrade(&tls.cert)));
        }
        Ok(tls)
    }

    /// Reads the files again if their modification times changed since the last read: `Ok(true)`
    /// when a new certificate is now served, `Err` (the previous one still served) when the
    /// files changed but do not load.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        reload(&self.cert)
    }
}

fn reload(cert: &ReloadingCert) -> Result<bool, TlsError> {
    let now = stamp(&cert.files);
    let mut loaded = cert.loaded_stamp.lock().expect("stamp lock");
    if now.is_none() || now == *loaded {
        return Ok(false);
    }
    // Remembered before loading, so a broken pair is reported once, not at every check.
    *loaded = now;
    let key = load(&cert.files, &cert.provider)?;
    *cert.current.write().expect("certificate lock") = Arc::new(key);
    Ok(true)
}

/// Polls the files until the service's TLS settings are dropped.
async fn watch(cert: Weak<ReloadingCert>) {
    let mut ticker = tokio::time::interval(RELOAD_CHECK_EVERY);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(cert) = cert.upgrade() else { return };
        match reload(&cert) {
            Ok(true) => tracing::info!(cert = %cert.files.cert.display(), "TLS certificate reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "the changed TLS certificate does not load; still serving the previous one")
            }
        }
    }
}

/// Plain HTTP, or TLS over the same inner acceptor.
pub struct ServiceAcceptor<A> {
    inner: A,
    tls: Option<(tokio_rustls::TlsAcceptor, ServerTls)>,
}

impl<A> ServiceAcceptor<A> {
    pub fn new(inner: A, tls: Option<ServerTls>) -> Self {
        Self { inner, tls: tls.map(|tls| (tokio_rustls::TlsAcceptor::from(tls.config.clone()), tls)) }
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

impl<A: Acceptor> Acceptor for ServiceAcceptor<A> {
    type Io = MaybeTlsIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        Ok(match &self.tls {
            None => (MaybeTlsIo::Plain(io), local, remote, scheme),
            Some((acceptor, _)) => {
                let handshake = acceptor.accept(io);
                (MaybeTlsIo::Handshaking(Box::pin(handshake)), local, remote, poem::http::uri::Scheme::HTTPS)
            }
        })
    }
}

type Handshake<T> = Pin<Box<dyn Future<Output = io::Result<TlsStream<T>>> + Send>>;

/// An accepted connection: plain, or TLS (its handshake runs in the first read or write).
pub enum MaybeTlsIo<T> {
    Plain(T),
    Handshaking(Handshake<T>),
    Tls(Box<TlsStream<T>>),
    Failed,
}

impl<T: AsyncRead + AsyncWrite + Unpin> MaybeTlsIo<T> {
    /// Drives a pending handshake; ready once the stream can carry data.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let MaybeTlsIo::Handshaking(handshake) = self {
            match handshake.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => *self = MaybeTlsIo::Tls(Box::new(stream)),
                Poll::Ready(Err(e)) => {
                    *self = MaybeTlsIo::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self {
            MaybeTlsIo::Failed => Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "TLS handshake failed"))),
            _ => Poll::Ready(Ok(())),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $cx:ident, $io:ident => $call:expr) => {{
        let this = $self.get_mut();
        if let Err(e) = std::task::ready!(this.poll_handshake($cx)) {
            return Poll::Ready(Err(e));
        }
        match this {
            MaybeTlsIo::Plain($io) => $call,
            MaybeTlsIo::Tls(stream) => {
                let $io = stream.as_mut();
                $call
            }
            MaybeTlsIo::Handshaking(_) | MaybeTlsIo::Failed => unreachable!("the handshake is settled"),
        }
    }};
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTlsIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        delegate!(self, cx, io => Pin::new(io).poll_read(cx, buf))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTlsIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, cx, io => Pin::new(io).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, cx, io => Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, cx, io => Pin::new(io).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, cx, io => Pin::new(io).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsIo::Plain(io) => io.is_write_vectored(),
            MaybeTlsIo::Tls(stream) => stream.is_write_vectored(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use poem::listener::{Acceptor as _, Listener as _, TcpListener};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::{ConnectionLimits, GuardedAcceptor};

    /// A CA (its PEM) and the chain and key of a server certificate for 127.0.0.1 it signed.
    fn ca_and_server() -> (String, String, String) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        (ca_pem, cert.pem(), key.serialize_pem())
    }

    fn write(files: &TlsFiles, cert: &str, key: &str, modified: SystemTime) {
        for (path, text) in [(&files.cert, cert), (&files.key, key)] {
            std::fs::write(path, text).unwrap();
            std::fs::File::options().write(true).open(path).unwrap().set_modified(modified).unwrap();
        }
    }

    fn client_trusting(ca_pem: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn https_is_served_behind_the_guard_and_a_changed_certificate_is_served_after_a_reload() {
        let dir = tempfile_dir();
        let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
        let (first_ca, cert, key) = ca_and_server();
        write(&files, &cert, &key, SystemTime::now());
        let tls = ServerTls::load(&files).unwrap();
        assert!(!tls.reload_if_changed().unwrap(), "unchanged files are not read again");

        let tcp = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let port = tcp.local_addr()[0].as_socket_addr().unwrap().port();
        let acceptor = GuardedAcceptor::new(ServiceAcceptor::new(tcp, Some(tls.clone())), &ConnectionLimits::default());
        let app = poem::endpoint::make_sync(|req: poem::Request| req.scheme().as_str().to_owned());
        tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        let url = format!("https://127.0.0.1:{port}/");

        let answer = client_trusting(&first_ca).get(&url).send().await.expect("https with the first CA");
        assert_eq!(answer.text().await.unwrap(), "https", "handlers see the https scheme");

        // A certificate from another CA replaces it on disk: served once reloaded.
        let (second_ca, cert, key) = ca_and_server();
        write(&files, &cert, &key, SystemTime::now() + Duration::from_secs(10));
        assert!(tls.reload_if_changed().unwrap());
        client_trusting(&second_ca).get(&url).send().await.expect("https with the second CA");
        let refused = client_trusting(&first_ca).get(&url).send().await.expect_err("the old CA no longer fits");
        assert!(format!("{refused:?}").contains("InvalidCertificate"), "{refused:?}");

        // A broken pair is refused and the current certificate stays.
        write(&files, "not a certificate", "not a key", SystemTime::now() + Duration::from_secs(20));
        assert!(tls.reload_if_changed().is_err());
        client_trusting(&second_ca).get(&url).send().await.expect("still the second certificate");
    }

    #[test]
    fn both_files_or_neither() {
        let check = |pairs: &[(&str, &str)], expected: Result<bool, &str>| {
            let mut source = crate::ConfigSource::environment();
            for (k, v) in pairs {
                source = source.fallback(k, *v);
            }
            let got = TlsFiles::from_source(&source).map(|f| f.is_some()).map_err(|(name, _)| name);
            assert_eq!(got, expected, "{pairs:?}");
        };
        check(&[], Ok(false));
        check(&[("NEXACORE_TLS_CERT_FILE", "c"), ("NEXACORE_TLS_KEY_FILE", "k")], Ok(true));
        check(&[("NEXACORE_TLS_CERT_FILE", "c")], Err("NEXACORE_TLS_KEY_FILE"));
        check(&[("NEXACORE_TLS_KEY_FILE", "k")], Err("NEXACORE_TLS_CERT_FILE"));
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nexacore-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
