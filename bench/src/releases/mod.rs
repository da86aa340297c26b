//! `releases`: the desktop updater's download against `curl` fetching the same file from the
//! same control plane (throughput), and the time from "download complete" to "new version
//! running": staging (safe extraction with hashes), the swap that keeps the previous version,
//! and starting the new program until it answers `--version`.
//!
//! The release is a real zip of a real program (by default this benchmark's own binary, which
//! answers `--version` and exits), uploaded and published through the operator API, signed by a
//! key made for the run; the control plane serves it from its release directory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use api_types::releases::{Channel, Platform};
use clap::Args;
use desktop_egui::updater::download::{self, RetryPolicy, Target};
use desktop_egui::updater::install;
use desktop_egui::updater::state::UpdateState;
use release::archive::{self, ArchiveInput};
use release::{Manifest, Sha256Digest, TrustedKeys};
use serde::Serialize;
use tenancy::DbName;

use crate::harness::output::new_table;
use crate::harness::{platform, postgres};

#[derive(Args)]
pub struct ReleasesBenchArgs {
    /// The program to ship (default: this benchmark's binary).
    #[arg(long)]
    program: Option<std::path::PathBuf>,
    /// Rounds of each measurement; medians are reported.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    zip_bytes: u64,
    rounds: u32,
    updater_mb_per_s: f64,
    curl_mb_per_s: f64,
    /// Updater throughput over curl's.
    ratio: f64,
    stage_ms: f64,
    swap_ms: f64,
    start_ms: f64,
    /// Download complete → the new program answered.
    complete_to_running_ms: f64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn run(args: ReleasesBenchArgs) -> anyhow::Result<()> {
    let program = match args.program {
        Some(p) => p,
        None => std::env::current_exe()?,
    };
    let bytes = std::fs::read(&program).with_context(|| format!("reading {}", program.display()))?;
    let zip = archive::build(&[ArchiveInput { path: install::PROGRAM_NAME, bytes: &bytes, executable: true }])?;
    let sha = Sha256Digest::of(&zip);
    let key = release::signing::signing_key_from_secret(rand::random());
    let trusted = TrustedKeys::from_keys([key.verifying_key()]);
    let work = tempfile::tempdir()?;
    let release_dir = work.path().join("releases");

    let cluster = postgres::start_throwaway(Vec::new()).await?;
    let catalog = DbName::parse("bench_releases_catalog").map_err(|e| anyhow::anyhow!(e))?;
    let dir = release_dir.clone();
    let app = platform::start(platform::builder(&cluster.superuser_url(), move |config| {
        config.catalog_database = catalog;
        config.spare_databases_per_server = 0;
        config.releases.dir = dir;
        config.releases.trusted_keys = trusted;
        config.releases.max_artifact_bytes = 4 << 30;
        config.http.request_timeout = Duration::from_secs(600);
    }))
    .await?;
    let base = app.control_plane.url.clone();
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{base}/releases/artifacts/{sha}"))
        .bearer_auth(&app.operator_token)
        .header("content-type", "application/octet-stream")
        .body(zip.clone())
        .send()
        .await?;
    if !put.status().is_success() {
        bail!("upload: {}", put.status());
    }
    let now = time::OffsetDateTime::now_utc();
    let manifest = Manifest {
        version: "9.0.0".parse()?,
        channel: Channel::Stable,
        platform: Platform::LinuxX86_64,
        pub_date: now,
        expires: now + time::Duration::days(1),
        notes: String::new(),
        mandatory: false,
        min_supported: None,
        rollout_percent: 100,
        url: format!("/releases/artifacts/{sha}"),
        size: zip.len() as u64,
        sha256: sha,
    };
    let envelope = release::sign(&manifest, &key)?;
    let published =
        http.post(format!("{base}/releases")).bearer_auth(&app.operator_token).json(&envelope).send().await?;
    if !published.status().is_success() {
        bail!("publish: {} {}", published.status(), published.text().await.unwrap_or_default());
    }
    let url = format!("{base}{}", manifest.url);
    let mb = zip.len() as f64 / 1_000_000.0;

    let (mut ours, mut curl, mut stage_ms, mut swap_ms, mut start_ms, mut total_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let dir = work.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&dir)?;
        // The updater.
        let target = Target { url: url.clone(), size: manifest.size, sha256: sha, part: dir.join("release.zip.part") };
        // On a runtime of its own, as in the app (whose backend runtime is not the server's):
        // sharing the control plane's runtime would make the updater wait for its own server.
        let started = Instant::now();
        let zip_path = std::thread::spawn(move || -> anyhow::Result<std::path::PathBuf> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                Ok(download::download(&reqwest::Client::new(), &target, &RetryPolicy::default(), |_| {}).await?)
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the download thread panicked"))??;
        ours.push(mb / started.elapsed().as_secs_f64());
        // curl, same URL, same server, to a file.
        let started = Instant::now();
        let status = tokio::process::Command::new("curl")
            .args(["-s", "-f", "-o"])
            .arg(dir.join("curl.zip"))
            .arg(&url)
            .status()
            .await
            .context("running curl")?;
        if !status.success() {
            bail!("curl failed: {status}");
        }
        curl.push(mb / started.elapsed().as_secs_f64());
        // Download complete → new version running.
        let installed = dir.join("installed");
        std::fs::create_dir_all(&installed)?;
        let program_path = installed.join("nexacore-desktop");
        std::fs::copy(&program, &program_path)?;
        let state_file = dir.join("update-state.json");
        let mut state = UpdateState::load_or_create(&state_file)?;
        let t0 = Instant::now();
        let staged = install::stage(&zip_path, &dir, "9.0.0")?;
        let t1 = Instant::now();
        install::swap(&program_path, &staged, &dir, &state_file, &mut state, "8.0.0", "9.0.0")?;
        let t2 = Instant::now();
        run_version(&program_path).await?;
        let t3 = Instant::now();
        stage_ms.push((t1 - t0).as_secs_f64() * 1e3);
        swap_ms.push((t2 - t1).as_secs_f64() * 1e3);
        start_ms.push((t3 - t2).as_secs_f64() * 1e3);
        total_ms.push((t3 - t0).as_secs_f64() * 1e3);
        std::fs::remove_dir_all(&dir).ok();
    }
    app.stop().await?;
    postgres::stop_throwaway(cluster).await?;

    let report = Report {
        zip_bytes: zip.len() as u64,
        rounds: args.rounds,
        updater_mb_per_s: median(ours),
        curl_mb_per_s: median(curl.clone()),
        ratio: 0.0,
        stage_ms: median(stage_ms),
        swap_ms: median(swap_ms),
        start_ms: median(start_ms),
        complete_to_running_ms: median(total_ms),
    };
    let report = Report { ratio: report.updater_mb_per_s / report.curl_mb_per_s, ..report };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let mut table = new_table(&["measure", "median"]);
        table.add_row(vec!["release zip".into(), format!("{:.1} MB", mb)]);
        table.add_row(vec!["updater download".into(), format!("{:.0} MB/s", report.updater_mb_per_s)]);
        table.add_row(vec!["curl, same file and server".into(), format!("{:.0} MB/s", report.curl_mb_per_s)]);
        table.add_row(vec!["updater / curl".into(), format!("{:.2}", report.ratio)]);
        table.add_row(vec!["stage (extract + hash)".into(), format!("{:.0} ms", report.stage_ms)]);
        table.add_row(vec!["swap (keep previous, replace)".into(), format!("{:.0} ms", report.swap_ms)]);
        table.add_row(vec!["start new version (--version)".into(), format!("{:.0} ms", report.start_ms)]);
        table.add_row(vec![
            "download complete → new version running".into(),
            format!("{:.0} ms", report.complete_to_running_ms),
        ]);
        println!("{table}");
    }
    Ok(())
}

/// Starts the program with `--version` and waits for it to answer.
async fn run_version(program: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(program).arg("--version").output().await?;
    if !output.status.success() || output.stdout.is_empty() {
        bail!("the new program did not answer --version: {:?}", output.status);
    }
    Ok(())
}
