//! Integration tests: the relay started in-process on port 0 with a fresh
//! database per test, driven over real HTTP and real WebSockets.

mod helpers;

mod auth;
mod browser;
mod caps;
mod cluster;
mod cluster_epochs;
mod console;
mod coturn;
mod credentials;
mod deploy;
mod devices;
mod faults;
mod handoff;
mod health;
mod instances;
mod loadgen;
mod migrations;
mod nginx;
mod observability;
mod origins;
mod peers;
mod process;
mod proxy;
mod raw_ws;
mod recovery;
mod redis_ha;
mod redis_topologies;
mod rolling;
mod routing;
mod scrape;
mod simulate;
mod supervision;
mod turn;
mod webrtc;
mod webrtc_lifecycle;
mod wire;
