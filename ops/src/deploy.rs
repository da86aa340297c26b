//! `ops deploy`: the deploy playbook as one command. Maintenance on (every router answers 503
//! `maintenance` with `Retry-After` within a second) → a pause for requests already in flight
//! to finish → a bulk migration of every tenant that stops at the first failure → maintenance
//! off. When the migration fails, maintenance stays on and the report says what failed; after
//! the fix, `ops deploy --resume` finishes the same run (resume or retry) and turns it off.

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Api, Target};
use crate::migrate::{Follow, conclude};

#[derive(clap::Args)]
pub struct DeployArgs {
    /// Shown to users during the deploy.
    #[arg(long, default_value = "Upgrading NexaCore; back in a few minutes")]
    pub message: String,
    /// Finish the last deploy's migration run after a fix (maintenance is still on).
    #[arg(long)]
    pub resume: bool,
    /// Seconds to let requests already in flight finish after maintenance is on.
    #[arg(long, default_value_t = 2)]
    pub drain_secs: u64,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DeployArgs, target: Target) -> anyhow::Result<()> {
    let api = Api::from_target(target)?;
    let follow = Follow { detach: false, json: args.json };
    let migrated = if args.resume {
        let runs = api.call(Method::GET, "/migrations/runs?limit=1", None).await?;
        let last = runs.as_array().and_then(|r| r.first()).cloned().context("no migration run to resume")?;
        let id = last["id"].as_str().unwrap_or_default().to_owned();
        let run = if last["reached_target"] == true {
            last
        } else if matches!(last["state"].as_str(), Some("paused" | "interrupted")) {
            api.call(Method::POST, &format!("/migrations/runs/{id}/resume"), None).await?
        } else {
            api.call(Method::POST, &format!("/migrations/runs/{id}/retry"), None).await?
        };
        conclude(&api, run, &follow).await
    } else {
        maintenance(&api, true, Some(&args.message)).await?;
        eprintln!("maintenance on; letting requests in flight finish ({} s)", args.drain_secs);
        tokio::time::sleep(std::time::Duration::from_secs(args.drain_secs)).await;
        let run = api.call(Method::POST, "/migrations/runs", Some(&json!({ "failure_policy": "stop" }))).await?;
        conclude(&api, run, &follow).await
    };
    if let Err(error) = migrated {
        anyhow::bail!(
            "{error:#}\nthe deploy stopped with maintenance still ON; fix the cause, then `ops deploy --resume` \
             (or `ops maintenance off` to reopen without it)"
        );
    }
    maintenance(&api, false, None).await?;
    eprintln!("deploy done: every tenant migrated, maintenance off");
    Ok(())
}

async fn maintenance(api: &Api, on: bool, message: Option<&str>) -> anyhow::Result<Value> {
    let mut body = json!({ "maintenance_mode": on });
    if let Some(m) = message {
        body["message"] = json!(m);
    }
    api.call(Method::PUT, "/system/maintenance", Some(&body)).await
}
