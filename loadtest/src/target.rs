//! Where the generator connects and from where: the target address (refused
//! outside 127.0.0.0/8 unless `--allow-remote`), the source addresses the
//! sockets are spread over, and the generator's own `nofile` limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpSocket, TcpStream};

/// The relay as the generator reaches it.
#[derive(Debug)]
pub struct Target {
    /// `http://host:port` without a trailing slash.
    pub http_base: String,
    /// `ws://host:port`.
    pub ws_base: String,
    /// The resolved address sockets connect to.
    pub addr: SocketAddr,
    /// Source addresses, used round-robin (empty: kernel's choice).
    sources: Vec<Ipv4Addr>,
    /// Round-robin cursor over `sources`.
    next: AtomicUsize,
}

impl Target {
    /// Resolves `base` (`http://host:port`) and applies the loopback rule.
    pub async fn resolve(
        base: &str,
        allow_remote: bool,
        sources: Vec<Ipv4Addr>,
    ) -> anyhow::Result<Target> {
        let base = base.trim_end_matches('/');
        let rest = base.strip_prefix("http://").ok_or_else(|| {
            anyhow::anyhow!(
                "--target must be an http:// URL (TLS is not supported by the generator)"
            )
        })?;
        anyhow::ensure!(
            !rest.contains('/'),
            "--target must be a base URL without a path"
        );
        let hostport = if rest.contains(':') {
            rest.to_string()
        } else {
            format!("{rest}:80")
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&hostport).await?.collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| anyhow::anyhow!("{hostport} does not resolve"))?;
        if !allow_remote && !is_loopback(addr.ip()) {
            anyhow::bail!(
                "refusing to load {addr}: not a loopback address (pass --allow-remote for a relay you run)"
            );
        }
        anyhow::ensure!(
            sources.is_empty() || addr.is_ipv4(),
            "--source-ips needs an IPv4 target"
        );
        Ok(Target {
            http_base: base.to_string(),
            ws_base: format!("ws://{rest}"),
            addr,
            sources,
            next: AtomicUsize::new(0),
        })
    }

    /// A TCP connection to the relay from the next source address.
    pub async fn dial(&self) -> std::io::Result<TcpStream> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if !self.sources.is_empty() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
            socket.bind(SocketAddr::new(IpAddr::V4(self.sources[i]), 0))?;
        }
        let stream = socket.connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// 127.0.0.0/8 or ::1.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// Raises this process's `nofile` soft limit to the hard limit; returns the
/// resulting soft limit.
pub fn raise_nofile() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    Ok(lim.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remote_targets_are_refused_unless_allowed() {
        let e = Target::resolve("http://10.1.2.3:8000", false, vec![])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a loopback"), "{e}");
        assert!(Target::resolve("http://10.1.2.3:8000", true, vec![])
            .await
            .is_ok());
        let t = Target::resolve("http://127.0.0.5:9/", false, vec![])
            .await
            .unwrap();
        assert_eq!(t.ws_base, "ws://127.0.0.5:9");
        assert!(Target::resolve("https://127.0.0.1", false, vec![])
            .await
            .is_err());
    }
}
