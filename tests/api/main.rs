//! Integration tests: the relay started in-process on port 0 with a fresh
//! database per test, driven over real HTTP and real WebSockets.

mod helpers;

mod auth;
mod browser;
mod caps;
mod cluster;
mod cluster_epochs;
mod credentials;
mod devices;
mod faults;
mod health;
mod loadgen;
mod migrations;
mod observability;
mod origins;
mod peers;
mod process;
mod proxy;
mod raw_ws;
mod recovery;
mod routing;
mod scrape;
mod supervision;
mod turn;
mod webrtc;
mod webrtc_lifecycle;
mod wire;
