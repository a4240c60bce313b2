//! The browser proofs (issue 13; `origins.rs`: issue 14): headless Chromium (Debian's
//! `/usr/bin/chromium`, driven by Playwright for Python with
//! `executable_path`) against the **release** relay binary, with a real
//! coturn and the aiortc video robot (`clients/python-robot/`).
//!
//! Each test starts its services here (relay process on a free port, coturn,
//! robots) and runs one script from `tests/browser/` that drives the page
//! and talks to this side in JSON lines (`tests/browser/chromium.py`): it
//! reports steps on stdout and waits on stdin where the test breaks
//! something in between (stops coturn, sends a hostile frame).
//!
//! Needs `/usr/bin/chromium`, `tests/.venv` with Playwright, coturn; like
//! `peers.rs`, a missing piece skips with a note unless
//! `WIMZ_TEST_REQUIRE_PEERS=1` (`.ci/services` sets it and installs them).
//!
//! Screenshots (`console-*.png`) go to `target/tmp/screenshots/` unless
//! `WIMZ_UPDATE_SCREENSHOTS=1`, which writes them into `docs/screenshots/`
//! (the committed ones the README shows), so CI runs never dirty the
//! checkout.

mod console;
mod harness;
mod hostile;
mod origins;
mod video;

pub(crate) use harness::*;
