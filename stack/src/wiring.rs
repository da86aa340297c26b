//! How the services are wired to each other, for operators who deploy them separately: the
//! secrets a fresh install needs, the tenant role key the routers derive passwords from, and the
//! URL routers log into the catalog with. `ops` reaches the control plane's rules through here
//! rather than depending on the service crate.

use control_plane::domain::DbName;
use control_plane::secrets::MasterKey;
use secrecy::{ExposeSecret as _, SecretString};

use crate::StackError;

/// A fresh master key and operator token.
pub fn generated_secrets() -> (SecretString, SecretString) {
    control_plane::app::generated_secrets()
}

/// The tenant role key (hex) the routers need, derived from the control plane's master key.
pub fn tenant_role_key_hex(master_key: &SecretString) -> Result<SecretString, StackError> {
    let key = MasterKey::from_base64(master_key).map_err(|e| StackError::Wiring(format!("master key: {e}")))?;
    Ok(SecretString::from(key.tenant_role_key().to_hex().expose_secret().to_owned()))
}

/// The routers' catalog URL: the admin URL with the catalog's read-only router role in place
/// of the superuser (its password derived from the role key, which the routers hold anyway).
pub fn router_catalog_url(admin_url: &str, catalog: &str) -> Result<String, StackError> {
    let catalog = DbName::parse(catalog).map_err(|e| StackError::Wiring(format!("catalog: {e}")))?;
    control_plane::catalog::access::router_catalog_url(admin_url, &catalog)
        .map_err(|e| StackError::Wiring(format!("database URL is not a URL: {e}")))
}
