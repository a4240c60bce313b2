//! Properties the fuzz targets check, one module per target (fuzz/README.md).
//!
//! Each `run` takes the fuzzer's bytes, drives the relay's own code path
//! (the `wimz_relay` library, exactly as the server calls it) and panics
//! when a property fails: a panic is what libFuzzer reports as a crash.
//! The binaries in `fuzz_targets/` only hand the bytes over.

pub mod config;
pub mod credentials;
pub mod frames;
pub mod jwt;
mod members;
pub mod proxy_path;
