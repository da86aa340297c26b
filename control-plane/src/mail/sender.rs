//! Delivers the outbox: one due message at a time, each in its own catalog transaction that
//! locks its row (`FOR UPDATE SKIP LOCKED`), so replicas never send the same message at once.

use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use sqlx::PgPool;
use tokio::sync::{Notify, watch};

use super::{Bodies, MailError, MailSettings, Transport};
use crate::catalog::mail::{self, DueMail};
use crate::secrets::MasterKey;

pub struct MailSender {
    catalog: PgPool,
    master: Arc<MasterKey>,
    transport: Transport,
    from: Mailbox,
    settings: MailSettings,
    wake: Notify,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub sent: usize,
    pub failed_attempts: usize,
}

impl MailSender {
    pub fn new(catalog: PgPool, master: Arc<MasterKey>, settings: MailSettings) -> Result<Self, MailError> {
        let from: Mailbox =
            settings.from.parse().map_err(|e: lettre::address::AddressError| MailError::From(e.to_string()))?;
        let transport = Transport::from_settings(&settings)?;
        Ok(Self { catalog, master, transport, from, settings, wake: Notify::new() })
    }

    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    /// Tells the sender a message was committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers until `stop`, waking on [`Self::wake`], at the next due retry, or every poll
    /// interval (messages other replicas enqueued).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if matches!(self.transport, Transport::Hold) {
            tracing::warn!("no NEXACORE_SMTP_URL: e-mail waits in the outbox until one is configured");
            return;
        }
        tracing::info!(to = %self.transport.describe(), "delivering e-mail");
        loop {
            if let Err(error) = self.deliver_due().await {
                tracing::warn!(%error, "delivering e-mail");
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match mail::next_due(&self.catalog).await {
            Ok(Some(at)) => {
                let secs = (at - time::OffsetDateTime::now_utc()).as_seconds_f64().max(0.0);
                Duration::from_secs_f64(secs).min(poll)
            }
            _ => poll,
        }
    }

    /// Delivers every message due now, one at a time.
    pub async fn deliver_due(&self) -> Result<Delivered, sqlx::Error> {
        let mut done = Delivered::default();
        loop {
            let mut tx = self.catalog.begin().await?;
            let Some(due) = mail::claim_due(&mut tx).await? else { break };
            match self.send(&due).await {
                Ok(()) => {
                    mail::mark_sent(&mut tx, due.id).await?;
                    done.sent += 1;
                }
                Err(error) => {
                    let attempt = due.attempts as u32 + 1;
                    let give_up = attempt >= self.settings.max_attempts;
                    let retry_in = self.backoff(attempt);
                    tracing::warn!(mail = %due.id, attempt, %error, give_up, "e-mail not delivered");
                    mail::mark_failed_attempt(&mut tx, due.id, &error, retry_in, give_up).await?;
                    done.failed_attempts += 1;
                }
            }
            tx.commit().await?;
            if done.failed_attempts > 0 {
                // The server is likely down for everyone: leave the rest for their own retry.
                break;
            }
        }
        Ok(done)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        self.settings.retry_base.saturating_mul(factor).min(self.settings.retry_max)
    }

    async fn send(&self, due: &DueMail) -> Result<(), String> {
        let message = self.build(due)?;
        self.transport.deliver(due.id, message).await
    }

    fn build(&self, due: &DueMail) -> Result<Message, String> {
        let bodies = self.master.unseal(&due.body_sealed).map_err(|_| "the body does not unseal".to_owned())?;
        let bodies: Bodies = serde_json::from_slice(&bodies).map_err(|_| "the body is not readable".to_owned())?;
        let to: Mailbox =
            due.recipient.parse().map_err(|e: lettre::address::AddressError| format!("recipient: {e}"))?;
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            // Stable across retries, so a receiver can drop a duplicate after a crash mid-send.
            .message_id(Some(format!("<{}@{domain}>", due.id)))
            .from(self.from.clone())
            .to(to)
            .subject(due.subject.clone())
            .multipart(MultiPart::alternative_plain_html(bodies.text, bodies.html))
            .map_err(|e| e.to_string())
    }
}
