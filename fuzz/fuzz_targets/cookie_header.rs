#![no_main]
//! libFuzzer entry for sso_filter::fuzzing::targets::cookie_header_target (properties documented there).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sso_filter::fuzzing::targets::cookie_header_target(data);
});
