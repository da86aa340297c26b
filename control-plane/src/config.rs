//! Typed configuration of the control plane, loaded from `NEXACORE_*` environment variables.
//! Secrets have no defaults: the process refuses to start without them.
//!
//! Each component owns the type of its own part (`fleet::CreateDatabaseStrategy`,
//! `identity::throttle::ThrottleConfig`, `migrations::MigrationSettings`, …); this module only
//! assembles them, so that no component depends back on it.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

use crate::domain::DbName;
use crate::fleet::CreateDatabaseStrategy;
use crate::identity::throttle::ThrottleConfig;
use crate::migrations::{MigrationSet, MigrationSettings};
use crate::provision::ProvisionStep;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Source(#[from] http_api::ConfigSourceError),
}

/// Who may call `POST /tenants`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    /// Self-service signup: anyone may create a company (throttled per client address).
    Public,
    /// Only callers with the operator token may create companies.
    OperatorOnly,
}

#[derive(Debug)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Superuser URL of the primary Postgres server. The catalog database lives there, and the
    /// server is registered as the first tenant server on first start.
    pub admin_database_url: SecretString,
    pub catalog_database: DbName,
    /// The database every tenant database is copied from, kept at the latest tenant schema on
    /// every registered server.
    pub template_database: DbName,
    pub master_key: SecretString,
    pub operator_token: SecretString,
    /// An Ed25519 private key (PKCS#8 PEM) to sign tokens with. When absent, a key is
    /// generated on first start and kept, sealed, in the catalog (the dev default).
    pub signing_key_pem: Option<SecretString>,
    /// The tenant router's public URL, returned by login as `api_url`.
    pub router_url: String,
    pub token_ttl: Duration,
    /// How long a sign-in lasts with refreshes (`NEXACORE_SESSION_LIFETIME_SECS`, default 14 h:
    /// a working day without asking for the password again).
    pub session_lifetime: Duration,
    pub token_issuer: String,
    pub token_audience: String,
    pub signup: SignupPolicy,
    pub create_database_strategy: CreateDatabaseStrategy,
    pub login_throttle: ThrottleConfig,
    /// Bounds on concurrent password hashing (`NEXACORE_PASSWORD_HASH_THREADS`, `…_QUEUE`).
    pub password_hashing: crate::identity::hashing::HashingConfig,
    /// How often tenants stuck in `provisioning` or `deleting` are looked for.
    pub reconcile_interval: Duration,
    pub max_body_bytes: usize,
    /// Public signups allowed per client address per hour (operator-token calls are exempt).
    pub signup_limit_per_hour: u32,
    /// Test hook: abort the process right after this provisioning step, to prove that a crash
    /// at any point leaves a working tenant or nothing. Never set in production.
    pub crash_after: Option<ProvisionStep>,
    /// Spare tenant databases kept ready per server, copied from its template ahead of need,
    /// so a signup adopts one instead of waiting for the copy (see `provision::spares`). 0
    /// turns the pool off; each spare costs one template-sized database (≈ 8 MB).
    pub spare_databases_per_server: u32,
    /// How often the spare pool is topped up when no signup woke it.
    pub spare_refill_interval: Duration,
    /// The tenant schema's migrations: templates are kept at the latest, bulk runs apply them.
    /// `tenant_schema`'s embedded list unless a test (or a rehearsal, with
    /// `NEXACORE_TENANT_MIGRATIONS_DIR`) gives another.
    pub tenant_migrations: MigrationSet,
    /// Defaults and limits of bulk migration runs.
    pub migrations: MigrationSettings,
    /// Connection cap and timeouts of the HTTP server.
    pub http: http_api::ConnectionLimits,
    /// Proxies whose `X-Forwarded-For` names the client (`NEXACORE_TRUSTED_PROXIES`).
    pub trusted_proxies: http_api::TrustedProxies,
    /// Outgoing e-mail (`NEXACORE_SMTP_URL`, `NEXACORE_MAIL_FROM`, `NEXACORE_MAIL_DIR`,
    /// `NEXACORE_APP_DOWNLOAD_URL`).
    pub mail: crate::mail::MailSettings,
    /// Invitation and password reset code lifetimes.
    pub people: crate::people::PeopleSettings,
    /// Prometheus `/metrics` and per-request recording (`NEXACORE_METRICS`, default on).
    pub metrics: bool,
    /// Where backups are kept (`NEXACORE_BACKUP_DIR`).
    pub backups: crate::backups::BackupSettings,
    /// Desktop releases (`NEXACORE_RELEASE_DIR`, `NEXACORE_RELEASE_MAX_BYTES`,
    /// `NEXACORE_RELEASE_TRUSTED_KEYS_FILE`, `NEXACORE_RELEASE_ROLLBACK_PAUSE_THRESHOLD`,
    /// `NEXACORE_RELEASE_CHECKS_PER_MINUTE`).
    pub releases: crate::releases::ReleaseSettings,
    /// Tenant moves between servers (`NEXACORE_MOVE_KEEP_SOURCE_HOURS`).
    pub moves: crate::moves::MoveSettings,
    /// Serve HTTPS with these files (`NEXACORE_TLS_CERT_FILE`, `NEXACORE_TLS_KEY_FILE`); plain
    /// HTTP without (behind a proxy that terminates TLS).
    pub tls: Option<http_api::TlsFiles>,
}

impl Config {
    /// A configuration with defaults for everything but the three secrets and the server.
    pub fn new(admin_database_url: SecretString, master_key: SecretString, operator_token: SecretString) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_database_url,
            catalog_database: DbName::parse("nexacore_catalog").expect("valid name"),
            template_database: DbName::parse("nexacore_template").expect("valid name"),
            master_key,
            operator_token,
            signing_key_pem: None,
            router_url: "http://127.0.0.1:8081".into(),
            token_ttl: Duration::from_secs(3600),
            session_lifetime: Duration::from_secs(14 * 3600),
            token_issuer: tenancy::claims::DEFAULT_ISSUER.into(),
            token_audience: tenancy::claims::DEFAULT_AUDIENCE.into(),
            signup: SignupPolicy::Public,
            // Measured here with fsync on: WAL_LOG ≈ 23 ms, FILE_COPY ≈ 115 ms (two checkpoints).
            create_database_strategy: CreateDatabaseStrategy::WalLog,
            login_throttle: ThrottleConfig::default(),
            password_hashing: crate::identity::hashing::HashingConfig::default(),
            reconcile_interval: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            signup_limit_per_hour: 20,
            crash_after: None,
            spare_databases_per_server: 2,
            spare_refill_interval: Duration::from_secs(10),
            tenant_migrations: MigrationSet::embedded(),
            migrations: MigrationSettings::default(),
            http: http_api::ConnectionLimits::default(),
            trusted_proxies: http_api::TrustedProxies::default(),
            mail: crate::mail::MailSettings::default(),
            people: crate::people::PeopleSettings::default(),
            metrics: true,
            backups: crate::backups::BackupSettings::default(),
            releases: crate::releases::ReleaseSettings::default(),
            moves: crate::moves::MoveSettings::default(),
            tls: None,
        }
    }

    /// Reads `NEXACORE_*` variables. Required: `NEXACORE_ADMIN_DATABASE_URL`,
    /// `NEXACORE_MASTER_KEY`, `NEXACORE_OPERATOR_TOKEN`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&http_api::ConfigSource::environment())
    }

    /// [`Config::from_env`] with every variable read through `source` (environment, `*_FILE`,
    /// configuration file, a launcher's fallbacks).
    pub fn from_source(source: &http_api::ConfigSource) -> Result<Self, ConfigError> {
        let var = |name: &'static str| source.get(name);
        let secret = |name: &'static str| -> Result<SecretString, ConfigError> {
            var(name)?.map(SecretString::from).ok_or(ConfigError::Missing(name))
        };
        let mut config = Self::new(
            secret("NEXACORE_ADMIN_DATABASE_URL")?,
            secret("NEXACORE_MASTER_KEY")?,
            secret("NEXACORE_OPERATOR_TOKEN")?,
        );
        if let Some(password) = var("NEXACORE_ADMIN_DATABASE_PASSWORD")? {
            config.admin_database_url = with_password(&config.admin_database_url, &password)?;
        }
        if let Some(v) = var("NEXACORE_LISTEN")? {
            config.listen = v.parse().map_err(|e| invalid("NEXACORE_LISTEN", e))?;
        }
        if let Some(v) = var("NEXACORE_CATALOG_DATABASE")? {
            config.catalog_database = DbName::parse(&v).map_err(|e| invalid("NEXACORE_CATALOG_DATABASE", e))?;
        }
        if let Some(v) = var("NEXACORE_TEMPLATE_DATABASE")? {
            config.template_database = DbName::parse(&v).map_err(|e| invalid("NEXACORE_TEMPLATE_DATABASE", e))?;
        }
        if let Some(v) = var("NEXACORE_SIGNING_KEY")? {
            config.signing_key_pem = Some(SecretString::from(v));
        } else if let Some(path) = var("NEXACORE_SIGNING_KEY_FILE")? {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| invalid("NEXACORE_SIGNING_KEY_FILE", format!("{path}: {e}")))?;
            config.signing_key_pem = Some(SecretString::from(pem));
        }
        if let Some(v) = var("NEXACORE_RELEASE_DIR")? {
            config.releases.dir = v.into();
        }
        if let Some(v) = var("NEXACORE_RELEASE_MAX_BYTES")? {
            config.releases.max_artifact_bytes = v.parse().map_err(|e| invalid("NEXACORE_RELEASE_MAX_BYTES", e))?;
        }
        if let Some(path) = var("NEXACORE_RELEASE_TRUSTED_KEYS_FILE")? {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid("NEXACORE_RELEASE_TRUSTED_KEYS_FILE", format!("{path}: {e}")))?;
            config.releases.trusted_keys = release::TrustedKeys::from_pem(&text)
                .map_err(|e| invalid("NEXACORE_RELEASE_TRUSTED_KEYS_FILE", format!("{path}: {e}")))?;
        }
        if let Some(v) = var("NEXACORE_RELEASE_ROLLBACK_PAUSE_THRESHOLD")? {
            config.releases.rollback_pause_threshold =
                v.parse().map_err(|e| invalid("NEXACORE_RELEASE_ROLLBACK_PAUSE_THRESHOLD", e))?;
        }
        if let Some(v) = var("NEXACORE_RELEASE_CHECKS_PER_MINUTE")? {
            config.releases.checks_per_minute =
                v.parse().map_err(|e| invalid("NEXACORE_RELEASE_CHECKS_PER_MINUTE", e))?;
        }
        if let Some(v) = var("NEXACORE_ROUTER_URL")? {
            config.router_url = v;
        }
        if let Some(v) = var("NEXACORE_SMTP_URL")? {
            config.mail.smtp_url = Some(SecretString::from(v));
        }
        if let Some(v) = var("NEXACORE_MAIL_DIR")? {
            config.mail.directory = Some(v.into());
        }
        if let Some(v) = var("NEXACORE_MAIL_FROM")? {
            config.mail.from = v;
        }
        if let Some(v) = var("NEXACORE_BACKUP_DIR")? {
            config.backups.dir = v.into();
        }
        if let Some(v) = var("NEXACORE_MOVE_KEEP_SOURCE_HOURS")? {
            let hours: u32 = v.parse().map_err(|e| invalid("NEXACORE_MOVE_KEEP_SOURCE_HOURS", e))?;
            config.moves.keep_source = Duration::from_secs(u64::from(hours) * 3600);
        }
        if let Some(v) = var("NEXACORE_BACKUP_SCHEDULE")? {
            config.backups.schedule = match v.trim() {
                "" | "off" => None,
                raw => Some(
                    crate::backups::schedule::BackupSchedule::parse(raw)
                        .map_err(|e| invalid("NEXACORE_BACKUP_SCHEDULE", e))?,
                ),
            };
        }
        if let Some(v) = var("NEXACORE_BACKUP_KEEP")? {
            config.backups.keep = match v.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(invalid(
                        "NEXACORE_BACKUP_KEEP",
                        format!("{v:?}: expected a number of backups, at least 1"),
                    ));
                }
            };
        }
        if let Some(v) = var("NEXACORE_RESTORE_KEEP_OLD_HOURS")? {
            let hours: u32 = v.parse().map_err(|e| invalid("NEXACORE_RESTORE_KEEP_OLD_HOURS", e))?;
            config.backups.keep_old_database = Duration::from_secs(u64::from(hours) * 3600);
        }
        if let Some(v) = var("NEXACORE_BACKUP_PER_SERVER")? {
            config.backups.per_server = match v.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => return Err(invalid("NEXACORE_BACKUP_PER_SERVER", format!("{v:?}: expected 1 to 64"))),
            };
        }
        if let Some(v) = var("NEXACORE_APP_DOWNLOAD_URL")? {
            config.mail.download_url = v;
        }
        if let Some(v) = var("NEXACORE_SESSION_LIFETIME_SECS")? {
            config.session_lifetime =
                Duration::from_secs(v.parse().map_err(|e| invalid("NEXACORE_SESSION_LIFETIME_SECS", e))?);
        }
        if let Some(v) = var("NEXACORE_TOKEN_TTL_SECS")? {
            config.token_ttl = Duration::from_secs(v.parse().map_err(|e| invalid("NEXACORE_TOKEN_TTL_SECS", e))?);
        }
        if let Some(v) = var("NEXACORE_TOKEN_ISSUER")? {
            config.token_issuer = v;
        }
        if let Some(v) = var("NEXACORE_TOKEN_AUDIENCE")? {
            config.token_audience = v;
        }
        if let Some(v) = var("NEXACORE_SIGNUP")? {
            config.signup = match v.as_str() {
                "public" => SignupPolicy::Public,
                "operator" => SignupPolicy::OperatorOnly,
                other => return Err(invalid("NEXACORE_SIGNUP", format!("{other:?}: expected public or operator"))),
            };
        }
        if let Some(v) = var("NEXACORE_CREATE_DATABASE_STRATEGY")? {
            config.create_database_strategy = match v.to_ascii_lowercase().as_str() {
                "file_copy" => CreateDatabaseStrategy::FileCopy,
                "wal_log" => CreateDatabaseStrategy::WalLog,
                other => {
                    return Err(invalid(
                        "NEXACORE_CREATE_DATABASE_STRATEGY",
                        format!("{other:?}: expected file_copy or wal_log"),
                    ));
                }
            };
        }
        if let Some(v) = var("NEXACORE_SPARE_DATABASES")? {
            config.spare_databases_per_server = v.parse().map_err(|e| invalid("NEXACORE_SPARE_DATABASES", e))?;
        }
        if let Some(v) = var("NEXACORE_RECONCILE_INTERVAL_SECS")? {
            config.reconcile_interval =
                Duration::from_secs(v.parse().map_err(|e| invalid("NEXACORE_RECONCILE_INTERVAL_SECS", e))?);
        }
        if let Some(v) = var("NEXACORE_SIGNUP_LIMIT_PER_HOUR")? {
            config.signup_limit_per_hour = v.parse().map_err(|e| invalid("NEXACORE_SIGNUP_LIMIT_PER_HOUR", e))?;
        }
        if let Some(v) = var("NEXACORE_TENANT_MIGRATIONS_DIR")? {
            config.tenant_migrations = MigrationSet::from_dir(std::path::Path::new(&v))
                .map_err(|e| invalid("NEXACORE_TENANT_MIGRATIONS_DIR", e))?;
        }
        let m = &mut config.migrations;
        if let Some(v) = var("NEXACORE_MIGRATION_CONCURRENCY")? {
            m.concurrency = v.parse().map_err(|e| invalid("NEXACORE_MIGRATION_CONCURRENCY", e))?;
        }
        if let Some(v) = var("NEXACORE_MIGRATION_PER_SERVER_CONCURRENCY")? {
            m.per_server_concurrency =
                v.parse().map_err(|e| invalid("NEXACORE_MIGRATION_PER_SERVER_CONCURRENCY", e))?;
        }
        for (name, limit) in [
            ("NEXACORE_MIGRATION_CONCURRENCY", m.concurrency),
            ("NEXACORE_MIGRATION_PER_SERVER_CONCURRENCY", m.per_server_concurrency),
        ] {
            if !(1..=crate::migrations::MAX_CONCURRENCY).contains(&limit) {
                return Err(invalid(name, format!("must be between 1 and {}", crate::migrations::MAX_CONCURRENCY)));
            }
        }
        if let Some(v) = var("NEXACORE_MIGRATION_LOCK_TIMEOUT_MS")? {
            m.lock_timeout = millis("NEXACORE_MIGRATION_LOCK_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = var("NEXACORE_MIGRATION_STATEMENT_TIMEOUT_MS")? {
            m.statement_timeout = millis("NEXACORE_MIGRATION_STATEMENT_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = var("NEXACORE_PASSWORD_HASH_THREADS")? {
            config.password_hashing.threads = v.parse().map_err(|e| invalid("NEXACORE_PASSWORD_HASH_THREADS", e))?;
        }
        if let Some(v) = var("NEXACORE_PASSWORD_HASH_QUEUE")? {
            config.password_hashing.queue = v.parse().map_err(|e| invalid("NEXACORE_PASSWORD_HASH_QUEUE", e))?;
        }
        config.http =
            http_api::ConnectionLimits::from_source(source).map_err(|(name, reason)| invalid(name, reason))?;
        config.metrics = http_api::metrics::enabled_from(source).map_err(|(name, reason)| invalid(name, reason))?;
        config.tls = http_api::TlsFiles::from_source(source).map_err(|(name, reason)| invalid(name, reason))?;
        if let Some(v) = var("NEXACORE_TRUSTED_PROXIES")? {
            config.trusted_proxies =
                http_api::TrustedProxies::parse(&v).map_err(|e| invalid("NEXACORE_TRUSTED_PROXIES", e))?;
        }
        // Crash hooks for the crash-safety tests, compiled in only with the `fault-injection`
        // feature (the tests turn it on); a build without it refuses the variables rather than
        // ignore them.
        #[cfg(feature = "fault-injection")]
        {
            if let Some(v) = var("NEXACORE_FAULT_MIGRATION_CRASH_AFTER")? {
                config.migrations.crash_after_commits =
                    Some(v.parse().map_err(|e| invalid("NEXACORE_FAULT_MIGRATION_CRASH_AFTER", e))?);
            }
            if let Some(v) = var("NEXACORE_FAULT_MOVE_CRASH_AFTER")? {
                config.moves.crash_after = Some(
                    crate::moves::MoveStep::parse(&v)
                        .ok_or_else(|| invalid("NEXACORE_FAULT_MOVE_CRASH_AFTER", v.clone()))?,
                );
            }
            if let Some(v) = var("NEXACORE_FAULT_CRASH_AFTER")? {
                config.crash_after =
                    Some(ProvisionStep::parse(&v).ok_or_else(|| invalid("NEXACORE_FAULT_CRASH_AFTER", v.clone()))?);
            }
        }
        #[cfg(not(feature = "fault-injection"))]
        for name in
            ["NEXACORE_FAULT_MIGRATION_CRASH_AFTER", "NEXACORE_FAULT_CRASH_AFTER", "NEXACORE_FAULT_MOVE_CRASH_AFTER"]
        {
            if var(name)?.is_some() {
                return Err(invalid(name, "fault hooks are not compiled into this build (feature fault-injection)"));
            }
        }
        Ok(config)
    }
}

/// The admin URL with `NEXACORE_ADMIN_DATABASE_PASSWORD` put in (percent-encoded), so a
/// deployment keeps the password in a secret of its own instead of pasting it into a URL.
fn with_password(url: &SecretString, password: &str) -> Result<SecretString, ConfigError> {
    use secrecy::ExposeSecret as _;
    const NAME: &str = "NEXACORE_ADMIN_DATABASE_URL";
    // The URL's own text stays out of the error: it may hold credentials.
    let mut parsed = url::Url::parse(url.expose_secret()).map_err(|e| invalid(NAME, e))?;
    if parsed.password().is_some() {
        return Err(invalid(
            NAME,
            "has a password while NEXACORE_ADMIN_DATABASE_PASSWORD is set: give it in one place",
        ));
    }
    parsed.set_password(Some(password)).map_err(|()| invalid(NAME, "cannot hold a password (no host)"))?;
    Ok(SecretString::from(parsed.to_string()))
}

/// A positive number of milliseconds.
fn millis(name: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match raw.parse::<u32>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms.into())),
        _ => Err(invalid(name, format!("{raw:?}: expected a positive number of milliseconds"))),
    }
}

fn invalid(name: &'static str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { name, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn the_admin_password_is_put_into_the_url_percent_encoded_and_only_once() {
        let url = SecretString::from("postgres://postgres@db.internal:5432/postgres?sslmode=require");
        let merged = with_password(&url, "p@ss:w/rd%?#").unwrap();
        let parsed = url::Url::parse(merged.expose_secret()).unwrap();
        assert_eq!(parsed.username(), "postgres");
        assert_eq!(parsed.host_str(), Some("db.internal"));
        assert_eq!(parsed.query(), Some("sslmode=require"));
        let decoded = url::form_urlencoded::parse(format!("p={}", parsed.password().unwrap()).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned());
        assert_eq!(decoded.as_deref(), Some("p@ss:w/rd%?#"));
        let twice = with_password(&merged, "other").unwrap_err().to_string();
        assert!(twice.contains("NEXACORE_ADMIN_DATABASE_URL") && !twice.contains("p%40ss"), "{twice}");
        assert!(with_password(&SecretString::from("not a url"), "pw").is_err());
    }
}
