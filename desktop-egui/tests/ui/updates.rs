//! The updater's screens: "About / Check for updates" against a real control plane, the
//! "Update required" screen with the download's progress (size and speed), a failed update, and
//! the notice after a rollback. Progress and outcomes are fed as the background job sends them.

use desktop_egui::app::{Msg, Screen, UpdateMsg};
use desktop_egui::ui::update::UpdateView;
use desktop_egui::updater::download::Progress;
use desktop_egui::updater::state::Outcome;
use egui_kittest::kittest::Queryable;

use crate::helpers::*;

#[test]
fn about_shows_the_version_and_a_check_against_the_server_finds_nothing_newer() {
    let stack = Stack::start();
    let company = stack.signup(&unique("about-"));
    let mut app = stack.app();
    sign_in(&mut app, &company);
    click(&mut app, &company.email);
    click(&mut app, "About / Check for updates");
    wait_for_label(&mut app, "About NexaCore");
    assert!(app.query_by_label(&format!("NexaCore {}", desktop_egui::client_version())).is_some());
    assert!(app.query_by_label("Channel: stable").is_some());
    click(&mut app, "Check for updates");
    wait_for_label(&mut app, "No newer version is published.");
}

#[test]
fn the_update_required_screen_shows_the_download_with_size_and_speed() {
    let mut app = offline_app();
    app.state_mut().screen =
        Screen::UpdateRequired { minimum: "2.0.0".into(), latest: "2.1.0".into(), draft_kept: false };
    app.state_mut().updates.view = UpdateView::Available {
        version: "2.1.0".into(),
        notes: "Faster lists".into(),
        size: 24_000_000,
        mandatory: true,
    };
    app.run();
    assert!(app.query_by_label("Update required").is_some());
    assert!(app.query_by_label("Version 2.1.0 is available").is_some());
    assert!(app.query_by_label("Download: 24.0 MB").is_some());
    assert!(app.query_by_label("This update is required.").is_some());
    assert!(app.query_by_label("Update now").is_some());

    let progress = Progress { done: 6_000_000, total: 24_000_000, bytes_per_sec: 3_000_000.0, attempt: 0 };
    app.state_mut().handle(Msg::Update(UpdateMsg::Progress { version: "2.1.0".into(), progress }));
    app.run();
    assert!(app.query_by_label("Downloading version 2.1.0").is_some());
    assert!(app.query_by_label("6.0 MB of 24.0 MB at 3.0 MB/s").is_some());
    assert!(app.query_by_label("Update now").is_none());
}

#[test]
fn a_failed_update_says_why_and_that_nothing_changed_and_offers_to_try_again() {
    let mut app = offline_app();
    app.state_mut().screen =
        Screen::UpdateRequired { minimum: "2.0.0".into(), latest: String::new(), draft_kept: false };
    app.state_mut().handle(Msg::Update(UpdateMsg::Installed(Err(
        "the download is not the file the signed manifest names (SHA-256 differs)".into(),
    ))));
    app.run();
    assert!(app.query_by_label_contains("SHA-256 differs").is_some());
    assert!(app.query_by_label("NexaCore is unchanged.").is_some());
    click(&mut app, "Try again");
    // The retry really asks the (unreachable) server, and says so.
    wait_for_label_containing(&mut app, "cannot reach the update server");
}

#[test]
fn after_a_rollback_the_app_says_which_version_failed_and_why() {
    let mut app = offline_app();
    app.state_mut().show_update_outcome(Outcome::RolledBack {
        from: "1.0.0".into(),
        to: "1.1.0".into(),
        reason: "version did not reach its first screen within 60 s".into(),
    });
    app.run();
    assert!(app.query_by_label("About NexaCore").is_some());
    assert!(app.query_by_label("Version 1.1.0 did not start properly, so NexaCore went back to 1.0.0.").is_some());
    assert!(app.query_by_label("Why: version did not reach its first screen within 60 s").is_some());
}

#[test]
fn on_the_update_required_screen_an_offer_starts_downloading_at_once() {
    let mut app = offline_app();
    app.state_mut().screen =
        Screen::UpdateRequired { minimum: "2.0.0".into(), latest: "2.0.0".into(), draft_kept: false };
    let zip = b"not really a zip".to_vec();
    let now = time::OffsetDateTime::now_utc();
    let manifest = release::Manifest {
        version: "2.0.0".parse().unwrap(),
        channel: api_types::releases::Channel::Stable,
        platform: api_types::releases::Platform::LinuxX86_64,
        pub_date: now,
        expires: now + time::Duration::days(1),
        notes: String::new(),
        mandatory: true,
        min_supported: None,
        rollout_percent: 100,
        url: "/releases/artifacts/x".into(),
        size: zip.len() as u64,
        sha256: release::Sha256Digest::of(&zip),
    };
    // What a verified check answers (the address is closed: the download then fails).
    let url = format!("{}/releases/artifacts/x", app.state().settings().server_url);
    let offer = desktop_egui::updater::Offer { manifest, url };
    app.state_mut().handle(Msg::Update(UpdateMsg::Checked(Ok(Some(offer)))));
    app.run();
    assert!(app.query_by_label("Downloading version 2.0.0").is_some());
    assert!(app.query_by_label("Update now").is_none(), "no button to press: it is under way");
}
