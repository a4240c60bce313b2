//! Browser origins (PROTOCOL.md Part 2 K): an `Origin` header parsed and
//! normalised ([`Origin`]), and which ones may use the relay
//! ([`AllowedOrigins`]: the relay's own and `server.allowed_origins`). The
//! middleware that refuses the others is `http::origins`.
//!
//! The relay's own origin is `<scheme>://<Host header>`, the scheme being
//! `X-Forwarded-Proto` when the request comes from one of
//! `server.trusted_proxies` (the relay itself speaks plain HTTP), else
//! `http`; default ports (80, 443) are implied. Behind a proxy, that proxy
//! must pass the `Host` the browser used (port included) and set
//! `X-Forwarded-Proto`, as `deploy/nginx.conf` does.

use super::client_ip::TrustedProxies;
use actix_web::dev::RequestHead;
use actix_web::http::header::{self, HeaderValue};
use std::fmt;

/// A web origin, normalised: lower-case scheme (`http`/`https`) and host,
/// and an explicit port (the scheme's default when none was written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (a single trailing `/` is tolerated).
    /// `None` for anything else: other schemes, paths, user info, `null`.
    pub fn parse(s: &str) -> Option<Origin> {
        let s = s.trim().to_ascii_lowercase();
        let (scheme, rest) = s.split_once("://")?;
        let (scheme, default_port) = match scheme {
            "http" => ("http", 80),
            "https" => ("https", 443),
            _ => return None,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (addr, after) = v6.split_once(']')?;
            if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                return None;
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (format!("[{addr}]"), port)
        } else {
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            if host.is_empty() || !host.chars().all(ok) {
                return None;
            }
            (host.to_string(), port)
        };
        let port = match port {
            None => default_port,
            Some(p) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                p.parse().ok().filter(|p| *p != 0)?
            }
            Some(_) => return None,
        };
        Some(Origin { scheme, host, port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = matches!((self.scheme, self.port), ("http", 80) | ("https", 443));
        if default {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// `server.allowed_origins`, parsed, plus the relay's own origin per request.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins {
    listed: Vec<Origin>,
    /// `server.trusted_proxies`: only their `X-Forwarded-Proto` is read.
    trusted: TrustedProxies,
}

impl AllowedOrigins {
    /// From `server.allowed_origins` and `server.trusted_proxies`;
    /// `Err((index, entry))` names a bad entry.
    pub fn new(
        allowed_origins: &[String],
        trusted_proxies: &TrustedProxies,
    ) -> Result<AllowedOrigins, (usize, String)> {
        let listed = allowed_origins
            .iter()
            .enumerate()
            .map(|(i, e)| Origin::parse(e).ok_or_else(|| (i, e.clone())))
            .collect::<Result<_, _>>()?;
        Ok(AllowedOrigins {
            listed,
            trusted: trusted_proxies.clone(),
        })
    }

    /// Whether a request with this `Origin` header may be served.
    pub fn allows(&self, origin: &HeaderValue, head: &RequestHead) -> bool {
        let Some(origin) = origin.to_str().ok().and_then(Origin::parse) else {
            return false;
        };
        self.listed.contains(&origin) || self.own_origin(head).as_ref() == Some(&origin)
    }

    /// `<scheme>://<Host>` of this request: the scheme a trusted proxy
    /// names in `X-Forwarded-Proto`, else `http`.
    fn own_origin(&self, head: &RequestHead) -> Option<Origin> {
        let host = head.headers().get(header::HOST)?.to_str().ok()?;
        let proxied = head
            .peer_addr
            .is_some_and(|peer| self.trusted.trusts(&peer.ip()));
        let forwarded = head
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|s| s.eq_ignore_ascii_case("https") || s.eq_ignore_ascii_case("http"));
        let scheme = forwarded.filter(|_| proxied).unwrap_or("http");
        Origin::parse(&format!("{scheme}://{host}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Option<String> {
        Origin::parse(s).map(|o| o.to_string())
    }

    #[test]
    fn origins_are_normalised_and_strict() {
        assert_eq!(
            o("https://Console.Example.com"),
            Some("https://console.example.com".into())
        );
        assert_eq!(
            Origin::parse("https://a.io:443"),
            Origin::parse("https://a.io/")
        );
        assert_eq!(
            o("http://127.0.0.1:8000"),
            Some("http://127.0.0.1:8000".into())
        );
        assert_eq!(o("http://[::1]:9000"), Some("http://[::1]:9000".into()));
        assert_eq!(o("http://[::1]"), Some("http://[::1]".into()));
        assert_ne!(Origin::parse("http://a.io"), Origin::parse("https://a.io"));
        assert_ne!(
            Origin::parse("http://a.io:8080"),
            Origin::parse("http://a.io")
        );
        for bad in [
            "null",
            "a.io",
            "ftp://a.io",
            "chrome-extension://abcdef",
            "https://a.io/path",
            "https://user@a.io",
            "https://a.io:",
            "https://a.io:0",
            "https://a.io:99999",
            "https://",
            "https://a io",
            "https://[zz]",
            "https://[::1]x",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    fn head(host: &str, proto: Option<&str>) -> RequestHead {
        let mut h = RequestHead::default();
        h.peer_addr = Some("127.0.0.1:50000".parse().unwrap());
        h.headers_mut()
            .insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(p) = proto {
            h.headers_mut().insert(
                header::HeaderName::from_static("x-forwarded-proto"),
                HeaderValue::from_str(p).unwrap(),
            );
        }
        h
    }

    fn allowed(origins: &[&str], trusted: &[&str]) -> AllowedOrigins {
        let origins: Vec<String> = origins.iter().map(|o| o.to_string()).collect();
        AllowedOrigins::new(&origins, &TrustedProxies::new(trusted).unwrap()).unwrap()
    }

    #[test]
    fn own_origin_listed_ones_and_nothing_else() {
        let allowed = allowed(&["https://console.example.com"], &["127.0.0.1"]);
        let ok = |origin: &str, head: &RequestHead| {
            allowed.allows(&HeaderValue::from_str(origin).unwrap(), head)
        };
        let direct = head("127.0.0.1:8000", None);
        assert!(ok("http://127.0.0.1:8000", &direct));
        assert!(ok("https://console.example.com", &direct));
        assert!(!ok("http://127.0.0.1:8001", &direct));
        assert!(!ok("https://127.0.0.1:8000", &direct));
        assert!(!ok("https://evil.example.com", &direct));
        assert!(!ok("null", &direct));
        // Behind a trusted TLS proxy that passes Host and X-Forwarded-Proto.
        let proxied = head("relay.example.com", Some("https"));
        assert!(ok("https://relay.example.com", &proxied));
        assert!(!ok("http://relay.example.com", &proxied));
        let proxied_port = head("relay.example.com:8443", Some("https"));
        assert!(ok("https://relay.example.com:8443", &proxied_port));
        assert!(!ok("https://relay.example.com", &proxied_port));
        // X-Forwarded-Proto from anyone else is not read.
        let untrusted = self::allowed(&[], &[]);
        assert!(!untrusted.allows(
            &HeaderValue::from_static("https://relay.example.com"),
            &proxied
        ));
        assert!(untrusted.allows(
            &HeaderValue::from_static("http://relay.example.com"),
            &proxied
        ));
        let listed = vec!["https://a.io".into(), "https://a.io/x".into()];
        assert_eq!(
            AllowedOrigins::new(&listed, &TrustedProxies::default()).unwrap_err(),
            (1, "https://a.io/x".to_string())
        );
    }
}
