//! `ops tenants move` and `ops servers drain`: moves of tenants between database servers,
//! run by the control plane (logical replication, writes fenced only for the final catch-up;
//! see `control-plane/src/moves`) and followed here with a progress display and a summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_types::moves::{MoveRequest, MoveView};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::api::{Api, UsageError};
use crate::tenants::urlencode;

#[derive(clap::Args)]
pub struct MoveArgs {
    /// The tenant, by id or slug.
    pub tenant: String,
    /// The target server, by name or id.
    #[arg(long)]
    pub to: String,
    /// Drop the source database once moved (default: kept, closed, for the retention period).
    #[arg(long)]
    pub drop_source: bool,
    /// Print JSON instead of a progress display and a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct DrainArgs {
    /// The server to empty, by name or id. It is marked `draining` first: no new tenants.
    pub server: String,
    /// Moves running at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub parallel: u16,
    /// Drop each source database once moved.
    #[arg(long)]
    pub drop_source: bool,
    #[arg(long)]
    pub json: bool,
}

/// `ops tenants move`.
pub async fn move_one(api: Api, args: MoveArgs) -> anyhow::Result<()> {
    let bar = progress(1, args.json);
    let request = MoveRequest { to: Some(args.to), drop_source: args.drop_source };
    let done = run_move(&api, &args.tenant, &request, &bar).await?;
    bar.finish_and_clear();
    report(&[(args.tenant, Ok(done.clone()))], args.json)?;
    if done.state != "done" {
        anyhow::bail!("the move failed: {}", done.error.as_deref().unwrap_or("no reason given"));
    }
    Ok(())
}

/// `ops servers drain`.
pub async fn drain(api: Api, args: DrainArgs) -> anyhow::Result<()> {
    let path = format!("/servers/{}", urlencode(&args.server));
    let server = match api.call(Method::PATCH, &path, Some(&json!({ "status": "draining" }))).await {
        Ok(server) => server,
        Err(e) if e.to_string().starts_with("404") => {
            return Err(UsageError(format!("no database server named {:?}", args.server)).into());
        }
        Err(e) => return Err(e),
    };
    let server_id = server["id"].as_str().unwrap_or_default().to_owned();
    let mut tenants = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_path = format!("/tenants?limit=500&server_id={server_id}");
        if let Some(c) = &cursor {
            page_path.push_str(&format!("&cursor={c}"));
        }
        let page = api.call(Method::GET, &page_path, None).await?;
        for t in page["items"].as_array().into_iter().flatten() {
            if matches!(t["status"].as_str(), Some("active" | "suspended")) {
                tenants.push(t["slug"].as_str().unwrap_or_default().to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let bar = progress(tenants.len() as u64, args.json);
    let api = Arc::new(api);
    let permits = Arc::new(Semaphore::new(usize::from(args.parallel)));
    let mut running = Vec::new();
    for slug in tenants {
        let (api, permits, bar) = (api.clone(), permits.clone(), bar.clone());
        let request = MoveRequest { to: None, drop_source: args.drop_source };
        running.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = run_move(&api, &slug, &request, &bar).await.map_err(|e| format!("{e:#}"));
            bar.inc(1);
            (slug, outcome)
        }));
    }
    let mut results = Vec::new();
    for task in running {
        results.push(task.await?);
    }
    bar.finish_and_clear();
    report(&results, args.json)?;
    let failed = results.iter().filter(|(_, r)| !matches!(r, Ok(m) if m.state == "done")).count();
    if failed > 0 {
        anyhow::bail!("{failed} of {} moves failed; the server stays draining", results.len());
    }
    if !args.json {
        println!("server {} is drained ({} tenants moved)", args.server, results.len());
    }
    Ok(())
}

/// Starts one move and follows it until it settles.
async fn run_move(api: &Api, tenant: &str, request: &MoveRequest, bar: &ProgressBar) -> anyhow::Result<MoveView> {
    let path = format!("/tenants/{}/moves", urlencode(tenant));
    let started = match api.call(Method::POST, &path, Some(&serde_json::to_value(request)?)).await {
        Ok(started) => started,
        // The operator named something wrong (tenant, server): exit code 2, nothing changed.
        Err(e) if e.to_string().starts_with("404") || e.to_string().starts_with("422") => {
            return Err(UsageError(format!("{e:#}")).into());
        }
        Err(e) => return Err(e),
    };
    let mut view: MoveView = serde_json::from_value(started)?;
    let since = Instant::now();
    while !view.finished() {
        let step = view.steps.last().map(|s| s.step.as_str()).unwrap_or("recorded");
        bar.set_message(format!("{tenant}: {step} ({}s)", since.elapsed().as_secs()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let value: Value = api.call(Method::GET, &format!("/moves/{}", view.id), None).await?;
        view = serde_json::from_value(value)?;
    }
    Ok(view)
}

fn progress(total: u64, json: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} moved  {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The summary: one row per tenant.
fn report(results: &[(String, Result<MoveView, String>)], json: bool) -> anyhow::Result<()> {
    if json {
        let items: Vec<Value> = results
            .iter()
            .map(|(tenant, r)| match r {
                Ok(view) => json!({ "tenant": tenant, "move": view }),
                Err(error) => json!({ "tenant": tenant, "error": error }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["tenant", "from", "to", "state", "fence", "source", "error"]);
    for (tenant, r) in results {
        match r {
            Ok(m) => table.add_row([
                tenant.clone(),
                m.source_server.clone(),
                m.target_server.clone(),
                m.state.clone(),
                m.fence_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
                (if m.source_dropped { "dropped" } else { "kept" }).to_owned(),
                m.error.clone().unwrap_or_default(),
            ]),
            Err(error) => table.add_row([
                tenant.clone(),
                String::new(),
                String::new(),
                "refused".into(),
                String::new(),
                String::new(),
                error.clone(),
            ]),
        };
    }
    println!("{table}");
    Ok(())
}
