//! `ops tenants …` and `ops keys …`: operator actions through the control plane's API, with
//! tables for people and `--json` for scripts.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Target};

#[derive(Subcommand)]
pub enum TenantsCommand {
    /// Lists tenants.
    List {
        /// Only tenants in this status (provisioning, active, suspended, deleting, deleted).
        #[arg(long)]
        status: Option<String>,
        /// Only tenants whose slug or name contains this text.
        #[arg(long)]
        search: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Shows one tenant.
    Show { id: String },
    /// Suspends a tenant: its users can no longer sign in.
    Suspend { id: String },
    /// Resumes a suspended tenant.
    Resume { id: String },
    /// Deletes a tenant's database and role (the catalog row stays, as `deleted`).
    Delete {
        id: String,
        /// Required: deletion cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Makes a new signing key current; tokens signed by the old one keep verifying until they expire.
    Rotate,
    /// Withdraws a signing key at once (it leaked): its tokens stop verifying on every router
    /// within a second; revoking the current key makes a new one current.
    Revoke {
        /// The key's id (`kid`, as the JWKS lists it).
        kid: String,
    },
    /// Prints the tenant role key for routers (NEXACORE_TENANT_ROLE_KEY), derived from the master
    /// key in NEXACORE_MASTER_KEY or ./.nexacore/secrets.env. Routers never get the master key.
    RoleKey,
    /// Prints the catalog URL for routers (NEXACORE_CATALOG_URL): the least-privileged role the
    /// control plane keeps for them, no password (routers derive it from the role key).
    RouterUrl {
        /// The superuser URL of the catalog's server (default: NEXACORE_DATABASE_URL, then
        /// ./.nexacore/stack.env). Only its host, port and parameters are used.
        #[arg(long, env = "NEXACORE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The catalog database's name.
        #[arg(long, default_value = "nexacore_catalog")]
        catalog: String,
    },
}

pub async fn run(command: TenantsCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    match command {
        TenantsCommand::List { status, search, json } => {
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = "/tenants?limit=500".to_owned();
                if let Some(s) = &status {
                    path.push_str(&format!("&status={s}"));
                }
                if let Some(q) = &search {
                    path.push_str(&format!("&q={}", urlencode(q)));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = api.call(Method::GET, &path, None).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                print_tenants(&items);
            }
        }
        TenantsCommand::Show { id } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&api.call(Method::GET, &format!("/tenants/{id}"), None).await?)?
            );
        }
        TenantsCommand::Suspend { id } => {
            let row = api.call(Method::PATCH, &format!("/tenants/{id}"), Some(&json!({"status": "suspended"}))).await?;
            print_tenants(&[row]);
        }
        TenantsCommand::Resume { id } => {
            let row = api.call(Method::PATCH, &format!("/tenants/{id}"), Some(&json!({"status": "active"}))).await?;
            print_tenants(&[row]);
        }
        TenantsCommand::Delete { id, yes } => {
            anyhow::ensure!(yes, "deleting a tenant drops its database; pass --yes to confirm");
            let done = api.call(Method::DELETE, &format!("/tenants/{id}"), None).await?;
            println!("deleted {}", done["tenant"]["slug"].as_str().unwrap_or(&id));
        }
    }
    Ok(())
}

pub async fn run_keys(command: KeysCommand, target: Target) -> anyhow::Result<()> {
    match command {
        KeysCommand::RoleKey => print_role_key(),
        KeysCommand::RouterUrl { database_url, catalog } => {
            let from_file = || crate::local_files::lookup("stack.env", "NEXACORE_DATABASE_URL");
            let url = database_url
                .or_else(from_file)
                .ok_or_else(|| anyhow::anyhow!("pass --database-url or set NEXACORE_DATABASE_URL (or run `ops up`)"))?;
            let router_url = stack::wiring::router_catalog_url(&url, &catalog).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{router_url}");
            Ok(())
        }
        KeysCommand::Rotate => {
            let api = Api::from_target(target)?;
            let rotated = api.call(Method::POST, "/keys/rotate", None).await?;
            println!("new signing key: {}", rotated["kid"].as_str().unwrap_or("?"));
            Ok(())
        }
        KeysCommand::Revoke { kid } => {
            anyhow::ensure!(
                !kid.is_empty() && kid.bytes().all(|b| b.is_ascii_hexdigit()),
                "a key id is hexadecimal (see /.well-known/jwks.json)"
            );
            let api = Api::from_target(target)?;
            let revoked = api.call(Method::POST, &format!("/keys/{kid}/revoke"), None).await?;
            println!("revoked signing key: {kid}");
            if let Some(new) = revoked["new_current"].as_str() {
                println!("new signing key: {new}");
            }
            Ok(())
        }
    }
}

fn print_role_key() -> anyhow::Result<()> {
    let from_file = || crate::local_files::lookup("secrets.env", "NEXACORE_MASTER_KEY");
    let master = std::env::var("NEXACORE_MASTER_KEY")
        .ok()
        .or_else(from_file)
        .ok_or_else(|| anyhow::anyhow!("set NEXACORE_MASTER_KEY (or run `ops up` once)"))?;
    let key = stack::wiring::tenant_role_key_hex(&secrecy::SecretString::from(master))?;
    println!("{}", secrecy::ExposeSecret::expose_secret(&key));
    Ok(())
}

fn print_tenants(items: &[Value]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["id", "slug", "name", "status", "schema", "created"]);
    for t in items {
        let s = |k: &str| t[k].as_str().unwrap_or("").to_owned();
        table.add_row([s("id"), s("slug"), s("name"), s("status"), t["schema_version"].to_string(), s("created_at")]);
    }
    println!("{table}");
    println!("{} tenant(s)", items.len());
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
