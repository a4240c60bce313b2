//! libFuzzer entry point for the `app_frame` target; the properties are in
//! `wimz_relay_fuzz::frames::app`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wimz_relay_fuzz::frames::app(data));
