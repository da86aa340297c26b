//! The signing keyring: Ed25519 keys kept (private half sealed with the master key) in the
//! catalog, one current key that signs, and retired keys that still verify until their
//! tokens have expired. The JWKS is built from it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::RwLock;

use crate::catalog::audit::{self, Actor};
use crate::secrets::MasterKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the configured signing key is not an Ed25519 private key in PKCS#8 PEM form")]
    BadConfiguredKey,
    #[error("a stored signing key cannot be unsealed with this master key")]
    Unseal,
    #[error("no current signing key in the catalog")]
    NoCurrentKey,
    #[error("no signing key has this id")]
    UnknownKey,
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A public key as the JWKS lists it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    pub x: [u8; 32],
    pub verify_until: Option<OffsetDateTime>,
}

struct CurrentKey {
    kid: String,
    encoding: EncodingKey,
}

struct KeyState {
    current: Arc<CurrentKey>,
    public: Vec<PublicKey>,
}

pub struct Keyring {
    catalog: PgPool,
    master: Arc<MasterKey>,
    /// How long a retired key keeps verifying: the token lifetime plus a margin for clock skew.
    verify_grace: Duration,
    state: RwLock<KeyState>,
}

/// The key id of a public key: the start of its SHA-256, so equal keys get equal ids.
fn kid_of(public: &[u8; 32]) -> String {
    use sha2::Digest as _;
    hex::encode(&sha2::Sha256::digest(public)[..8])
}

const LOCK_KEY: i64 = 0x6e78_6b65_7973; // "nxkeys": serialises key changes across replicas

impl Keyring {
    /// Loads the keyring, first making the configured key current (production) or generating
    /// a key when the catalog has none (dev).
    pub async fn open(
        catalog: PgPool,
        master: Arc<MasterKey>,
        configured_pem: Option<&SecretString>,
        token_ttl: Duration,
    ) -> Result<Self, KeyError> {
        let verify_grace = token_ttl + Duration::from_secs(120);
        let configured = configured_pem
            .map(|pem| SigningKey::from_pkcs8_pem(pem.expose_secret()).map_err(|_| KeyError::BadConfiguredKey))
            .transpose()?;
        {
            let mut tx = catalog.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute(&mut *tx).await?;
            let current: Option<String> = sqlx::query_scalar("SELECT kid FROM signing_keys WHERE retired_at IS NULL")
                .fetch_optional(&mut *tx)
                .await?;
            match (configured, current) {
                (Some(key), current) => {
                    let kid = kid_of(&key.verifying_key().to_bytes());
                    if current.as_deref() != Some(kid.as_str()) {
                        retire_current(&mut tx, verify_grace).await?;
                        sqlx::query("DELETE FROM signing_keys WHERE kid = $1").bind(&kid).execute(&mut *tx).await?;
                        insert_key(&mut tx, &master, &key).await?;
                        tracing::info!(%kid, "the configured signing key is now current");
                    }
                }
                (None, None) => {
                    let key = SigningKey::from_bytes(&rand::random());
                    insert_key(&mut tx, &master, &key).await?;
                    tracing::info!(kid = %kid_of(&key.verifying_key().to_bytes()), "generated a signing key");
                }
                (None, Some(_)) => {}
            }
            tx.commit().await?;
        }
        let state = load(&catalog, &master).await?;
        Ok(Self { catalog, master, verify_grace, state: RwLock::new(state) })
    }

    /// Re-reads the keys from the catalog (another replica may have rotated).
    pub async fn reload(&self) -> Result<(), KeyError> {
        let state = load(&self.catalog, &self.master).await?;
        *self.state.write().await = state;
        Ok(())
    }

    /// Makes a new key current; the old one keeps verifying for the token lifetime. Audited in
    /// the same transaction.
    pub async fn rotate(&self, actor: &Actor) -> Result<String, KeyError> {
        let key = SigningKey::from_bytes(&rand::random());
        let mut tx = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute(&mut *tx).await?;
        retire_current(&mut tx, self.verify_grace).await?;
        let kid = insert_key(&mut tx, &self.master, &key).await?;
        audit::record(&mut *tx, actor, "keys.rotated", None, serde_json::json!({ "kid": kid })).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Withdraws a key at once (it leaked): it stops verifying now, not when its tokens expire,
    /// and the catalog's notice makes every router forget it. When it is the current key, a new
    /// one becomes current in the same transaction. Audited in that transaction too. Returns
    /// the new current key's id when one was made; `Err(UnknownKey)` for an unknown `kid`.
    pub async fn revoke(&self, kid: &str, actor: &Actor) -> Result<Option<String>, KeyError> {
        let mut tx = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute(&mut *tx).await?;
        let current: Option<bool> = sqlx::query_scalar("SELECT retired_at IS NULL FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else { return Err(KeyError::UnknownKey) };
        let replacement = if current {
            retire_current(&mut tx, Duration::ZERO).await?;
            Some(insert_key(&mut tx, &self.master, &SigningKey::from_bytes(&rand::random())).await?)
        } else {
            None
        };
        sqlx::query(
            "UPDATE signing_keys SET retired_at = coalesce(retired_at, now()), verify_until = now() WHERE kid = $1",
        )
        .bind(kid)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({ "kid": kid, "new_current": replacement });
        audit::record(&mut *tx, actor, "keys.revoked", None, details).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(replacement)
    }

    /// The key that signs new tokens: (kid, key).
    pub async fn current(&self) -> (String, EncodingKey) {
        let state = self.state.read().await;
        (state.current.kid.clone(), state.current.encoding.clone())
    }

    /// Every key that still verifies, current first.
    pub async fn public_keys(&self) -> Vec<PublicKey> {
        let now = OffsetDateTime::now_utc();
        let state = self.state.read().await;
        state.public.iter().filter(|k| k.verify_until.is_none_or(|until| until > now)).cloned().collect()
    }

    /// The JWKS document (RFC 7517, OKP keys per RFC 8037), read from the catalog on every
    /// call: routers fetch it when the catalog announces a key change, and whichever replica
    /// answers must not serve a key revoked a moment ago (keys are few; it is one small query).
    pub async fn jwks(&self) -> serde_json::Value {
        if let Err(error) = self.reload().await {
            tracing::warn!(%error, "reloading signing keys for the JWKS failed; serving the last known");
        }
        let keys: Vec<_> = self
            .public_keys()
            .await
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": k.kid, "x": B64URL.encode(k.x),
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub async fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.public_keys().await.into_iter().find(|k| k.kid == kid).map(|k| DecodingKey::from_ed_der(&k.x))
    }
}

async fn retire_current(tx: &mut sqlx::PgConnection, grace: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE signing_keys SET retired_at = now(), verify_until = now() + make_interval(secs => $1)
         WHERE retired_at IS NULL",
    )
    .bind(grace.as_secs_f64())
    .execute(tx)
    .await?;
    Ok(())
}

async fn insert_key(tx: &mut sqlx::PgConnection, master: &MasterKey, key: &SigningKey) -> Result<String, KeyError> {
    let public = key.verifying_key().to_bytes();
    let kid = kid_of(&public);
    let der = key.to_pkcs8_der().map_err(|_| KeyError::BadConfiguredKey)?;
    sqlx::query("INSERT INTO signing_keys (kid, public_key, private_key_sealed) VALUES ($1, $2, $3)")
        .bind(&kid)
        .bind(public.as_slice())
        .bind(master.seal(der.as_bytes()))
        .execute(tx)
        .await?;
    Ok(kid)
}

/// kid, public key, sealed private key, retired_at, verify_until.
type KeyRow = (String, Vec<u8>, Vec<u8>, Option<OffsetDateTime>, Option<OffsetDateTime>);

async fn load(catalog: &PgPool, master: &MasterKey) -> Result<KeyState, KeyError> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT kid, public_key, private_key_sealed, retired_at, verify_until FROM signing_keys
         WHERE retired_at IS NULL OR verify_until > now()
         ORDER BY retired_at DESC NULLS FIRST, created_at DESC",
    )
    .fetch_all(catalog)
    .await?;
    let mut current = None;
    let mut public = Vec::new();
    for (kid, public_key, sealed, retired_at, verify_until) in rows {
        let x: [u8; 32] = public_key.as_slice().try_into().map_err(|_| KeyError::Unseal)?;
        if retired_at.is_none() {
            let der = master.unseal(&sealed).map_err(|_| KeyError::Unseal)?;
            current = Some(Arc::new(CurrentKey { kid: kid.clone(), encoding: EncodingKey::from_ed_der(&der) }));
        }
        public.push(PublicKey { kid, x, verify_until });
    }
    Ok(KeyState { current: current.ok_or(KeyError::NoCurrentKey)?, public })
}
