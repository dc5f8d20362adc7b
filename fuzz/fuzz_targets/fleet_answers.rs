#![no_main]
//! libFuzzer entry for sso_filter::fuzzing::targets::fleet_answers (properties documented there).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sso_filter::fuzzing::targets::fleet_answers(data);
});
