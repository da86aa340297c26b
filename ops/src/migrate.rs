//! `ops migrate plan|run|status|retry|cancel|pause|resume`: bulk schema migrations of every
//! tenant database through the control plane's API, with a live progress bar and a summary of
//! what failed. `run`, `retry`, and `status` exit 0 only if every tenant reached the target.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use comfy_table::{CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::api::{Api, Target};

#[derive(Subcommand)]
pub enum MigrateCommand {
    /// What a run would do, changing nothing: per tenant its version, the pending migrations,
    /// and drift (tenants a run would skip).
    Plan {
        #[command(flatten)]
        scope: Scope,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Migrates every tenant (templates first), following the run until it ends.
    Run(RunArgs),
    /// A run's state (the newest run when no id is given).
    Status {
        id: Option<String>,
        /// Follow the run until it ends.
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        json: bool,
    },
    /// Retries the failed tenants of a run (and any left pending), following it.
    Retry {
        id: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Continues a paused run, or one interrupted by a restart of the control plane.
    Resume {
        id: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Starts no more tenants; those in flight finish. `resume` continues.
    Pause { id: String },
    /// Cancels a run: tenants in flight finish, no more start.
    Cancel { id: String },
}

/// Which tenants, to which version.
#[derive(Args, Clone, Debug, Default)]
pub struct Scope {
    /// The version to reach (default: the newest migration the control plane knows).
    #[arg(long)]
    target: Option<i32>,
    /// Only these tenants (ids or slugs, comma-separated).
    #[arg(long, value_delimiter = ',')]
    tenants: Vec<String>,
}

#[derive(Args, Clone, Debug)]
pub struct Follow {
    /// Return at once instead of following the run.
    #[arg(long)]
    pub detach: bool,
    /// Print the final run as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    scope: Scope,
    /// Tenants migrated at once, over all servers (default: the control plane's, 16).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Tenants migrated at once on one Postgres server (default: the control plane's, 8).
    #[arg(long)]
    per_server: Option<u32>,
    /// A canary wave of the first N tenants, which must all succeed before the rest start.
    #[arg(long, conflicts_with = "canary_tenants")]
    canary: Option<u32>,
    /// The canary wave as a list of tenants (ids or slugs, comma-separated).
    #[arg(long, value_delimiter = ',')]
    canary_tenants: Vec<String>,
    /// Give every tenant its turn and report the failures at the end (default: stop).
    #[arg(long, conflicts_with = "max_failures")]
    continue_on_failure: bool,
    /// Stop once this many tenants have failed (default 1).
    #[arg(long)]
    max_failures: Option<u32>,
    /// Per tenant: how long to wait for a lock before failing that tenant.
    #[arg(long)]
    lock_timeout_ms: Option<u32>,
    /// Per tenant: how long one statement may run before failing that tenant.
    #[arg(long)]
    statement_timeout_ms: Option<u32>,
    #[command(flatten)]
    follow: Follow,
}

impl RunArgs {
    /// The request body; only what was given, so the control plane's defaults apply.
    fn body(&self) -> Value {
        let mut body = scope_body(&self.scope);
        let mut put = |key: &str, value: Value| {
            body.insert(key.to_owned(), value);
        };
        if let Some(n) = self.concurrency {
            put("concurrency", json!(n));
        }
        if let Some(n) = self.per_server {
            put("per_server_concurrency", json!(n));
        }
        if let Some(n) = self.canary {
            put("canary_count", json!(n));
        }
        if !self.canary_tenants.is_empty() {
            put("canary_tenants", json!(self.canary_tenants));
        }
        if self.continue_on_failure {
            put("failure_policy", json!("continue"));
        } else {
            put("failure_policy", json!("stop"));
            if let Some(n) = self.max_failures {
                put("max_failures", json!(n));
            }
        }
        if let Some(ms) = self.lock_timeout_ms {
            put("lock_timeout_ms", json!(ms));
        }
        if let Some(ms) = self.statement_timeout_ms {
            put("statement_timeout_ms", json!(ms));
        }
        Value::Object(body)
    }
}

fn scope_body(scope: &Scope) -> Map<String, Value> {
    let mut body = Map::new();
    if let Some(v) = scope.target {
        body.insert("target_version".into(), json!(v));
    }
    if !scope.tenants.is_empty() {
        body.insert("tenants".into(), json!(scope.tenants));
    }
    body
}

pub async fn run(command: MigrateCommand, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    match command {
        MigrateCommand::Plan { scope, json } => {
            let mut body = scope_body(&scope);
            body.insert("dry_run".into(), json!(true));
            let run = api.call(Method::POST, "/migrations/runs", Some(&Value::Object(body))).await?;
            let run = follow(&api, &run, json).await?;
            let tenants = tenants(&api, &run, None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&json!({ "run": run, "tenants": tenants }))?);
            } else {
                print_plan(&run, &tenants);
            }
            if run["state"] != "completed" {
                bail!("the plan did not complete: {}", describe_state(&run));
            }
            Ok(())
        }
        MigrateCommand::Run(args) => {
            let run = api.call(Method::POST, "/migrations/runs", Some(&args.body())).await?;
            if !args.follow.json {
                println!("run {} started: target version {}", str_of(&run["id"]), run["target_version"]);
            }
            conclude(&api, run, &args.follow).await
        }
        MigrateCommand::Status { id, watch, json } => {
            let run = match id {
                Some(id) => api.call(Method::GET, &format!("/migrations/runs/{id}"), None).await?,
                None => {
                    let runs = api.call(Method::GET, "/migrations/runs?limit=1", None).await?;
                    runs.as_array().and_then(|r| r.first()).cloned().context("no migration run yet")?
                }
            };
            conclude(&api, run, &Follow { detach: !watch, json }).await
        }
        MigrateCommand::Retry { id, follow } => {
            let run = api.call(Method::POST, &format!("/migrations/runs/{id}/retry"), None).await?;
            conclude(&api, run, &follow).await
        }
        MigrateCommand::Resume { id, follow } => {
            let run = api.call(Method::POST, &format!("/migrations/runs/{id}/resume"), None).await?;
            conclude(&api, run, &follow).await
        }
        MigrateCommand::Pause { id } => {
            let run = api.call(Method::POST, &format!("/migrations/runs/{id}/pause"), None).await?;
            println!(
                "run {id}: {} (tenants in flight finish; `ops migrate resume {id}` continues)",
                str_of(&run["state"])
            );
            Ok(())
        }
        MigrateCommand::Cancel { id } => {
            let run = api.call(Method::POST, &format!("/migrations/runs/{id}/cancel"), None).await?;
            println!("run {id}: {} (tenants in flight finish, no more start)", str_of(&run["state"]));
            Ok(())
        }
    }
}

/// Follows the run (unless detached), prints the summary, and fails unless every tenant
/// reached the target.
pub(crate) async fn conclude(api: &Api, run: Value, how: &Follow) -> anyhow::Result<()> {
    let run = if how.detach { run } else { follow(api, &run, how.json).await? };
    let problems = if run["totals"]["failed"].as_i64() > Some(0) || run["totals"]["drifted"].as_i64() > Some(0) {
        let mut rows = tenants(api, &run, Some("failed")).await?;
        rows.extend(tenants(api, &run, Some("drifted")).await?);
        rows
    } else {
        Vec::new()
    };
    if how.json {
        println!("{}", serde_json::to_string_pretty(&json!({ "run": run, "problems": problems }))?);
    } else {
        print_summary(&run, &problems);
    }
    if run["reached_target"] == true {
        return Ok(());
    }
    let t = &run["totals"];
    let missing = t["pending"].as_i64().unwrap_or(0)
        + t["running"].as_i64().unwrap_or(0)
        + t["failed"].as_i64().unwrap_or(0)
        + t["drifted"].as_i64().unwrap_or(0);
    let id = str_of(&run["id"]);
    let next = match run["state"].as_str() {
        Some("running" | "cancelling") => format!("it is still {}", str_of(&run["state"])),
        Some("paused" | "interrupted") => format!("resume it with `ops migrate resume {id}`"),
        _ if t["failed"].as_i64() > Some(0) || t["pending"].as_i64() > Some(0) => {
            format!("fix the causes, then `ops migrate retry {id}`")
        }
        _ => "drifted tenants need an operator".to_owned(),
    };
    bail!("{missing} tenant(s) did not reach version {} ({}); {next}", run["target_version"], describe_state(&run))
}

/// Polls the run until it is no longer running, with a progress bar on stderr (hidden when
/// stderr is not a terminal, or with `--json`).
async fn follow(api: &Api, run: &Value, quiet: bool) -> anyhow::Result<Value> {
    let id = str_of(&run["id"]).to_owned();
    let total = run["totals"]["tenants"].as_u64().unwrap_or(0);
    let bar = ProgressBar::new(total);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg} · {per_sec} · eta {eta}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    let mut current = run.clone();
    loop {
        let t = &current["totals"];
        let done = ["succeeded", "failed", "drifted", "skipped", "planned"]
            .iter()
            .map(|k| t[*k].as_u64().unwrap_or(0))
            .sum::<u64>();
        bar.set_position(done);
        bar.set_message(format!(
            "done {} · failed {} · running {}{}",
            t["succeeded"].as_u64().or(t["planned"].as_u64()).unwrap_or(0),
            t["failed"],
            t["running"],
            if t["drifted"].as_u64() > Some(0) { format!(" · drifted {}", t["drifted"]) } else { String::new() },
        ));
        if !matches!(current["state"].as_str(), Some("running" | "cancelling")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        current = api.call(Method::GET, &format!("/migrations/runs/{id}"), None).await?;
    }
    bar.finish_and_clear();
    Ok(current)
}

async fn tenants(api: &Api, run: &Value, status: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let id = str_of(&run["id"]);
    let mut items = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let mut path = format!("/migrations/runs/{id}/tenants?limit=1000");
        if let Some(s) = status {
            path.push_str(&format!("&status={s}"));
        }
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        let page = api.call(Method::GET, &path, None).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_i64() {
            Some(next) => after = Some(next),
            None => return Ok(items),
        }
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn describe_state(run: &Value) -> String {
    match run["stop_reason"].as_str() {
        Some(reason) => format!("{}: {reason}", str_of(&run["state"])),
        None => str_of(&run["state"]).to_owned(),
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header.to_vec());
    table
}

fn print_summary(run: &Value, problems: &[Value]) {
    let t = &run["totals"];
    let mut totals =
        table(&["run", "state", "target", "tenants", "succeeded", "failed", "drifted", "pending", "running"]);
    totals.add_row(vec![
        str_of(&run["id"]).to_owned(),
        describe_state(run),
        run["target_version"].to_string(),
        t["tenants"].to_string(),
        t["succeeded"].to_string(),
        t["failed"].to_string(),
        t["drifted"].to_string(),
        t["pending"].to_string(),
        t["running"].to_string(),
    ]);
    println!("{totals}");
    if let Some(templates) = run["templates"].as_array().filter(|t| !t.is_empty()) {
        let mut table = table(&["template", "server", "status", "from", "to", "error"]);
        for tpl in templates {
            table.add_row(vec![
                str_of(&tpl["database"]).to_owned(),
                str_of(&tpl["server"]).to_owned(),
                str_of(&tpl["status"]).to_owned(),
                tpl["from_version"].to_string(),
                tpl["to_version"].to_string(),
                tpl["error"].as_str().unwrap_or("").to_owned(),
            ]);
        }
        println!("{table}");
    }
    if !problems.is_empty() {
        let mut table = table(&["tenant", "status", "version", "attempts", "error / reason"]);
        for p in problems {
            table.add_row(vec![
                str_of(&p["slug"]).to_owned(),
                str_of(&p["status"]).to_owned(),
                p["from_version"].to_string(),
                p["attempts"].to_string(),
                p["error"].as_str().unwrap_or("").to_owned(),
            ]);
        }
        println!("{table}");
    }
    if let Some(elapsed) = elapsed_s(run) {
        let done = t["succeeded"].as_f64().unwrap_or(0.0);
        println!("{} tenant(s) at version {} after {elapsed:.1} s", done, run["target_version"]);
    }
}

fn elapsed_s(run: &Value) -> Option<f64> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let start = OffsetDateTime::parse(run["created_at"].as_str()?, &Rfc3339).ok()?;
    let end = OffsetDateTime::parse(run["finished_at"].as_str()?, &Rfc3339).ok()?;
    Some((end - start).as_seconds_f64())
}

fn print_plan(run: &Value, tenants: &[Value]) {
    // Tenants grouped by what a run would do to them.
    let mut groups: std::collections::BTreeMap<(String, String, String), usize> = Default::default();
    for t in tenants {
        let pending: Vec<String> = t["pending"]
            .as_array()
            .map(|p| p.iter().map(|m| format!("V{}__{}", m["version"], str_of(&m["name"]))).collect())
            .unwrap_or_default();
        let key = (str_of(&t["status"]).to_owned(), t["from_version"].to_string(), pending.join(", "));
        *groups.entry(key).or_default() += 1;
    }
    let mut plan = table(&["status", "at version", "would apply", "tenants"]);
    if let Some(column) = plan.column_mut(3) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    for ((status, from, pending), count) in &groups {
        let pending = if pending.is_empty() { "nothing".to_owned() } else { pending.clone() };
        plan.add_row(vec![status.clone(), from.clone(), pending, count.to_string()]);
    }
    println!("plan to version {} ({} tenants):", run["target_version"], tenants.len());
    println!("{plan}");
    let problems: Vec<&Value> = tenants.iter().filter(|t| t["status"] != "planned").collect();
    if !problems.is_empty() {
        let mut table = table(&["tenant", "status", "reason"]);
        for p in problems {
            table.add_row(vec![
                str_of(&p["slug"]).to_owned(),
                str_of(&p["status"]).to_owned(),
                p["error"].as_str().unwrap_or("").to_owned(),
            ]);
        }
        println!("{table}");
    }
    if let Some(templates) = run["templates"].as_array() {
        for tpl in templates {
            println!(
                "template {} on {}: at version {}, {}",
                str_of(&tpl["database"]),
                str_of(&tpl["server"]),
                tpl["from_version"],
                str_of(&tpl["status"])
            );
        }
    }
}
