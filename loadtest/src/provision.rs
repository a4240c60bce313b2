//! Users and devices for a run, created over HTTP (register, login,
//! `POST /api/devices`) and kept in a provisioning file so a rerun, or a
//! second generator process, reuses them instead of creating new ones.

use futures_util::{stream, StreamExt, TryStreamExt};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;

/// HTTP requests in flight while provisioning.
const CONCURRENCY: usize = 16;

/// One provisioned user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserCreds {
    pub username: String,
    pub password: String,
    /// A bearer token from an earlier run, reused while it has an hour
    /// left: reruns then log nobody in (no password hashing on the relay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When `token` expires, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<i64>,
}

/// One provisioned device, owned by `users[user]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceCreds {
    pub device_id: String,
    pub secret: String,
    pub user: usize,
}

/// The provisioning file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Provision {
    /// The relay these were created on.
    pub target: String,
    pub prefix: String,
    pub users: Vec<UserCreds>,
    pub devices: Vec<DeviceCreds>,
}

/// A user's bearer token for this run.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Tokens for `p.users[i]` for each `i` in `users`: reused from the file
/// while valid for another hour, else by logging in (and saved back).
pub async fn tokens(
    http: &reqwest::Client,
    target: &str,
    file: &Path,
    p: &mut Provision,
    users: &[usize],
) -> anyhow::Result<Vec<String>> {
    let now = crate::unix_now();
    let stale: Vec<usize> = users
        .iter()
        .copied()
        .filter(|&u| {
            p.users[u].token.is_none() || p.users[u].token_expires_at.unwrap_or(0) < now + 3600
        })
        .collect();
    if !stale.is_empty() {
        let creds: Vec<UserCreds> = stale.iter().map(|&u| p.users[u].clone()).collect();
        let sessions = login_all(http, target, &creds).await?;
        for (&u, s) in stale.iter().zip(sessions) {
            p.users[u].token = Some(s.token);
            p.users[u].token_expires_at = Some(s.expires_at);
        }
        let text = serde_json::to_vec_pretty(p)?;
        std::fs::write(file, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
    }
    Ok(users
        .iter()
        .map(|&u| p.users[u].token.clone().unwrap_or_default())
        .collect())
}

fn user_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-u{i:05}")
}

fn device_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-d{i:06}")
}

/// Loads `file` (if it matches `target` and `prefix`), creates whatever of
/// `devices` devices is missing, saves it back and returns it.
pub async fn ensure(
    http: &reqwest::Client,
    target: &str,
    file: &Path,
    prefix: &str,
    devices: usize,
    per_user: usize,
) -> anyhow::Result<Provision> {
    let mut p = match std::fs::read(file) {
        Ok(bytes) => {
            let p: Provision = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: not a provisioning file: {e}", file.display()))?;
            anyhow::ensure!(
                p.target == target && p.prefix == prefix,
                "{} was made for {} (prefix {:?}); use another --provision file or --prefix",
                file.display(),
                p.target,
                p.prefix
            );
            p
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Provision {
            target: target.to_string(),
            prefix: prefix.to_string(),
            ..Default::default()
        },
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", file.display())),
    };
    let users_needed = devices.div_ceil(per_user);
    let result = create_missing(http, target, &mut p, devices, users_needed, per_user).await;
    // Save whatever was created, even on failure: secrets are shown once.
    let text = serde_json::to_vec_pretty(&p)?;
    std::fs::write(file, text).map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
    result?;
    Ok(p)
}

async fn create_missing(
    http: &reqwest::Client,
    target: &str,
    p: &mut Provision,
    devices: usize,
    users_needed: usize,
    per_user: usize,
) -> anyhow::Result<()> {
    let prefix = p.prefix.clone();
    let new_users: Vec<UserCreds> = (p.users.len()..users_needed)
        .map(|i| UserCreds {
            username: user_name(&prefix, i),
            password: Alphanumeric.sample_string(&mut rand::thread_rng(), 20),
            token: None,
            token_expires_at: None,
        })
        .collect();
    let created: Vec<UserCreds> = stream::iter(new_users)
        .map(|u| register(http, target, u))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    p.users.extend(created);
    if p.devices.len() >= devices {
        return Ok(());
    }
    let sessions = login_all(http, target, &p.users[..users_needed]).await?;
    let wanted: Vec<(usize, String)> = (p.devices.len()..devices)
        .map(|i| (i / per_user, device_name(&prefix, i)))
        .collect();
    let mut results = stream::iter(wanted)
        .map(|(user, id)| register_device(http, target, sessions[user].token.clone(), user, id))
        .buffered(CONCURRENCY);
    // Keep each success as it comes, so a failure half-way loses nothing.
    while let Some(r) = results.next().await {
        p.devices.push(r?);
    }
    Ok(())
}

/// Registers user `u` (a name already taken is an error: it is not ours).
async fn register(http: &reqwest::Client, target: &str, u: UserCreds) -> anyhow::Result<UserCreds> {
    let body = json!({"username": u.username, "password": u.password});
    let r = send_retrying(|| http.post(format!("{target}/api/auth/register")).json(&body)).await?;
    match r.status().as_u16() {
        201 => Ok(u),
        409 => anyhow::bail!(
            "user {} exists but is not in the provisioning file; pick another --prefix",
            u.username
        ),
        s => anyhow::bail!("register {}: HTTP {s}: {}", u.username, r.text().await?),
    }
}

/// Registers device `id` for user number `user` (signed in with `token`);
/// returns its credentials.
async fn register_device(
    http: &reqwest::Client,
    target: &str,
    token: String,
    user: usize,
    id: String,
) -> anyhow::Result<DeviceCreds> {
    let body = json!({"device_id": id, "name": "load robot"});
    let r = send_retrying(|| {
        http.post(format!("{target}/api/devices"))
            .bearer_auth(&token)
            .json(&body)
    })
    .await?;
    let status = r.status().as_u16();
    if status == 409 {
        anyhow::bail!(
            "device {id} exists but is not in the provisioning file; pick another --prefix"
        );
    }
    if status != 201 {
        let body = r.text().await.unwrap_or_default();
        anyhow::bail!("create device {id}: HTTP {status} {body}");
    }
    let v: Value = r.json().await?;
    let secret = v["device_secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("create device {id}: no device_secret"))?
        .to_string();
    Ok(DeviceCreds {
        device_id: id,
        secret,
        user,
    })
}

/// Attempts at one request while the relay answers 503.
const ATTEMPTS: u64 = 5;

/// Sends the request `make` builds, again while the relay answers 503 (it
/// asks the caller to retry: e.g. its store is busy), with growing pauses;
/// the last answer, whatever it is, goes to the caller.
pub(crate) async fn send_retrying(
    make: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        let r = make().send().await?;
        attempt += 1;
        if r.status().as_u16() != 503 || attempt == ATTEMPTS {
            return Ok(r);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
    }
}

/// Logs every user in (in order).
pub async fn login_all(
    http: &reqwest::Client,
    target: &str,
    users: &[UserCreds],
) -> anyhow::Result<Vec<Session>> {
    stream::iter(users.iter().cloned())
        .map(|u| async move {
            let body = json!({"username": u.username, "password": u.password});
            let r =
                send_retrying(|| http.post(format!("{target}/api/auth/login")).json(&body)).await?;
            let status = r.status().as_u16();
            anyhow::ensure!(status == 200, "login {}: HTTP {status}", u.username);
            let v: Value = r.json().await?;
            Ok(Session {
                expires_at: crate::unix_now() + v["expires_in"].as_i64().unwrap_or(0),
                user_id: v["user_id"].as_str().unwrap_or_default().to_string(),
                token: v["access_token"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("login {}: no access_token", u.username))?
                    .to_string(),
            })
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}
