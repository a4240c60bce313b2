//! [`CredentialId`]: which registration of a device, and which of its
//! secrets, a device credential was made with.
//!
//! The store keeps one per device row (`devices.credential_id`), new at
//! every registration and every secret rotation. A device token carries it
//! as its `cid` claim; a token is accepted only while its `cid` is the
//! device's current one, and a robot socket is closed (4003) when it stops
//! being current. So deleting a device, registering the same id again, or
//! rotating its secret revokes every token and signature of the old one at
//! once, on every instance (the store is shared; docs/SECURITY.md).

use std::fmt;
use std::sync::Arc;

/// A registration-and-secret generation of one device. Not a secret: it
/// proves nothing by itself (tokens are signed), it only names a generation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CredentialId(Arc<str>);

impl CredentialId {
    /// A fresh id for a new registration or a rotated secret.
    pub fn new_random() -> Self {
        CredentialId(Arc::from(uuid::Uuid::new_v4().simple().to_string()))
    }

    /// As stored (or as carried by a token; a token without `cid` is `""`,
    /// the value of devices registered before credential ids existed).
    pub fn from_stored(s: &str) -> Self {
        CredentialId(Arc::from(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_id_differs_from_the_legacy_empty_one() {
        let (a, b) = (CredentialId::new_random(), CredentialId::new_random());
        assert_ne!(a, b);
        assert_ne!(a, CredentialId::from_stored(""));
        assert_eq!(a.as_str().len(), 32);
    }
}
