//! cargo-fuzz target `caa`: see `hsm_acme::fuzzing::caa` and fuzz/README.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsm_acme::fuzzing::caa(data));
