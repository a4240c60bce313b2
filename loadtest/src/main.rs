//! `wimz-loadtest`: the load generator on its own (the same as
//! `wimz-relay loadtest`). Parses the command line and calls the library.

use clap::Parser;

/// Same allocator as the relay binary (`wimz-relay loadtest` runs under it),
/// so both entries measure alike; docs/BENCHMARKS.md says why jemalloc.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Load-test a relay that speaks PROTOCOL.md: simulated robots and apps,
/// measured loss, order and latency. Exits 1 on any loss, duplicate,
/// reorder or failed connection.
#[derive(Parser, Debug)]
#[command(name = "wimz-loadtest", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    args: wimz_loadtest::LoadtestArgs,
}

fn main() {
    let cli = Cli::parse();
    match wimz_loadtest::run_cli(cli.args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("wimz-loadtest: {e:#}");
            std::process::exit(1);
        }
    }
}
