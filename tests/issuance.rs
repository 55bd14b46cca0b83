//! End-to-end issuance over real HTTPS: `hsm-acme serve` (a child process, keys on a
//! SoftHSM token, state in redb) driven by instant-acme, with http-01 answered by a local
//! responder and names resolved by a mock DNS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::acme::{new_account, openssl, order, running, setup};
use common::net::free_port;
use instant_acme::{Account, OrderStatus, RetryPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_gets_a_certificate_signed_on_the_token_and_it_survives_kill_9() {
    let s = setup("").await;
    let port = free_port();
    let server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");

    let (account, credentials) = new_account(&s.root(), &directory).await;
    let names = ["www.issuance.test", "api.issuance.test"];
    let (mut order, failures) = order(&account, &s.tokens, &names, |ka| format!("{ka}\n")).await;
    assert!(failures.is_empty(), "{failures:?}");
    let status = order.poll_ready(&RetryPolicy::default()).await.unwrap();
    assert_eq!(status, OrderStatus::Ready);
    let _key_pem = order.finalize().await.unwrap();
    let chain = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    let order_url = order.url().to_owned();

    // The chain: leaf first, then the issuing CA; it verifies up to the root as a TLS server.
    let chain_path = s.token.dir.join("chain.pem");
    std::fs::write(&chain_path, &chain).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    let leaf = openssl(&["x509", "-noout", "-text", "-in"], Some(&chain_path));
    for name in names {
        assert!(leaf.contains(&format!("DNS:{name}")), "{leaf}");
    }
    assert!(leaf.contains("TLS Web Server Authentication"), "{leaf}");
    assert!(leaf.contains("CA:FALSE"), "{leaf}");
    let root = s.root();
    let issuing = s.token.dir.join("issuing.pem");
    let verified = openssl(
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            issuing.to_str().unwrap(),
        ],
        Some(&chain_path),
    );
    assert!(verified.contains(": OK"), "{verified}");

    // kill -9 and restart on the same state file: account, order and certificate remain.
    server.kill();
    let _server = s.start(port);
    let account = Account::builder_with_root(&root)
        .unwrap()
        .from_credentials(credentials)
        .await
        .unwrap();
    let mut again = account.order(order_url).await.unwrap();
    assert_eq!(again.refresh().await.unwrap().status, OrderStatus::Valid);
    let chain_again = again.certificate().await.unwrap().unwrap();
    assert_eq!(chain_again, chain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_http01_answer_makes_the_authorization_and_order_invalid() {
    let (s, _server, account) = running("").await;
    let (mut order, failures) = order(&account, &s.tokens, &["bad.issuance.test"], |_| {
        "not the key authorization".into()
    })
    .await;
    assert_eq!(failures.len(), 1);
    assert!(failures[0].contains("incorrectResponse"), "{failures:?}");
    let state = order.refresh().await.unwrap();
    assert_eq!(state.status, OrderStatus::Invalid);
    let error = state
        .error
        .as_ref()
        .expect("an invalid order explains itself");
    assert!(
        format!("{error:?}").contains("incorrectResponse"),
        "{error:?}"
    );
}

/// Reads one datagram from `socket`, waiting up to 30 s.
fn notification(socket: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let len = socket.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_pings_and_stopping_on_sigterm() {
    let s = setup("").await;
    let path = s.token.dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    let port = free_port();
    let server = common::net::ServerProcess::start_with_env(
        &s.token.conf(),
        &s.config,
        port,
        &s.args,
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let ready = notification(&socket);
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(
        ready.contains("STATUS=serving ACME at https://127.0.0.1"),
        "{ready}"
    );
    // Pings every 200 ms, half the watchdog timeout.
    for _ in 0..2 {
        let ping = notification(&socket);
        assert_eq!(ping.trim(), "WATCHDOG=1");
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // Watchdog pings may still be queued ahead of it.
    let stopping = (0..10)
        .map(|_| notification(&socket))
        .find(|m| !m.contains("WATCHDOG=1"))
        .unwrap();
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_failure_at_finalize_ends_the_order_invalid_and_the_server_serves_on() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = common::raw::RawClient::new(&s.root(), port);
    client.register().await;
    let order = client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "fault.issuance.test"}]})),
        )
        .await;
    let order_url = order.header("location").unwrap();
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    client.answer_http01(&authz, &s.tokens).await;

    // The issuing key disappears from the token behind the server's back.
    s.token.pkcs11_tool(&[
        "--delete-object",
        "--type",
        "privkey",
        "--label",
        "issuing-key",
    ]);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["fault.issuance.test".into()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    client
        .post(
            order.json()["finalize"].as_str().unwrap(),
            Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(csr.der()) })),
        )
        .await;
    let mut state = client.post(&order_url, None).await.json();
    for _ in 0..100 {
        if state["status"] != "processing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        state = client.post(&order_url, None).await.json();
    }
    // Never stuck: invalid, with serverInternal.
    assert_eq!(state["status"], "invalid", "{state}");
    assert_eq!(
        state["error"]["type"], "urn:ietf:params:acme:error:serverInternal",
        "{state}"
    );
    // And the server still answers.
    let directory = client
        .send(hyper::Method::GET, &client.url("/directory"), None)
        .await;
    assert_eq!(directory.status, hyper::StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_without_its_token_says_so_or_waits_for_it_when_configured() {
    let s = setup("").await;
    let plug_back = s.token.unplug();

    // Without a wait: serve exits at once with an error that names the missing token.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hsm-acme"))
        .env("SOFTHSM2_CONF", s.token.conf())
        .arg("--config")
        .arg(&s.config)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(common::TOKEN_LABEL) && stderr.contains("token"),
        "{stderr}"
    );

    // With `wait_for_token_seconds`, it waits, and serves once the token is back.
    let config = std::fs::read_to_string(&s.config).unwrap().replace(
        "sessions = 4\n",
        "sessions = 4\nwait_for_token_seconds = 60\n",
    );
    std::fs::write(&s.config, config).unwrap();
    let back = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(4));
        plug_back();
    });
    let port = free_port();
    let started = std::time::Instant::now();
    let _server = s.start(port);
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    back.join().unwrap();
    let log =
        std::fs::read_to_string(s.config.with_file_name(format!("serve-{port}.log"))).unwrap();
    assert!(log.contains("waiting for it"), "{log}");
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _) = new_account(&s.root(), &directory).await;
    let (mut order, failures) =
        order(&account, &s.tokens, &["back.issuance.test"], str::to_owned).await;
    assert!(failures.is_empty(), "{failures:?}");
    order.poll_ready(&RetryPolicy::default()).await.unwrap();
    order.finalize().await.unwrap();
    order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
}
