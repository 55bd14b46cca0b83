//! cargo-fuzz target `config`: see `hsm_acme::fuzzing::config` and fuzz/README.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hsm_acme::fuzzing::config(data));
