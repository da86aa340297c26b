//! `ops up`: the local dev stack. A private, persistent Postgres cluster under `./.nexacore/pg`
//! and the control plane on it, with generated secrets kept in `./.nexacore/secrets.env`.
//! Ctrl-C stops the control plane (in-flight requests finish), then Postgres.
//! `--servers N` starts N such clusters (`pg`, `pg2`, …): the catalog lives on the first, the
//! others are registered as database servers, so placement, moves and drains can be tried on
//! one machine.
//!
//! `--tls`: a local CA and a server certificate under `./.nexacore/tls/` (made once, then
//! reused), Postgres with `ssl=on`, both services on HTTPS, and every connection between them
//! checked with `verify-full` against that CA. TLS is `--tls`'s alone here: the services'
//! `NEXACORE_TLS_*` variables are not read by `ops up`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use local_postgres::LocalCluster;
use secrecy::SecretString;

use crate::local_files::{DEFAULT_DIR, read_env_file, write_private};

#[derive(clap::Args)]
pub struct UpArgs {
    /// Where the stack keeps its data and secrets.
    #[arg(long, default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Start from nothing: remove the stack's data first.
    #[arg(long)]
    fresh: bool,
    /// The control plane's port.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The tenant router's port.
    #[arg(long, default_value_t = 8081)]
    router_port: u16,
    /// The Postgres port (default: the one used last time, else a free one).
    #[arg(long)]
    pg_port: Option<u16>,
    /// Local Postgres servers to run (1–16); the catalog is on the first, the others are
    /// registered as `local-2`, `local-3`, … (ports: the ones used last time, else free ones).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=16))]
    servers: u8,
    /// TLS everywhere: a local CA under <dir>/tls, Postgres with ssl=on, both services on HTTPS,
    /// connections checked with verify-full.
    #[arg(long)]
    tls: bool,
}

/// The data directory of local server `n` (1-based): `pg`, `pg2`, `pg3`, …
fn server_dir(dir: &Path, n: u8) -> PathBuf {
    if n == 1 { dir.join("pg") } else { dir.join(format!("pg{n}")) }
}

/// The file `ops up` holds locked while it runs, inside the stack's directory.
const LOCK_FILE: &str = "ops-up.lock";

/// Locks the stack's directory for this `ops up`: a second one on the same directory would find
/// the clusters running, fail on the ports, then stop the first one's Postgres on its way out.
fn lock_stack_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `ops up` is running on {} (stop it first, or give this one its own --dir)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// `--fresh`: everything in the stack's directory but the lock this run holds.
fn remove_stack_files(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|name| name == LOCK_FILE) {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    // Held until this function returns (the clusters are stopped by then).
    let _lock = lock_stack_dir(&args.dir)?;
    if args.fresh {
        // A cluster left running by a killed `ops up` must stop before its files go.
        for n in 1..=16 {
            let pg = server_dir(&args.dir, n);
            if pg.exists()
                && let Ok(cluster) =
                    tokio::task::spawn_blocking(move || LocalCluster::start_persistent(&pg, None)).await?
            {
                let _ = tokio::task::spawn_blocking(move || cluster.stop()).await?;
            }
        }
        remove_stack_files(&args.dir)?;
        println!("removed what {} held (--fresh)", args.dir.display());
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let secrets = load_or_create_secrets(&args.dir)?;

    let tls = if args.tls {
        let dir = std::path::absolute(args.dir.join("tls")).context("the TLS directory")?;
        Some(stack::LocalTls::ensure(&dir).context("the local certificate authority")?)
    } else {
        None
    };
    let ssl = tls
        .as_ref()
        .map(|t| local_postgres::SslFiles { cert_file: t.server_cert.clone(), key_file: t.server_key.clone() });
    let mut clusters = Vec::new();
    let mut started = Ok(());
    for n in 1..=args.servers {
        let pg_dir = server_dir(&args.dir, n);
        let pg_port = if n == 1 { args.pg_port } else { None };
        let ssl = ssl.clone();
        println!("starting PostgreSQL in {} …", pg_dir.display());
        match tokio::task::spawn_blocking(move || {
            LocalCluster::start_persistent_with_ssl(&pg_dir, pg_port, ssl.as_ref())
        })
        .await?
        {
            Ok(cluster) => clusters.push(cluster),
            Err(e) => {
                started = Err(anyhow::Error::new(e).context("starting a local PostgreSQL cluster"));
                break;
            }
        }
    }
    let urls = clusters
        .iter()
        .map(|cluster| match &tls {
            Some(tls) => tls.postgres_url(&cluster.superuser_url()),
            None => Ok(cluster.superuser_url()),
        })
        .collect::<Result<Vec<String>, _>>();
    let result = match (started, urls) {
        (Ok(()), Ok(urls)) => serve(&args, &secrets, &urls, tls).await,
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(e.into()),
    };

    println!("stopping PostgreSQL …");
    for cluster in clusters {
        tokio::task::spawn_blocking(move || cluster.stop()).await?.context("stopping PostgreSQL")?;
    }
    let _ = std::fs::remove_file(args.dir.join("stack.env"));
    result
}

async fn serve(
    args: &UpArgs,
    secrets: &Secrets,
    server_urls: &[String],
    tls: Option<stack::LocalTls>,
) -> anyhow::Result<()> {
    let database_url = server_urls[0].as_str();
    // The router gets only the key that derives tenant role passwords, not the master key, and
    // logs into the catalog as the control plane's least-privileged role for routers.
    // Without an SMTP server, mail becomes .eml files a developer can open.
    let smtp_url = config_source(database_url, secrets)?.get("NEXACORE_SMTP_URL")?;
    let mail_dir = std::path::absolute(args.dir.join("mail")).unwrap_or_else(|_| args.dir.join("mail"));
    let mail_to = match &smtp_url {
        Some(_) => "SMTP (NEXACORE_SMTP_URL)".to_owned(),
        None => format!("{}/<id>.eml", mail_dir.display()),
    };
    // Every NEXACORE_* setting of the services' tables (README) applies here too, read as the
    // service binaries read them (environment, `*_FILE`, `NEXACORE_CONFIG_FILE`); only the
    // wiring `ops up` owns (database, secrets, addresses, URLs between the services) is its own.
    let source = config_source(database_url, secrets)?;
    let mut from_env =
        stack::ControlPlaneConfig::from_source(&source).context("the control plane's NEXACORE_* configuration")?;
    if from_env.mail.smtp_url.is_none() {
        from_env.mail.directory = Some(mail_dir);
    }
    let router_from_env = stack::RouterConfig::from_source(&source).context("the router's NEXACORE_* configuration")?;
    let ca_file = tls.as_ref().map(|t| t.ca_cert.display().to_string());
    let mut builder = stack::PlatformBuilder::new(database_url);
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let platform = builder
        .secrets(SecretString::from(secrets.master_key.clone()), SecretString::from(secrets.operator_token.clone()))
        .control_plane_listen(([127, 0, 0, 1], args.port).into())
        .router_listens(vec![([127, 0, 0, 1], args.router_port).into()])
        .control_plane(move |c| {
            let wired = std::mem::replace(c, from_env);
            c.listen = wired.listen;
            c.admin_database_url = wired.admin_database_url;
            c.master_key = wired.master_key;
            c.operator_token = wired.operator_token;
            c.router_url = wired.router_url;
            c.tls = wired.tls;
        })
        .router(move |_, c| {
            let wired = std::mem::replace(c, router_from_env.clone());
            c.listen = wired.listen;
            c.catalog_url = wired.catalog_url;
            c.tenant_role_key = wired.tenant_role_key;
            c.jwks_url = wired.jwks_url;
            c.pool.application_name = wired.pool.application_name;
            c.tls = wired.tls;
            c.tls_ca_file = wired.tls_ca_file;
        })
        .start()
        .await
        .context("starting the platform")?;
    let control_plane_url = platform.control_plane.url.clone();
    let router_url = platform.router_url().to_owned();
    for (i, url) in server_urls.iter().enumerate().skip(1) {
        register_server(&platform, &format!("local-{}", i + 1), url).await?;
    }

    let mut env = vec![
        ("NEXACORE_CONTROL_PLANE_URL", control_plane_url.as_str()),
        ("NEXACORE_ROUTER_URL", router_url.as_str()),
        ("NEXACORE_OPERATOR_TOKEN", secrets.operator_token.as_str()),
        ("NEXACORE_DATABASE_URL", database_url),
    ];
    // What clients (curl --cacert, the desktop app) trust the stack's certificates with.
    if let Some(ca_file) = &ca_file {
        env.push(("NEXACORE_TLS_CA_FILE", ca_file.as_str()));
    }
    let env_path = args.dir.join("stack.env");
    let mut lines: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    // The other local servers, for scripts that want to look at them (`--servers N`).
    for (i, url) in server_urls.iter().enumerate().skip(1) {
        lines.push_str(&format!("NEXACORE_DATABASE_URL_{}={url}\n", i + 1));
    }
    write_private(&env_path, &lines)?;

    println!();
    println!("NexaCore is up.");
    println!("  control plane   {control_plane_url}   (API docs: {control_plane_url}/docs)");
    println!("  tenant router   {router_url}   (API docs: {router_url}/docs)");
    println!("  operator token  {}", secrets.operator_token);
    println!("  database        {database_url}");
    for (i, url) in server_urls.iter().enumerate().skip(1) {
        println!("  server local-{}   {url}", i + 1);
    }
    println!("  e-mail          {mail_to}");
    if let Some(ca_file) = &ca_file {
        println!("  TLS CA          {ca_file}   (curl --cacert; the desktop app: NEXACORE_TLS_CA_FILE)");
    }
    println!("  written to      {}", env_path.display());
    println!("Press Ctrl-C to stop.");

    // Each service stops on Ctrl-C (or SIGTERM) by itself, finishing its in-flight requests.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        http_api::shutdown_signal().await;
        println!("\nstopping …");
        let _ = stop_tx.send(());
    });
    let _ = stop_rx.await;
    platform.stop().await.context("stopping the platform")?;
    Ok(())
}

/// Registers a local server with the control plane, once: a later `ops up` finds it registered.
async fn register_server(platform: &stack::Platform, name: &str, admin_url: &str) -> anyhow::Result<()> {
    let base = &platform.control_plane.url;
    let listed: serde_json::Value = platform
        .http
        .get(format!("{base}/servers"))
        .bearer_auth(&platform.operator_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if listed.as_array().into_iter().flatten().any(|s| s["name"] == name) {
        return Ok(());
    }
    let body = serde_json::json!({ "name": name, "admin_url": admin_url });
    let answer =
        platform.http.post(format!("{base}/servers")).bearer_auth(&platform.operator_token).json(&body).send().await?;
    let status = answer.status();
    if !status.is_success() {
        let text = answer.text().await.unwrap_or_default();
        anyhow::bail!("registering server {name}: {status}: {text}");
    }
    println!("registered server {name}");
    Ok(())
}

/// The services' settings as their binaries read them, with what `ops up` provides for the
/// required ones (the local server and the secrets under `./.nexacore/`).
fn config_source(database_url: &str, secrets: &Secrets) -> anyhow::Result<http_api::ConfigSource> {
    let source = match std::env::var_os("NEXACORE_CONFIG_FILE") {
        Some(path) => http_api::ConfigSource::with_file(std::path::Path::new(&path))?,
        None => http_api::ConfigSource::environment(),
    };
    // Routers' wiring (catalog URL, role key, JWKS URL) is set by `stack` and replaced after
    // parsing; these placeholders only satisfy the parser.
    Ok(source
        .fallback("NEXACORE_ADMIN_DATABASE_URL", database_url)
        .fallback("NEXACORE_MASTER_KEY", secrets.master_key.clone())
        .fallback("NEXACORE_OPERATOR_TOKEN", secrets.operator_token.clone())
        .fallback("NEXACORE_CATALOG_URL", "postgres://wired-by-ops-up/")
        .fallback("NEXACORE_TENANT_ROLE_KEY", "00")
        .fallback("NEXACORE_JWKS_URL", "http://wired-by-ops-up/"))
}

struct Secrets {
    master_key: String,
    operator_token: String,
}

/// Dev secrets, generated once and kept (mode 0600) so data survives restarts.
fn load_or_create_secrets(dir: &Path) -> anyhow::Result<Secrets> {
    let path = dir.join("secrets.env");
    if let Ok(pairs) = read_env_file(&path) {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        if let (Some(master_key), Some(operator_token)) = (get("NEXACORE_MASTER_KEY"), get("NEXACORE_OPERATOR_TOKEN")) {
            return Ok(Secrets { master_key, operator_token });
        }
    }
    let (master, token) = stack::wiring::generated_secrets();
    use secrecy::ExposeSecret as _;
    let secrets =
        Secrets { master_key: master.expose_secret().to_owned(), operator_token: token.expose_secret().to_owned() };
    write_private(
        &path,
        &format!(
            "# Generated by `ops up` for local development only.\nNEXACORE_MASTER_KEY={}\nNEXACORE_OPERATOR_TOKEN={}\n",
            secrets.master_key, secrets.operator_token
        ),
    )?;
    Ok(secrets)
}
