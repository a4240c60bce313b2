//! libFuzzer entry point for the `jwt` target; the properties are in
//! `wimz_relay_fuzz::jwt::run`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wimz_relay_fuzz::jwt::run(data));
