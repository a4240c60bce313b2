//! The wire: what robots and apps exchange with the relay, below every
//! actor. Sockets, rooms, the session supervisor and the cluster bridge all
//! use it; it uses none of them (`tools/modgraph` checks).
//!
//! - [`frames`]: parse at the edge — a text frame becomes a
//!   [`frames::RobotFrame`] or [`frames::AppFrame`] once.
//! - [`encode`]: every frame the relay writes, built in one place.
//! - [`close`]: the close codes the relay sends, named.
//! - [`error`]: [`WireError`], the `error` frame's code, message and `ref`.
//! - [`outbox`]: a socket's bounded outbound queue (its `actix_ws::Session`).
//! - [`snapshot`]: a device's live state as apps see it.

pub mod close;
pub mod encode;
pub mod error;
pub mod frames;
pub mod outbox;
pub mod snapshot;

pub use error::{WireCode, WireError};
pub use outbox::Outbox;
pub use snapshot::Snapshot;
