//! The list of tenant migrations a control plane applies to templates and tenants.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use refinery::Migration;

/// Tenant migrations in version order, with unique versions; cheap to clone.
///
/// Production uses [`MigrationSet::embedded`] (the `tenant-schema` crate's migrations). Tests and
/// rehearsals give another list ([`MigrationSet::new`], or a directory of `V<n>__<name>.sql`
/// files with `NEXACORE_TENANT_MIGRATIONS_DIR`) through the same configuration field, so the
/// start-up path stays the same.
#[derive(Clone)]
pub struct MigrationSet(Arc<[Migration]>);

impl MigrationSet {
    /// The migrations compiled into `tenant-schema`.
    pub fn embedded() -> Self {
        Self::new(tenant_schema::migrations()).expect("the embedded migrations are a valid set")
    }

    /// A set from any list: sorted; refused when empty or when a version repeats.
    pub fn new(mut migrations: Vec<Migration>) -> Result<Self, String> {
        migrations.sort();
        if migrations.is_empty() {
            return Err("a migration set needs at least one migration".into());
        }
        if let Some(pair) = migrations.windows(2).find(|w| w[0].version() == w[1].version()) {
            return Err(format!("version {} appears twice ({} and {})", pair[0].version(), pair[0], pair[1]));
        }
        Ok(Self(migrations.into()))
    }

    /// The `V<n>__<name>.sql` files of a directory.
    pub fn from_dir(dir: &Path) -> Result<Self, String> {
        let migrations = refinery::load_sql_migrations(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Self::new(migrations)
    }

    pub fn as_slice(&self) -> &[Migration] {
        &self.0
    }

    /// The highest version: what `ensure_template` and new tenants reach.
    pub fn latest_version(&self) -> i32 {
        self.0.last().map_or(0, Migration::version)
    }

    pub fn contains(&self, version: i32) -> bool {
        self.0.iter().any(|m| m.version() == version)
    }

    pub fn versions(&self) -> Vec<i32> {
        self.0.iter().map(Migration::version).collect()
    }
}

impl Default for MigrationSet {
    fn default() -> Self {
        Self::embedded()
    }
}

impl fmt::Debug for MigrationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|m| m.to_string())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Migration {
        Migration::unapplied(name, "SELECT 1").unwrap()
    }

    #[test]
    fn a_set_is_sorted_and_refuses_repeated_versions() {
        let set = MigrationSet::new(vec![m("V2__b"), m("V1__a")]).unwrap();
        assert_eq!(set.versions(), [1, 2]);
        assert_eq!(set.latest_version(), 2);
        assert!(MigrationSet::new(vec![m("V1__a"), m("V1__b")]).is_err());
        assert!(MigrationSet::new(Vec::new()).is_err());
    }

    #[test]
    fn the_embedded_set_is_tenant_schemas() {
        assert_eq!(MigrationSet::embedded().latest_version(), tenant_schema::latest_version());
    }
}
