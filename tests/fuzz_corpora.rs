#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same entry
//! points the cargo-fuzz targets call (`hsm_acme::fuzzing`), on the stable toolchain, so
//! `cargo test` runs every corpus file: an input that once panicked stays fixed. A corpus
//! directory that is missing or empty fails its test.

use std::fs;
use std::path::PathBuf;

/// Feeds every file of `fuzz/corpus/<target>/` to `run`.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target);
    assert!(
        dir.is_dir(),
        "corpus directory {} is missing",
        dir.display()
    );
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    for path in &files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        // On a panic the harness prints this file's name with the failure.
        eprintln!("{target}: {}", path.display());
        run(&data);
    }
}

#[test]
fn jws() {
    replay("jws", hsm_acme::fuzzing::jws);
}

#[test]
fn payloads() {
    replay("payloads", hsm_acme::fuzzing::payloads);
}

#[test]
fn csr() {
    replay("csr", hsm_acme::fuzzing::csr);
}

#[test]
fn record() {
    replay("record", hsm_acme::fuzzing::record);
}

#[test]
fn config() {
    replay("config", hsm_acme::fuzzing::config);
}

#[test]
fn caa() {
    replay("caa", hsm_acme::fuzzing::caa);
}
