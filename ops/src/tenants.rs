//! `ops tenants …` and `ops keys …`: operator actions through the control plane's API, with
//! tables for people and `--json` for scripts.

use anyhow::Context as _;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Target, UsageError};

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
    /// Deletes a tenant's database and role (the catalog row stays, as `deleted`), after a final
    /// backup (kept in the control plane's backup directory) unless `--no-backup`.
    Delete {
        id: String,
        /// Required: deletion cannot be undone.
        #[arg(long)]
        yes: bool,
        /// Delete without a final backup.
        #[arg(long)]
        no_backup: bool,
        /// Also download the final backup into a bundle under this directory.
        #[arg(long, conflicts_with = "no_backup")]
        out: Option<std::path::PathBuf>,
    },
    /// Backs tenants up (`pg_dump` as each tenant's own role, by the control plane), with bounded
    /// concurrency overall and per server; `--out` downloads bundles (dump + manifest.json).
    Backup(crate::backups::BackupArgs),
    /// Restores a bundle (from `backup --out`): `--as <slug>` creates a new tenant from it (new
    /// id, role and database), `--in-place --yes` replaces its own tenant's data (fenced with
    /// maintenance meanwhile). A bundle whose checksum fails is refused before anything is sent.
    Restore(crate::backups::RestoreArgs),
    /// Moves a tenant's database to another server: copied by logical replication while the
    /// tenant works, writes fenced only for the final catch-up, the route switched; the old
    /// database is kept (closed) for the retention period unless `--drop-source`.
    Move(crate::moves::MoveArgs),
    /// Drops, now, the databases in-place restores of a tenant kept (a way back to the data
    /// before the restore; they go by themselves after NEXACORE_RESTORE_KEEP_OLD_HOURS).
    DropOldDatabases {
        tenant: String,
        /// Required: the kept data is gone for good.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sets or unsets a feature flag of a tenant (`unset` stores false).
    Flags {
        tenant: String,
        #[arg(value_parser = ["set", "unset"])]
        action: String,
        name: String,
    },
    /// Creates a company as the signup wizard does (operator token: no signup limit). The admin's
    /// password comes from NEXACORE_ADMIN_PASSWORD.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_name: String,
        #[arg(long, env = "NEXACORE_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long)]
        chart_template: Option<String>,
        #[arg(long)]
        json: bool,
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
    /// key in NEXACORE_MASTER_KEY (or NEXACORE_MASTER_KEY_FILE) or ./.nexacore/secrets.env.
    /// Routers never get the master key.
    RoleKey {
        /// Write the key to this file (mode 0600, for NEXACORE_TENANT_ROLE_KEY_FILE) instead of
        /// printing it: compose's one-shot `init` service does this.
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
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
        TenantsCommand::Backup(args) => return crate::backups::run(api, args).await,
        TenantsCommand::Restore(args) => return crate::backups::restore(api, args).await,
        TenantsCommand::Move(args) => return crate::moves::move_one(api, args).await,
        TenantsCommand::DropOldDatabases { tenant, yes, json } => {
            if !yes {
                return Err(UsageError("dropping kept databases cannot be undone: add --yes".into()).into());
            }
            let tenant = resolve(&api, &tenant).await?;
            let answer = api.call(Method::DELETE, &format!("/tenants/{}/old-databases", tenant.id), None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                let dropped = answer["dropped"].as_array().cloned().unwrap_or_default();
                println!("{}: {} old database(s) dropped", tenant.slug, dropped.len());
            }
        }
        TenantsCommand::Flags { tenant, action, name } => {
            let tenant = resolve(&api, &tenant).await?;
            let body = json!({ "feature_flags": { name: action == "set" } });
            let row = api.call(Method::PATCH, &format!("/tenants/{}", tenant.id), Some(&body)).await?;
            println!("{}: {}", tenant.slug, row["feature_flags"]);
        }
        TenantsCommand::Create {
            name,
            slug,
            admin_email,
            admin_name,
            admin_password,
            timezone,
            currency,
            chart_template,
            json,
        } => {
            let mut body = json!({
                "company_name": name,
                "admin": {"email": admin_email, "password": admin_password, "full_name": admin_name},
                "timezone": timezone,
                "currency": currency,
            });
            if let Some(s) = slug {
                body["slug"] = json!(s);
            }
            if let Some(c) = chart_template {
                body["chart_template"] = json!(c);
            }
            let created = api.call(Method::POST, "/tenants", Some(&body)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created["tenant"])?);
            } else {
                println!(
                    "created {} ({})",
                    created["tenant"]["slug"].as_str().unwrap_or("?"),
                    created["tenant"]["id"].as_str().unwrap_or("?")
                );
            }
        }
        TenantsCommand::List { status, search, json } => {
            let items = list(&api, status.as_deref(), search.as_deref()).await?;
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
        TenantsCommand::Delete { id, yes, no_backup, out } => {
            if !yes {
                return Err(UsageError("deleting a tenant drops its database; pass --yes to confirm".into()).into());
            }
            let tenant = resolve(&api, &id).await?;
            let id = tenant.id.clone();
            if !no_backup {
                // A final copy first; a failed backup stops the deletion.
                let (view, bundle) = crate::backups::one(&api, &tenant, "final", out.as_deref()).await?;
                anyhow::ensure!(
                    view.status == api_types::backups::BackupStatus::Done,
                    "the final backup of {} failed ({}); nothing was deleted (--no-backup deletes without one)",
                    tenant.slug,
                    view.error.unwrap_or_default()
                );
                match bundle {
                    Some(dir) => println!("final backup {} in {}", view.id, dir.display()),
                    None => println!("final backup {} (control plane)", view.id),
                }
            }
            let done = api.call(Method::DELETE, &format!("/tenants/{id}"), None).await?;
            println!("deleted {}", done["tenant"]["slug"].as_str().unwrap_or(&id));
        }
    }
    Ok(())
}

/// Every tenant (all pages), optionally in one status or matching a search.
pub async fn list(api: &Api, status: Option<&str>, search: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/tenants?limit=500".to_owned();
        if let Some(s) = status {
            path.push_str(&format!("&status={s}"));
        }
        if let Some(q) = search {
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
    Ok(items)
}

pub async fn list_all(api: &Api, status: Option<&str>) -> anyhow::Result<Vec<Value>> {
    list(api, status, None).await
}

/// A live tenant by id or slug (exit code 2 when there is none).
pub async fn resolve(api: &Api, name: &str) -> anyhow::Result<crate::backups::Named> {
    let path = match uuid::Uuid::parse_str(name) {
        Ok(_) => format!("/tenants/{name}"),
        Err(_) => format!("/tenants?limit=500&q={}", urlencode(name)),
    };
    let answer = match api.call(Method::GET, &path, None).await {
        Ok(answer) => answer,
        Err(e) if e.to_string().starts_with("404") => Value::Null,
        Err(e) => return Err(e),
    };
    let found = if answer["items"].is_array() {
        answer["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["slug"] == name && t["status"] != "deleted")
            .cloned()
    } else {
        Some(answer).filter(|t| t["id"].is_string())
    };
    found
        .map(|t| crate::backups::Named::of(&t))
        .ok_or_else(|| UsageError(format!("no tenant has the id or slug {name:?}")).into())
}

/// A tenant's id from its id (any status, for the audit log) or a live tenant's slug.
pub async fn resolve_any(api: &Api, name: &str) -> anyhow::Result<String> {
    match uuid::Uuid::parse_str(name) {
        Ok(_) => Ok(name.to_owned()),
        Err(_) => Ok(resolve(api, name).await?.id),
    }
}

pub async fn run_keys(command: KeysCommand, target: Target) -> anyhow::Result<()> {
    match command {
        KeysCommand::RoleKey { output } => print_role_key(output.as_deref()),
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

fn print_role_key(output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let from_file = || crate::local_files::lookup("secrets.env", "NEXACORE_MASTER_KEY");
    let master = http_api::ConfigSource::environment()
        .get("NEXACORE_MASTER_KEY")?
        .or_else(from_file)
        .ok_or_else(|| anyhow::anyhow!("set NEXACORE_MASTER_KEY (or run `ops up` once)"))?;
    let key = stack::wiring::tenant_role_key_hex(&secrecy::SecretString::from(master))?;
    let line = format!("{}\n", secrecy::ExposeSecret::expose_secret(&key));
    match output {
        None => print!("{line}"),
        Some(path) => {
            use std::io::Write as _;
            #[cfg(unix)]
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            options.mode(0o600);
            let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
            file.write_all(line.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote the tenant role key to {}", path.display());
        }
    }
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
