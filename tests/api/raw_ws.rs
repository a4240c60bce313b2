//! A WebSocket client spoken by hand over a raw TCP socket (RFC 6455), for
//! what a real client library refuses to send: frame headers claiming any
//! length, fragments without end, reserved bits, invalid UTF-8. Frames
//! from us are masked (with a zero key: the bytes on the wire are the
//! payload); frames from the relay are read unmasked.

use crate::helpers::PATIENCE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub const FIN: u8 = 0x80;
pub const RSV1: u8 = 0x40;
pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;

/// The reading half: frames from the relay.
pub struct RawReader {
    rd: OwnedReadHalf,
    buf: Vec<u8>,
}

/// The writing half: frames to the relay.
pub struct RawWriter {
    wr: OwnedWriteHalf,
}

/// Opens `path` (with its query) on the relay at `port` with `headers`;
/// `Err(status)` when the relay answers the handshake with anything but 101.
pub async fn connect(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(RawReader, RawWriter), u16> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    wr.write_all(req.as_bytes()).await.unwrap();
    let mut reader = RawReader {
        rd,
        buf: Vec::new(),
    };
    let head = reader.response_head().await;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status == 101 {
        Ok((reader, RawWriter { wr }))
    } else {
        Err(status)
    }
}

impl RawReader {
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.rd.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn response_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                self.buf.drain(..end + 4);
                return head;
            }
            let more = tokio::time::timeout(PATIENCE, self.fill()).await;
            assert!(matches!(more, Ok(true)), "no handshake answer");
        }
    }

    /// The next frame from the relay as (opcode, payload); `None` at end of stream.
    pub async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((len, opcode, start)) = self.parse_head() {
                if self.buf.len() >= start + len {
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    return Some((opcode, payload));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    fn parse_head(&self) -> Option<(usize, u8, usize)> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let (len, start) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        Some((len, opcode, start))
    }

    /// Skips other frames up to the relay's close frame: its (code, reason);
    /// `None` if the stream ends first or nothing comes within [`PATIENCE`]
    /// (a hang guard, not a bound).
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        let wait = async {
            while let Some((opcode, payload)) = self.frame().await {
                if opcode == OP_CLOSE {
                    let code = payload
                        .get(..2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .unwrap_or(1005);
                    let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or(&[]));
                    return Some((code, reason.to_string()));
                }
            }
            None
        };
        tokio::time::timeout(PATIENCE, wait).await.ok().flatten()
    }

    /// Reads (and drops) everything until the relay closes the connection;
    /// false if it is still open after [`PATIENCE`] (a hang guard).
    pub async fn until_closed(&mut self) -> bool {
        let wait = async {
            while self.fill().await {
                self.buf.clear();
            }
        };
        tokio::time::timeout(PATIENCE, wait).await.is_ok()
    }
}

impl RawWriter {
    /// A frame header: `first` is FIN | RSV | opcode; the length is what the
    /// header claims, whatever follows. Masked with a zero key.
    pub fn header(first: u8, len: u64) -> Vec<u8> {
        let mut h = vec![first];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    }

    /// Writes bytes as they are; false once the relay has gone.
    pub async fn raw(&mut self, bytes: &[u8]) -> bool {
        self.wr.write_all(bytes).await.is_ok()
    }

    /// One whole frame's bytes.
    pub fn encode(first: u8, payload: &[u8]) -> Vec<u8> {
        [Self::header(first, payload.len() as u64), payload.to_vec()].concat()
    }

    /// Writes one whole frame.
    pub async fn frame(&mut self, first: u8, payload: &[u8]) -> bool {
        self.raw(&Self::encode(first, payload)).await
    }
}
