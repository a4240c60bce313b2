//! Opening robot and app sockets the way PROTOCOL.md §2/§3 says: robots with
//! the `X-Device-Id` / `X-Timestamp` / `X-Signature` headers, apps with a
//! bearer token.

use super::target::Target;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// Bytes tungstenite reads (and zero-fills) at a time per socket.
const READ_BUFFER: usize = 4096;

pub type Ws = WebSocketStream<TcpStream>;

/// Longest a TCP connect + WebSocket handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// `hex(HMAC-SHA256(secret, "{device_id}:{timestamp}"))` (PROTOCOL.md §2).
pub fn signature(secret: &str, device_id: &str, ts: i64) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{device_id}:{ts}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn header(v: &str) -> anyhow::Result<HeaderValue> {
    Ok(HeaderValue::from_str(v)?)
}

/// A robot socket for `device_id`, signed at `ts` (each connection needs a
/// fresh timestamp: the relay refuses a replayed signature).
pub async fn robot(target: &Target, device_id: &str, secret: &str, ts: i64) -> anyhow::Result<Ws> {
    let mut req = format!("{}/ws/device", target.ws_base).into_client_request()?;
    let h = req.headers_mut();
    h.insert("x-device-id", header(device_id)?);
    h.insert("x-timestamp", header(&ts.to_string())?);
    h.insert("x-signature", header(&signature(secret, device_id, ts))?);
    open(target, req).await
}

/// An app socket for a user.
pub async fn app(target: &Target, token: &str) -> anyhow::Result<Ws> {
    let mut req = format!("{}/ws/app", target.ws_base).into_client_request()?;
    req.headers_mut()
        .insert("authorization", header(&format!("Bearer {token}"))?);
    open(target, req).await
}

async fn open(
    target: &Target,
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> anyhow::Result<Ws> {
    let fut = async {
        let stream = target.dial().await?;
        // tungstenite zero-fills its whole read buffer before every read
        // (default 128 KiB): that memset was 36% of the generator's CPU.
        // Frames here are a few hundred bytes; larger ones still arrive
        // over several reads.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("handshake timed out"))?
}
