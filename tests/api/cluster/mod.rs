//! Several relay instances sharing one real `redis-server` (started here on
//! a free port) and one store behave as one relay (PROTOCOL.md §5).
//!
//! The harness: [`processes`] (Redis, a relay as a process, a freezing
//! proxy) and [`harness`] (building a cluster, shared steps). The tests, by
//! concept: [`streams`] (order, recovery, a moving robot), [`calls`]
//! (commands and REST calls across instances), [`devices`] (credentials
//! and deletion), [`webrtc`], [`faults`] (Redis or an instance failing),
//! [`lane`] (events appended on the room's own connection, still fenced).

mod calls;
mod devices;
mod faults;
mod harness;
mod lane;
mod processes;
mod streams;
mod webrtc;

pub use harness::*;
pub use processes::*;
pub use streams::{
    a_moving_robot_continues_the_stream, events_commands_and_strangers, recovers_exactly_elsewhere,
};
