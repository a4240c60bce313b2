//! libFuzzer entry point for the `proxy_path` target; the properties are in
//! `wimz_relay_fuzz::proxy_path::run`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wimz_relay_fuzz::proxy_path::run(data));
