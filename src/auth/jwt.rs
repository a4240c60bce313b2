//! HS256 access tokens with `sub`, `role`, `exp`, `iat` (PROTOCOL.md §1).

use crate::secret::Secret;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Device,
}

/// The token's claims. `sub` is a user id or a device id, by `role`.
/// A device token also carries `cid`, the [`CredentialId`] of the
/// registration and secret it was made with (absent in tokens made before
/// credential ids existed, which then match only a device never rotated
/// since).
///
/// [`CredentialId`]: super::CredentialId
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

/// Why a token was refused (all answered as HTTP 401; the kind is for logs).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

/// Issues and checks tokens with one HS256 key.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_s: u64,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenService(ttl_s={})", self.ttl_s)
    }
}

impl TokenService {
    pub fn new(secret: &Secret, ttl_s: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256 is accepted: a token whose header names another `alg`
        // (none, HS512, RS256 ...) is refused before its signature is read.
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        TokenService {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl_s,
        }
    }

    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    /// A fresh token for `sub` with the configured lifetime.
    pub fn issue(&self, sub: &str, role: Role) -> anyhow::Result<String> {
        let now = crate::ids::unix_now();
        self.issue_with(sub, role, now, now + self.ttl_s as i64)
    }

    /// A fresh device token for `device`, bound to its credential `cid`.
    pub fn issue_device(&self, device: &str, cid: &super::CredentialId) -> anyhow::Result<String> {
        let now = crate::ids::unix_now();
        self.encode(Claims {
            sub: device.to_string(),
            role: Role::Device,
            exp: now + self.ttl_s as i64,
            iat: now,
            cid: Some(cid.as_str().to_string()),
        })
    }

    /// A token with explicit times (tests make expired ones with it).
    pub fn issue_with(&self, sub: &str, role: Role, iat: i64, exp: i64) -> anyhow::Result<String> {
        self.encode(Claims {
            sub: sub.to_string(),
            role,
            exp,
            iat,
            cid: None,
        })
    }

    fn encode(&self, claims: Claims) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        match decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(data.claims),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                _ => Err(TokenError::Invalid),
            },
        }
    }

    /// Start-up check that the crypto backend encodes and decodes.
    pub fn self_test(&self) -> anyhow::Result<()> {
        let token = self.issue("self-test", Role::User)?;
        let claims = self
            .verify(&token)
            .map_err(|e| anyhow::anyhow!("JWT self-test failed: {e}"))?;
        anyhow::ensure!(claims.sub == "self-test", "JWT self-test: wrong sub");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn svc() -> TokenService {
        TokenService::new(&Secret::new("k".repeat(32)), 60)
    }

    #[test]
    fn round_trip_and_self_test() {
        let s = svc();
        s.self_test().unwrap();
        let t = s.issue("u1", Role::Device).unwrap();
        let c = s.verify(&t).unwrap();
        assert_eq!(c.sub, "u1");
        assert_eq!(c.role, Role::Device);
    }

    #[test]
    fn expired_tampered_and_alg_swapped_are_refused() {
        let s = svc();
        let now = crate::ids::unix_now();
        let old = s.issue_with("u", Role::User, now - 100, now - 10).unwrap();
        assert_eq!(s.verify(&old).err(), Some(TokenError::Expired));

        let t = s.issue("u", Role::User).unwrap();
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Payload swapped for another user's, signature kept.
        let payload = String::from_utf8(b64.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = b64.encode(payload.replace("\"u\"", "\"admin\""));
        assert_eq!(s.verify(&parts.join(".")).err(), Some(TokenError::Invalid));

        // alg: none, no signature.
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let orig: Vec<&str> = t.split('.').collect();
        assert_eq!(
            s.verify(&format!("{header}.{}.", orig[1])).err(),
            Some(TokenError::Invalid)
        );
        // Another key entirely.
        let other = TokenService::new(&Secret::new("z".repeat(32)), 60);
        assert_eq!(
            s.verify(&other.issue("u", Role::User).unwrap()).err(),
            Some(TokenError::Invalid)
        );
    }
}
