//! A small client of the control plane's operator API. Where to connect and the operator token
//! come from flags, the environment, or `./.nexacore/stack.env` written by `ops up`.

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::local_files::{default_path, read_env_file};

#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The control plane's URL (default: NEXACORE_CONTROL_PLANE_URL, then ./.nexacore/stack.env).
    #[arg(long, env = "NEXACORE_CONTROL_PLANE_URL", global = true)]
    pub url: Option<String>,
    /// The operator token (default: NEXACORE_OPERATOR_TOKEN, then ./.nexacore/stack.env).
    #[arg(long, env = "NEXACORE_OPERATOR_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// The URL and the token, as a pair from one place: both from flags or the environment, or
/// both from `./.nexacore/stack.env` (`ops up`'s stack). A token of one platform is never sent
/// to the URL of another.
fn resolve(target: Target, stack: &[(String, String)]) -> anyhow::Result<(String, String)> {
    let lookup = |key: &str| stack.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    match (target.url, target.token) {
        (Some(url), Some(token)) => Ok((url, token)),
        (None, None) => match (lookup("NEXACORE_CONTROL_PLANE_URL"), lookup("NEXACORE_OPERATOR_TOKEN")) {
            (Some(url), Some(token)) => Ok((url, token)),
            _ => bail!(
                "no control plane: pass --url and --token, set NEXACORE_CONTROL_PLANE_URL and NEXACORE_OPERATOR_TOKEN, or run `ops up`"
            ),
        },
        (Some(_), None) => {
            bail!("--url (NEXACORE_CONTROL_PLANE_URL) needs --token (NEXACORE_OPERATOR_TOKEN) from the same place")
        }
        (None, Some(_)) => {
            bail!("--token (NEXACORE_OPERATOR_TOKEN) needs --url (NEXACORE_CONTROL_PLANE_URL) from the same place")
        }
    }
}

/// A client trusting the public roots and, when given, the CA certificates in `ca_file`
/// (`NEXACORE_TLS_CA_FILE`, or the one `ops up --tls` wrote into `stack.env`).
fn client_trusting(ca_file: Option<String>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_file.filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).with_context(|| format!("reading the CA file {path}"))?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("the CA file {path}"))? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder.build()?)
}

/// A mistake in what the operator asked (an unknown tenant, a missing flag): exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn from_target(target: Target) -> anyhow::Result<Self> {
        let stack = read_env_file(&default_path("stack.env")).unwrap_or_default();
        let (base, token) = resolve(target, &stack)?;
        let from_stack = stack.iter().find(|(k, _)| k == "NEXACORE_TLS_CA_FILE").map(|(_, v)| v.clone());
        let http = client_trusting(std::env::var("NEXACORE_TLS_CA_FILE").ok().or(from_stack))?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), token, http })
    }

    /// The control plane's URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client, trusting what the control plane is reached with (an extra CA included),
    /// for checks of the platform's other public addresses.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request; a non-2xx answer becomes an error carrying the server's message.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            request = request.json(b);
        }
        let response =
            request.send().await.with_context(|| format!("cannot reach the control plane at {}", self.base))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["message"].as_str().unwrap_or("no message");
            bail!("{status}: {message}");
        }
        Ok(value)
    }

    /// Sends raw bytes (`application/octet-stream`) with `method`: backup bundles (`POST`),
    /// release zips (`PUT`); the answer as JSON.
    pub async fn upload(&self, method: reqwest::Method, path: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("cannot reach the control plane at {}", self.base))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{status}: {}", value["message"].as_str().unwrap_or("no message"));
        }
        Ok(value)
    }

    /// Downloads a file into `dest` in chunks; returns its size and hex SHA-256.
    pub async fn download(&self, path: &str, dest: &std::path::Path) -> anyhow::Result<(i64, String)> {
        use sha2::Digest as _;
        use tokio::io::AsyncWriteExt as _;
        let mut response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the control plane at {}", self.base))?;
        let status = response.status();
        if !status.is_success() {
            let value: Value = response.json().await.unwrap_or(Value::Null);
            bail!("{status}: {}", value["message"].as_str().unwrap_or("no message"));
        }
        let mut file = tokio::fs::File::create(dest).await.with_context(|| format!("creating {}", dest.display()))?;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0i64;
        while let Some(chunk) = response.chunk().await.context("downloading")? {
            hasher.update(&chunk);
            size += chunk.len() as i64;
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok((size, hex::encode(hasher.finalize())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_token_come_from_one_place() {
        let stack = vec![
            ("NEXACORE_CONTROL_PLANE_URL".to_owned(), "http://local:8080".to_owned()),
            ("NEXACORE_OPERATOR_TOKEN".to_owned(), "local-token".to_owned()),
        ];
        let target = |url: Option<&str>, token: Option<&str>| Target {
            url: url.map(str::to_owned),
            token: token.map(str::to_owned),
        };
        let both = resolve(target(Some("https://prod"), Some("prod-token")), &stack).unwrap();
        assert_eq!(both, ("https://prod".to_owned(), "prod-token".to_owned()));
        let local = resolve(target(None, None), &stack).unwrap();
        assert_eq!(local, ("http://local:8080".to_owned(), "local-token".to_owned()));
        assert!(resolve(target(None, Some("prod-token")), &stack).is_err(), "a token never meets the file's URL");
        assert!(resolve(target(Some("https://prod"), None), &stack).is_err(), "a URL never gets the file's token");
        assert!(resolve(target(None, None), &[]).is_err());
    }
}
