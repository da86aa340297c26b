//! Verification of access tokens against the control plane's JWKS.
//!
//! Keys are cached by `kid` (moka). An unknown `kid` triggers a JWKS fetch, but at most one
//! fetch per `refetch_floor`, so a flood of garbage tokens cannot hammer the control plane.
//! The algorithm is pinned to EdDSA: `alg: none`, HS256 "signed" with the public key, and any
//! other algorithm are refused before a key is even looked up. The router can verify tokens;
//! it holds no private key and never mints one.
//!
//! A signature check costs tens of microseconds, more than the rest of a small request, so a
//! token that verified is remembered (keyed by its exact text, so any altered byte misses) until
//! its `exp` or [`VERIFIED_TTL`], whichever comes first. A key change forgets them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::future::Cache;
use tenancy::Claims;
use tokio::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted (EdDSA only)")]
    WrongAlgorithm,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token is from another issuer")]
    WrongIssuer,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("signing keys are unavailable; try again shortly")]
    KeysUnavailable,
}

/// How long a verified token is trusted without checking its signature again.
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Seconds of clock skew tolerated on `exp` and `nbf`, as by the full check.
const LEEWAY_SECS: u64 = 30;

pub struct TokenVerifier {
    http: reqwest::Client,
    verified: Cache<Box<str>, Arc<Claims>>,
    jwks_url: String,
    validation: Validation,
    keys: Cache<String, Arc<DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    refetch_floor: Duration,
    fetches: AtomicU64,
    /// Bumped by every key change: a verification that began before one is not remembered
    /// (its key may be the one withdrawn).
    generation: AtomicU64,
}

impl TokenVerifier {
    /// `http` fetches the JWKS (its roots decide which https servers are trusted).
    pub fn new(http: reqwest::Client, jwks_url: String, issuer: &str, audience: &str, refetch_floor: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Self {
            http,
            verified: Cache::builder().max_capacity(50_000).time_to_live(VERIFIED_TTL).build(),
            jwks_url,
            validation,
            // A backstop: a key change is announced by the catalog and drops them all at once.
            keys: Cache::builder().max_capacity(64).time_to_live(Duration::from_secs(600)).build(),
            last_fetch: Mutex::new(None),
            refetch_floor,
            fetches: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// How many times the JWKS was fetched (for tests and benchmarks).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if let Some(claims) = self.verified.get(token).await {
            // The cache outlives no token: an expired one is refused exactly as by the full check.
            if claims.exp + LEEWAY_SECS as i64 >= time::OffsetDateTime::now_utc().unix_timestamp() {
                return Ok((*claims).clone());
            }
            self.verified.invalidate(token).await;
            return Err(AuthError::Expired);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let claims = self.verify_signature(token).await?;
        if self.generation.load(Ordering::SeqCst) != generation {
            // The keys changed meanwhile: check again against the new set.
            return Box::pin(self.verify(token)).await;
        }
        self.verified.insert(token.into(), Arc::new(claims.clone())).await;
        // Re-checked after the insert too: a change between the check and the insert must not
        // leave this token remembered.
        if self.generation.load(Ordering::SeqCst) != generation {
            self.verified.invalidate(token).await;
        }
        Ok(claims)
    }

    async fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = match self.keys.get(&kid).await {
            Some(key) => key,
            None => {
                self.refresh(false).await?;
                self.keys.get(&kid).await.ok_or(AuthError::UnknownKey)?
            }
        };
        jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            _ => AuthError::Malformed,
        })
    }

    /// Fetches the JWKS unless one was fetched within the floor (`force` skips the floor:
    /// the catalog announced a key change).
    pub async fn refresh(&self, force: bool) -> Result<(), AuthError> {
        let mut last = self.last_fetch.lock().await;
        if !force && last.is_some_and(|at| at.elapsed() < self.refetch_floor) {
            return Ok(());
        }
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let jwks: serde_json::Value =
            async { self.http.get(&self.jwks_url).send().await?.error_for_status()?.json().await }.await.map_err(
                |e: reqwest::Error| {
                    tracing::warn!(error = %e, "fetching the JWKS failed");
                    AuthError::KeysUnavailable
                },
            )?;
        let mut loaded = 0;
        for jwk in jwks["keys"].as_array().into_iter().flatten() {
            let usable = jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519";
            if let (true, Some(kid), Some(x)) = (usable, jwk["kid"].as_str(), jwk["x"].as_str())
                && let Ok(key) = DecodingKey::from_ed_components(x)
            {
                self.keys.insert(kid.to_owned(), Arc::new(key)).await;
                loaded += 1;
            }
        }
        tracing::debug!(keys = loaded, "loaded the JWKS");
        Ok(())
    }

    /// Forgets every key (a rotation or revocation was announced) and fetches the set again.
    pub async fn keys_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.invalidate_all();
        self.verified.invalidate_all();
        if let Err(error) = self.refresh(true).await {
            tracing::warn!(%error, "refetching the JWKS after a key change failed");
        }
    }
}
