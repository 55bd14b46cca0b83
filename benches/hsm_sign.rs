//! Signatures per second through the session pool against direct cryptoki calls, at 1, 2
//! and 8 threads, per algorithm, on a fresh SoftHSM token.
//!
//! `cargo bench --bench hsm_sign` (set `HSM_ACME_BENCH_SECS` to change the 2 s per run;
//! each cell is the median of 3 interleaved runs).
//! The direct path is what a hand-written caller would do: one session per thread, logged
//! in, key handle found once, host hash plus `C_Sign`. The pool path is `Signer::sign`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, ObjectClass};
use hsm_acme::hsm::{
    KeyType, Pkcs11Profile, Pkcs11Token, RsaPadding, Signer, TokenSelector, TokenSettings,
};

const REPETITIONS: usize = 3;
const CHILD_VAR: &str = "HSM_ACME_BENCH_TOKEN_DIR";
const LABEL: &str = "hsm-acme-bench";
const MESSAGE: [u8; 1024] = [0x5a; 1024];
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(dir) = std::env::var_os(CHILD_VAR) else {
        // SoftHSM reads SOFTHSM2_CONF once per process: make a token, run in a child.
        let tmp = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-test/new-token.sh");
        let made = Command::new(script)
            .arg(tmp.path())
            .arg(LABEL)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let status = Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("SOFTHSM2_CONF", tmp.path().join("softhsm2.conf"))
            .env(CHILD_VAR, tmp.path())
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    };
    run(&PathBuf::from(dir));
}

fn run(dir: &Path) {
    let secs: f64 = std::env::var("HSM_ACME_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let profile = Pkcs11Profile::load("softhsm2").unwrap();
    let settings = TokenSettings {
        module: PathBuf::from(profile.default_library()),
        profile,
        selector: TokenSelector {
            label: Some(LABEL.into()),
            ..TokenSelector::default()
        },
        pin_file: Some(dir.join("user-pin").display().to_string()),
        sessions: 8,
        wait_for_token: Duration::ZERO,
    };
    let token = Pkcs11Token::open(&settings).unwrap();
    println!("| algorithm | threads | direct sig/s | pool sig/s | pool vs direct |");
    println!("|---|---:|---:|---:|---:|");
    for key_type in [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Ed25519,
    ] {
        let label = key_type.name();
        token.generate_key_pair(label, key_type).unwrap();
        let signer = Arc::new(token.signer(label, RsaPadding::Pkcs1).unwrap());
        for threads in [1usize, 2, 8] {
            // Interleaved repetitions, median of each: the machine may be shared.
            let (mut direct, mut pooled) = (Vec::new(), Vec::new());
            for _ in 0..REPETITIONS {
                direct.push(direct_rate(&token, label, key_type, threads, secs));
                pooled.push(pool_rate(&signer, threads, secs));
            }
            let (direct, pooled) = (median(direct), median(pooled));
            println!(
                "| {label} | {threads} | {direct:.0} | {pooled:.0} | {:+.1} % |",
                (pooled / direct - 1.0) * 100.0
            );
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs `op` on `threads` threads for `secs` and returns operations per second.
fn rate(threads: usize, secs: f64, op: impl Fn() -> Box<dyn FnMut() + Send> + Sync) -> f64 {
    let deadline = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mut work = op();
                scope.spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed() < deadline {
                        work();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn pool_rate(signer: &Arc<hsm_acme::hsm::TokenSigner>, threads: usize, secs: f64) -> f64 {
    rate(threads, secs, || {
        let signer = Arc::clone(signer);
        Box::new(move || {
            signer.sign(&MESSAGE).unwrap();
        })
    })
}

fn direct_rate(
    token: &Pkcs11Token,
    label: &str,
    key_type: KeyType,
    threads: usize,
    secs: f64,
) -> f64 {
    let ctx = token.module_context();
    let slot = token.slot();
    rate(threads, secs, || {
        // The pool's anchor session holds the login, so new sessions are logged in.
        let session = ctx.open_rw_session(slot).unwrap();
        let key = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap()[0];
        Box::new(move || {
            let (mechanism, data) = match key_type {
                KeyType::EcdsaP384 => (
                    Mechanism::Ecdsa,
                    ring::digest::digest(&ring::digest::SHA384, &MESSAGE)
                        .as_ref()
                        .to_vec(),
                ),
                KeyType::Ed25519 => (
                    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    MESSAGE.to_vec(),
                ),
                KeyType::EcdsaP256 => (
                    Mechanism::Ecdsa,
                    ring::digest::digest(&ring::digest::SHA256, &MESSAGE)
                        .as_ref()
                        .to_vec(),
                ),
                _ => {
                    let mut data = SHA256_DIGEST_INFO.to_vec();
                    data.extend_from_slice(
                        ring::digest::digest(&ring::digest::SHA256, &MESSAGE).as_ref(),
                    );
                    (Mechanism::RsaPkcs, data)
                }
            };
            session.sign(&mechanism, key, &data).unwrap();
        })
    })
}
