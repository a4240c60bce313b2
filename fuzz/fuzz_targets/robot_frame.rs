//! libFuzzer entry point for the `robot_frame` target; the properties are in
//! `wimz_relay_fuzz::frames::robot`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| wimz_relay_fuzz::frames::robot(data));
