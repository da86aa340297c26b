//! A company's people beyond its first admin: invitations, members and their roles, and each
//! user's own password. Every change is audited in its transaction, and every e-mail it causes
//! is written to the outbox in that same transaction (see [`crate::mail`]).

mod invitations;
mod members;
mod passwords;

use std::sync::Arc;
use std::time::Duration;

use api_types::people::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog::audit::Actor;
use crate::identity::gate::PasswordGate;
use crate::identity::sessions::{SessionError, Sessions};
use crate::mail::sender::MailSender;
use crate::rate_limit::RateLimiter;
use crate::secrets::MasterKey;

pub use invitations::Accepted;

/// How long codes live.
#[derive(Debug, Clone)]
pub struct PeopleSettings {
    pub invitation_ttl: Duration,
    pub reset_ttl: Duration,
}

impl Default for PeopleSettings {
    fn default() -> Self {
        Self { invitation_ttl: Duration::from_secs(7 * 24 * 3600), reset_ttl: Duration::from_secs(3600) }
    }
}

/// Who calls: a signed-in user of one company, with the role of a token whose epoch still
/// matches the membership; or an operator acting on a company (as its admin).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user: Uuid,
    pub tenant: Uuid,
    pub role: Role,
    pub operator: bool,
}

impl Caller {
    pub fn user(user: Uuid, tenant: Uuid, role: Role) -> Self {
        Self { user, tenant, role, operator: false }
    }

    /// The operator token's holder, with an admin's rights over `tenant`.
    pub fn operator(tenant: Uuid) -> Self {
        Self { user: Uuid::nil(), tenant, role: Role::Admin, operator: true }
    }

    fn actor(&self) -> Actor {
        if self.operator { Actor::operator(None) } else { Actor(format!("user:{}", self.user)) }
    }

    /// The inviting user, if a user invites.
    fn as_user(&self) -> Option<Uuid> {
        (!self.operator).then_some(self.user)
    }

    fn require(&self, allowed: bool, what: &str) -> Result<(), PeopleError> {
        if allowed { Ok(()) } else { Err(PeopleError::Forbidden(format!("your role ({}) may not {what}", self.role))) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// `code` names the conflict (`already_member`, `invitation_pending`, `last_admin`, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A field at fault; `code` is the error's name (`invalid_field`, `code_expired`, …).
    #[error("{field}: {message}")]
    Invalid { code: &'static str, field: &'static str, message: String },
    #[error("too many attempts; try again later")]
    Throttled(Duration),
    #[error("the service is busy checking passwords; try again in a moment")]
    Busy(Duration),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl PeopleError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { code: "invalid_field", field, message: message.into() }
    }
}

pub struct People {
    pub(crate) catalog: PgPool,
    pub(crate) master: Arc<MasterKey>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) passwords: Arc<PasswordGate>,
    pub(crate) mail: Arc<MailSender>,
    pub(crate) settings: PeopleSettings,
    /// Attempts at codes (accept, reset confirm) and reset requests, per client address.
    pub(crate) code_attempts: RateLimiter,
}

/// A fresh one-time code: 16 characters from an alphabet without look-alikes (80 bits), in
/// groups of four for reading aloud.
fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let raw: String = (0..16).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect();
    raw.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("ascii")).collect::<Vec<_>>().join("-")
}

/// A moment as an e-mail says it: `10 December 2026, 18:47 UTC`.
fn readable(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[day padding:none] [month repr:long] [year], [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

/// Trims a name and checks it is 1–100 characters without control characters.
fn full_name(field: &'static str, raw: &str) -> Result<String, PeopleError> {
    crate::domain::clean_text(raw, 1, 100).map_err(|message| PeopleError::invalid(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sixteen_unambiguous_characters_in_groups() {
        let code = new_code();
        assert_eq!(code.len(), 19, "{code}");
        assert!(code.split('-').all(|g| g.len() == 4));
        assert!(!code.contains(['0', 'O', '1', 'I']));
        assert_ne!(new_code(), code);
        assert_eq!(crate::secrets::normalize_code(&code.to_lowercase().replace('-', " ")), code.replace('-', ""));
    }
}
