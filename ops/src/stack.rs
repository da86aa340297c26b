//! `ops up`: the local dev stack. A private, persistent Postgres cluster under `./.nexacore/pg`
//! and the control plane on it, with generated secrets kept in `./.nexacore/secrets.env`.
//! Ctrl-C stops the control plane (in-flight requests finish), then Postgres.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use control_plane::{App, Config};
use local_postgres::LocalCluster;
use secrecy::SecretString;

pub const DEFAULT_DIR: &str = ".nexacore";

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
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.fresh && args.dir.exists() {
        // A cluster left running by a killed `ops up` must stop before its files go.
        let pg = args.dir.join("pg");
        if pg.exists()
            && let Ok(cluster) = tokio::task::spawn_blocking(move || LocalCluster::start_persistent(&pg, None)).await?
        {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await?;
        }
        std::fs::remove_dir_all(&args.dir).with_context(|| format!("removing {}", args.dir.display()))?;
        println!("removed {} (--fresh)", args.dir.display());
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let secrets = load_or_create_secrets(&args.dir)?;

    let pg_dir = args.dir.join("pg");
    let pg_port = args.pg_port;
    println!("starting PostgreSQL in {} …", pg_dir.display());
    let cluster = tokio::task::spawn_blocking(move || LocalCluster::start_persistent(&pg_dir, pg_port))
        .await?
        .context("starting the local PostgreSQL cluster")?;
    let database_url = cluster.superuser_url();

    let result = serve(&args, &secrets, &database_url).await;

    println!("stopping PostgreSQL …");
    tokio::task::spawn_blocking(move || cluster.stop()).await?.context("stopping PostgreSQL")?;
    let _ = std::fs::remove_file(args.dir.join("stack.env"));
    result
}

async fn serve(args: &UpArgs, secrets: &Secrets, database_url: &str) -> anyhow::Result<()> {
    let router_url = format!("http://127.0.0.1:{}", args.router_port);
    let mut config = Config::new(
        SecretString::from(database_url.to_owned()),
        SecretString::from(secrets.master_key.clone()),
        SecretString::from(secrets.operator_token.clone()),
    );
    config.listen = ([127, 0, 0, 1], args.port).into();
    config.router_url = router_url.clone();
    let catalog_database = config.catalog_database.clone();
    let control_plane = App::build(config).await.context("starting the control plane")?;
    let control_plane_url = format!("http://127.0.0.1:{}", control_plane.port());

    // The router reads the catalog the control plane just created, and gets only the key that
    // derives tenant role passwords, not the master key.
    // It logs in as the catalog role the control plane keeps for routers (read-only, a few
    // columns), with a password it derives from the role key.
    let catalog_url = control_plane::catalog::access::router_catalog_url(database_url, &catalog_database)
        .context("the local database URL")?;
    let role_key = control_plane::secrets::MasterKey::from_base64(&SecretString::from(secrets.master_key.clone()))?
        .tenant_role_key()
        .to_hex();
    let mut router_config = tenant_router::Config::new(
        SecretString::from(catalog_url),
        role_key,
        format!("{control_plane_url}/.well-known/jwks.json"),
    );
    router_config.listen = ([127, 0, 0, 1], args.router_port).into();
    let router = tenant_router::App::build(router_config).await.context("starting the tenant router")?;

    let env = [
        ("NEXACORE_CONTROL_PLANE_URL", control_plane_url.as_str()),
        ("NEXACORE_ROUTER_URL", router_url.as_str()),
        ("NEXACORE_OPERATOR_TOKEN", secrets.operator_token.as_str()),
        ("NEXACORE_DATABASE_URL", database_url),
    ];
    let env_path = args.dir.join("stack.env");
    write_private(&env_path, &env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())?;

    println!();
    println!("NexaCore is up.");
    println!("  control plane   {control_plane_url}   (API docs: {control_plane_url}/docs)");
    println!("  tenant router   {router_url}   (API docs: {router_url}/docs)");
    println!("  operator token  {}", secrets.operator_token);
    println!("  database        {database_url}");
    println!("  written to      {}", env_path.display());
    println!("Press Ctrl-C to stop.");

    // One Ctrl-C (or SIGTERM) stops both: each finishes its in-flight requests.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        http_api::shutdown_signal().await;
        println!("\nstopping …");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let (cp, rt) = tokio::join!(
        control_plane.run_until_stopped(stopped(stop_rx.clone())),
        router.run_until_stopped(stopped(stop_rx)),
    );
    cp.context("serving the control plane")?;
    rt.context("serving the tenant router")?;
    Ok(())
}

struct Secrets {
    master_key: String,
    operator_token: String,
}

/// Dev secrets, generated once and kept (mode 0600) so data survives restarts.
fn load_or_create_secrets(dir: &Path) -> anyhow::Result<Secrets> {
    let path = dir.join("secrets.env");
    if let Ok(pairs) = crate::api::read_env_file(&path) {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        if let (Some(master_key), Some(operator_token)) = (get("NEXACORE_MASTER_KEY"), get("NEXACORE_OPERATOR_TOKEN")) {
            return Ok(Secrets { master_key, operator_token });
        }
    }
    let (master, token) = control_plane::app::generated_secrets();
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

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
