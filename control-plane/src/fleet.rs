//! The fleet of Postgres servers that hold tenant databases: superuser pools per server, the
//! DDL the control plane runs there, and each server's template database.
//!
//! Every identifier that reaches DDL here is a [`DbName`] or [`RoleName`]; nothing is formatted
//! from request text.
//!
//! Two kinds of session enter a tenant's database, and the difference is the security model:
//! - **superuser sessions** ([`ServerHandle::connect_to`]) only create, hand over, grant and
//!   drop. They start with `search_path` pinned to `pg_catalog` (a connection option outranks
//!   the `ALTER DATABASE … SET` a tenant owner may plant), and never read or write a
//!   tenant-owned object: a tenant's view, trigger or function would run as superuser, and
//!   `SET ROLE` is no sandbox there (code running under it can `RESET ROLE`).
//! - **tenant sessions** ([`Fleet::connect_as_tenant`]) log in as the tenant's own role, with
//!   its derived password: migrations, history reads and seeding of an adopted spare run with
//!   exactly the rights the tenant has, so nothing it planted can gain more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::catalog::access;
use crate::catalog::audit::{self, Actor};
use crate::catalog::{self, is_duplicate, servers::ServerRow};
use crate::domain::{DbName, RoleName};
use crate::migrations::set::MigrationSet;
use crate::secrets::MasterKey;

/// The role that owns the objects of every template database. A new tenant database starts
/// with objects owned by it, and provisioning hands them to the tenant's role with
/// `REASSIGN OWNED`, so each tenant role owns exactly its own database's objects.
pub const SCHEMA_OWNER_ROLE: &str = "nexacore_schema_owner";

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("database server {0} is not registered")]
    UnknownServer(Uuid),
    #[error("the stored credentials of server {0} cannot be read with this master key")]
    Credentials(Uuid),
    #[error("cannot connect to database server {server}: {source}")]
    Connect { server: String, source: sqlx::Error },
    #[error("migrating the template database failed: {0}")]
    Template(#[from] tenant_schema::SchemaError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// One registered server: where to connect as superuser, and a small pool for DDL.
#[derive(Clone)]
pub struct ServerHandle {
    pub id: Uuid,
    pub name: String,
    admin: PgConnectOptions,
    pool: PgPool,
    /// The URL's TLS parameters as libpq variables, for `pg_dump`/`pg_restore`.
    tool_tls: Vec<(&'static str, String)>,
}

impl ServerHandle {
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Superuser connection options for one database on this server, `search_path` pinned to
    /// `pg_catalog` (see the module docs).
    pub fn options_for(&self, database: &DbName) -> PgConnectOptions {
        pin_search_path(self.admin.clone().database(database.as_str()))
    }

    /// A superuser connection to one database on this server.
    pub async fn connect_to(&self, database: &DbName) -> Result<PgConnection, FleetError> {
        PgConnection::connect_with(&self.options_for(database))
            .await
            .map_err(|source| FleetError::Connect { server: self.name.clone(), source })
    }
}

/// Superuser sessions resolve every unqualified name in `pg_catalog` only: a tenant owner can
/// `ALTER DATABASE … SET search_path` to put its own schema first, and the connection's own
/// option outranks that setting.
pub fn pin_search_path(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("search_path", "pg_catalog")])
}

/// Hands every object a tenant database copied from the template to the tenant's own role,
/// with `CREATE` on schema `public` (its migrations run as that role; owning the database it
/// can create schemas anyway). Run inside that database; runs no tenant code.
pub async fn hand_over(conn: &mut PgConnection, role: &RoleName) -> Result<(), sqlx::Error> {
    let sql = format!(
        "REASSIGN OWNED BY {SCHEMA_OWNER_ROLE} TO {role}; REVOKE ALL ON SCHEMA public FROM {SCHEMA_OWNER_ROLE}; \
         GRANT CREATE ON SCHEMA public TO {role}",
        role = role.quoted()
    );
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// How `CREATE DATABASE … TEMPLATE` copies the template (Postgres 15+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDatabaseStrategy {
    FileCopy,
    WalLog,
}

impl CreateDatabaseStrategy {
    pub fn sql_keyword(&self) -> &'static str {
        match self {
            Self::FileCopy => "FILE_COPY",
            Self::WalLog => "WAL_LOG",
        }
    }
}

pub struct Fleet {
    catalog: PgPool,
    master: Arc<MasterKey>,
    template: DbName,
    strategy: CreateDatabaseStrategy,
    /// The tenant migrations templates are kept at (the latest of them).
    migrations: MigrationSet,
    servers: RwLock<HashMap<Uuid, ServerHandle>>,
}

impl Fleet {
    pub fn new(
        catalog: PgPool,
        master: Arc<MasterKey>,
        template: DbName,
        strategy: CreateDatabaseStrategy,
        migrations: MigrationSet,
    ) -> Self {
        Self { catalog, master, template, strategy, migrations, servers: RwLock::new(HashMap::new()) }
    }

    pub fn template(&self) -> &DbName {
        &self.template
    }

    /// The schema version templates are kept at, hence the version new tenants are born at.
    pub fn latest_version(&self) -> i32 {
        self.migrations.latest_version()
    }

    /// The handle of a server, connecting on first use.
    pub async fn server(&self, id: Uuid) -> Result<ServerHandle, FleetError> {
        if let Some(handle) = self.servers.read().await.get(&id) {
            return Ok(handle.clone());
        }
        let row = catalog::servers::get(&self.catalog, id).await?.ok_or(FleetError::UnknownServer(id))?;
        let handle = self.connect(&row)?;
        self.servers.write().await.insert(id, handle.clone());
        Ok(handle)
    }

    fn connect(&self, row: &ServerRow) -> Result<ServerHandle, FleetError> {
        let url = self.master.unseal(&row.admin_url_sealed).map_err(|_| FleetError::Credentials(row.id))?;
        let url = SecretString::from(String::from_utf8(url).map_err(|_| FleetError::Credentials(row.id))?);
        let admin = catalog::parse_url(&url)
            .map_err(|_| FleetError::Credentials(row.id))?
            .application_name("nexacore-control-plane");
        // Lazy: a server that is down must not stop the control plane from starting.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            .connect_lazy_with(pin_search_path(admin.clone()));
        let tool_tls = libpq_tls(url.expose_secret());
        Ok(ServerHandle { id: row.id, name: row.name.clone(), admin, pool, tool_tls })
    }

    /// Registers a server in the catalog after checking that its URL works as a superuser
    /// that can create roles and databases, and prepares its template database.
    /// The registration is audited (as `actor`) in the transaction that inserts the server.
    pub async fn register(
        &self,
        name: &str,
        admin_url: &SecretString,
        capacity: i32,
        actor: &Actor,
    ) -> Result<Uuid, RegisterError> {
        let options = catalog::parse_url(admin_url).map_err(|_| RegisterError::BadUrl)?;
        let mut conn = PgConnection::connect_with(&options).await.map_err(|e| {
            tracing::warn!(server = name, error = %e, "a server being registered cannot be reached");
            RegisterError::Unreachable(unreachable_reason(&e))
        })?;
        let (superuser,): (bool,) = sqlx::query_as("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .map_err(FleetError::from)?;
        conn.close().await.ok();
        if !superuser {
            return Err(RegisterError::NotSuperuser);
        }
        let row = ServerRow {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            admin_url_sealed: self.master.seal(admin_url.expose_secret().as_bytes()),
            host: options.get_host().to_owned(),
            port: i32::from(options.get_port()),
            capacity,
            status: "active".into(),
        };
        let mut tx = self.catalog.begin().await.map_err(FleetError::from)?;
        match catalog::servers::insert(&mut *tx, &row).await {
            Ok(()) => {}
            Err(e) if catalog::unique_violation(&e).is_some() => return Err(RegisterError::NameTaken),
            Err(e) => return Err(FleetError::from(e).into()),
        }
        let details = serde_json::json!({ "server": row.id, "name": name });
        audit::record(&mut *tx, actor, "server.registered", None, details).await.map_err(FleetError::from)?;
        tx.commit().await.map_err(FleetError::from)?;
        let handle = self.server(row.id).await?;
        self.ensure_template(&handle).await?;
        Ok(row.id)
    }

    /// Connection options to log in as a tenant's own role to its own database (password derived
    /// from the master key), with `search_path` set to `public` where the schema lives.
    fn tenant_options(&self, server: &ServerHandle, db: &DbName, role: &RoleName) -> PgConnectOptions {
        let password = self.master.tenant_role_key().password_for(role);
        server
            .admin
            .clone()
            .username(role.as_str())
            .password(password.expose_secret())
            .database(db.as_str())
            .options([("search_path", "public")])
    }

    /// Where and as whom a Postgres tool (`pg_dump`, `pg_restore`) logs in as the tenant's own
    /// role, to `db` (its own database, or a fresh one it owns during a restore).
    pub fn tenant_login(&self, server: &ServerHandle, db: &DbName, role: &RoleName) -> TenantLogin {
        TenantLogin {
            host: server.admin.get_host().to_owned(),
            port: server.admin.get_port(),
            user: role.as_str().to_owned(),
            database: db.as_str().to_owned(),
            password: self.master.tenant_role_key().password_for(role),
            tls: server.tool_tls.clone(),
        }
    }

    /// A session as the tenant's own role in its own database (see the module docs).
    pub async fn connect_as_tenant(
        &self,
        server: &ServerHandle,
        db: &DbName,
        role: &RoleName,
    ) -> Result<PgConnection, FleetError> {
        PgConnection::connect_with(&self.tenant_options(server, db, role))
            .await
            .map_err(|source| FleetError::Connect { server: server.name.clone(), source })
    }

    /// Gives a tenant role `CREATE` on its database's schema `public` if it lacks it (tenants
    /// provisioned before [`hand_over`] granted it). A superuser session; runs no tenant code.
    pub async fn grant_schema_create(
        &self,
        server: &ServerHandle,
        db: &DbName,
        role: &RoleName,
    ) -> Result<(), FleetError> {
        let mut conn = server.connect_to(db).await?;
        let sql = format!("GRANT CREATE ON SCHEMA public TO {}", role.quoted());
        let granted = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
        conn.close().await.ok();
        granted?;
        Ok(())
    }

    /// Makes sure the server has the schema-owner role and a template database at the latest
    /// tenant schema. Safe to call concurrently: a session advisory lock on the server
    /// serialises callers, and provisioning takes the same lock in shared mode (see
    /// `provision`), so no copy is ever taken of a half-migrated template.
    pub async fn ensure_template(&self, server: &ServerHandle) -> Result<(), FleetError> {
        // Transaction-scoped, on the catalog: released on commit, on rollback and when the
        // connection dies, so a crash can never leave the template locked.
        let mut lock = self.catalog.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(template_lock_key(server.id)).execute(&mut *lock).await?;
        let mut conn = server.pool.acquire().await?;
        let result = self.ensure_template_locked(server, &mut conn).await;
        if let Ok(true) = result {
            // Spares are copies of the old template: retired before the lock is released.
            catalog::spares::retire_all(&mut *lock, server.id).await?;
        }
        lock.commit().await?;
        result.map(|_| ())
    }

    /// Returns whether the template changed (created or migrated).
    async fn ensure_template_locked(&self, server: &ServerHandle, conn: &mut PgConnection) -> Result<bool, FleetError> {
        let sql = format!("CREATE ROLE {SCHEMA_OWNER_ROLE} NOLOGIN");
        match sqlx::query(AssertSqlSafe(sql)).execute(&mut *conn).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if !database_exists(&mut *conn, &self.template).await? {
            let t = self.template.quoted();
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {t}"))).execute(&mut *conn).await?;
            sqlx::query(AssertSqlSafe(format!("ALTER DATABASE {t} IS_TEMPLATE true"))).execute(&mut *conn).await?;
            tracing::info!(server = %server.name, template = %self.template, "created the template database");
        }
        // Every start and every registration: no tenant role may log into a database that is
        // not its own (`postgres`, `template1`, the template; the catalog does its own).
        access::close_to_public(&mut *conn, &[&self.template]).await?;
        let mut template = server.connect_to(&self.template).await?;
        let sql = format!("GRANT CREATE ON SCHEMA public TO {SCHEMA_OWNER_ROLE}");
        sqlx::query(AssertSqlSafe(sql)).execute(&mut template).await?;
        // Objects created by the migrations belong to the schema owner, not to the superuser;
        // no tenant can reach the template, so the superuser session may resolve names in it.
        sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {SCHEMA_OWNER_ROLE}; SET search_path = public")))
            .execute(&mut template)
            .await?;
        let report = tenant_schema::migrate_with(&mut template, self.migrations.as_slice()).await;
        // Close before reporting: CREATE DATABASE … TEMPLATE refuses while anyone is connected.
        template.close().await.ok();
        let report = report?;
        if !report.applied.is_empty() {
            tracing::info!(server = %server.name, version = ?report.current_version, "migrated the template database");
        }
        Ok(!report.applied.is_empty())
    }

    /// Creates a tenant's login role with a SCRAM verifier (see `secrets::tenant_role_scram_verifier`)
    /// of its password derived from the master key, so the plain password never reaches the server.
    pub async fn create_role(&self, server: &ServerHandle, role: &RoleName) -> Result<(), FleetError> {
        let scram_verifier =
            crate::secrets::tenant_role_scram_verifier(&self.master.tenant_role_key().password_for(role));
        // A verifier is `SCRAM-SHA-256$` + base64 and `:`/`$`; refuse anything else rather than
        // put it between quotes. The role name is a checked identifier.
        let safe = scram_verifier.starts_with("SCRAM-SHA-256$")
            && scram_verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"$:+/=-".contains(&b));
        assert!(safe, "a SCRAM verifier from tenant_role_scram_verifier");
        let sql =
            format!("CREATE ROLE {} LOGIN NOINHERIT CONNECTION LIMIT 200 PASSWORD '{scram_verifier}'", role.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        Ok(())
    }

    /// Copies the template into a new database owned by `owner`, with `CONNECT` revoked from
    /// `PUBLIC` so only the owner (and superusers) can connect.
    pub async fn create_database(
        &self,
        server: &ServerHandle,
        db: &DbName,
        owner: &RoleName,
    ) -> Result<(), FleetError> {
        let sql = format!(
            "CREATE DATABASE {} OWNER {} TEMPLATE {} STRATEGY {}",
            db.quoted(),
            owner.quoted(),
            self.template.quoted(),
            self.strategy.sql_keyword()
        );
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        Ok(())
    }

    /// An empty database (from `template0`) owned by `owner`, `CONNECT` revoked from `PUBLIC`:
    /// what a restore loads a dump into as the owner's own role.
    pub async fn create_empty_database(
        &self,
        server: &ServerHandle,
        db: &DbName,
        owner: &RoleName,
    ) -> Result<(), FleetError> {
        let sql = format!("CREATE DATABASE {} OWNER {} TEMPLATE template0", db.quoted(), owner.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        self.revoke_public_access(server, db).await?;
        // A NOINHERIT role gets nothing through `pg_database_owner` (which owns `public`): the
        // same grant provisioning's hand-over gives. The database is empty: no tenant code runs.
        self.grant_schema_create(server, db, owner).await
    }

    /// Drops one database (disconnecting its sessions); it may be absent.
    pub async fn drop_database(&self, server: &ServerHandle, db: &DbName) -> Result<(), FleetError> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        Ok(())
    }

    /// The tenant migrations of this build (templates are at the latest of them).
    pub fn migration_set(&self) -> &MigrationSet {
        &self.migrations
    }

    pub async fn revoke_public_access(&self, server: &ServerHandle, db: &DbName) -> Result<(), FleetError> {
        let sql = format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", db.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        Ok(())
    }

    /// Drops a tenant's database (disconnecting its sessions) and role; both may be absent.
    /// Every other database the role owns here goes first (an old database an in-place restore
    /// kept): a role that owns a database cannot be dropped.
    pub async fn drop_tenant(&self, server: &ServerHandle, db: &DbName, role: &RoleName) -> Result<(), FleetError> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        let owned: Vec<String> = sqlx::query_scalar(
            "SELECT d.datname::text FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1",
        )
        .bind(role.as_str())
        .fetch_all(server.pool())
        .await?;
        for name in owned {
            if let Ok(kept) = DbName::parse(&name) {
                self.drop_database(server, &kept).await?;
            }
        }
        let sql = format!("DROP ROLE IF EXISTS {}", role.quoted());
        sqlx::query(AssertSqlSafe(sql)).execute(server.pool()).await?;
        Ok(())
    }
}

/// A tenant role's login for a program that takes libpq's `PG*` variables.
pub struct TenantLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: SecretString,
    /// `PGSSLMODE` and friends, from the server's URL.
    pub tls: Vec<(&'static str, String)>,
}

/// A Postgres URL's TLS parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) as the libpq
/// variables the command-line tools read, so they connect as carefully as the service does.
fn libpq_tls(url: &str) -> Vec<(&'static str, String)> {
    const NAMES: [(&str, &str); 4] =
        [("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"), ("sslkey", "PGSSLKEY")];
    let Ok(url) = url::Url::parse(url) else { return Vec::new() };
    url.query_pairs()
        .filter_map(|(key, value)| {
            NAMES.iter().find(|(name, _)| *name == key).map(|(_, var)| (*var, value.into_owned()))
        })
        .collect()
}

impl TenantLogin {
    /// The `PG*` variables of this login (the password as `PGPASSWORD`: never on a command line,
    /// where other users of the machine could read it).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.database.clone()),
            ("PGPASSWORD", self.password.expose_secret().to_owned()),
            ("PGAPPNAME", "nexacore-backup".to_owned()),
            ("PGCONNECT_TIMEOUT", "10".to_owned()),
        ]
        .into_iter()
        .chain(self.tls.iter().cloned())
        .collect()
    }
}

pub async fn database_exists(conn: &mut PgConnection, db: &DbName) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(db.as_str())
        .fetch_one(conn)
        .await
}

pub async fn role_exists(conn: &mut PgConnection, role: &RoleName) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role.as_str())
        .fetch_one(conn)
        .await
}

/// The catalog advisory-lock key guarding the template database of one server: taken
/// exclusively while the template is migrated, shared while a tenant is copied from it.
pub fn template_lock_key(server: Uuid) -> i64 {
    let bytes = server.as_bytes();
    i64::from_be_bytes(bytes[8..16].try_into().expect("16-byte uuid")) ^ 0x7465_6d70_6c61_7465
}

/// Why a server could not be reached, in words that name no more than the operator typed: the
/// driver's own text can carry server banners and internal addresses into an API answer.
fn unreachable_reason(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Io(_) => "nothing answers at that host and port",
        sqlx::Error::Tls(_) => "the TLS handshake failed",
        sqlx::Error::PoolTimedOut => "the connection timed out",
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => "the server refused the user name or password",
            Some("3D000") => "the database in the URL does not exist",
            Some("53300") => "the server has no free connection slots",
            _ => "the server refused the connection",
        },
        sqlx::Error::Configuration(_) => "the URL's options are not valid",
        _ => "the connection failed",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("admin_url is not a valid postgres:// URL")]
    BadUrl,
    #[error("cannot connect with admin_url: {0}")]
    Unreachable(&'static str),
    #[error("admin_url must log in as a superuser")]
    NotSuperuser,
    #[error("a server with this name is already registered")]
    NameTaken,
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tools_get_the_urls_tls_parameters_as_libpq_variables() {
        let url =
            "postgres://u:p@db.example:5432/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=a";
        let expected = vec![("PGSSLMODE", "verify-full".to_owned()), ("PGSSLROOTCERT", "/etc/ca x.pem".to_owned())];
        assert_eq!(super::libpq_tls(url), expected);
        assert!(super::libpq_tls("postgres://u@h/x").is_empty());
        assert!(super::libpq_tls("not a url").is_empty());
    }
}
