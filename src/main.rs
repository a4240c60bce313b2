use clap::Parser;

fn main() {
    wimz_relay::telemetry::tune_allocator();
    let cli = wimz_relay::cli::Cli::parse();
    if let Err(e) = wimz_relay::cli::run(cli) {
        eprintln!("wimz-relay: {e:#}");
        std::process::exit(1);
    }
}
