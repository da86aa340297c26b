//! E-mail that is never lost: a message is written to the catalog's outbox in the transaction
//! of the action that causes it ([`enqueue`]), and [`sender::MailSender`] delivers due messages
//! over SMTP (or, for development, into a directory of `.eml` files), retrying with backoff.
//! A crash between the action and delivery leaves the message due; a crash during delivery
//! leaves it due too (its row lock goes with the connection), so delivery is at least once,
//! and each message carries a stable `Message-ID` a receiver can deduplicate by.

pub mod sender;
pub mod templates;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::catalog::mail::{self, NewMail};
use crate::secrets::MasterKey;
pub use transport::Transport;

/// Where mail goes and how hard to try.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://host:25`, `smtps://user:pass@host:465`, `smtp://user:pass@host:587?tls=required`.
    pub smtp_url: Option<SecretString>,
    /// Without SMTP: write each message as `<id>.eml` here (development).
    pub directory: Option<PathBuf>,
    /// `From:`, e.g. `NexaCore <no-reply@example.com>`.
    pub from: String,
    /// Where the welcome e-mail says the desktop app can be downloaded.
    pub download_url: String,
    /// The first retry waits this long; each next one twice as long, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// After this many failed attempts a message is `failed` (and stays for `ops mail list`).
    pub max_attempts: u32,
    /// How often the sender looks for due messages when nothing woke it.
    pub poll_interval: Duration,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            directory: None,
            from: "NexaCore <no-reply@nexacore.localhost>".into(),
            download_url: "https://nexacore.example/download".into(),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(15 * 60),
            max_attempts: 30,
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// One message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    /// What caused it (`invitation`, `welcome`, `password_reset`, …), for operators.
    pub kind: &'static str,
    pub tenant: Option<Uuid>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What is sealed in the outbox: the bodies (they carry codes).
#[derive(Serialize, Deserialize)]
struct Bodies {
    text: String,
    html: String,
}

/// Writes `mail` to the outbox on `db` (the caller's transaction); returns its id. Wake the
/// sender after the commit ([`sender::MailSender::wake`]) for prompt delivery.
pub async fn enqueue(db: impl PgExecutor<'_>, master: &MasterKey, mail: &Mail) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    let bodies = serde_json::to_vec(&Bodies { text: mail.text.clone(), html: mail.html.clone() })
        .expect("two strings serialise");
    mail::insert(
        db,
        NewMail {
            id,
            kind: mail.kind,
            tenant_id: mail.tenant,
            recipient: &mail.to,
            subject: &mail.subject,
            body_sealed: master.seal(&bodies),
        },
    )
    .await?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("NEXACORE_SMTP_URL is not a usable SMTP URL: {0}")]
    SmtpUrl(String),
    #[error("NEXACORE_MAIL_FROM is not an address: {0}")]
    From(String),
    #[error("the mail directory {0}: {1}")]
    Directory(PathBuf, std::io::Error),
}
