//! Provisioning of a company: catalog row, login role, database copied from the template,
//! seed data, admin user and membership, all or nothing.
//!
//! Crash safety rests on two facts:
//! 1. the tenant's catalog row (state `provisioning`) is committed *before* anything is created
//!    on the database server, and it names the database and role that may exist (a signup that
//!    adopts a spare database finds them already there, accounted for by the spare's row until
//!    the transaction that commits the tenant's row deletes it: see [`spares`]);
//! 2. while a provisioning runs, its process holds a transaction-scoped advisory lock on the
//!    tenant in the catalog. A crash closes the connection and releases the lock.
//!
//! The [`reconcile`] pass looks at tenants in `provisioning`: one whose lock it can take has
//! lost its provisioner, so it drops whatever exists of its database and role and deletes the
//! row. A tenant therefore ends as either fully `active` or gone.

mod error;
pub mod metrics;
pub mod reconcile;
pub mod spares;
pub mod validate;

use std::sync::Arc;

use sqlx::{Connection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::catalog::audit::{self, Actor};
use crate::catalog::tenants::{self, NewTenantRow, TenantRow};
use crate::catalog::{self, servers, spares as spares_catalog, users};
use crate::domain::{Slug, TenantId};
use crate::fleet::{self, Fleet, ServerHandle};
use crate::identity::gate::{GateError, PasswordGate};
use crate::mail::{self, sender::MailSender};
use crate::secrets::MasterKey;
pub use error::ProvisionError;
pub use metrics::ProvisionMetrics;
use metrics::Step;
pub use spares::SparePool;
pub use validate::{SignupRequest, ValidSignup};

/// The steps of provisioning, in order. The crash test hook aborts after any of them. A signup
/// that adopts a spare database (see [`spares`]) skips the three steps that build one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionStep {
    /// The catalog row exists in state `provisioning`.
    Reserved,
    RoleCreated,
    DatabaseCreated,
    AccessRevoked,
    /// Objects handed to the tenant's role, seed data written.
    Seeded,
    /// Admin user, membership and `active` committed.
    Activated,
}

impl ProvisionStep {
    pub const ALL: [ProvisionStep; 6] =
        [Self::Reserved, Self::RoleCreated, Self::DatabaseCreated, Self::AccessRevoked, Self::Seeded, Self::Activated];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::RoleCreated => "role_created",
            Self::DatabaseCreated => "database_created",
            Self::AccessRevoked => "access_revoked",
            Self::Seeded => "seeded",
            Self::Activated => "activated",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A provisioned (or replayed) tenant and its admin.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub tenant: TenantRow,
    pub admin_user: Uuid,
    /// The admin membership's token epoch, for the admin's token.
    pub admin_epoch: i64,
    /// True when an earlier request with the same Idempotency-Key created the tenant.
    pub replayed: bool,
}

pub struct Provisioner {
    catalog: PgPool,
    fleet: Arc<Fleet>,
    master: Arc<MasterKey>,
    spares: Arc<SparePool>,
    passwords: Arc<PasswordGate>,
    /// The welcome e-mail goes out through its outbox.
    mail: Arc<MailSender>,
    crash_after: Option<ProvisionStep>,
    metrics: ProvisionMetrics,
}

const IDEMPOTENCY_SCOPE: &str = "create_tenant";

enum Admin {
    Existing(Uuid),
    New(users::UserRow),
}

impl Admin {
    fn id(&self) -> Uuid {
        match self {
            Self::Existing(id) => *id,
            Self::New(row) => row.id,
        }
    }
}

impl Provisioner {
    pub fn new(
        catalog: PgPool,
        fleet: Arc<Fleet>,
        master: Arc<MasterKey>,
        spares: Arc<SparePool>,
        passwords: Arc<PasswordGate>,
        mail: Arc<MailSender>,
        crash_after: Option<ProvisionStep>,
    ) -> Self {
        Self { catalog, fleet, master, spares, passwords, mail, crash_after, metrics: ProvisionMetrics::default() }
    }

    /// Records signups and step times in a service's registry (none by default).
    pub fn with_metrics(mut self, metrics: ProvisionMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The spare databases signups adopt (their counters, for `/metrics`).
    pub fn spares(&self) -> &SparePool {
        &self.spares
    }

    /// The test hook: abort the whole process after `step`, as a crash would.
    fn step_done(&self, step: ProvisionStep, tenant: TenantId) {
        tracing::debug!(%tenant, step = step.as_str(), "provisioning step done");
        if self.crash_after == Some(step) {
            tracing::error!(%tenant, step = step.as_str(), "NEXACORE_FAULT_CRASH_AFTER: aborting the process");
            std::process::abort();
        }
    }

    /// Whether a slug is free (for the availability check and suggestions).
    pub async fn slug_available(&self, slug: &Slug) -> Result<bool, sqlx::Error> {
        Ok(!tenants::slug_taken(&self.catalog, slug.as_str()).await?)
    }

    /// Creates a tenant. Runs to completion even if the caller goes away: call it from a
    /// spawned task so a dropped HTTP request cannot cut it off halfway.
    pub async fn provision(
        &self,
        req: ValidSignup,
        idempotency_key: Option<&str>,
        actor: &Actor,
        client: Option<&str>,
    ) -> Result<Provisioned, ProvisionError> {
        let result = self.provision_counted(req, idempotency_key, actor, client).await;
        self.metrics.signup(&result);
        result
    }

    async fn provision_counted(
        &self,
        mut req: ValidSignup,
        idempotency_key: Option<&str>,
        actor: &Actor,
        client: Option<&str>,
    ) -> Result<Provisioned, ProvisionError> {
        let fingerprint = self.master.fingerprint(&req.canonical_bytes());
        // Held until the end (commit) or released by rollback/crash; see the module docs.
        let mut lock = self.catalog.begin().await?;
        if let Some(key) = idempotency_key {
            // Requests with the same key queue here, so a concurrent duplicate waits for the
            // first and then answers its result instead of racing it.
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(idempotency_lock_key(key)).execute(&mut *lock).await?;
            if let Some(done) = self.replay(key, &fingerprint).await? {
                return Ok(done);
            }
        }

        if req.slug_suggested {
            req.slug = self.free_variant(&req.slug).await?;
        }
        let server_id = servers::least_loaded(&self.catalog).await?.ok_or(ProvisionError::NoCapacity)?;
        let server = self.fleet.server(server_id).await?;
        let admin = self.admin_for(&req, client).await?;

        // No template migration between choosing how to build the database and building it.
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(fleet::template_lock_key(server_id))
            .execute(&mut *lock)
            .await?;
        let started = std::time::Instant::now();
        let (id, adopted) = self.reserve(&mut lock, &req, server_id, idempotency_key, &fingerprint).await?;
        self.metrics.step_took(Step::Reserve, started);
        if adopted {
            self.spares.claimed_one();
        }
        self.step_done(ProvisionStep::Reserved, id);

        // With no spare ready, the signup builds its own database rather than wait for the
        // refiller's: measured here, waiting made the median signup slower (BENCHMARKS.md).
        let started = std::time::Instant::now();
        let built = if adopted {
            self.seed(&server, id, &req, false).await
        } else {
            self.build_database(&server, id, &req).await
        };
        if built.is_ok() {
            self.metrics.step_took(if adopted { Step::SeedSpare } else { Step::BuildDatabase }, started);
        }
        if let Err(error) = built {
            tracing::warn!(tenant = %id, %error, "provisioning failed; undoing it");
            if let Err(undo_error) = undo(&self.fleet, &self.catalog, &server, id).await {
                // The reconciler retries once our lock is gone.
                tracing::error!(tenant = %id, error = %undo_error, "undoing a failed provisioning failed");
            }
            return Err(error);
        }

        let started = std::time::Instant::now();
        let (tenant, admin_epoch) = match self.activate(id, &admin, &req, actor).await {
            Ok(t) => {
                self.metrics.step_took(Step::Activate, started);
                t
            }
            Err(error) => {
                if let Err(undo_error) = undo(&self.fleet, &self.catalog, &server, id).await {
                    tracing::error!(tenant = %id, error = %undo_error, "undoing a failed provisioning failed");
                }
                return Err(error);
            }
        };
        self.step_done(ProvisionStep::Activated, id);
        lock.commit().await?;
        if adopted {
            self.spares.adopted_one();
        }
        tracing::info!(tenant = %id, slug = %tenant.slug, server = %server.name, spare = adopted, "tenant provisioned");
        Ok(Provisioned { tenant, admin_user: admin.id(), admin_epoch, replayed: false })
    }

    /// The result of an earlier request with this key, if it completed.
    async fn replay(&self, key: &str, fingerprint: &str) -> Result<Option<Provisioned>, ProvisionError> {
        let found: Option<(String, Uuid)> =
            sqlx::query_as("SELECT fingerprint, tenant_id FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(IDEMPOTENCY_SCOPE)
                .bind(key)
                .fetch_optional(&self.catalog)
                .await?;
        let Some((stored, tenant_id)) = found else { return Ok(None) };
        if !bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), fingerprint.as_bytes())) {
            return Err(ProvisionError::IdempotencyMismatch);
        }
        let tenant = tenants::get(&self.catalog, tenant_id).await?.ok_or(ProvisionError::InProgress)?;
        if tenant.status() == crate::domain::TenantStatus::Provisioning {
            return Err(ProvisionError::InProgress);
        }
        let (admin, admin_epoch): (Uuid, i64) = sqlx::query_as(
            "SELECT user_id, token_epoch FROM memberships WHERE tenant_id = $1 AND role = 'admin'
             ORDER BY created_at LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_one(&self.catalog)
        .await?;
        Ok(Some(Provisioned { tenant, admin_user: admin, admin_epoch, replayed: true }))
    }

    /// For a suggested slug, the first of `slug`, `slug-2` … `slug-9` that is free.
    async fn free_variant(&self, slug: &Slug) -> Result<Slug, ProvisionError> {
        for n in 1..10 {
            let candidate =
                if n == 1 { slug.clone() } else { Slug::parse(&format!("{slug}-{n}")).unwrap_or(slug.clone()) };
            if self.slug_available(&candidate).await? {
                return Ok(candidate);
            }
        }
        Ok(slug.clone())
    }

    /// The admin's account: an existing user must prove the password (through the same
    /// throttle as login: signup must not be a password oracle); a new one is hashed.
    async fn admin_for(&self, req: &ValidSignup, client: Option<&str>) -> Result<Admin, ProvisionError> {
        let password = req.admin_password.clone();
        match users::by_email(&self.catalog, req.admin_email.as_str()).await? {
            Some(user) => {
                let ok = self
                    .passwords
                    .check(req.admin_email.as_str(), client, password, Some(user.password_hash.clone()))
                    .await
                    .map_err(|e| match e {
                        GateError::Throttled(wait) => ProvisionError::Throttled(wait),
                        GateError::Busy(busy) => ProvisionError::Busy(busy.retry_after),
                    })?;
                if ok { Ok(Admin::Existing(user.id)) } else { Err(ProvisionError::EmailTaken) }
            }
            None => {
                let hash =
                    self.passwords.hash(password).await.map_err(|busy| ProvisionError::Busy(busy.retry_after))?;
                Ok(Admin::New(users::UserRow {
                    id: Uuid::now_v7(),
                    email: req.admin_email.as_str().to_owned(),
                    full_name: req.admin_full_name.clone(),
                    password_hash: hash,
                }))
            }
        }
    }

    /// Commits the tenant's row in state `provisioning` and returns its id, adopting a ready
    /// spare of the server when there is one (its row is deleted in the same transaction). The
    /// id's advisory lock is taken on `lock` before the row is visible, so the reconciler never
    /// mistakes this signup for an abandoned one.
    async fn reserve(
        &self,
        lock: &mut Transaction<'static, Postgres>,
        req: &ValidSignup,
        server_id: Uuid,
        idempotency_key: Option<&str>,
        fingerprint: &str,
    ) -> Result<(TenantId, bool), ProvisionError> {
        let mut tx = self.catalog.begin().await?;
        let spare = if self.spares.enabled() { spares_catalog::claim(&mut *tx, server_id).await? } else { None };
        let id = spare.unwrap_or_default();
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(id.lock_key()).execute(&mut **lock).await?;
        let row = NewTenantRow {
            id,
            slug: req.slug.as_str(),
            name: &req.company_name,
            server_id,
            timezone: &req.timezone,
            currency: &req.currency,
            chart_template: req.chart_template.code,
        };
        if let Err(e) = tenants::insert_provisioning(&mut *tx, &row).await {
            return Err(match catalog::unique_violation(&e) {
                Some(_) => ProvisionError::SlugTaken(req.slug.to_string()),
                None => e.into(),
            });
        }
        if let Some(key) = idempotency_key {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, tenant_id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(IDEMPOTENCY_SCOPE)
            .bind(key)
            .bind(fingerprint)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                // A concurrent request with the same key got there first.
                return Err(ProvisionError::InProgress);
            }
        }
        tx.commit().await?;
        Ok((id, spare.is_some()))
    }

    async fn build_database(
        &self,
        server: &ServerHandle,
        id: TenantId,
        req: &ValidSignup,
    ) -> Result<(), ProvisionError> {
        let (db, role) = (id.database_name(), id.role_name());
        self.fleet.create_role(server, &role).await?;
        self.step_done(ProvisionStep::RoleCreated, id);
        self.fleet.create_database(server, &db, &role).await?;
        self.step_done(ProvisionStep::DatabaseCreated, id);
        self.fleet.revoke_public_access(server, &db).await?;
        self.step_done(ProvisionStep::AccessRevoked, id);

        self.seed(server, id, req, true).await
    }

    /// Writes the company's seed rows into its database, first handing the template's objects
    /// to the tenant's role when the database was just copied (`hand_over`; a spare had that
    /// done when it was built).
    ///
    /// Who writes them (see `fleet`): a database this signup just copied has only ever been
    /// reachable by superusers (`CONNECT` revoked, the tenant not yet `active`, so no router
    /// opens it), and one superuser transaction hands it over and seeds it. An adopted spare
    /// has existed for a while, handed over to a role whose password routers can derive, so it
    /// is seeded as that role: nothing planted in it could run as superuser.
    async fn seed(
        &self,
        server: &ServerHandle,
        id: TenantId,
        req: &ValidSignup,
        hand_over: bool,
    ) -> Result<(), ProvisionError> {
        let (db, role) = (id.database_name(), id.role_name());
        let mut conn = match hand_over {
            true => server.connect_to(&db).await?,
            false => self.fleet.connect_as_tenant(server, &db, &role).await?,
        };
        let seeded = async {
            let mut tx = conn.begin().await?;
            if hand_over {
                fleet::hand_over(&mut tx, &role).await?;
                // The seed's tables live in `public`; functions still resolve in `pg_catalog` first.
                sqlx::raw_sql("SET LOCAL search_path = pg_catalog, public").execute(&mut *tx).await?;
            }
            let seed = tenant_schema::seed::CompanySeed {
                company_name: &req.company_name,
                timezone: &req.timezone,
                currency: &req.currency,
                chart_template: req.chart_template,
                departments: &req.departments,
            };
            tenant_schema::seed::seed_company(&mut tx, &seed).await?;
            tx.commit().await?;
            Ok::<_, ProvisionError>(())
        }
        .await;
        conn.close().await.ok();
        seeded?;
        self.step_done(ProvisionStep::Seeded, id);
        Ok(())
    }

    async fn activate(
        &self,
        id: TenantId,
        admin: &Admin,
        req: &ValidSignup,
        actor: &Actor,
    ) -> Result<(TenantRow, i64), ProvisionError> {
        let mut tx = self.catalog.begin().await?;
        if let Admin::New(user) = admin
            && let Err(e) = users::insert(&mut *tx, user).await
        {
            // Someone signed up with the same e-mail meanwhile.
            return Err(match catalog::unique_violation(&e) {
                Some(_) => ProvisionError::EmailTaken,
                None => e.into(),
            });
        }
        let epoch = users::add_membership(&mut *tx, admin.id(), id.0, tenancy::Role::Admin.as_str()).await?;
        tenants::activate(&mut *tx, id.0, self.fleet.latest_version()).await?;
        audit::record(
            &mut *tx,
            actor,
            "tenant.created",
            Some(id.0),
            serde_json::json!({ "slug": req.slug.as_str(), "admin": req.admin_email.as_str() }),
        )
        .await?;
        let tenant = tenants::get(&mut *tx, id.0).await?.expect("inserted above");
        let download = &self.mail.settings().download_url;
        let welcome = mail::templates::welcome(id.0, &tenant.name, req.admin_email.as_str(), download);
        mail::enqueue(&mut *tx, &self.master, &welcome).await?;
        tx.commit().await?;
        self.mail.wake();
        Ok((tenant, epoch))
    }
}

/// The advisory-lock key serialising requests that carry the same Idempotency-Key.
fn idempotency_lock_key(key: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{IDEMPOTENCY_SCOPE}:{key}"));
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Drops whatever exists of a tenant's database and role, then its catalog row.
pub(crate) async fn undo(
    fleet: &Fleet,
    catalog: &PgPool,
    server: &ServerHandle,
    id: TenantId,
) -> Result<(), ProvisionError> {
    fleet.drop_tenant(server, &id.database_name(), &id.role_name()).await?;
    tenants::delete_provisioning(catalog, id.0).await?;
    Ok(())
}

/// Undoes a restore as a new tenant (see `backups::restore`): the same as an interrupted
/// provisioning.
pub(crate) async fn undo_restored(
    fleet: &Fleet,
    catalog: &PgPool,
    server: &ServerHandle,
    id: TenantId,
) -> Result<(), ProvisionError> {
    undo(fleet, catalog, server, id).await
}
