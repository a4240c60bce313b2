//! libFuzzer entry point for the `credentials` target; the properties are in
//! `wimz_relay_fuzz::credentials::run`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wimz_relay_fuzz::credentials::run(data));
