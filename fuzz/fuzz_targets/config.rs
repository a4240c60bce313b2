//! libFuzzer entry point for the `config` target; the properties are in
//! `wimz_relay_fuzz::config::run`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wimz_relay_fuzz::config::run(data));
