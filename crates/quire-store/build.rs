//! `sqlx::migrate!` embeds `migrations/` at compile time; this makes a changed or added
//! migration rebuild the crate.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
