//! A local certificate authority, for `ops up --tls` and the TLS tests: one CA certificate and
//! one server certificate it signed for `localhost` and `127.0.0.1`, used by Postgres and both
//! services alike, so every hop can be checked with `verify-full` against one file.
//!
//! The CA's private key is never written: it signs the server certificate once and is dropped,
//! so the files can sign nothing else. A directory that already holds all three files is
//! reused as it is (`ops up --tls` keeps its CA across runs, so a desktop app told to trust it
//! stays trusting it); to start over, delete the directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "server.pem";
const KEY_FILE: &str = "server.key";

/// The host names the server certificate is valid for.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

#[derive(Debug, thiserror::Error)]
pub enum LocalTlsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The files of a local CA and its server certificate.
#[derive(Debug, Clone)]
pub struct LocalTls {
    /// The CA certificate (PEM): what clients trust.
    pub ca_cert: PathBuf,
    /// The server's certificate chain (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PEM, PKCS#8, mode 0600).
    pub server_key: PathBuf,
}

impl LocalTls {
    /// The files in `dir`: reused when all three exist, else made afresh.
    pub fn ensure(dir: &Path) -> Result<Self, LocalTlsError> {
        let tls = Self::at(dir);
        if tls.ca_cert.is_file() && tls.server_cert.is_file() && tls.server_key.is_file() {
            return Ok(tls);
        }
        Self::generate(dir)
    }

    /// A new CA and server certificate in `dir` (created if needed), replacing any there.
    pub fn generate(dir: &Path) -> Result<Self, LocalTlsError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| LocalTlsError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let tls = Self::at(dir);
        let now = time::OffsetDateTime::now_utc();

        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        // A name of its own: two local CAs never look like one to a verifier.
        ca.distinguished_name = name(&format!("NexaCore local CA {}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = now - time::Duration::days(1);
        ca.not_after = now + time::Duration::days(3650);
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(SERVER_NAMES.map(String::from).to_vec())?;
        server.distinguished_name = name("localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.not_before = now - time::Duration::days(1);
        server.not_after = now + time::Duration::days(825);
        let server_cert = server.signed_by(&server_key, &issuer)?;

        fs::write(&tls.ca_cert, ca_cert.pem()).map_err(io(&tls.ca_cert))?;
        fs::write(&tls.server_cert, server_cert.pem()).map_err(io(&tls.server_cert))?;
        write_private(&tls.server_key, server_key.serialize_pem().as_bytes()).map_err(io(&tls.server_key))?;
        Ok(tls)
    }

    fn at(dir: &Path) -> Self {
        Self { ca_cert: dir.join(CA_FILE), server_cert: dir.join(CERT_FILE), server_key: dir.join(KEY_FILE) }
    }

    /// What a service serves HTTPS with.
    pub fn server_files(&self) -> http_api::TlsFiles {
        http_api::TlsFiles { cert: self.server_cert.clone(), key: self.server_key.clone() }
    }

    /// The CA certificate's PEM bytes.
    pub fn ca_pem(&self) -> Result<Vec<u8>, LocalTlsError> {
        fs::read(&self.ca_cert).map_err(|source| LocalTlsError::Io { path: self.ca_cert.clone(), source })
    }

    /// `url` (a Postgres URL) checked against this CA: `sslmode=verify-full&sslrootcert=<ca>`.
    pub fn postgres_url(&self, url: &str) -> Result<String, url_error::BadUrl> {
        let mut parsed = reqwest::Url::parse(url).map_err(|_| url_error::BadUrl)?;
        parsed
            .query_pairs_mut()
            .append_pair("sslmode", "verify-full")
            .append_pair("sslrootcert", &self.ca_cert.to_string_lossy());
        Ok(parsed.into())
    }
}

pub mod url_error {
    /// A Postgres URL that does not parse (its text is not repeated: it may hold a password).
    #[derive(Debug, thiserror::Error)]
    #[error("the database URL does not parse")]
    pub struct BadUrl;
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// A file only its owner can read, created so (no moment with wider permissions).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
