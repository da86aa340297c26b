//! The desktop app driven by label through `egui_kittest`, against a real control plane and
//! router started on a throwaway Postgres. One module per feature.

mod employees;
mod helpers;
mod sign_in;
mod system;
mod wizard;
