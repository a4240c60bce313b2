//! Rebuild the relay when a file is added to, changed in or removed from a
//! folder it compiles in: `console/` and `clients/js/` (embedded by
//! `rust-embed`, `src/http/console.rs`) and `migrations/` (`sqlx::migrate!`,
//! `src/store/mod.rs`). Both macros read those folders at compile time, and
//! cargo notices a changed file they include but not a new one; naming the
//! folders here makes cargo scan them. (With this script cargo reruns it
//! only for these paths; the crate's own sources are tracked as always.)

fn main() {
    for dir in ["console", "clients/js", "migrations"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
