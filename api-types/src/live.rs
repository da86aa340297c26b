//! The WebSocket: every message is `{"channel","action","data","seq"?,"ts"}`. Change events
//! carry `seq` and, as `data`, the same type a `GET` of the row answers; system messages are on
//! channel `system` (`resync`, `token_expiring`, `maintenance`, …).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::employees::{DeletedId, Employee};
use crate::ledger::{Account, Department};

/// Channel names: one per kind of record, plus `system`.
pub mod channel {
    pub const EMPLOYEES: &str = "employees";
    pub const DEPARTMENTS: &str = "departments";
    pub const ACCOUNTS: &str = "accounts";
    pub const SYSTEM: &str = "system";
}

/// One message. `D` is what `data` holds: [`ChangeData`] when the server writes a change,
/// [`Value`] when a client reads any message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveMessage<D = Value> {
    pub channel: String,
    pub action: String,
    pub data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// RFC 3339.
    pub ts: String,
}

impl LiveMessage<Value> {
    /// A change's `data` as its record type; `None` for another channel or a malformed body.
    pub fn change(&self) -> Option<ChangeData> {
        ChangeData::read(&self.channel, &self.action, self.data.clone())
    }
}

/// A change event's `data`, typed by its channel and action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ChangeData {
    Employee(Employee),
    Department(Department),
    Account(Account),
    /// Action `deleted` on any channel.
    Deleted(DeletedId),
}

impl ChangeData {
    /// [`ChangeData::read`], only when nothing is lost: the typed value writes back to exactly
    /// `data`. For a server re-writing stored events (an older or foreign payload stays as is).
    pub fn read_exact(channel: &str, action: &str, data: &Value) -> Option<Self> {
        let typed = Self::read(channel, action, data.clone())?;
        (serde_json::to_value(&typed).ok().as_ref() == Some(data)).then_some(typed)
    }

    /// A change's `data` in its record type, leniently (missing fields take defaults).
    pub fn read(channel: &str, action: &str, data: Value) -> Option<Self> {
        use serde_json::from_value;
        match (channel, action) {
            (_, "deleted") => from_value(data).ok().map(Self::Deleted),
            (channel::EMPLOYEES, _) => from_value(data).ok().map(Self::Employee),
            (channel::DEPARTMENTS, _) => from_value(data).ok().map(Self::Department),
            (channel::ACCOUNTS, _) => from_value(data).ok().map(Self::Account),
            _ => None,
        }
    }
}

/// A message on channel `system`, typed by its action.
#[derive(Debug, Clone, PartialEq)]
pub enum SystemNotice {
    /// Events the client missed are gone: reload everything, then follow from `seq`.
    Resync(Resync),
    /// The access token runs out soon: sign in again before the socket closes with
    /// [`close::TOKEN_EXPIRED`].
    TokenExpiring(TokenExpiring),
    /// Maintenance started (`maintenance_mode: true`) or ended.
    Maintenance(Maintenance),
    /// The client versions served changed: a client below `min_client_version` must update
    /// (its next call would get `426`), so it can keep unsaved work and offer the update now.
    ClientVersions(crate::system::ClientVersions),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resync {
    pub reason: String,
    /// The last seq the reload includes.
    pub seq: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenExpiring {
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Maintenance {
    pub maintenance_mode: bool,
    pub message: Option<String>,
}

impl SystemNotice {
    pub const RESYNC: &str = "resync";
    pub const TOKEN_EXPIRING: &str = "token_expiring";
    pub const MAINTENANCE: &str = "maintenance";
    pub const CLIENT_VERSIONS: &str = "client_versions";

    pub fn action(&self) -> &'static str {
        match self {
            Self::Resync(_) => Self::RESYNC,
            Self::TokenExpiring(_) => Self::TOKEN_EXPIRING,
            Self::Maintenance(_) => Self::MAINTENANCE,
            Self::ClientVersions(_) => Self::CLIENT_VERSIONS,
        }
    }

    pub fn data(&self) -> Value {
        let data = match self {
            Self::Resync(d) => serde_json::to_value(d),
            Self::TokenExpiring(d) => serde_json::to_value(d),
            Self::Maintenance(d) => serde_json::to_value(d),
            Self::ClientVersions(d) => serde_json::to_value(d),
        };
        data.unwrap_or_default()
    }

    /// A system message's notice, leniently; `None` for an action this build does not know.
    pub fn read(action: &str, data: Value) -> Option<Self> {
        use serde_json::from_value;
        match action {
            Self::RESYNC => from_value(data).ok().map(Self::Resync),
            Self::TOKEN_EXPIRING => from_value(data).ok().map(Self::TokenExpiring),
            Self::MAINTENANCE => from_value(data).ok().map(Self::Maintenance),
            Self::CLIENT_VERSIONS => from_value(data).ok().map(Self::ClientVersions),
            _ => None,
        }
    }
}

impl LiveMessage<Value> {
    /// The notice of a message on channel `system`; `None` for a change or an unknown action.
    pub fn system(&self) -> Option<SystemNotice> {
        (self.channel == channel::SYSTEM).then(|| SystemNotice::read(&self.action, self.data.clone()))?
    }
}

/// Close codes (4000–4999 are the application's own).
pub mod close {
    /// The server is going away (shutdown): reconnect, elsewhere if need be.
    pub const GOING_AWAY: u16 = 1001;
    /// Nothing heard from the client (not even a pong) for the idle timeout.
    pub const IDLE: u16 = 4000;
    /// The access token expired or was withdrawn: sign in again, then reconnect with `since`.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The tenant was suspended or deleted.
    pub const TENANT_UNAVAILABLE: u16 = 4003;
    /// The client did not keep up with its events: reconnect with `since`.
    pub const TOO_SLOW: u16 = 4008;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reads_keep_every_payload_they_cannot_write_back() {
        let employee = serde_json::to_value(Employee { first_name: "Ada".into(), ..Employee::default() }).unwrap();
        assert!(matches!(
            ChangeData::read_exact(channel::EMPLOYEES, "updated", &employee),
            Some(ChangeData::Employee(_))
        ));
        let foreign = serde_json::json!({"note": "orphan"});
        assert!(ChangeData::read_exact(channel::EMPLOYEES, "updated", &foreign).is_none());
        assert!(ChangeData::read(channel::EMPLOYEES, "updated", foreign).is_some(), "lenient for clients");
        let deleted = serde_json::json!({"id": uuid::Uuid::nil()});
        assert!(matches!(ChangeData::read_exact("anything", "deleted", &deleted), Some(ChangeData::Deleted(_))));
    }

    #[test]
    fn system_notices_write_and_read_back_by_action() {
        let notices = [
            SystemNotice::Resync(Resync { reason: "gone".into(), seq: 7 }),
            SystemNotice::TokenExpiring(TokenExpiring { expires_at: 1_900_000_000 }),
            SystemNotice::Maintenance(Maintenance { maintenance_mode: true, message: Some("back at 6".into()) }),
            SystemNotice::ClientVersions(crate::system::ClientVersions {
                min_client_version: "1.2.0".into(),
                latest_version: "1.3.0".into(),
            }),
        ];
        for notice in notices {
            let message = LiveMessage {
                channel: channel::SYSTEM.into(),
                action: notice.action().into(),
                data: notice.data(),
                ..LiveMessage::default()
            };
            assert_eq!(message.system(), Some(notice));
        }
        let change =
            LiveMessage { channel: channel::EMPLOYEES.into(), action: "resync".into(), ..LiveMessage::default() };
        assert_eq!(change.system(), None, "only channel system carries notices");
    }
}
