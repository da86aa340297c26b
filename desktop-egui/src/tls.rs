//! Which servers the app trusts over `https` and `wss`: the public roots (webpki-roots, the
//! same everywhere, no OS store to differ) plus, optionally, the certificates of one extra CA
//! file: a company's own CA, or `ops up --tls`'s local one (`.nexacore/tls/ca.pem`). The file
//! comes from `NEXACORE_TLS_CA_FILE`, else from the settings (`extra_ca_file`).
//!
//! rustls on ring for both clients (reqwest and tokio-tungstenite); no OpenSSL.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The variable naming an extra CA file (it wins over the setting).
pub const CA_FILE_VARIABLE: &str = "NEXACORE_TLS_CA_FILE";

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TrustError {
    pub path: PathBuf,
    pub reason: String,
}

/// The roots both clients verify servers against. Cheap to clone.
#[derive(Clone, Default)]
pub struct Trust {
    extra: Arc<Vec<CertificateDer<'static>>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("extra_roots", &self.extra.len()).finish()
    }
}

impl Trust {
    /// The public roots only.
    pub fn public() -> Self {
        Self::default()
    }

    /// The public roots and every certificate in `path` (PEM).
    pub fn with_ca_file(path: &Path) -> Result<Self, TrustError> {
        let error = |reason: String| TrustError { path: path.to_owned(), reason };
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| error(e.to_string()))?;
        if certificates.is_empty() {
            return Err(error("no CERTIFICATE in the file".into()));
        }
        Ok(Self { extra: Arc::new(certificates) })
    }

    /// From `NEXACORE_TLS_CA_FILE`, else `setting`; a file that cannot be read is logged and left
    /// out (the servers it would have vouched for then fail with a certificate error, which the
    /// app shows).
    pub fn configured(setting: Option<&Path>) -> Self {
        let from_env = std::env::var_os(CA_FILE_VARIABLE).filter(|v| !v.is_empty()).map(PathBuf::from);
        let Some(path) = from_env.or_else(|| setting.map(Path::to_owned)) else { return Self::public() };
        Self::with_ca_file(&path).unwrap_or_else(|e| {
            tracing::error!(error = %e, "ignoring the extra CA file");
            Self::public()
        })
    }

    /// `builder` trusting these roots (reqwest's own public roots stay on).
    pub fn http(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        for der in self.extra.iter() {
            if let Ok(certificate) = reqwest::Certificate::from_der(der) {
                builder = builder.add_root_certificate(certificate);
            }
        }
        builder
    }

    /// A `wss://` connector trusting these roots.
    pub fn websocket(&self) -> tokio_tungstenite::Connector {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        // Each was parsed from PEM; one rustls cannot use as a root is skipped, as reqwest does.
        let _ = roots.add_parsable_certificates(self.extra.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_tungstenite::Connector::Rustls(Arc::new(config))
    }
}
