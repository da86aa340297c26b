//! The wire contract between the services and their clients, written once. Plain serde types;
//! with the `openapi` feature they also derive poem-openapi's traits, so the services document
//! exactly what they send. Response types read leniently (`#[serde(default)]`): a field a newer
//! server adds or drops never breaks an older client.

pub mod backups;
pub mod doctor;
pub mod employees;
pub mod error;
pub mod ledger;
pub mod live;
pub mod moves;
pub mod password;
pub mod people;
pub mod releases;
pub mod session;
pub mod signup;
pub mod system;
pub mod version;

pub use error::{ErrorBody, FieldProblem};
pub use version::Version;

/// For `#[serde(default, deserialize_with = "api_types::not_null")]` on an optional field whose
/// schema is not nullable: absent is `None`, `null` is refused (naming the field) rather than
/// read as absent, so the API accepts exactly what its OpenAPI document declares.
pub fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}
