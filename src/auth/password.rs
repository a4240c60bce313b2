//! Argon2id password hashing. Hashing is slow on purpose: callers run it off
//! the async workers (`web::block`).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// True when `password` matches `stored`. A malformed stored hash is a mismatch.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that unknown
/// users and wrong passwords take the same time.
pub fn dummy_hash() -> String {
    hash("dummy-password-for-timing").unwrap_or_default()
}

/// Registration rules: 8–256 characters, not all one character.
pub fn check_strength(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < 8 {
        return Err("password must be at least 8 characters");
    }
    if n > 256 {
        return Err("password must be at most 256 characters");
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err("password is too weak");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not-a-hash"));
    }

    #[test]
    fn weak_passwords() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("aaaaaaaaaa").is_err());
        assert!(check_strength("good password").is_ok());
    }
}
