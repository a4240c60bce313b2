use clap::Parser;

/// jemalloc: measured faster than glibc's malloc on the relay's hot path
/// (many small frames allocated on one thread and freed on another) and it
/// keeps less memory per idle connection; see docs/BENCHMARKS.md.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    wimz_relay::telemetry::tune_allocator();
    wimz_relay::telemetry::install_panic_hook();
    let cli = wimz_relay::cli::Cli::parse();
    if let Err(e) = wimz_relay::cli::run(cli) {
        eprintln!("wimz-relay: {e:#}");
        std::process::exit(1);
    }
}
