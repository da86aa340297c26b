//! `ops release …`: desktop releases. `keygen` writes an Ed25519 key pair; `publish` builds the
//! release zip (the binary and its signed-by-hash file list), signs a manifest naming the zip's
//! size and SHA-256, uploads the zip, then the signed manifest; the rest steer published
//! releases through the operator API. The private key never leaves this machine.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use api_types::Version;
use api_types::releases::{Channel, Platform};
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use release::archive::{self, ArchiveInput};
use release::signing::{self, sign};
use release::{Manifest, Sha256Digest};
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::api::{Api, Target};

/// The program's name inside the release zip, whatever the file was called when published.
pub const PROGRAM_NAME: &str = "nexacore-desktop";

#[derive(Subcommand)]
pub enum ReleaseCommand {
    /// Writes a new key pair: `release.key` (PKCS#8 PEM, mode 0600) and `release.pub`. Put the
    /// public key in `release/trusted-keys.pem` (as the next key) and ship it before signing with it.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Builds, signs, uploads and publishes a release.
    Publish {
        #[arg(long)]
        version: String,
        /// The desktop program to ship.
        #[arg(long)]
        file: PathBuf,
        /// The private key (`release.key` from `keygen`).
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = "linux-x86_64")]
        platform: String,
        #[arg(long, default_value = "stable")]
        channel: String,
        #[arg(long, default_value = "")]
        notes: String,
        /// Every install must take it before going on.
        #[arg(long)]
        mandatory: bool,
        /// Installs below this version must update.
        #[arg(long)]
        min_supported: Option<String>,
        /// Share of installs offered the release (0–100).
        #[arg(long, default_value_t = 100)]
        rollout: u8,
        /// Days until the signed manifest expires (a captured manifest cannot be replayed after).
        #[arg(long, default_value_t = 90)]
        expires_in_days: u32,
    },
    /// Published releases with their installs' reports.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stops offering a version.
    Pause(Which),
    /// Offers a paused version again.
    Resume(Which),
    /// Withdraws a version for good.
    Yank(Which),
    /// Sets the share of installs offered a version.
    Rollout {
        #[command(flatten)]
        which: Which,
        #[arg(long)]
        percent: u8,
    },
}

#[derive(clap::Args)]
pub struct Which {
    version: String,
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Only this platform (default: every platform of the version).
    #[arg(long)]
    platform: Option<String>,
}

impl Which {
    fn query(&self) -> String {
        let mut query = format!("channel={}", self.channel);
        if let Some(p) = &self.platform {
            query.push_str(&format!("&platform={p}"));
        }
        query
    }
}

pub async fn run(command: ReleaseCommand, target: Target) -> anyhow::Result<()> {
    match command {
        ReleaseCommand::Keygen { out } => keygen(&out),
        ReleaseCommand::Publish {
            version,
            file,
            key,
            platform,
            channel,
            notes,
            mandatory,
            min_supported,
            rollout,
            expires_in_days,
        } => {
            let key_pem = std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?;
            let key = signing::read_private_key_pem(&key_pem).with_context(|| format!("{}", key.display()))?;
            let program = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let zip = archive::build(&[ArchiveInput { path: PROGRAM_NAME, bytes: &program, executable: true }])?;
            let sha256 = Sha256Digest::of(&zip);
            let now = OffsetDateTime::now_utc();
            let manifest = Manifest {
                version: parse_version("--version", &version)?,
                channel: Channel::parse(&channel).context("--channel: stable or beta")?,
                platform: Platform::parse(&platform)
                    .context("--platform: linux-x86_64, windows-x86_64 or macos-aarch64")?,
                pub_date: now,
                expires: now + Duration::days(i64::from(expires_in_days.max(1))),
                notes,
                mandatory,
                min_supported: min_supported.as_deref().map(|v| parse_version("--min-supported", v)).transpose()?,
                rollout_percent: rollout,
                url: format!("/releases/artifacts/{sha256}"),
                size: zip.len() as u64,
                sha256,
            };
            let envelope = sign(&manifest, &key)?;
            let api = Api::from_target(target)?;
            api.upload(reqwest::Method::PUT, &format!("/releases/artifacts/{sha256}"), zip)
                .await
                .context("uploading the zip")?;
            let view = api.call(Method::POST, "/releases", Some(&serde_json::to_value(&envelope)?)).await?;
            println!(
                "published {} ({}, {}) at {}%: {} bytes, sha256 {}, key {}",
                view["version"].as_str().unwrap_or_default(),
                view["channel"].as_str().unwrap_or_default(),
                view["platform"].as_str().unwrap_or_default(),
                view["rollout_percent"],
                manifest.size,
                sha256,
                envelope.key_id
            );
            Ok(())
        }
        ReleaseCommand::List { json } => {
            let list = Api::from_target(target)?.call(Method::GET, "/releases", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_table(&list);
            }
            Ok(())
        }
        ReleaseCommand::Pause(which) => state(target, &which, "pause").await,
        ReleaseCommand::Resume(which) => state(target, &which, "resume").await,
        ReleaseCommand::Yank(which) => state(target, &which, "yank").await,
        ReleaseCommand::Rollout { which, percent } => {
            let path = format!("/releases/{}/rollout?{}", which.version, which.query());
            let list = Api::from_target(target)?.call(Method::PUT, &path, Some(&json!({ "percent": percent }))).await?;
            print_table(&list);
            Ok(())
        }
    }
}

async fn state(target: Target, which: &Which, action: &str) -> anyhow::Result<()> {
    let path = format!("/releases/{}/{action}?{}", which.version, which.query());
    let list = Api::from_target(target)?.call(Method::POST, &path, None).await?;
    print_table(&list);
    Ok(())
}

fn parse_version(flag: &str, raw: &str) -> anyhow::Result<Version> {
    raw.parse().map_err(|_| anyhow::anyhow!("{flag}: must be a version like 1.4.2"))
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let private = out.join("release.key");
    if private.exists() {
        bail!("{} exists: refusing to overwrite a signing key", private.display());
    }
    let key = signing::signing_key_from_secret(rand::random());
    let pem = signing::private_key_pem(&key)?;
    write_private(&private, pem.as_bytes())?;
    let public = signing::public_key_pem(&key.verifying_key())?;
    std::fs::write(out.join("release.pub"), public)?;
    println!(
        "wrote {} (keep it secret) and {}; key id {}",
        private.display(),
        out.join("release.pub").display(),
        release::KeyId::of(&key.verifying_key())
    );
    Ok(())
}

/// Creates the file with mode 0600 from the start: the key is never readable by others, not even
/// for an instant.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn print_table(list: &Value) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "version",
        "channel",
        "platform",
        "state",
        "rollout",
        "mandatory",
        "checked",
        "applied",
        "ok",
        "rolled back",
    ]);
    for r in list.as_array().into_iter().flatten() {
        let state = match r["state_reason"].as_str() {
            Some(reason) => format!("{} ({reason})", r["state"].as_str().unwrap_or_default()),
            None => r["state"].as_str().unwrap_or_default().to_owned(),
        };
        let e = &r["events"];
        table.add_row([
            r["version"].as_str().unwrap_or_default().to_owned(),
            r["channel"].as_str().unwrap_or_default().to_owned(),
            r["platform"].as_str().unwrap_or_default().to_owned(),
            state,
            format!("{}%", r["rollout_percent"]),
            r["mandatory"].to_string(),
            e["checked"].to_string(),
            e["applied"].to_string(),
            e["first_run_ok"].to_string(),
            e["rolled_back"].to_string(),
        ]);
    }
    println!("{table}");
}
