//! `ops tenants backup`: backups of one, several or every tenant, taken by the control plane
//! (which runs `pg_dump` as each tenant's own role, see `control-plane/src/backups`), followed
//! here with bounded concurrency overall and per database server, and with `--out` downloaded
//! into bundles: one directory per tenant holding the dump and its `manifest.json`, the dump's
//! SHA-256 checked against the manifest after the download.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use api_types::backups::{BackupManifest, BackupStatus, BackupView, MANIFEST_FILE};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::api::{Api, UsageError};

#[derive(clap::Args)]
pub struct BackupArgs {
    /// Tenants to back up, by id or slug.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub tenants: Vec<String>,
    /// Every live tenant (active or suspended).
    #[arg(long)]
    pub all: bool,
    /// Download each finished backup into a bundle under this directory
    /// (`<slug>-<time>/manifest.json` and the dump). Without it the backups stay in the control
    /// plane's backup directory (NEXACORE_BACKUP_DIR).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backups running at once, overall.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Backups running at once on one database server.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub per_server: u16,
    /// Print JSON instead of a progress bar and a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The bundle directory (holding `manifest.json` and the dump).
    pub bundle: PathBuf,
    /// Restore as a new tenant with this slug.
    #[arg(long = "as", value_name = "NEW_SLUG", required_unless_present = "in_place", conflicts_with = "in_place")]
    pub as_slug: Option<String>,
    /// With `--as`: the new tenant's name (default: the bundle's).
    #[arg(long, requires = "as_slug")]
    pub name: Option<String>,
    /// With `--as`: the original tenant's members get the same roles in the copy.
    #[arg(long, requires = "as_slug")]
    pub with_members: bool,
    /// Replace the data of the bundle's own tenant.
    #[arg(long)]
    pub in_place: bool,
    /// With `--in-place`: the tenant meant (id or slug); refused unless it is the bundle's.
    #[arg(long, requires = "in_place")]
    pub tenant: Option<String>,
    /// Required with `--in-place`: the tenant's current data is replaced.
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn restore(api: Api, args: RestoreArgs) -> anyhow::Result<()> {
    if args.in_place && !args.yes {
        return Err(UsageError("--in-place replaces the tenant's data; pass --yes to confirm".into()).into());
    }
    let manifest_path = args.bundle.join(MANIFEST_FILE);
    let text = std::fs::read(&manifest_path)
        .map_err(|e| UsageError(format!("{}: {e} (not a bundle directory?)", manifest_path.display())))?;
    let manifest: BackupManifest =
        serde_json::from_slice(&text).map_err(|e| UsageError(format!("{}: {e}", manifest_path.display())))?;
    let dump_name = Path::new(&manifest.dump_file);
    anyhow::ensure!(
        dump_name.components().count() == 1 && !manifest.dump_file.is_empty(),
        "the manifest's dump_file must be a file name inside the bundle"
    );
    // Checked here first: a corrupt or truncated bundle is refused before anything is sent.
    let bytes = std::fs::read(args.bundle.join(dump_name)).context("reading the bundle's dump")?;
    let sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    anyhow::ensure!(
        bytes.len() as i64 == manifest.size && sha256 == manifest.sha256,
        "refused: the bundle's dump does not match its manifest (size or SHA-256): corrupt or truncated; nothing was changed"
    );
    let uploaded = api.upload(reqwest::Method::POST, "/restores/uploads", bytes).await?;
    let request = api_types::backups::RestoreRequest {
        upload_id: serde_json::from_value(uploaded["upload_id"].clone()).context("the upload's answer")?,
        manifest,
        in_place: args.in_place,
        tenant: args.tenant,
        slug: args.as_slug,
        name: args.name,
        with_members: args.with_members,
    };
    let done = api.call(Method::POST, "/restores", Some(&serde_json::to_value(&request)?)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        let how = if args.in_place { "in place" } else { "as a new tenant" };
        println!(
            "restored {} {how} (tenant {}), schema {} → {}, last outbox seq {}",
            done["slug"].as_str().unwrap_or("?"),
            done["tenant_id"].as_str().unwrap_or("?"),
            done["from_schema_version"],
            done["schema_version"],
            done["last_outbox_seq"]
        );
        if let Some(until) = done["old_database_kept_until"].as_str() {
            println!("the replaced database is kept until {until} (`ops tenants drop-old-databases` drops it now)");
        }
    }
    Ok(())
}

/// A tenant as the backup needs it.
#[derive(Clone, Debug)]
pub struct Named {
    pub id: String,
    pub slug: String,
    pub server_id: String,
}

impl Named {
    pub fn of(t: &Value) -> Self {
        let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
        Self { id: s("id"), slug: s("slug"), server_id: s("server_id") }
    }
}

/// One tenant's outcome.
#[derive(Debug, serde::Serialize)]
pub struct Outcome {
    pub tenant_id: String,
    pub slug: String,
    pub backup: Option<BackupView>,
    /// The bundle directory, with `--out`.
    pub bundle: Option<PathBuf>,
    pub error: Option<String>,
    pub seconds: f64,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

pub async fn run(api: Api, args: BackupArgs) -> anyhow::Result<()> {
    let all = crate::tenants::list_all(&api, None).await?;
    let selected: Vec<Named> = if args.all {
        all.iter().filter(|t| t["status"] == "active" || t["status"] == "suspended").map(Named::of).collect()
    } else {
        let mut picked = Vec::new();
        for name in &args.tenants {
            let found = all
                .iter()
                .find(|t| t["id"] == name.as_str() || (t["slug"] == name.as_str() && t["status"] != "deleted"));
            let t = found.ok_or_else(|| UsageError(format!("no tenant has the id or slug {name:?}")))?;
            picked.push(Named::of(t));
        }
        picked
    };
    let outcomes = back_up(Arc::new(api), selected, &args).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        print_summary(&outcomes);
    }
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    anyhow::ensure!(failed == 0, "{failed} of {} backup(s) failed", outcomes.len());
    Ok(())
}

/// Backs every tenant up under the two limits, in the order given; one outcome each.
pub async fn back_up(api: Arc<Api>, tenants: Vec<Named>, args: &BackupArgs) -> Vec<Outcome> {
    let bar = ProgressBar::new(tenants.len() as u64);
    if args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} backups · {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    let overall = Arc::new(Semaphore::new(args.parallel.into()));
    let mut per_server: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut tasks = Vec::new();
    for tenant in tenants {
        let server = per_server
            .entry(tenant.server_id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(args.per_server.into())));
        let (server, overall, api, bar, out) =
            (server.clone(), overall.clone(), api.clone(), bar.clone(), args.out.clone());
        tasks.push(tokio::spawn(async move {
            // Per server first: a busy server's tenants wait without holding an overall slot.
            let _server = server.acquire_owned().await.expect("never closed");
            let _slot = overall.acquire_owned().await.expect("never closed");
            let started = Instant::now();
            let result = one(&api, &tenant, "manual", out.as_deref()).await;
            bar.inc(1);
            bar.set_message(tenant.slug.clone());
            let (backup, bundle, error) = match result {
                Ok((view, bundle)) => {
                    let error = (view.status != BackupStatus::Done)
                        .then(|| view.error.clone().unwrap_or_else(|| "failed".into()));
                    (Some(view), bundle, error)
                }
                Err(e) => (None, None, Some(format!("{e:#}"))),
            };
            Outcome {
                tenant_id: tenant.id,
                slug: tenant.slug,
                backup,
                bundle,
                error,
                seconds: started.elapsed().as_secs_f64(),
            }
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("a backup task does not panic"));
    }
    bar.finish_and_clear();
    outcomes
}

/// Starts one backup, follows it to its end, and with `out` downloads it into a bundle.
pub async fn one(
    api: &Api,
    tenant: &Named,
    kind: &str,
    out: Option<&Path>,
) -> anyhow::Result<(BackupView, Option<PathBuf>)> {
    let started = api.call(Method::POST, &format!("/tenants/{}/backups?kind={kind}", tenant.id), None).await?;
    let mut view: BackupView = serde_json::from_value(started).context("the control plane's backup answer")?;
    while view.status == BackupStatus::Running {
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = serde_json::from_value(api.call(Method::GET, &format!("/backups/{}", view.id), None).await?)
            .context("the control plane's backup answer")?;
    }
    let bundle = match (&view.manifest, out) {
        (Some(manifest), Some(out)) if view.status == BackupStatus::Done => Some(download(api, manifest, out).await?),
        _ => None,
    };
    Ok((view, bundle))
}

/// Writes `<out>/<slug>-<time>/` with the dump and `manifest.json`; the dump's size and SHA-256
/// must match the manifest, else the bundle is removed and the download fails.
async fn download(api: &Api, manifest: &BackupManifest, out: &Path) -> anyhow::Result<PathBuf> {
    let stamp =
        manifest.created_at.format(&time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"))?;
    let dir = out.join(format!("{}-{stamp}", manifest.slug));
    tokio::fs::create_dir_all(&dir).await.with_context(|| format!("creating {}", dir.display()))?;
    let dump = dir.join(&manifest.dump_file);
    let (size, sha256) = api.download(&format!("/backups/{}/file", manifest.backup_id), &dump).await?;
    if size != manifest.size || sha256 != manifest.sha256 {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        anyhow::bail!("the downloaded dump of {} does not match its manifest (size or SHA-256)", manifest.slug);
    }
    tokio::fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec_pretty(manifest)?).await?;
    Ok(dir)
}

fn print_summary(outcomes: &[Outcome]) {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["tenant", "status", "size", "sha256", "seconds", "where / why"]);
    for o in outcomes {
        let manifest = o.backup.as_ref().and_then(|b| b.manifest.as_ref());
        let status = match (&o.backup, &o.error) {
            (_, Some(_)) => "failed".to_owned(),
            (Some(b), None) => format!("{:?}", b.status).to_lowercase(),
            (None, None) => "?".to_owned(),
        };
        let place = match (&o.error, &o.bundle, &o.backup) {
            (Some(e), _, _) => e.clone(),
            (None, Some(b), _) => b.display().to_string(),
            (None, None, Some(b)) => format!("backup {} (control plane)", b.id),
            _ => String::new(),
        };
        table.add_row([
            o.slug.clone(),
            status,
            manifest.map(|m| human_size(m.size)).unwrap_or_default(),
            manifest.map(|m| m.sha256[..12.min(m.sha256.len())].to_owned()).unwrap_or_default(),
            format!("{:.1}", o.seconds),
            place,
        ]);
    }
    println!("{table}");
    let done = outcomes.iter().filter(|o| o.ok()).count();
    let bytes: i64 = outcomes.iter().filter_map(|o| o.backup.as_ref()?.manifest.as_ref().map(|m| m.size)).sum();
    println!("{done} of {} backup(s) done, {}", outcomes.len(), human_size(bytes));
}

fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}
