//! kill -9 in the middle of work, over and over: concurrent clients issue certificates
//! over real HTTPS against a SoftHSM token while the server is killed at a random moment
//! and restarted on the same state file, at least 50 times (`HSM_ACME_CRASH_CYCLES`
//! raises it). Then the state must hold: no order stuck in `processing`, no issuance
//! intent left, every `valid` order with its certificate, no serial used twice, and every
//! certificate a client received stored, listed under its account and served again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::acme::{new_account, order, setup};
use common::net::free_port;
use hsm_acme::acme::OrderStatus;
use hsm_acme::store::{CertRecord, IssuanceIntent, OrderRecord, Store};
use instant_acme::RetryPolicy;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Clients issuing at once in each cycle.
const CLIENTS: usize = 4;

fn random_below(limit: u64) -> u64 {
    let mut bytes = [0u8; 8];
    SystemRandom::new().fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % limit.max(1)
}

/// One whole issuance; the leaf (DER) the client received, if it got that far.
async fn issue(
    root: std::path::PathBuf,
    directory: String,
    tokens: common::net::Tokens,
    name: String,
) -> Option<Vec<u8>> {
    let (account, _) = new_account(&root, &directory).await;
    let (mut order, failures) = order(&account, &tokens, &[&name], str::to_owned).await;
    if !failures.is_empty() {
        return None;
    }
    order.poll_ready(&RetryPolicy::default()).await.ok()?;
    order.finalize().await.ok()?;
    let chain = order.poll_certificate(&RetryPolicy::default()).await.ok()?;
    let leaf = CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()?
        .ok()?;
    Some(leaf.as_ref().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_issuance_keeps_every_invariant() {
    let cycles: usize = std::env::var("HSM_ACME_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(50)
        .max(50);
    // Every issuance opens an account: the per-address limit is raised for this test.
    let s =
        setup("\n[rate_limits]\naccounts_per_ip = { count = 100000, period_hours = 1 }\n").await;
    let port = free_port();
    let directory = format!("https://127.0.0.1:{port}/directory");
    let mut received = Vec::new();
    let mut interrupted = 0usize;
    // How long a whole issuance takes here, uninterrupted: kills land anywhere within it.
    let span = {
        let _server = s.start(port);
        let start = std::time::Instant::now();
        let leaf = issue(
            s.root(),
            directory.clone(),
            s.tokens.clone(),
            "timing.crash.test".into(),
        )
        .await
        .expect("an uninterrupted issuance completes");
        received.push(leaf);
        start.elapsed()
    };
    let window = u64::try_from(span.as_millis() * 3 / 2)
        .unwrap_or(2000)
        .max(50);
    for cycle in 0..cycles {
        let server = s.start(port);
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            clients.push(tokio::spawn(issue(
                s.root(),
                directory.clone(),
                s.tokens.clone(),
                format!("c{client}.k{cycle}.crash.test"),
            )));
        }
        // Somewhere between account creation and the certificate download.
        tokio::time::sleep(Duration::from_millis(random_below(window))).await;
        server.kill();
        for mut client in clients {
            // Clients still running lose their server; what they received is kept.
            match tokio::time::timeout(Duration::from_millis(200), &mut client).await {
                Ok(Ok(Some(leaf))) => received.push(leaf),
                Ok(_) => interrupted += 1,
                Err(_) => {
                    client.abort();
                    interrupted += 1;
                }
            }
        }
    }
    println!(
        "{cycles} kill -9 cycles within {window} ms of starting {CLIENTS} issuances each \
         (one takes {span:?}): {} certificates received, {interrupted} issuances interrupted",
        received.len()
    );
    assert!(
        received.len() > 1,
        "no issuance ever completed between kills"
    );
    assert!(interrupted > 0, "no kill ever landed in the middle of work");

    // One more start runs recovery; then the state file is read directly.
    let server = s.start(port);
    let (account, _) = new_account(&s.root(), &directory).await;
    drop(account);
    server.kill();
    let store = Store::open(&s.token.dir.join("state.redb")).unwrap();
    let reader = store.reader();
    assert!(
        reader.all::<IssuanceIntent>().unwrap().is_empty(),
        "an issuance intent remains"
    );
    let certs: BTreeMap<String, CertRecord> = reader
        .all::<CertRecord>()
        .unwrap()
        .into_iter()
        .map(|c| (c.serial.clone(), c))
        .collect();
    let mut ders = BTreeSet::new();
    for cert in certs.values() {
        assert!(
            ders.insert(cert.der.clone()),
            "two records hold one certificate"
        );
        let parsed = <x509_cert::Certificate as der::Decode>::from_der(&cert.der).unwrap();
        let serial: String = parsed
            .tbs_certificate()
            .serial_number()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            serial.trim_start_matches("00") == cert.serial.trim_start_matches("00"),
            "record {} holds serial {serial}",
            cert.serial
        );
        assert!(
            reader
                .certs_of(&cert.account_id)
                .unwrap()
                .contains(&cert.serial),
            "certificate {} is not listed under its account",
            cert.serial
        );
    }
    for order in reader.all::<OrderRecord>().unwrap() {
        assert_ne!(
            order.status,
            OrderStatus::Processing,
            "order {} is stuck",
            order.id
        );
        if order.status == OrderStatus::Valid {
            let serial = order
                .certificate
                .as_deref()
                .expect("a valid order names its certificate");
            assert!(
                certs.contains_key(serial),
                "order {} lost certificate {serial}",
                order.id
            );
        }
    }
    for leaf in &received {
        assert!(
            certs.values().any(|c| &c.der == leaf),
            "a certificate a client received is not in the state file"
        );
    }
}
