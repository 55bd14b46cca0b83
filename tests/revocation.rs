//! Revocation over real HTTPS against a SoftHSM token: the revoked certificate appears on
//! the CRL served at its own distribution point (signed on the token, checked by openssl),
//! ARI moves its window to now, its key is refused in later CSRs; and key rollover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::acme::{cert_id, new_account, openssl, order, running, setup};
use common::net::free_port;
use common::text;
use der::Encode;
use instant_acme::{
    Account, NewOrder, OrderStatus, RetryPolicy, RevocationReason, RevocationRequest,
};
use rustls::pki_types::CertificateDer;
use x509_cert::Certificate;

/// GETs a URL with curl into `out`; false unless it answered 200.
fn fetch(url: &str, out: &Path) -> bool {
    Command::new("curl")
        .args(["-sf", "-o"])
        .arg(out)
        .arg(url)
        .status()
        .unwrap()
        .success()
}

/// A test CA with a publication listener; returns it and the listener's port.
async fn setup_with_publication() -> (common::acme::Setup, u16) {
    let publication = free_port();
    let s = setup(&format!(
        "\n[publication]\nlisten = \"127.0.0.1:{publication}\"\n"
    ))
    .await;
    (s, publication)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_on_the_crl_at_its_distribution_point() {
    let (s, publication) = setup_with_publication().await;
    let port = free_port();
    let _server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _) = new_account(&s.root(), &directory).await;

    let issued = issue(&account, &s.tokens, "revoke.crl.test").await;
    let (leaf, chain, key_pem) = (issued.leaf, issued.chain, issued.key_pem);
    let leaf_der = leaf.to_der().unwrap();
    let dir = &s.token.dir;
    std::fs::write(dir.join("leaf.pem"), &chain).unwrap();
    std::fs::write(dir.join("leaf.key"), &key_pem).unwrap();

    // The leaf names the CRL and the CA certificate on the publication listener.
    let text_leaf = openssl(
        &["x509", "-noout", "-text", "-in"],
        Some(&dir.join("leaf.pem")),
    );
    let crl_url = format!("http://127.0.0.1:{publication}/crl/issuing.crl");
    assert!(text_leaf.contains(&format!("URI:{crl_url}")), "{text_leaf}");
    let ca_url = format!("http://127.0.0.1:{publication}/ca/issuing.crt");
    assert!(
        text_leaf.contains(&format!("CA Issuers - URI:{ca_url}")),
        "{text_leaf}"
    );
    assert!(fetch(&ca_url, &dir.join("issuing.crt")));
    let served = std::fs::read(dir.join("issuing.crt")).unwrap();
    let issuing_pem = std::fs::read(dir.join("issuing.pem")).unwrap();
    let issuing = Certificate::load_pem_chain(&issuing_pem).unwrap().remove(0);
    assert_eq!(served, issuing.to_der().unwrap());

    // ARI before revocation: a window in the last third of the 30-day life.
    let id = cert_id(&leaf);
    let (info, _) = account.renewal_info(&id).await.unwrap();
    let not_after = leaf.tbs_certificate().validity().not_after.to_system_time();
    let start = SystemTime::from(info.suggested_window.start);
    assert!(start > SystemTime::now() + Duration::from_secs(15 * 86_400));
    assert!(start < not_after);

    // Revoke with the account; a second time is alreadyRevoked.
    let der = CertificateDer::from(leaf_der.clone());
    let request = RevocationRequest {
        certificate: &der,
        reason: Some(RevocationReason::KeyCompromise),
    };
    account.revoke(&request).await.unwrap();
    let again = account.revoke(&request).await.unwrap_err();
    assert!(format!("{again:?}").contains("alreadyRevoked"), "{again:?}");

    // ARI after revocation: renew now.
    let (info, _) = account.renewal_info(&id).await.unwrap();
    assert!(
        SystemTime::from(info.suggested_window.end) <= SystemTime::now() + Duration::from_secs(60)
    );

    // The CRL at the distribution point lists it soon (re-signed after a short debounce).
    let crl = dir.join("issuing.crl");
    let serial = openssl(
        &["x509", "-noout", "-serial", "-in"],
        Some(&dir.join("leaf.pem")),
    );
    let serial = serial.trim().trim_start_matches("serial=").to_owned();
    let mut listed = false;
    for _ in 0..50 {
        if fetch(&crl_url, &crl) {
            let text = openssl(
                &["crl", "-inform", "DER", "-noout", "-text", "-in"],
                Some(&crl),
            );
            if text.contains(&serial) {
                assert!(text.contains("Key Compromise"), "{text}");
                listed = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listed, "serial {serial} never appeared on {crl_url}");
    let issuing_path = dir.join("issuing.pem");
    // openssl fails the test unless the CRL's signature verifies with the issuing CA.
    openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-verify",
            "-CAfile",
            issuing_path.to_str().unwrap(),
            "-in",
        ],
        Some(&crl),
    );
    let crl_pem = dir.join("issuing-crl.pem");
    openssl(
        &[
            "crl",
            "-inform",
            "DER",
            "-outform",
            "PEM",
            "-out",
            crl_pem.to_str().unwrap(),
            "-in",
        ],
        Some(&crl),
    );
    let out = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(s.root())
        .arg("-untrusted")
        .arg(&issuing_path)
        .arg("-CRLfile")
        .arg(&crl_pem)
        .arg(dir.join("leaf.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("certificate revoked"), "{}", text(&out));

    // The compromised key is refused in a new order's CSR.
    let (mut next, failures) = order(&account, &s.tokens, &["revoke.crl.test"], |ka| {
        ka.to_owned()
    })
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        next.poll_ready(&RetryPolicy::default()).await.unwrap(),
        OrderStatus::Ready
    );
    let csr = Command::new("openssl")
        .args(["req", "-new", "-outform", "DER", "-subj", "/", "-addext"])
        .arg("subjectAltName=DNS:revoke.crl.test")
        .arg("-key")
        .arg(dir.join("leaf.key"))
        .output()
        .unwrap();
    assert!(csr.status.success(), "{}", text(&csr));
    let refused = next.finalize_csr(&csr.stdout).await.unwrap_err();
    assert!(
        format!("{refused:?}").contains("badPublicKey"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover_moves_the_account_to_the_new_key() {
    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (mut account, old_credentials) = new_account(&s.root(), &directory).await;
    let account_id = account.id().to_owned();
    let _new_credentials = account.update_key().await.unwrap();
    assert_eq!(account.id(), account_id);

    // The new key works.
    let (_, failures) = order(&account, &s.tokens, &["rollover.crl.test"], |ka| {
        ka.to_owned()
    })
    .await;
    assert!(failures.is_empty(), "{failures:?}");
    // The old key no longer signs for the account.
    let old = Account::builder_with_root(s.root())
        .unwrap()
        .from_credentials(old_credentials)
        .await
        .unwrap();
    let identifiers = [instant_acme::Identifier::Dns("old.crl.test".into())];
    let Err(err) = old.new_order(&NewOrder::new(&identifiers)).await else {
        panic!("the old key still reaches the account");
    };
    assert!(format!("{err:?}").contains("does not verify"), "{err:?}");
}

/// A certificate issued for a test.
struct Issued {
    leaf: Certificate,
    /// Its serial, upper-case hex as openssl prints it.
    serial: String,
    chain: String,
    key_pem: String,
}

/// Issues a certificate for `name` through http-01.
async fn issue(account: &Account, tokens: &common::net::Tokens, name: &str) -> Issued {
    let (mut order, failures) = order(account, tokens, &[name], |ka| ka.to_owned()).await;
    assert!(failures.is_empty(), "{failures:?}");
    order.poll_ready(&RetryPolicy::default()).await.unwrap();
    let key_pem = order.finalize().await.unwrap();
    let chain = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    let leaf = Certificate::load_pem_chain(chain.as_bytes())
        .unwrap()
        .remove(0);
    let serial = leaf
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<String>();
    Issued {
        leaf,
        serial,
        chain,
        key_pem,
    }
}

/// The serials (upper-case hex, as openssl prints them) on the CRL at `url`.
fn crl_serials(url: &str, dir: &Path) -> String {
    let path = dir.join("fetched.crl");
    assert!(fetch(url, &path), "{url}");
    openssl(
        &["crl", "-inform", "DER", "-noout", "-text", "-in"],
        Some(&path),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_revokes_through_the_admin_socket_and_offline() {
    let (s, publication) = setup_with_publication().await;
    let port = free_port();
    let server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _) = new_account(&s.root(), &directory).await;
    let first = issue(&account, &s.tokens, "admin1.crl.test").await.serial;
    let second = issue(&account, &s.tokens, "admin2.crl.test").await.serial;
    let crl_url = format!("http://127.0.0.1:{publication}/crl/issuing.crl");

    // While serving: through the admin socket, and the CRL is re-signed before it answers.
    let out = s
        .token
        .hsm_acme(&s.config, &["revoke", "--serial", &first, "--reason", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("revoked certificate"), "{}", text(&out));
    assert!(crl_serials(&crl_url, &s.token.dir).contains(&first));
    let live = s.token.dir.join("live.crl");
    let out = s.token.hsm_acme(
        &s.config,
        &["crl", "--ca", "issuing", "--out", live.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listed = openssl(&["crl", "-noout", "-text", "-in"], Some(&live));
    assert!(
        listed.contains(&first) && !listed.contains(&second),
        "{listed}"
    );
    let out = s
        .token
        .hsm_acme(&s.config, &["revoke", "--serial", &first, "--reason", "4"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already revoked"), "{}", text(&out));
    let out = s
        .token
        .hsm_acme(&s.config, &["revoke", "--serial", &second, "--reason", "7"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("reason code 7"), "{}", text(&out));

    // Stopped: the state file directly; `crl` writes the next CRL with both entries...
    server.kill();
    let out = s
        .token
        .hsm_acme(&s.config, &["revoke", "--serial", &second, "--reason", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let written = s.token.dir.join("written.crl");
    let out = s.token.hsm_acme(
        &s.config,
        &["crl", "--ca", "issuing", "--out", written.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let listed = openssl(&["crl", "-noout", "-text", "-in"], Some(&written));
    assert!(
        listed.contains(&first) && listed.contains(&second),
        "{listed}"
    );
    // ...and after a restart the server publishes them too.
    let _server = s.start(port);
    let served = crl_serials(&crl_url, &s.token.dir);
    assert!(
        served.contains(&first) && served.contains(&second),
        "{served}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_names_what_it_replaces_and_only_once() {
    let (s, _server, account) = running("").await;
    let old = issue(&account, &s.tokens, "renew.crl.test").await;
    let id = cert_id(&old.leaf);

    // RFC 9773 §5: the renewal carries `replaces`, and once it is issued the old
    // certificate cannot be replaced a second time.
    let identifiers = [instant_acme::Identifier::Dns("renew.crl.test".into())];
    let mut renewal = account
        .new_order(&NewOrder::new(&identifiers).replaces(id.clone()))
        .await
        .unwrap();
    assert_eq!(renewal.state().replaces.as_ref(), Some(&id));
    let mut authorizations = renewal.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.unwrap();
        let mut challenge = authz
            .challenge(instant_acme::ChallengeType::Http01)
            .unwrap();
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        s.tokens
            .lock()
            .unwrap()
            .insert(challenge.token.clone(), key_authorization);
        challenge.set_ready().await.unwrap();
    }
    renewal.poll_ready(&RetryPolicy::default()).await.unwrap();
    renewal.finalize().await.unwrap();
    renewal
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    let Err(again) = account
        .new_order(&NewOrder::new(&identifiers).replaces(id))
        .await
    else {
        panic!("a certificate was replaced twice");
    };
    assert!(
        format!("{again:?}").contains("alreadyReplaced"),
        "{again:?}"
    );
}
