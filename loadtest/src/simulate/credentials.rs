//! Where `simulate` gets device credentials: it logs in as `--user`
//! (registering the user first with `--register`), and makes sure devices
//! `{prefix}-001` … (prefix `USER-sim` unless given) exist for that user,
//! creating the missing ones with `POST /api/devices`. A device's secret is shown once, so every secret is
//! kept in the devices file (mode 0600) and reused on the next run; a
//! device that exists but is not in the file cannot be driven (its secret
//! is lost): the error says to delete it or pick another `--prefix`.

use super::link::RobotCreds;
use crate::provision::send_retrying;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;

/// The devices file: which relay and user the secrets belong to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DevicesFile {
    pub target: String,
    pub user: String,
    pub devices: Vec<RobotCreds>,
}

/// How to reach the relay as the owner of the simulated robots.
pub struct Owner<'a> {
    pub target: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    /// Register the user when login says 401.
    pub register: bool,
}

/// The device id of robot `i` (from 1).
pub fn device_id(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:03}")
}

/// Credentials for robots `1..=robots`, reusing `file` and creating what
/// is missing (saved back to `file` before returning, also on failure).
pub async fn ensure(
    http: &reqwest::Client,
    owner: &Owner<'_>,
    prefix: &str,
    robots: usize,
    file: &Path,
) -> anyhow::Result<Vec<RobotCreds>> {
    let mut saved = load(file, owner)?;
    let wanted: Vec<String> = (1..=robots).map(|i| device_id(prefix, i)).collect();
    let missing: Vec<(usize, &String)> = wanted
        .iter()
        .enumerate()
        .filter(|(_, id)| !saved.devices.iter().any(|d| &d.device_id == *id))
        .collect();
    if !missing.is_empty() {
        let token = login(http, owner).await?;
        let mut result = Ok(());
        for (i, id) in missing {
            match create(http, owner.target, &token, id, i + 1).await {
                Ok(secret) => saved.devices.push(RobotCreds {
                    device_id: id.clone(),
                    secret,
                }),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Secrets are shown once: keep what was created even on failure.
        save(file, &saved)?;
        result?;
    }
    Ok(wanted
        .iter()
        .filter_map(|id| saved.devices.iter().find(|d| &d.device_id == id).cloned())
        .collect())
}

fn load(file: &Path, owner: &Owner<'_>) -> anyhow::Result<DevicesFile> {
    match std::fs::read(file) {
        Ok(bytes) => {
            let f: DevicesFile = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: not a devices file: {e}", file.display()))?;
            anyhow::ensure!(
                f.target == owner.target && f.user == owner.user,
                "{} holds devices of {} on {}; use another --devices-file",
                file.display(),
                f.user,
                f.target
            );
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DevicesFile {
            target: owner.target.to_string(),
            user: owner.user.to_string(),
            devices: Vec::new(),
        }),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", file.display())),
    }
}

fn save(file: &Path, f: &DevicesFile) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut out = opts.open(file)?;
        out.write_all(&serde_json::to_vec_pretty(f)?)
    };
    write().map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))
}

/// A bearer token for the owner (registering first if allowed and needed).
async fn login(http: &reqwest::Client, owner: &Owner<'_>) -> anyhow::Result<String> {
    let body = json!({"username": owner.user, "password": owner.password});
    let url = format!("{}/api/auth/login", owner.target);
    let mut r = send_retrying(|| http.post(&url).json(&body)).await?;
    if r.status().as_u16() == 401 && owner.register {
        let reg = format!("{}/api/auth/register", owner.target);
        let made = send_retrying(|| http.post(&reg).json(&body)).await?;
        let status = made.status().as_u16();
        anyhow::ensure!(
            status == 201,
            "registering {}: HTTP {status}: {}",
            owner.user,
            made.text().await.unwrap_or_default()
        );
        r = send_retrying(|| http.post(&url).json(&body)).await?;
    }
    let status = r.status().as_u16();
    anyhow::ensure!(
        status != 401,
        "login as {} refused: wrong user or password (--register creates the user)",
        owner.user
    );
    anyhow::ensure!(status == 200, "login as {}: HTTP {status}", owner.user);
    let v: Value = r.json().await?;
    v["access_token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("login as {}: no access_token", owner.user))
}

/// Creates one device; returns its secret.
async fn create(
    http: &reqwest::Client,
    target: &str,
    token: &str,
    id: &str,
    n: usize,
) -> anyhow::Result<String> {
    let body = json!({"device_id": id, "name": format!("Simulated WIM-Z {n}")});
    let url = format!("{target}/api/devices");
    let r = send_retrying(|| http.post(&url).bearer_auth(token).json(&body)).await?;
    match r.status().as_u16() {
        201 => {}
        409 => anyhow::bail!(
            "device {id} exists but its secret is not in the devices file (another \
             user's, or yours from a lost file: delete it with DELETE \
             /api/devices/{id}); use another --prefix"
        ),
        s => anyhow::bail!(
            "creating device {id}: HTTP {s}: {}",
            r.text().await.unwrap_or_default()
        ),
    }
    let v: Value = r.json().await?;
    v["device_secret"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow::anyhow!("creating device {id}: no device_secret"))
}
