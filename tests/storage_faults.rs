//! Storage faults against real redb files on a real file system: the state file lives on a
//! small tmpfs that is filled up while the server runs, so commits fail with ENOSPC. A
//! failed commit must answer 503 with `Retry-After`, leave nothing of itself behind, and
//! reads must keep working; once space is back, writes work again without a restart.
//!
//! Mounting needs root and the right to mount (CI and `softhsm-test/test.sh` run as root);
//! where either is missing these tests say that they did not run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::acme::{new_account, order, setup};
use common::net::{ServerProcess, free_port};
use common::raw::RawClient;
use hsm_acme::acme::AccountStatus;
use hsm_acme::error::ErrorKind;
use hsm_acme::store::{AccountRecord, Store, StoreError};
use hyper::{Method, StatusCode};
use instant_acme::RetryPolicy;
use serde_json::json;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message) when this process may not mount file systems.
    fn mount(size: &str) -> Option<Self> {
        let uid = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("storage fault tests need root to mount a tmpfs; they did NOT run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            // A container without CAP_SYS_ADMIN: root, but no mounts.
            eprintln!(
                "storage fault tests cannot mount a tmpfs here ({}); they did NOT run",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn account(id: usize) -> AccountRecord {
    AccountRecord {
        id: format!("acct-{id:05}"),
        status: AccountStatus::Valid,
        contact: vec![format!("mailto:someone-{id}@example.org")],
        tos_agreed: Some(true),
        tos_version: None,
        approval_expires: None,
        // Large enough that the file must grow within a few hundred commits.
        jwk: json!({"kty": "EC", "pad": "x".repeat(2000)}),
        thumbprint: format!("thumb-{id}"),
        created: 1,
        eab_kid: None,
        profile: "default".into(),
    }
}

#[test]
fn a_full_disk_fails_commits_cleanly_and_the_store_recovers_without_a_restart() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let path = fs.path().join("state.redb");
    let store = Store::open(&path).unwrap();
    let reader = store.reader();
    for id in 0..5 {
        let record = account(id);
        store.write(move |tx| Ok(tx.put(&record)?)).unwrap();
    }
    let filler = fs.fill();

    // Writes go on until one needs a page the file system cannot give.
    let mut committed = 5;
    let failure = loop {
        assert!(committed < 5000, "no commit failed on a full file system");
        let record = account(committed);
        match store.write(move |tx| Ok(tx.put(&record)?)) {
            Ok(()) => committed += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(failure.kind, ErrorKind::Unavailable, "{failure}");
    assert!(failure.retry_after.is_some());

    // Reads still answer, with every commit that succeeded and nothing of the failed one.
    for id in 0..committed {
        let found = reader
            .get::<AccountRecord>(&format!("acct-{id:05}"))
            .unwrap();
        assert_eq!(found, Some(account(id)), "account {id} after the fault");
    }
    assert_eq!(
        reader
            .get::<AccountRecord>(&format!("acct-{committed:05}"))
            .unwrap(),
        None,
        "the failed commit left its record behind"
    );
    assert_eq!(reader.all::<AccountRecord>().unwrap().len(), committed);

    // While the disk stays full, writes keep failing the same clean way.
    let record = account(committed);
    let again = store.write(move |tx| Ok(tx.put(&record)?));
    assert!(
        matches!(&again, Err(e) if e.kind == ErrorKind::Unavailable),
        "{again:?}"
    );

    // Space is back: the same store (no restart) writes again within a few reopen attempts.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let record = account(committed);
        match store.write(move |tx| Ok(tx.put(&record)?)) {
            Ok(()) => break,
            Err(e) if e.kind == ErrorKind::Unavailable && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("writes did not recover once space was back: {e}"),
        }
    }
    committed += 1;
    drop(reader);
    drop(store);

    // And the file, opened afresh, holds exactly what was acknowledged.
    let store = Store::open(&path).unwrap();
    let all = store.reader().all::<AccountRecord>().unwrap();
    assert_eq!(all.len(), committed);
    assert!(all.iter().enumerate().all(|(id, a)| *a == account(id)));
    // The error type a reader sees for a fault is the retryable one.
    assert!(matches!(
        StoreError::Unavailable("x".into()).into(),
        hsm_acme::error::Error {
            kind: ErrorKind::Unavailable,
            ..
        }
    ));
}

/// The server's state file on a tmpfs that is filled while it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_full_disk_answers_503_keeps_reads_and_recovers() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let s = setup("").await;
    let state = fs.path().join("state.redb");
    let config = std::fs::read_to_string(&s.config).unwrap().replace(
        "path = \"state.redb\"",
        &format!("path = {:?}", state.display().to_string()),
    );
    std::fs::write(&s.config, config).unwrap();
    let port = free_port();
    let server = ServerProcess::start(&s.token.conf(), &s.config, port, &s.args);
    assert!(
        state.exists(),
        "the server did not put its state on the tmpfs"
    );
    let directory = format!("https://127.0.0.1:{port}/directory");

    // One certificate before the fault.
    let (account, _) = new_account(&s.root(), &directory).await;
    let (mut issued, failures) = order(&account, &s.tokens, &["before.test"], str::to_owned).await;
    assert!(failures.is_empty(), "{failures:?}");
    issued.poll_ready(&RetryPolicy::default()).await.unwrap();
    issued.finalize().await.unwrap();
    let chain = issued
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();

    let mut raw = RawClient::new(&s.root(), port);
    raw.register().await;
    let account_url = raw.kid.clone().unwrap();
    let new_order = raw.url("/acme/new-order");
    let names = |n: usize| -> Vec<serde_json::Value> {
        (0..10)
            .map(|i| json!({"type": "dns", "value": format!("n{n}-{i}.fault.test")}))
            .collect()
    };

    let filler = fs.fill();
    let mut created = BTreeSet::new();
    let mut refused = None;
    for n in 0..400 {
        let answer = raw
            .post(&new_order, Some(&json!({"identifiers": names(n)})))
            .await;
        match answer.status {
            StatusCode::CREATED => {
                created.insert(answer.header("location").unwrap());
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused = Some(answer);
                break;
            }
            other => panic!("newOrder on a full disk: {other} {answer:?}"),
        }
    }
    let refused = refused.expect("no newOrder failed on a full file system");
    let problem = refused.json();
    assert_eq!(problem["type"], "urn:ietf:params:acme:error:serverInternal");
    assert_eq!(problem["status"], 503);
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert!(!problem["detail"].as_str().unwrap().contains("redb"));

    // Reads keep working: the directory, the account's order list (exactly the orders that
    // were answered 201, nothing of the refused one), an order and the certificate.
    let dir = raw.send(Method::GET, &directory, None).await;
    assert_eq!(dir.status, StatusCode::OK);
    let acct = raw.post(&account_url, None).await;
    assert_eq!(acct.status, StatusCode::OK, "{acct:?}");
    let orders_url = acct.json()["orders"].as_str().unwrap().to_owned();
    let listed = list_orders(&raw, &orders_url).await;
    assert_eq!(
        listed, created,
        "the order list differs from the 201 answers"
    );
    if let Some(first) = created.first() {
        assert_eq!(raw.post(first, None).await.status, StatusCode::OK);
    }
    assert_eq!(
        issued.certificate().await.unwrap().as_deref(),
        Some(&*chain)
    );

    // Space is back: without a restart, newOrder succeeds again within a few seconds.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let after = loop {
        let answer = raw
            .post(&new_order, Some(&json!({"identifiers": names(1000)})))
            .await;
        if answer.status == StatusCode::CREATED || Instant::now() > deadline {
            break answer;
        }
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after.status, StatusCode::CREATED, "{after:?}");
    created.insert(after.header("location").unwrap());

    // After a restart on the same file, the state is what the clients were told.
    server.kill();
    let _server = ServerProcess::start(&s.token.conf(), &s.config, port, &s.args);
    assert_eq!(list_orders(&raw, &orders_url).await, created);
}

/// Every order URL of an account's orders list, following `Link: rel="next"` pages.
async fn list_orders(raw: &RawClient, url: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut next = Some(url.to_owned());
    while let Some(url) = next {
        let page = raw.post(&url, None).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        for order in page.json()["orders"].as_array().unwrap() {
            out.insert(order.as_str().unwrap().to_owned());
        }
        next = page.links("next").into_iter().next();
    }
    out
}
