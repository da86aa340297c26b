//! Backups of one tenant's database, as the operator API answers them and as a bundle's
//! `manifest.json` holds them (one type for both: a bundle is what the API said, written down).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The format tag of a bundle's manifest; a restore refuses any other.
pub const MANIFEST_FORMAT: &str = "nexacore-backup/1";

/// The file name of the manifest inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What a backup holds and how to check it: the tenant it belongs to, the schema version and
/// the last outbox `seq` of the snapshot that was dumped, and the dump's size and SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct BackupManifest {
    /// `nexacore-backup/1` ([`MANIFEST_FORMAT`]).
    pub format: String,
    pub backup_id: Uuid,
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    /// The name of the database server the tenant lived on.
    pub server: String,
    /// The tenant schema version of the dumped database.
    pub schema_version: i32,
    /// The outbox's last `seq` in the dumped snapshot (0: no change yet).
    pub last_outbox_seq: i64,
    /// Bytes of the dump file.
    pub size: i64,
    /// Hex SHA-256 of the dump file.
    pub sha256: String,
    /// The dump file's name inside the bundle (`pg_dump` custom format).
    pub dump_file: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub tool_versions: ToolVersions,
}

impl Default for BackupManifest {
    fn default() -> Self {
        Self {
            format: String::new(),
            backup_id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            slug: String::new(),
            name: String::new(),
            server: String::new(),
            schema_version: 0,
            last_outbox_seq: 0,
            size: 0,
            sha256: String::new(),
            dump_file: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            tool_versions: ToolVersions::default(),
        }
    }
}

/// The programs that made a backup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct ToolVersions {
    /// `pg_dump --version`.
    pub pg_dump: String,
    /// The database server's `server_version`.
    pub postgres: String,
    /// The control plane's version.
    pub control_plane: String,
}

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum BackupKind {
    /// Asked for by an operator.
    #[default]
    Manual,
    /// Taken by the control plane's schedule.
    Scheduled,
    /// Taken before the tenant was deleted.
    Final,
}

impl BackupKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
            Self::Final => "final",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(Self::Manual),
            "scheduled" => Some(Self::Scheduled),
            "final" => Some(Self::Final),
            _ => None,
        }
    }
}

/// Where a backup is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum BackupStatus {
    /// `pg_dump` is running.
    #[default]
    Running,
    /// The dump and its manifest are complete; `manifest` says what they hold.
    Done,
    /// It failed (or the control plane died while it ran); `error` says why.
    Failed,
    /// Past the retention of scheduled backups: its files are deleted, its manifest kept.
    Expired,
}

impl BackupStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// One backup as the catalog records it (`GET /backups/{id}`, `GET /tenants/{id}/backups`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct BackupView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub kind: BackupKind,
    pub status: BackupStatus,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<OffsetDateTime>,
    /// Once `done`: what the dump holds (the bundle's `manifest.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<BackupManifest>,
}

impl Default for BackupView {
    fn default() -> Self {
        Self {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            kind: BackupKind::Manual,
            status: BackupStatus::Running,
            error: None,
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: None,
            manifest: None,
        }
    }
}

/// `POST /restores/uploads`: a dump received, with what the control plane computed of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct UploadedDump {
    pub upload_id: Uuid,
    pub size: i64,
    pub sha256: String,
}

/// `POST /restores`: restore an uploaded dump, described by its bundle's manifest, either as a
/// new tenant (`slug`) or in place of the tenant it belongs to (`in_place`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct RestoreRequest {
    pub upload_id: Uuid,
    pub manifest: BackupManifest,
    /// Replace the data of the bundle's own tenant (fenced meanwhile).
    pub in_place: bool,
    /// With `in_place`: the tenant (id or slug) the operator means; refused unless it is the
    /// bundle's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Without `in_place`: the new tenant's slug (new id, role and database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Without `in_place`: the new tenant's name (default: the bundle's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Without `in_place`: give the original tenant's members the same roles in the copy.
    pub with_members: bool,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
#[serde(default)]
pub struct RestoreDone {
    pub tenant_id: Uuid,
    pub slug: String,
    pub in_place: bool,
    /// The schema version of the bundle…
    pub from_schema_version: i32,
    /// …and of the restored database (higher when it was migrated after the restore).
    pub schema_version: i32,
    pub last_outbox_seq: i64,
    /// In place: the database it replaced is kept until then (`DELETE
    /// /tenants/{id}/old-databases` drops it sooner); absent when it was dropped at once.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub old_database_kept_until: Option<OffsetDateTime>,
}

/// `DELETE /tenants/{id}/old-databases`: the databases in-place restores had kept, now dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
#[serde(default)]
pub struct OldDatabasesDropped {
    pub dropped: Vec<String>,
}
