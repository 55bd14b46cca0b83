//! dns-01 (with a wildcard) and tls-alpn-01 end to end, over real HTTPS against a SoftHSM
//! token, with instant-acme as the client: TXT records from the test's mock DNS, and a
//! tls-alpn-01 responder presenting an RFC 8737 certificate made with rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::acme::{new_account, openssl, running, setup};
use common::net::free_port;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Finalizes a ready order and returns the leaf as `openssl x509 -text` prints it.
async fn issued_text(order: &mut instant_acme::Order, dir: &std::path::Path) -> String {
    assert_eq!(
        order.poll_ready(&RetryPolicy::default()).await.unwrap(),
        OrderStatus::Ready
    );
    order.finalize().await.unwrap();
    let chain = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    let path = dir.join("challenge-leaf.pem");
    std::fs::write(&path, chain).unwrap();
    openssl(&["x509", "-noout", "-text", "-in"], Some(&path))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_and_its_base_name_are_validated_with_dns01() {
    let (s, _server, account) = running("").await;

    let identifiers = [
        Identifier::Dns("*.wild.challenges.test".into()),
        Identifier::Dns("wild.challenges.test".into()),
    ];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    // Both authorizations are for the base name, so both TXT values live at the same name
    // at once, as certbot and dehydrated publish them (RFC 8555 §8.4).
    let mut challenges = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.unwrap();
        let offered: Vec<ChallengeType> =
            authz.challenges.iter().map(|c| c.r#type.clone()).collect();
        if authz.wildcard {
            assert_eq!(offered, [ChallengeType::Dns01], "RFC 8555 §7.1.3");
        }
        let challenge = authz.challenge(ChallengeType::Dns01).unwrap();
        s.dns
            .lock()
            .unwrap()
            .txt
            .entry("_acme-challenge.wild.challenges.test".into())
            .or_default()
            .push(challenge.key_authorization().dns_value());
        challenges.push(challenge.url.clone());
    }
    assert_eq!(challenges.len(), 2);
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.unwrap();
        assert_eq!(authz.status, AuthorizationStatus::Pending);
        authz
            .challenge(ChallengeType::Dns01)
            .unwrap()
            .set_ready()
            .await
            .unwrap();
    }
    let text = issued_text(&mut order, &s.token.dir).await;
    assert!(text.contains("DNS:*.wild.challenges.test"), "{text}");
    assert!(text.contains("DNS:wild.challenges.test"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_dns01_value_makes_the_order_invalid() {
    let (s, _server, account) = running("").await;
    let identifiers = [Identifier::Dns("badtxt.challenges.test".into())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    s.dns.lock().unwrap().txt.insert(
        "_acme-challenge.badtxt.challenges.test".into(),
        vec!["not-the-digest".into()],
    );
    let mut authorizations = order.authorizations();
    let mut authz = authorizations.next().await.unwrap().unwrap();
    let err = authz
        .challenge(ChallengeType::Dns01)
        .unwrap()
        .set_ready()
        .await;
    let state = order.refresh().await.unwrap();
    assert_eq!(state.status, OrderStatus::Invalid, "{err:?}");
    let error = format!("{:?}", state.error);
    assert!(error.contains("incorrectResponse"), "{error}");
}

/// Presents one certificate as it is: rustls' own loaders would refuse the critical
/// acmeIdentifier extension, which RFC 8737 requires.
#[derive(Debug)]
struct Presenter(Arc<CertifiedKey>);

impl ResolvesServerCert for Presenter {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Serves tls-alpn-01 on `listener`: every handshake gets `cert` for `key`.
fn alpn_responder(listener: TcpListener, cert: Vec<u8>, key: Vec<u8>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    let certified = Arc::new(CertifiedKey::new(vec![cert.into()], signing_key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Presenter(certified)));
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The validator only needs the handshake.
                let _ = acceptor.accept(stream).await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_is_validated_against_the_acme_identifier_certificate() {
    let mut s = setup("").await;
    let alpn = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let alpn_port = alpn.local_addr().unwrap().port();
    s.args
        .extend(["--tls-alpn01-port".to_owned(), alpn_port.to_string()]);
    let port = free_port();
    let _server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _): (Account, _) = new_account(&s.root(), &directory).await;

    let name = "alpn.challenges.test";
    let identifiers = [Identifier::Dns(name.into())];
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    let mut authorizations = order.authorizations();
    let mut authz = authorizations.next().await.unwrap().unwrap();
    let mut challenge = authz.challenge(ChallengeType::TlsAlpn01).unwrap();
    // RFC 8737 §3: one SAN, and the critical acmeIdentifier with SHA-256(key authorization).
    let digest = challenge.key_authorization().digest();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest.as_ref())];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    alpn_responder(alpn, cert.der().to_vec(), key.serialize_der());
    challenge.set_ready().await.unwrap();
    let text = issued_text(&mut order, &s.token.dir).await;
    assert!(text.contains(&format!("DNS:{name}")), "{text}");
}
