//! cargo-fuzz target `payloads`: see `hsm_acme::fuzzing::payloads` and fuzz/README.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsm_acme::fuzzing::payloads(data));
