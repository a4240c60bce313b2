//! The `[caps]` and `[throttle]` configuration sections (applied by
//! `crate::caps`) and the [`Rate`] type their throttles are written in
//! (`"10/min"`, `"10/h"`, `"off"`).
//! Every key, its default and whether it holds per instance or across a
//! cluster: docs/PROTOCOL.md Part 2 J and docs/SECURITY.md.

use serde::Deserialize;
use std::num::NonZeroU32;
use std::time::Duration;

/// Counts: live sockets and registered devices. `0` switches a cap off.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapsSettings {
    /// App sockets one user holds open on one instance.
    pub app_sockets_per_user: usize,
    /// App sockets joined to one device's room on one instance.
    pub app_sockets_per_device: usize,
    /// Robot and app sockets from one client address (IPv6: one /64) on one instance.
    pub sockets_per_ip: usize,
    /// Devices one user may register (cluster-wide: counted in the store).
    pub devices_per_user: usize,
    /// Robot connections (authenticated handshakes) per device.
    pub robot_connects_per_device: Rate,
    /// `Retry-After` sent with a refused socket (a hint: sockets free when others close).
    pub socket_retry_after_s: u64,
}

impl Default for CapsSettings {
    fn default() -> Self {
        CapsSettings {
            app_sockets_per_user: 256,
            app_sockets_per_device: 64,
            sockets_per_ip: 1024,
            devices_per_user: 100,
            robot_connects_per_device: Rate::per(30, 60),
            socket_retry_after_s: 10,
        }
    }
}

/// Login and registration throttles, per client address and per username.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    pub login_per_ip: Rate,
    pub login_per_username: Rate,
    pub register_per_ip: Rate,
    pub register_per_username: Rate,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            login_per_ip: Rate::per(30, 60),
            login_per_username: Rate::per(10, 3600),
            register_per_ip: Rate::per(10, 3600),
            register_per_username: Rate::per(5, 3600),
        }
    }
}

/// `N` requests per period, all of them at once if saved up (a burst of
/// `N`, refilled evenly over the period); or off. Written `"N/s"`,
/// `"N/min"`, `"N/h"` (or `"N/Ms"`, `"N/Mmin"`, `"N/Mh"` for M units),
/// `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate(Option<(NonZeroU32, Duration)>);

impl Rate {
    /// `n` per `period_s` seconds (`n == 0`: off).
    pub const fn per(n: u32, period_s: u64) -> Rate {
        match NonZeroU32::new(n) {
            Some(n) if period_s > 0 => Rate(Some((n, Duration::from_secs(period_s)))),
            _ => Rate(None),
        }
    }

    pub fn off() -> Rate {
        Rate(None)
    }

    /// The governor quota: a burst of `N`, one more every `period / N`.
    pub fn quota(&self) -> Option<governor::Quota> {
        let (n, period) = self.0?;
        governor::Quota::with_period(period / n.get()).map(|q| q.allow_burst(n))
    }
}

impl TryFrom<String> for Rate {
    type Error = String;

    fn try_from(s: String) -> Result<Rate, String> {
        let bad = || format!("{s:?} is not a rate like \"10/min\", \"5/h\", \"20/10s\" or \"off\"");
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") || t == "0" {
            return Ok(Rate::off());
        }
        let (n, per) = t.split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = per.trim();
        let split = per.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (count, unit) = per.split_at(split);
        let count: u64 = if count.is_empty() {
            1
        } else {
            count.parse().map_err(|_| bad())?
        };
        let unit_s = match unit {
            "s" => 1,
            "min" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(bad());
        }
        Ok(Rate::per(n, count.saturating_mul(unit_s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_default_toml_says_what_the_code_does() {
        let s = crate::config::Settings::load_from(
            Some(std::path::Path::new("config/default.toml")),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(s.caps, CapsSettings::default());
        assert_eq!(s.throttle, ThrottleSettings::default());
        assert_eq!(s.server.trusted_proxies, Default::default());
        let s = crate::config::Settings::load_from(
            None,
            [
                ("WIMZ__THROTTLE__LOGIN_PER_IP", "off"),
                ("WIMZ__SERVER__TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        assert_eq!(s.throttle.login_per_ip, Rate::off());
        assert_eq!(
            Some(s.server.trusted_proxies),
            crate::net::client_ip::TrustedProxies::new(&["127.0.0.1", "10.0.0.0/8"])
        );
        let e = crate::config::Settings::load_from(
            None,
            [(
                "WIMZ__THROTTLE__REGISTER_PER_IP".to_string(),
                "lots".to_string(),
            )],
        )
        .unwrap_err();
        assert_eq!(e.key, "throttle.register_per_ip");
    }

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        let p = |s: &str| Rate::try_from(s.to_string());
        assert_eq!(p("10/min"), Ok(Rate::per(10, 60)));
        assert_eq!(p(" 5 / h "), Ok(Rate::per(5, 3600)));
        assert_eq!(p("20/10s"), Ok(Rate::per(20, 10)));
        assert_eq!(p("off"), Ok(Rate::off()));
        assert_eq!(p("0/min"), Ok(Rate::off()));
        for bad in ["", "10", "x/min", "10/day", "10/0s", "-1/min", "10/"] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(Rate::per(10, 60).quota().is_some());
        assert!(Rate::off().quota().is_none());
    }
}
