//! `wimz-relay serve --demo`: the relay, a demo user and a few simulated
//! robots in one command, with no other service, for trying the console.
//!
//! Where its data lives: a fresh directory under the system's temp dir
//! (`wimz-demo-<random>`, mode 0700), holding the SQLite store; it is
//! deleted when the demo stops. The configured `store.url`,
//! `server.data_dir` and `cluster.redis_url` are ignored (a demo never
//! touches a real store), everything else of the configuration applies
//! (`server.bind` included). The demo user is `demo` with a random
//! password made at start; both are printed with the console's URL. The
//! robots are `wimz-loadtest`'s simulator ([`wimz_loadtest::simulate`]),
//! run on a thread of their own and connected over loopback like any
//! robot. On SIGTERM or Ctrl-C the robots disconnect first, then the relay
//! shuts down as `serve` does.

use crate::config::Settings;
use crate::ids::DeviceId;
use crate::secret::Secret;
use crate::startup::Application;
use crate::store::Store;
use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use wimz_loadtest::simulate::{self, FleetOptions, RobotCreds};

/// The demo user's name.
pub const DEMO_USER: &str = "demo";
/// Most robots `--demo-robots` may ask for.
pub const MAX_DEMO_ROBOTS: usize = 20;
/// Where the demo robots stand (their display names).
const ROOMS: &[&str] = &[
    "Living room",
    "Garden",
    "Kitchen",
    "Hallway",
    "Porch",
    "Bedroom",
];
/// How the demo robots live: a step a second, back within 5 s of a blip.
const TICK: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long shutdown waits for the robots to say goodbye.
const ROBOTS_STOP_WAIT: Duration = Duration::from_secs(5);

/// The demo's data directory; removed when dropped.
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> anyhow::Result<DemoDir> {
        let name = format!(
            "wimz-demo-{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 10)
        );
        let path = std::env::temp_dir().join(name);
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(&path)
            .with_context(|| format!("creating the demo's data dir {}", path.display()))?;
        Ok(DemoDir(path))
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo until SIGTERM or Ctrl-C.
pub async fn serve(mut settings: Settings, robots: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_DEMO_ROBOTS).contains(&robots),
        "--demo-robots must be 1 to {MAX_DEMO_ROBOTS}"
    );
    let dir = DemoDir::create()?;
    settings.store.url = Secret::new(format!("sqlite://{}", dir.0.join("relay.db").display()));
    settings.server.data_dir = dir.0.join("data");
    settings.cluster.redis_url = Secret::new(String::new());
    if settings.auth.jwt_secret.is_empty() {
        settings.auth.jwt_secret = crate::http::devices::new_device_secret();
    }
    let bind = settings.server.bind;
    let app = Application::build(settings).await?;
    let handle = app.handle();
    let (password, creds) = provision(&handle.state.store, robots).await?;
    let base = base_url(bind, app.port());
    let ids: Vec<String> = creds.iter().map(|c| c.device_id.clone()).collect();
    let (stop_robots, stop) = watch::channel(false);
    let fleet = start_robots(base.clone(), creds, stop)?;
    banner(&base, &password, &ids, &dir.0)?;
    actix_rt::spawn(async move {
        crate::startup::wait_for_signal().await;
        tracing::info!("shutdown signal received; stopping the demo robots, then the relay");
        let _ = stop_robots.send(true);
        let joined = tokio::task::spawn_blocking(move || fleet.join());
        let _ = tokio::time::timeout(ROBOTS_STOP_WAIT, joined).await;
        handle.shutdown().await;
    });
    app.run_until_stopped().await?;
    tracing::info!("demo stopped; removing {}", dir.0.display());
    drop(dir);
    Ok(())
}

/// The demo user (random password) and its robots, written straight into
/// the demo's store; returns the password and the robots' credentials.
async fn provision(store: &Store, robots: usize) -> anyhow::Result<(String, Vec<RobotCreds>)> {
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || crate::auth::password::hash(&p)).await??
    };
    let user = store.create_user(DEMO_USER, &hash).await?;
    let mut creds = Vec::with_capacity(robots);
    for i in 1..=robots {
        let id = format!("demo-wimz-{i}");
        let device = DeviceId::parse(&id).map_err(|e| anyhow::anyhow!(e))?;
        let secret = crate::http::devices::new_device_secret();
        let name = format!("WIM-Z {}", ROOMS[(i - 1) % ROOMS.len()]);
        store.create_device(&device, &name, &user, &secret).await?;
        creds.push(RobotCreds {
            device_id: id,
            secret: secret.expose().to_string(),
        });
    }
    Ok((password, creds))
}

/// The simulated robots, on a thread and runtime of their own so they
/// never share the relay's threads' time slices with its actors.
fn start_robots(
    base: String,
    creds: Vec<RobotCreds>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let opts = FleetOptions {
        tick: TICK,
        max_backoff: MAX_BACKOFF,
        seed: rand::random(),
        verbose: false,
    };
    let thread = std::thread::Builder::new()
        .name("demo-robots".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "demo robots: no runtime");
                    return;
                }
            };
            if let Err(e) = rt.block_on(simulate::run_fleet(&base, creds, opts, stop)) {
                tracing::error!(error = %format!("{e:#}"), "demo robots stopped");
            }
        })?;
    Ok(thread)
}

/// `http://host:port` the demo is reached at on this machine: the bound
/// address, or loopback when bound to every address.
fn base_url(bind: SocketAddr, port: u16) -> String {
    let ip = match bind.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, port))
}

/// What the operator needs, on standard output (the relay's logs go to
/// standard error). Tests read the `console` and `login` lines.
fn banner(base: &str, password: &str, ids: &[String], dir: &std::path::Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "WIM-Z relay demo: a relay, a demo user and {} simulated robots",
        ids.len()
    )?;
    writeln!(out, "  console  {base}/console/")?;
    writeln!(out, "  login    {DEMO_USER} / {password}")?;
    writeln!(out, "  robots   {}", ids.join(", "))?;
    writeln!(out, "  data     {} (deleted on exit)", dir.display())?;
    writeln!(out, "Ctrl-C stops it.")?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_url_is_reachable_from_this_machine() {
        let any: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        assert_eq!(base_url(any, 8000), "http://127.0.0.1:8000");
        let any6: SocketAddr = "[::]:0".parse().unwrap();
        assert_eq!(base_url(any6, 9001), "http://[::1]:9001");
        let one: SocketAddr = "192.0.2.7:0".parse().unwrap();
        assert_eq!(base_url(one, 8123), "http://192.0.2.7:8123");
    }
}
