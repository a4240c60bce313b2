//! Who the client is, by address: the TCP peer, unless the peer is one of
//! `server.trusted_proxies`; then the rightmost `X-Forwarded-For` hop that
//! is not a trusted proxy. `X-Forwarded-For` from anyone else is ignored
//! (a client can write anything there). Per-address caps key IPv6 clients
//! by their /64 (one host usually holds the whole /64).

use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `server.trusted_proxies`: addresses or CIDR blocks of the reverse
/// proxies in front of the relay (e.g. `["127.0.0.1", "10.0.0.0/8"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "OneOrMany")]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl TryFrom<OneOrMany> for TrustedProxies {
    type Error = String;

    fn try_from(v: OneOrMany) -> Result<Self, String> {
        let items: Vec<String> = match v {
            OneOrMany::One(s) => s.split(',').map(|p| p.trim().to_string()).collect(),
            OneOrMany::Many(v) => v,
        };
        items
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                parse_net(s.trim()).ok_or_else(|| format!("{s:?} is not an address or CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl TrustedProxies {
    pub fn new(nets: &[&str]) -> Option<TrustedProxies> {
        nets.iter()
            .map(|s| parse_net(s))
            .collect::<Option<Vec<_>>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is one of the trusted proxies (also for the origin
    /// check's `X-Forwarded-Proto`, `http::origins`).
    pub fn trusts(&self, ip: &IpAddr) -> bool {
        let ip = canonical(*ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with these
    /// `X-Forwarded-For` header values (in order).
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(&peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if self.trusts(&ip) => client = ip,
                Some(ip) => return ip,
                // A hop we cannot read: the last proxy we trust is who we know.
                None => return client,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443`, `1.2.3.4:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The key per-address caps count under: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrKey(IpAddr);

impl AddrKey {
    pub fn of(ip: IpAddr) -> AddrKey {
        match canonical(ip) {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                AddrKey(IpAddr::V6(Ipv6Addr::new(
                    s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                )))
            }
            v4 => AddrKey(v4),
        }
    }

    pub fn unknown() -> AddrKey {
        AddrKey(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.1"), ["9.9.9.9"].into_iter()),
            ip("127.0.0.1")
        );
        let t = TrustedProxies::new(&["127.0.0.1", "10.0.0.0/8"]).unwrap();
        // A stranger's header is ignored.
        assert_eq!(
            t.client(ip("8.8.8.8"), ["9.9.9.9"].into_iter()),
            ip("8.8.8.8")
        );
        // Behind the proxy: the hop the proxy appended.
        assert_eq!(
            t.client(ip("127.0.0.1"), ["9.9.9.9"].into_iter()),
            ip("9.9.9.9")
        );
        // A client's own forged entries sit left of it and are not read.
        assert_eq!(
            t.client(
                ip("127.0.0.1"),
                ["1.1.1.1, 2.2.2.2", "10.1.2.3, 5.5.5.5"].into_iter()
            ),
            ip("5.5.5.5")
        );
        // Chains of trusted proxies are walked.
        assert_eq!(
            t.client(ip("127.0.0.1"), ["6.6.6.6, 10.0.0.7"].into_iter()),
            ip("6.6.6.6")
        );
        // No header, or garbage where the proxy's hop should be: the proxy.
        assert_eq!(
            t.client(ip("127.0.0.1"), std::iter::empty()),
            ip("127.0.0.1")
        );
        assert_eq!(
            t.client(ip("10.0.0.2"), ["nonsense"].into_iter()),
            ip("10.0.0.2")
        );
        assert_eq!(
            t.client(ip("127.0.0.1"), ["[2001:db8::1]:443"].into_iter()),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddrKey::of(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:1.2.3.4")),
            AddrKey::of(ip("1.2.3.4"))
        );
    }

    #[test]
    fn bad_entries_are_refused_at_load() {
        let parsed: Result<TrustedProxies, _> =
            TrustedProxies::try_from(OneOrMany::One("127.0.0.1, not-an-ip".into()));
        assert!(parsed.is_err());
        let ok = TrustedProxies::try_from(OneOrMany::Many(vec!["::1".into(), "10.0.0.0/8".into()]));
        assert!(ok.is_ok());
    }
}
