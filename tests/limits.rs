//! Connection limits over real HTTPS on loopback against a SoftHSM-backed server: the
//! connection cap, idle HTTP/1.1 and HTTP/2 connections cut, a stalled request body cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::acme::setup;
use common::net::{connect, free_port};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Waits up to `within` for the server to close `tls`; returns how long it took.
async fn closed_within(tls: &mut TlsStream<TcpStream>, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(start.elapsed()), tls.read(&mut buf)).await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            // HTTP/2 settings, pings, a 400: the server is still talking; keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_idle_or_stalled_ones_are_cut() {
    let s = setup("").await;
    // The [server] table of the test configuration, with limits added.
    let config = std::fs::read_to_string(&s.config).unwrap().replace(
        "admin_socket = \"admin.sock\"",
        "admin_socket = \"admin.sock\"\nmax_connections = 3\nidle_timeout_seconds = 2",
    );
    std::fs::write(&s.config, config).unwrap();
    let port = free_port();
    let _server = s.start(port);
    let root = s.root();

    // Three connections are served; a fourth is closed before its handshake.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&root, port, b"http/1.1").await.unwrap());
    }
    assert!(
        connect(&root, port, b"http/1.1").await.is_err(),
        "a fourth connection was served"
    );
    // Idle keep-alive connections are cut after the idle timeout, freeing their slots.
    for tls in &mut held {
        let took = closed_within(tls, Duration::from_secs(6)).await;
        assert!(took.is_some(), "an idle HTTP/1.1 connection stayed open");
    }
    let mut fresh = connect(&root, port, b"http/1.1").await.unwrap();
    fresh
        .write_all(b"GET /directory HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = fresh.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    drop(fresh);

    // A body announced and never sent: the connection does not stay.
    let mut stalled = connect(&root, port, b"http/1.1").await.unwrap();
    stalled
        .write_all(
            b"POST /acme/new-order HTTP/1.1\r\nhost: 127.0.0.1\r\n\
              content-type: application/jose+json\r\ncontent-length: 1000\r\n\r\n{\"protected\"",
        )
        .await
        .unwrap();
    assert!(
        closed_within(&mut stalled, Duration::from_secs(8))
            .await
            .is_some(),
        "a stalled body kept its connection"
    );

    // HTTP/2 that never sends its preface, or goes quiet: cut too.
    let mut h2 = connect(&root, port, b"h2").await.unwrap();
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert!(
        closed_within(&mut h2, Duration::from_secs(8))
            .await
            .is_some(),
        "an idle HTTP/2 connection stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_flood_neither_stalls_issuance_nor_returning_clients() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let root = s.root();
    // One client configuration: its sessions resume, so its handshakes need no signature.
    let mut client = common::raw::RawClient::new(&root, port);
    client.register().await;
    let order = client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "flood.limits.test"}]})),
        )
        .await;
    let order_url = order.header("location").unwrap();
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    assert_eq!(
        client.answer_http01(&authz, &s.tokens).await.json()["status"],
        "valid"
    );

    // Full handshakes from fresh configurations, as fast as they go, from 32 tasks.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut flood = Vec::new();
    for _ in 0..32 {
        let (stop, done, refused, root) =
            (stop.clone(), done.clone(), refused.clone(), root.clone());
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match connect(&root, port, b"http/1.1").await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["flood.limits.test".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    let finalized = client
        .post(
            order.json()["finalize"].as_str().unwrap(),
            Some(&json!({ "csr": URL_SAFE_NO_PAD.encode(csr.der()) })),
        )
        .await;
    assert_eq!(finalized.json()["status"], "valid", "{finalized:?}");
    let cert_url = client.post(&order_url, None).await.json()["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    let chain = client.post(&cert_url, None).await;
    assert_eq!(chain.status, hyper::StatusCode::OK);
    let took = start.elapsed();

    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.unwrap();
    }
    let (done, refused) = (
        done.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    println!(
        "finalize and download during a flood of {} full handshakes ({refused} refused at \
         once): {took:?}",
        done + refused
    );
    assert!(done + refused > 32, "the flood did not run");
    assert!(done > 0, "no flood handshake succeeded at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_rate_limited_with_retry_after_and_survive_a_restart() {
    use common::raw::RawClient;
    use hyper::StatusCode;
    use serde_json::json;

    let s = setup(
        "\n[rate_limits]\naccounts_per_ip = { count = 2, period_hours = 1 }\n\
         orders_per_account = { count = 2, period_hours = 1 }\nidentifiers_per_order = 2\n",
    )
    .await;
    let port = free_port();
    let server = s.start(port);
    let limited = |answer: &common::raw::Answer| {
        answer.status == StatusCode::TOO_MANY_REQUESTS
            && answer.json()["type"] == "urn:ietf:params:acme:error:rateLimited"
            && answer
                .header("retry-after")
                .and_then(|r| r.parse::<u64>().ok())
                .is_some_and(|r| r > 0 && r <= 1800)
    };

    let mut first = RawClient::new(&s.root(), port);
    first.register().await;
    let mut second = RawClient::new(&s.root(), port);
    second.register().await;
    let third = RawClient::new(&s.root(), port);
    let url = third.url("/acme/new-account");
    let refused = third
        .post(&url, Some(&json!({"termsOfServiceAgreed": true})))
        .await;
    assert!(limited(&refused), "{refused:?}");

    // Three names in one order are one too many; the refusal spends nothing.
    let names: Vec<_> = (0..3)
        .map(|n| json!({"type": "dns", "value": format!("m{n}.limits.test")}))
        .collect();
    let too_many = first
        .post(
            &first.url("/acme/new-order"),
            Some(&json!({ "identifiers": names })),
        )
        .await;
    assert_eq!(
        too_many.json()["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier",
        "{too_many:?}"
    );
    for n in 0..2 {
        assert_eq!(new_order(&first, n).await.status, StatusCode::CREATED);
    }
    let refused = new_order(&first, 2).await;
    assert!(limited(&refused), "{refused:?}");
    // Another account has its own budget.
    assert_eq!(new_order(&second, 3).await.status, StatusCode::CREATED);

    // A restart forgets nothing.
    server.kill();
    let _server = s.start(port);
    let refused = third
        .post(&url, Some(&json!({"termsOfServiceAgreed": true})))
        .await;
    assert!(limited(&refused), "{refused:?}");
    let refused = new_order(&first, 4).await;
    assert!(limited(&refused), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_cap_what_an_account_holds_open_and_finishing_frees_a_place() {
    use common::raw::RawClient;
    use hyper::StatusCode;
    use serde_json::json;

    let s = setup(
        "\n[rate_limits]\npending_orders_per_account = 2\n\
         pending_authorizations_per_account = 3\n",
    )
    .await;
    let port = free_port();
    let server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);
    client.register().await;
    let order_of = |names: &[&str]| {
        let identifiers: Vec<_> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        json!({ "identifiers": identifiers })
    };
    let new_order = client.url("/acme/new-order");
    let first = client
        .post(
            &new_order,
            Some(&order_of(&["a.quota.test", "b.quota.test"])),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let second = client
        .post(&new_order, Some(&order_of(&["c.quota.test"])))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{second:?}");

    // Three pending authorizations and two pending orders: the next one is refused, and the
    // refusal creates nothing.
    let refused = client
        .post(&new_order, Some(&order_of(&["d.quota.test"])))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    let problem = refused.json();
    assert_eq!(problem["type"], "urn:ietf:params:acme:error:rateLimited");
    assert!(
        problem["detail"].as_str().unwrap().contains("pending"),
        "{problem}"
    );
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 7 * 86_400, "Retry-After {wait}");

    // Deactivating one authorization of the first order frees an authorization and, as that
    // order is now invalid, an order.
    let authz_url = first.json()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let deactivated = client
        .post(&authz_url, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{deactivated:?}");
    let third = client
        .post(&new_order, Some(&order_of(&["d.quota.test"])))
        .await;
    assert_eq!(third.status, StatusCode::CREATED, "{third:?}");
    let refused = client
        .post(&new_order, Some(&order_of(&["e.quota.test"])))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");

    // Another account has its own quota, and a restart forgets nothing.
    let mut other = RawClient::new(&s.root(), port);
    other.register().await;
    let own = other
        .post(&new_order, Some(&order_of(&["f.quota.test"])))
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{own:?}");
    server.kill();
    let _server = s.start(port);
    let refused = client
        .post(&new_order, Some(&order_of(&["e.quota.test"])))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
}

/// newOrder for one name numbered `n`.
async fn new_order(client: &common::raw::RawClient, n: usize) -> common::raw::Answer {
    let payload =
        serde_json::json!({"identifiers": [{"type": "dns", "value": format!("o{n}.limits.test")}]});
    client
        .post(&client.url("/acme/new-order"), Some(&payload))
        .await
}

/// Orders `name`, answers http-01 and finalizes: the leaf, or the error finalize met.
async fn issue(
    account: &instant_acme::Account,
    tokens: &common::net::Tokens,
    name: &str,
    replaces: Option<instant_acme::CertificateIdentifier<'static>>,
) -> Result<CertificateDer<'static>, String> {
    use instant_acme::{ChallengeType, Identifier, NewOrder, RetryPolicy};
    let identifiers = [Identifier::Dns(name.to_owned())];
    let mut request = NewOrder::new(&identifiers);
    if let Some(id) = replaces {
        request = request.replaces(id);
    }
    let mut order = account.new_order(&request).await.unwrap();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.unwrap();
        let mut challenge = authz.challenge(ChallengeType::Http01).unwrap();
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        tokens
            .lock()
            .unwrap()
            .insert(challenge.token.clone(), key_authorization);
        challenge.set_ready().await.unwrap();
    }
    order.poll_ready(&RetryPolicy::default()).await.unwrap();
    order.finalize().await.map_err(|e| format!("{e:?}"))?;
    let chain = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    Ok(CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()
        .unwrap()
        .unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_per_registered_domain_are_limited_and_renewals_are_exempt() {
    // A suffix list of the test's own, named in the configuration: under `co.uk`, each
    // label is a registered domain of its own.
    let s = setup(
        "\n[rate_limits]\ncertificates_per_domain = { count = 2, period_hours = 1 }\n\
         public_suffix_list = \"suffixes.dat\"\n",
    )
    .await;
    std::fs::write(s.token.dir.join("suffixes.dat"), "uk\nco.uk\n").unwrap();
    let port = free_port();
    let server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _) = common::acme::new_account(&s.root(), &directory).await;

    // Two names under shop.co.uk use up its budget, whatever their subdomains.
    let first = issue(&account, &s.tokens, "www.shop.co.uk", None)
        .await
        .unwrap();
    issue(&account, &s.tokens, "a.b.shop.co.uk", None)
        .await
        .unwrap();
    let refused = issue(&account, &s.tokens, "shop.co.uk", None)
        .await
        .unwrap_err();
    assert!(refused.contains("rateLimited"), "{refused}");
    assert!(refused.contains("shop.co.uk"), "{refused}");

    // Another registered domain under the same public suffix has its own budget.
    issue(&account, &s.tokens, "www.other.co.uk", None)
        .await
        .unwrap();
    // A renewal that names the certificate it replaces (RFC 9773) does not count.
    let id = common::acme::cert_id(&der::Decode::from_der(first.as_ref()).unwrap());
    issue(&account, &s.tokens, "www.shop.co.uk", Some(id))
        .await
        .unwrap();

    // The budget is in the state file: a restart does not refill it.
    server.kill();
    let _server = s.start(port);
    let refused = issue(&account, &s.tokens, "mail.shop.co.uk", None)
        .await
        .unwrap_err();
    assert!(refused.contains("rateLimited"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_tls_certificate_is_renewed_while_it_serves() {
    // A 30 s certificate is renewed 20 s into its life, without a restart.
    let s = setup("").await;
    let config = std::fs::read_to_string(&s.config).unwrap().replace(
        "tls_certificate = \"tls.pem\"\n",
        "tls_certificate = \"tls.pem\"\ntls_validity_seconds = 30\n",
    );
    std::fs::write(&s.config, config).unwrap();
    let port = free_port();
    let _server = s.start(port);
    let served = |tls: &TlsStream<TcpStream>| -> Vec<u8> {
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    };

    // A connection opened before the renewal, kept alive across it.
    let mut before = connect(&s.root(), port, b"http/1.1").await.unwrap();
    let first = served(&before);
    let request = format!(
        "GET /directory HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: keep-alive\r\n\r\n"
    );
    let read_answer = async |tls: &mut TlsStream<TcpStream>| -> String {
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 16_384];
        let n = tls.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(read_answer(&mut before).await.starts_with("HTTP/1.1 200"));

    let deadline = Instant::now() + Duration::from_secs(60);
    let renewed = loop {
        assert!(Instant::now() < deadline, "the certificate was not renewed");
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Kept busy, so the idle timeout does not end it.
        assert!(read_answer(&mut before).await.starts_with("HTTP/1.1 200"));
        // The client checks the new chain against the root, as any client would.
        let tls = connect(&s.root(), port, b"http/1.1").await.unwrap();
        let leaf = served(&tls);
        if leaf != first {
            break leaf;
        }
    };
    let not_before = |der: &[u8]| {
        let cert: x509_cert::Certificate = der::Decode::from_der(der).unwrap();
        cert.tbs_certificate()
            .validity()
            .not_before
            .to_unix_duration()
    };
    assert!(not_before(&renewed) > not_before(&first));
    // The chain on disk is the renewed one, so a restart serves it too.
    let on_disk = std::fs::read(s.token.dir.join("tls.pem")).unwrap();
    let on_disk = CertificateDer::pem_slice_iter(&on_disk)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(on_disk.as_ref(), renewed.as_slice());
    // The connection from before still answers, with the certificate it started with.
    assert_eq!(served(&before), first);
    assert!(read_answer(&mut before).await.starts_with("HTTP/1.1 200"));
}
