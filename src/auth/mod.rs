//! Authentication: user and device access tokens (JWT), device signatures
//! (HMAC-SHA256 with a clock window and replay refusal), password hashing.

pub mod credential;
pub mod jwt;
pub mod password;
pub mod replay;
pub mod signature;

pub use credential::CredentialId;
pub use jwt::{Claims, Role, TokenService};
pub use replay::{MemoryReplayGuard, RedisReplayGuard, ReplayGuard};
pub use signature::SignatureVerifier;
