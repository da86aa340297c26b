//! `ops maintenance`, `ops client-versions`, `ops audit` and `ops servers`: the platform-wide
//! switches and views of the operator API, one command each, with `--json` for scripts.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Target, UsageError};

#[derive(Subcommand)]
pub enum MaintenanceCommand {
    /// Turns maintenance on: every data route answers 503 `maintenance` with the message.
    On(MaintenanceArgs),
    /// Turns maintenance off.
    Off(MaintenanceArgs),
}

#[derive(clap::Args)]
pub struct MaintenanceArgs {
    /// One tenant (id or slug) instead of the whole platform.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Shown to users while maintenance lasts.
    #[arg(long)]
    pub message: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ClientVersionsCommand {
    /// Sets the oldest client version served (older ones get 426) and the latest one offered.
    Set {
        #[arg(long)]
        min: String,
        #[arg(long)]
        latest: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ServersCommand {
    /// The database servers with their tenant counts and spare databases.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Registers another Postgres server (a superuser URL; stored sealed).
    Add {
        name: String,
        /// `postgres://user:password@host:port/postgres` (default: NEXACORE_NEW_SERVER_URL).
        #[arg(long, env = "NEXACORE_NEW_SERVER_URL", hide_env_values = true)]
        admin_url: String,
        #[arg(long)]
        capacity: Option<i32>,
        #[arg(long)]
        json: bool,
    },
    /// Marks a server draining (no new tenants) and moves every tenant off it, a few at a time.
    Drain(crate::moves::DrainArgs),
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// One tenant's entries (id or slug).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only entries at or after this time (RFC 3339, e.g. 2026-12-04T09:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    #[arg(long)]
    pub json: bool,
}

pub async fn run_maintenance(command: MaintenanceCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    let (on, args) = match command {
        MaintenanceCommand::On(args) => (true, args),
        MaintenanceCommand::Off(args) => (false, args),
    };
    let mut body = json!({ "maintenance_mode": on });
    if let Some(m) = &args.message {
        body["message"] = json!(m);
    }
    if let Some(t) = &args.tenant {
        body["tenant"] = json!(crate::tenants::resolve(&api, t).await?.id);
    }
    let status = api.call(Method::PUT, "/system/maintenance", Some(&body)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        let scope = args.tenant.as_deref().map_or("the platform".to_owned(), |t| format!("tenant {t}"));
        println!("maintenance {} for {scope}", if on { "on" } else { "off" });
    }
    Ok(())
}

pub async fn run_client_versions(command: ClientVersionsCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    let ClientVersionsCommand::Set { min, latest, json } = command;
    let body = json!({ "min_client_version": min, "latest_version": latest });
    let status = api.call(Method::PUT, "/system/client-versions", Some(&body)).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("clients served from {min}; latest {latest}");
    }
    Ok(())
}

pub async fn run_audit(args: AuditArgs, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    let since = match &args.since {
        Some(raw) => Some(
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                .map_err(|e| UsageError(format!("--since {raw:?}: {e} (RFC 3339, e.g. 2026-12-04T09:00:00Z)")))?,
        ),
        None => None,
    };
    let mut path = format!("/audit?limit={}", args.limit);
    if let Some(t) = &args.tenant {
        path.push_str(&format!("&tenant={}", crate::tenants::resolve_any(&api, t).await?));
    }
    let entries = api.call(Method::GET, &path, None).await?;
    let entries: Vec<Value> = entries
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            let at = e["at"]
                .as_str()
                .and_then(|a| time::OffsetDateTime::parse(a, &time::format_description::well_known::Rfc3339).ok());
            since.is_none_or(|s| at.is_some_and(|at| at >= s))
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["at", "actor", "action", "tenant", "details"]);
    for e in &entries {
        let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
        table.add_row([s("at"), s("actor"), s("action"), s("tenant_id"), e["details"].to_string()]);
    }
    println!("{table}");
    println!("{} entr(y/ies)", entries.len());
    Ok(())
}

pub async fn run_servers(command: ServersCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    let (servers, json) = match command {
        ServersCommand::Drain(args) => return crate::moves::drain(api, args).await,
        ServersCommand::List { json } => (api.call(Method::GET, "/servers", None).await?, json),
        ServersCommand::Add { name, admin_url, capacity, json } => {
            let mut body = json!({ "name": name, "admin_url": admin_url });
            if let Some(c) = capacity {
                body["capacity"] = json!(c);
            }
            (Value::Array(vec![api.call(Method::POST, "/servers", Some(&body)).await?]), json)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&servers)?);
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["id", "name", "host", "status", "tenants", "capacity", "spares"]);
    for s in servers.as_array().into_iter().flatten() {
        let t = |k: &str| s[k].as_str().unwrap_or("").to_owned();
        table.add_row([
            t("id"),
            t("name"),
            format!("{}:{}", t("host"), s["port"]),
            t("status"),
            s["tenants"].to_string(),
            s["capacity"].to_string(),
            s["spares_ready"].to_string(),
        ]);
    }
    println!("{table}");
    Ok(())
}
