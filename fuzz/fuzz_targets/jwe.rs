#![no_main]
//! libFuzzer entry for sso_filter::fuzzing::targets::jwe (properties documented there).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sso_filter::fuzzing::targets::jwe(data);
});
