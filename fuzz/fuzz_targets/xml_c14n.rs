#![no_main]
//! libFuzzer entry for sso_filter::fuzzing::targets::xml_c14n (properties documented there).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sso_filter::fuzzing::targets::xml_c14n(data);
});
