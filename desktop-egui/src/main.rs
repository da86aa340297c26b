//! `desktop-egui`: opens the NexaCore window. Settings live in the platform's config
//! directory; `NEXACORE_DESKTOP_SETTINGS` names another file. Started with an invitation's
//! link (`desktop-egui nexacore://accept?code=…`, what a URL-scheme handler runs), it opens
//! on the invitation form with the code filled in.

use desktop_egui::app::{NexaApp, SettingsStore};
use desktop_egui::settings::Settings;

fn main() -> eframe::Result {
    desktop_egui::diagnostics::init_logging();
    tracing::info!(version = desktop_egui::CLIENT_VERSION, "starting");
    let store = match std::env::var_os("NEXACORE_DESKTOP_SETTINGS") {
        Some(path) => SettingsStore::File(path.into()),
        None => Settings::default_path().map_or(SettingsStore::Memory, SettingsStore::File),
    };
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
    // Finish or undo the last update before anything else (this may restart into the previous
    // version and not return).
    let outcome = desktop_egui::updater::this_build().and_then(|build| {
        let settings_path = match &store {
            SettingsStore::File(path) => Some(path.clone()),
            SettingsStore::Memory => None,
        };
        let server = settings_path.as_deref().map(Settings::load).unwrap_or_default().server_url;
        let paths = desktop_egui::updater::launch::UpdatePaths::beside(settings_path.as_deref());
        desktop_egui::updater::launch::on_start(&paths, build, &server)
    });
    let link = std::env::args().nth(1).filter(|a| a.starts_with(desktop_egui::links::ACCEPT_LINK));
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
