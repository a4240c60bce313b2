//! The command line: `serve` (and `serve --demo`), `user add`, `device
//! add`, and `loadtest` and `simulate` (thin entries into the
//! `wimz-loadtest` crate).

use crate::config::Settings;
use crate::ids::DeviceId;
use crate::store::Store;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;

/// WIM-Z cloud relay: robots and apps meet here over WebSocket.
///
/// Start with `wimz-relay serve` (embedded SQLite, single instance, reads
/// config/default.toml when present). Every config key can be overridden by
/// the environment: WIMZ__SECTION__KEY, e.g. WIMZ__SERVER__BIND=127.0.0.1:9001.
#[derive(Parser, Debug)]
#[command(name = "wimz-relay", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the relay.
    Serve {
        /// Config file (default: config/default.toml if it exists).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// A demo: the relay with a fresh store in a temp dir (deleted on
        /// exit), a user `demo` with a random password and a few simulated
        /// robots; prints the console's URL and the login.
        #[arg(long)]
        demo: bool,
        /// Simulated robots in the demo.
        #[arg(long, default_value_t = 3, requires = "demo")]
        demo_robots: usize,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage devices (robots).
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// Load-test a relay (this one or any that speaks PROTOCOL.md):
    /// simulated robots and apps, measured loss, order and latency.
    /// Exits 1 on any loss, duplicate, reorder or failed connection.
    Loadtest(Box<wimz_loadtest::LoadtestArgs>),
    /// Simulated WIM-Z robots for a user (missions, battery, barks,
    /// treats; they answer commands and REST calls), connected to a relay
    /// until Ctrl-C. Creates the devices on first use and keeps their
    /// secrets in --devices-file.
    Simulate(Box<wimz_loadtest::simulate::SimulateArgs>),
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Create a user; the password is read from standard input (one line).
    Add {
        name: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeviceAction {
    /// Register a robot for an owner; prints its secret once.
    Add {
        device_id: String,
        /// Username of the owner.
        #[arg(long)]
        owner: String,
        /// Display name (default: the device id).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Loads the config or exits with one line naming the bad key.
fn settings(config: Option<&PathBuf>) -> Settings {
    match Settings::load(config.map(|p| p.as_path())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wimz-relay: {e}");
            std::process::exit(2);
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Loadtest(args) => {
            if !wimz_loadtest::run_cli(*args)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Simulate(args) => wimz_loadtest::simulate::run_cli(*args),
        Command::Serve {
            config,
            demo,
            demo_robots,
        } => {
            let s = settings(config.as_ref());
            crate::telemetry::init(&s.log.level, &s.log.format);
            match demo {
                true => actix_rt::System::new().block_on(crate::demo::serve(s, demo_robots)),
                false => actix_rt::System::new().block_on(crate::startup::serve(s)),
            }
        }
        Command::User {
            action: UserAction::Add { name, config },
        } => user_add(&name, config.as_ref()),
        Command::Device {
            action:
                DeviceAction::Add {
                    device_id,
                    owner,
                    name,
                    config,
                },
        } => device_add(&device_id, &owner, name, config.as_ref()),
    }
}

/// `user add NAME`: the password from standard input, into the store.
fn user_add(name: &str, config: Option<&PathBuf>) -> anyhow::Result<()> {
    let s = settings(config);
    crate::telemetry::init("warn", &s.log.format);
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    crate::auth::password::check_strength(&password).map_err(|m| anyhow::anyhow!(m))?;
    let hash = crate::auth::password::hash(&password)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = Store::connect(&s.store.url, 2).await?;
        match store.create_user(name, &hash).await {
            Ok(id) => {
                println!("user {name} created (user_id {id})");
                Ok(())
            }
            Err(crate::store::StoreError::Conflict) => {
                anyhow::bail!("user {name} already exists")
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// `device add ID --owner NAME`: a device and its secret (printed once).
fn device_add(
    device_id: &str,
    owner: &str,
    name: Option<String>,
    config: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let s = settings(config);
    crate::telemetry::init("warn", &s.log.format);
    let device = DeviceId::parse(device_id).map_err(|e| anyhow::anyhow!(e))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = Store::connect(&s.store.url, 2).await?;
        let user = store
            .find_user(owner)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_context(|| format!("no user named {owner}"))?;
        let secret = crate::http::devices::new_device_secret();
        let name = name.unwrap_or_else(|| device_id.to_string());
        match store.create_device(&device, &name, &user.user_id, &secret).await {
            Ok(()) => {
                println!("{}", secret.expose());
                eprintln!("device {device_id} registered for {owner}; the line above is its secret, shown once");
                Ok(())
            }
            Err(crate::store::StoreError::Conflict) => anyhow::bail!("device {device_id} already exists"),
            Err(e) => Err(e.into()),
        }
    })
}
