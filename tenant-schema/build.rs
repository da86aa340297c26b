//! Rebuilds the crate when a migration file is added, removed or edited.
//!
//! `refinery::embed_migrations!` reads `migrations/` at compile time; without this, Cargo would
//! not notice a new file there.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
}
