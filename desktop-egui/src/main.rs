//! `desktop-egui`: opens the NexaCore window. Settings live in the platform's config
//! directory; `NEXACORE_DESKTOP_SETTINGS` names another file. Started with an invitation's
//! link (`desktop-egui nexacore://accept?code=…`, what a URL-scheme handler runs), it opens
//! on the invitation form with the code filled in. `--version` prints the version; `--update`
//! updates without a window (`updater::unattended`).

use desktop_egui::app::{NexaApp, SettingsStore};
use desktop_egui::settings::Settings;
use desktop_egui::updater::{launch, unattended};

fn main() -> eframe::Result {
    // Before anything else: the path this program started from (a swap may replace the file).
    let _ = launch::program_path();
    let first = std::env::args().nth(1);
    if first.as_deref() == Some("--version") {
        println!("desktop-egui {}", desktop_egui::client_version());
        return Ok(());
    }
    desktop_egui::diagnostics::init_logging();
    tracing::info!(version = desktop_egui::client_version(), "starting");
    let store = match std::env::var_os("NEXACORE_DESKTOP_SETTINGS") {
        Some(path) => SettingsStore::File(path.into()),
        None => Settings::default_path().map_or(SettingsStore::Memory, SettingsStore::File),
    };
    let settings_path = match &store {
        SettingsStore::File(path) => Some(path.clone()),
        SettingsStore::Memory => None,
    };
    let settings = settings_path.as_deref().map(Settings::load).unwrap_or_default();
    let paths = launch::UpdatePaths::beside(settings_path.as_deref());
    let build = desktop_egui::updater::this_build(settings.channel);
    if first.as_deref() == Some(unattended::FLAG) {
        let Some(build) = build else {
            eprintln!("this platform has no updates");
            std::process::exit(1);
        };
        std::process::exit(unattended::run(&paths, build, &settings.server_url));
    }
    // Finish or undo the last update before the window opens (this may start the previous
    // version in this one's place and not return).
    let outcome = build.and_then(|build| launch::at_program_start(&paths, build, &settings.server_url));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("NexaCore")
            // The window class (X11 WM_CLASS, Wayland app id): what desktops match with the
            // `StartupWMClass` of packaging/nexacore.desktop to group and label the window.
            .with_app_id(desktop_egui::APP_ID)
            .with_inner_size([1180.0, 760.0])
            .with_min_inner_size([640.0, 420.0]),
        ..Default::default()
    };
    let link = first.filter(|a| a.starts_with(desktop_egui::links::ACCEPT_LINK));
    eframe::run_native(
        "NexaCore",
        options,
        Box::new(move |_cc| {
            let mut app = NexaApp::new(store);
            if let Some(link) = link {
                app.open_link(&link);
            }
            if let Some(outcome) = outcome {
                app.show_update_outcome(outcome);
            }
            Ok(Box::new(app))
        }),
    )
}
