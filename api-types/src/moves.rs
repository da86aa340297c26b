//! Moves of a tenant's database to another server, as the operator API answers them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `POST /tenants/{tenant}/moves`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
pub struct MoveRequest {
    /// The target server's name or id. Absent: the least-loaded active server other than the
    /// tenant's own (what `ops servers drain` asks for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Drop the source database once the move is done, instead of keeping it for the
    /// retention period.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", oai(default))]
    pub drop_source: bool,
}

/// One step a move went through, with when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct MoveStep {
    pub step: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A move of a tenant's database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct MoveView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Server names.
    pub source_server: String,
    pub target_server: String,
    /// `copying`, `fenced`, `switched` (running), `done` or `failed`.
    pub state: String,
    pub steps: Vec<MoveStep>,
    pub drop_source: bool,
    /// Whether the source database has been dropped (else it is kept, closed to the tenant).
    pub source_dropped: bool,
    /// How long the tenant's writes were fenced, once known.
    pub fence_ms: Option<i32>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<OffsetDateTime>,
}

impl MoveView {
    /// Whether the move has settled (done or failed).
    pub fn finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed")
    }
}
