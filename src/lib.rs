//! WIM-Z cloud relay.
//!
//! Robots (WIM-Z dog trainers) and their owners' apps never reach each other
//! directly: both hold a WebSocket to this relay, which authenticates them,
//! routes events robot → apps and commands app → robot in order, brokers
//! WebRTC signaling with TURN credentials, and proxies the robot's REST API.
//! The wire contract is `docs/PROTOCOL.md`; the design is `ARCHITECTURE.md`.
//!
//! # Layout
//!
//! - [`config`]: typed settings from TOML + `WIMZ__SECTION__KEY`.
//! - [`startup`]: [`startup::Application`] wires everything; graceful shutdown.
//! - [`http`]: REST routes; [`error`] maps failures to the protocol's bodies.
//! - [`auth`]: JWTs, device signatures with replay refusal, passwords,
//!   credential ids binding device credentials to one registration.
//! - [`caps`]: caps per user, device and address; login/registration throttles.
//! - [`net`]: client addresses behind trusted proxies, browser origins.
//! - [`store`]: users, devices, session history (SQLite or PostgreSQL).
//! - [`wire`]: frames in (the edge parser) and out (every frame the relay
//!   writes), socket outboxes, `error` frames: used by every layer above.
//! - [`ws`]: socket endpoints and the robot/app socket actors.
//! - [`room`]: the [`room::Directory`] and one [`room::DeviceRoom`] per device.
//! - [`webrtc`]: the [`webrtc::SessionSupervisor`].
//! - [`turn`]: TURN credential providers.
//! - [`cluster`]: the Redis bridge that makes instances one relay.
//! - [`proxy_paths`]: the REST proxy allow-list.
//! - [`metrics`], [`telemetry`]: counters, `/metrics`, logs.
//! - [`supervise`]: panic-catching supervision of the long-lived actors and rooms.
//!
//! The load generator behind `wimz-relay loadtest` is not part of this
//! crate: it is the `wimz-loadtest` crate (`loadtest/`), a client that
//! speaks only the wire protocol; [`cli`] calls into it.

pub mod auth;
pub mod caps;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod metrics;
pub mod net;
pub mod proxy_paths;
pub mod room;
pub mod secret;
pub mod startup;
pub mod state;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod turn;
pub mod webrtc;
pub mod wire;
pub mod ws;
