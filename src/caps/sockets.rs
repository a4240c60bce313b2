//! Live socket counts per user and per client address on this instance,
//! and the [`SocketPermit`] each accepted socket holds: taking one checks
//! the caps and counts the socket, dropping it (when the socket actor is
//! dropped, on every exit path) gives the slot back.

use super::Reason;
use crate::ids::UserId;
use crate::net::client_ip::AddrKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Counts {
    users: HashMap<UserId, usize>,
    addrs: HashMap<AddrKey, usize>,
}

/// The counts, shared by every permit.
#[derive(Debug, Default, Clone)]
pub struct SocketCounts(Arc<Mutex<Counts>>);

/// One counted socket. Dropping it uncounts it.
#[derive(Debug)]
pub struct SocketPermit {
    counts: SocketCounts,
    user: Option<UserId>,
    addr: AddrKey,
}

impl SocketCounts {
    /// Counts a socket from `addr` (and of `user`, for an app) if neither
    /// cap is reached (`0` = no cap); else the cap that was.
    pub fn admit(
        &self,
        addr: AddrKey,
        user: Option<&UserId>,
        per_user: usize,
        per_addr: usize,
    ) -> Result<SocketPermit, Reason> {
        // A poisoned lock only means a panic elsewhere mid-update of plain
        // counters; they are still usable.
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = user {
            if per_user > 0 && c.users.get(u).copied().unwrap_or(0) >= per_user {
                return Err(Reason::UserSockets);
            }
        }
        if per_addr > 0 && c.addrs.get(&addr).copied().unwrap_or(0) >= per_addr {
            return Err(Reason::IpSockets);
        }
        if let Some(u) = user {
            *c.users.entry(u.clone()).or_default() += 1;
        }
        *c.addrs.entry(addr).or_default() += 1;
        Ok(SocketPermit {
            counts: self.clone(),
            user: user.cloned(),
            addr,
        })
    }

    /// Sockets `user` holds here (tests, diagnostics).
    pub fn of_user(&self, user: &UserId) -> usize {
        let c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        c.users.get(user).copied().unwrap_or(0)
    }
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut c = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = &self.user {
            if let Some(n) = c.users.get_mut(u) {
                *n -= 1;
                if *n == 0 {
                    c.users.remove(u);
                }
            }
        }
        if let Some(n) = c.addrs.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                c.addrs.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_dropped_permits_give_slots_back() {
        let counts = SocketCounts::default();
        let (a, b) = (
            AddrKey::of("10.0.0.1".parse().unwrap()),
            AddrKey::of("10.0.0.2".parse().unwrap()),
        );
        let u = UserId::from_stored("u1");
        let p1 = counts.admit(a, Some(&u), 2, 3).unwrap();
        let _p2 = counts.admit(b, Some(&u), 2, 3).unwrap();
        assert_eq!(
            counts.admit(a, Some(&u), 2, 3).unwrap_err(),
            Reason::UserSockets
        );
        let _r1 = counts.admit(a, None, 2, 3).unwrap();
        let _r2 = counts.admit(a, None, 2, 3).unwrap();
        assert_eq!(counts.admit(a, None, 2, 3).unwrap_err(), Reason::IpSockets);
        drop(p1);
        assert_eq!(counts.of_user(&u), 1);
        let _p3 = counts.admit(b, Some(&u), 2, 3).unwrap();
        // 0 = no cap.
        let many: Vec<_> = (0..10)
            .map(|_| counts.admit(b, Some(&u), 0, 0).unwrap())
            .collect();
        drop(many);
        assert_eq!(counts.of_user(&u), 2);
    }
}
