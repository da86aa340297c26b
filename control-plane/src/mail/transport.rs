//! Where a built message goes: an SMTP server (lettre), a directory of `.eml` files, or nowhere
//! yet (messages wait in the outbox until a transport is configured).

use std::path::PathBuf;

use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::ExposeSecret as _;

use super::{MailError, MailSettings};

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Directory(PathBuf),
    /// No SMTP and no directory: nothing is sent and nothing is lost.
    Hold,
}

impl Transport {
    pub fn from_settings(settings: &MailSettings) -> Result<Self, MailError> {
        if let Some(url) = &settings.smtp_url {
            let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                // lettre's error text names the part at fault, never the password.
                .map_err(|e| MailError::SmtpUrl(e.to_string()))?
                .timeout(Some(std::time::Duration::from_secs(30)))
                .build();
            return Ok(Self::Smtp(transport));
        }
        if let Some(dir) = &settings.directory {
            std::fs::create_dir_all(dir).map_err(|e| MailError::Directory(dir.clone(), e))?;
            return Ok(Self::Directory(dir.clone()));
        }
        Ok(Self::Hold)
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "SMTP".into(),
            Self::Directory(dir) => format!("files under {}", dir.display()),
            Self::Hold => "nowhere (no NEXACORE_SMTP_URL): messages wait in the outbox".into(),
        }
    }

    /// Delivers `message`; the error text is for the outbox row and the log.
    pub async fn deliver(&self, id: uuid::Uuid, message: Message) -> Result<(), String> {
        match self {
            Self::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Self::Directory(dir) => {
                // Written whole, then renamed: a reader never sees half a message.
                let path = dir.join(format!("{id}.eml"));
                let partial = dir.join(format!(".{id}.eml.partial"));
                tokio::fs::write(&partial, message.formatted()).await.map_err(|e| e.to_string())?;
                tokio::fs::rename(&partial, &path).await.map_err(|e| e.to_string())?;
                tracing::info!(path = %path.display(), "wrote an outgoing e-mail");
                Ok(())
            }
            Self::Hold => Err("no mail transport is configured".into()),
        }
    }
}
