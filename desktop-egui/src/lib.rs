//! NexaCore's desktop app (eframe): sign-in, the live employees table and the
//! company-creation wizard. `main.rs` only starts [`app::NexaApp`] in a window; tests drive
//! the same app with `egui_kittest`, and the benchmark drives [`ui::employees`] directly.

pub mod api;
pub mod app;
pub mod backend;
pub mod build_stamp;
pub mod credentials;
pub mod diagnostics;
pub mod drafts;
pub mod employees;
pub mod links;
pub mod live;
pub mod merge;
pub mod settings;
pub mod tls;
pub mod ui;
pub mod updater;

/// This build's version (the crate's, unless the build is stamped: [`build_stamp`]), sent as
/// `X-Client-Version` and compared with the platform's minimum.
pub use build_stamp::client_version;

/// The window's class / app id; `packaging/nexacore.desktop` names it as `StartupWMClass`.
pub const APP_ID: &str = "nexacore";
