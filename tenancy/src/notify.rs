//! Notifications the catalog sends (Postgres `NOTIFY`, from triggers in the catalog's
//! migrations) when something a router caches changes. Routers `LISTEN` on [`CHANNEL`] with one
//! connection each and drop what the payload names; cache TTLs are the backstop for a
//! notification lost while a listener reconnects.

use uuid::Uuid;

/// The channel every catalog change is announced on.
pub const CHANNEL: &str = "nexacore_catalog";

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogEvent {
    /// A tenant's row changed (status, maintenance, schema version or lock, or deletion).
    Tenant { id: Uuid },
    /// Signing keys were added or retired.
    Keys,
    /// Platform settings (maintenance, client versions) changed.
    Settings,
    /// A user's membership in a tenant was added, changed (role, token epoch) or removed.
    Membership { user: Uuid, tenant: Uuid },
}

impl CatalogEvent {
    /// Parses a payload; `None` for anything unknown (a newer control plane may send more kinds).
    pub fn parse(payload: &str) -> Option<Self> {
        serde_json::from_str(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_of_the_catalog_triggers_parse() {
        let id = Uuid::nil();
        assert_eq!(
            CatalogEvent::parse(&format!(r#"{{"kind":"tenant","id":"{id}"}}"#)),
            Some(CatalogEvent::Tenant { id })
        );
        assert_eq!(CatalogEvent::parse(r#"{"kind":"keys"}"#), Some(CatalogEvent::Keys));
        assert_eq!(CatalogEvent::parse(r#"{"kind":"settings"}"#), Some(CatalogEvent::Settings));
        assert_eq!(
            CatalogEvent::parse(&format!(r#"{{"kind":"membership","user":"{id}","tenant":"{id}"}}"#)),
            Some(CatalogEvent::Membership { user: id, tenant: id })
        );
        assert_eq!(CatalogEvent::parse(r#"{"kind":"future"}"#), None);
    }
}
