//! Who is asking, by the network: the client's address behind
//! `server.trusted_proxies` ([`client_ip`]) and a browser's origin
//! ([`origin`]). Pure values and parsers, used by the configuration (which
//! checks them at load), the caps and the HTTP edge.

pub mod client_ip;
pub mod origin;
