//! A small client of the control plane's operator API. Where to connect and the operator token
//! come from flags, the environment, or `./.nexacore/stack.env` written by `ops up`.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::Value;

#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The control plane's URL (default: NEXACORE_CONTROL_PLANE_URL, then ./.nexacore/stack.env).
    #[arg(long, env = "NEXACORE_CONTROL_PLANE_URL", global = true)]
    pub url: Option<String>,
    /// The operator token (default: NEXACORE_OPERATOR_TOKEN, then ./.nexacore/stack.env).
    #[arg(long, env = "NEXACORE_OPERATOR_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// Reads `KEY=value` lines.
pub fn read_env_file(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn from_target(target: Target) -> anyhow::Result<Self> {
        let stack = read_env_file(Path::new(crate::stack::DEFAULT_DIR).join("stack.env").as_path()).unwrap_or_default();
        let lookup = |key: &str| stack.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let base = target
            .url
            .or_else(|| lookup("NEXACORE_CONTROL_PLANE_URL"))
            .context("no control plane URL: pass --url, set NEXACORE_CONTROL_PLANE_URL, or run `ops up`")?;
        let token = target
            .token
            .or_else(|| lookup("NEXACORE_OPERATOR_TOKEN"))
            .context("no operator token: pass --token or set NEXACORE_OPERATOR_TOKEN")?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), token, http: reqwest::Client::new() })
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
}
