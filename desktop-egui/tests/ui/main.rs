//! The desktop app driven by label through `egui_kittest`, against a real control plane and
//! router started on a throwaway Postgres, or (for screens whose server side is elsewhere)
//! fed the answers the app's background jobs would deliver. One module per feature.

mod account;
mod employees;
mod helpers;
mod invitations;
mod layout;
mod people;
mod reconnect;
mod roles;
mod self_update;
mod sign_in;
mod staff;
mod system;
mod tls;
mod updates;
mod wizard;
