//! WebRTC sessions (PROTOCOL.md §3.5): the [`SessionSupervisor`] actor.

pub mod messages;
pub mod session;
mod signaling;
pub mod supervisor;

pub use supervisor::SessionSupervisor;
