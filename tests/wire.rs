//! What the wire shows, checked with a raw JWS client over real HTTPS against a SoftHSM
//! token: pre-authorization (RFC 8555 §7.4.1) reused by a later order, alternate chains
//! (§7.4.2), keyChange to a key that is taken (§7.3.5), and the headers every answer carries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::acme::setup;
use common::net::free_port;
use common::raw::RawClient;
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_authorization_is_validated_and_then_used_by_a_new_order() {
    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);
    let directory = client
        .send(Method::GET, &client.url("/directory"), None)
        .await;
    let new_authz = directory.json()["newAuthz"].as_str().unwrap().to_owned();
    client.register().await;

    let identifier = json!({"type": "dns", "value": "pre.wire.test"});
    let created = client
        .post(&new_authz, Some(&json!({ "identifier": identifier })))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let authz_url = created.header("location").unwrap();
    let authz = created.json();
    assert_eq!(authz["status"], "pending");
    let answered = client.answer_http01(&authz, &s.tokens).await;
    assert_eq!(answered.json()["status"], "valid", "{answered:?}");
    // RFC 8555 §7.5.1: the challenge links up to its authorization.
    assert_eq!(answered.links("up"), std::slice::from_ref(&authz_url));

    // The order needs no new validation: it is ready at once, on the same authorization.
    let order = client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({ "identifiers": [identifier] })),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    assert_eq!(order.json()["status"], "ready");
    assert_eq!(order.json()["authorizations"], json!([authz_url]));

    // Wildcards cannot be pre-authorized.
    let wildcard = client
        .post(
            &new_authz,
            Some(&json!({"identifier": {"type": "dns", "value": "*.wire.test"}})),
        )
        .await;
    assert_eq!(wildcard.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wildcard.json()["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_links_its_alternate_chain() {
    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);
    client.register().await;

    let order = client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "alt.wire.test"}]})),
        )
        .await;
    let order_url = order.header("location").unwrap();
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    client.answer_http01(&authz, &s.tokens).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["alt.wire.test".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    let csr = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, csr.der());
    let finalized = client
        .post(
            order.json()["finalize"].as_str().unwrap(),
            Some(&json!({ "csr": csr })),
        )
        .await;
    assert_eq!(finalized.json()["status"], "valid", "{finalized:?}");
    let cert_url = client.post(&order_url, None).await.json()["certificate"]
        .as_str()
        .unwrap()
        .to_owned();

    let default = client.post(&cert_url, None).await;
    assert_eq!(
        default.header("content-type").as_deref(),
        Some("application/pem-certificate-chain")
    );
    let body = String::from_utf8(default.body.clone()).unwrap();
    assert_eq!(body.matches("BEGIN CERTIFICATE").count(), 2);
    let alternates = default.links("alternate");
    assert_eq!(alternates, [format!("{cert_url}/1")]);

    let alternate = client.post(&alternates[0], None).await;
    assert_eq!(alternate.status, StatusCode::OK);
    let body = String::from_utf8(alternate.body.clone()).unwrap();
    assert_eq!(body.matches("BEGIN CERTIFICATE").count(), 3);
    assert_eq!(
        alternate.links("alternate"),
        std::slice::from_ref(&cert_url)
    );
    let missing = client.post(&format!("{cert_url}/2"), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_change_to_a_taken_key_is_a_conflict_naming_its_account() {
    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let mut first = RawClient::new(&s.root(), port);
    first.register().await;
    let mut second = RawClient::new(&s.root(), port);
    second.register().await;

    // `first` asks to move to `second`'s key; the inner JWS is signed by that key.
    let url = first.url("/acme/key-change");
    let inner_header = json!({"alg": "ES256", "jwk": second.jwk, "url": url});
    let inner_payload = json!({"account": first.kid, "oldKey": first.jwk});
    let inner: serde_json::Value =
        serde_json::from_slice(&second.sign(&inner_header, inner_payload.to_string().as_bytes()))
            .unwrap();
    let answer = first.post(&url, Some(&inner)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{answer:?}");
    assert_eq!(answer.header("location"), second.kid);
    assert!(answer.header("replay-nonce").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_nonce_and_the_index_link_and_errors_are_problems() {
    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let client = RawClient::new(&s.root(), port);

    let head = client
        .send(Method::HEAD, &client.url("/acme/new-nonce"), None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("cache-control").as_deref(), Some("no-store"));
    let get = client
        .send(Method::GET, &client.url("/acme/new-nonce"), None)
        .await;
    assert_eq!(get.status, StatusCode::NO_CONTENT);

    let wrong_method = client
        .send(Method::GET, &client.url("/acme/new-account"), None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    for answer in [&head, &get, &wrong_method] {
        assert!(answer.header("replay-nonce").is_some(), "{answer:?}");
        assert_eq!(answer.links("index"), [client.url("/directory")]);
    }

    // A reused nonce is badNonce, with a fresh nonce to retry with.
    let url = client.url("/acme/new-account");
    let body = client
        .jws(&url, Some(&json!({"termsOfServiceAgreed": true})))
        .await;
    let first = client.send(Method::POST, &url, Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = client.send(Method::POST, &url, Some(body)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["type"], "urn:ietf:params:acme:error:badNonce");
    assert!(replay.header("replay-nonce").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_as_get_reads_the_directory_and_new_nonce_and_a_deactivated_account_gets_401() {
    let s = setup("").await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);
    client.register().await;

    // RFC 8555 §6.3: GET and POST-as-GET both work on the directory and newNonce.
    let directory = client.post(&client.url("/directory"), None).await;
    assert_eq!(directory.status, StatusCode::OK, "{directory:?}");
    assert!(directory.json()["newNonce"].is_string());
    let nonce = client.post(&client.url("/acme/new-nonce"), None).await;
    assert_eq!(nonce.status, StatusCode::NO_CONTENT, "{nonce:?}");
    assert!(nonce.header("replay-nonce").is_some());
    // RFC 8555 §6.2: only application/jose+json is taken.
    let body = client
        .jws(&client.url("/acme/new-order"), Some(&json!({})))
        .await;
    let plain = client
        .send_as(
            Method::POST,
            &client.url("/acme/new-order"),
            body,
            "application/json",
        )
        .await;
    assert_eq!(
        plain.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{plain:?}"
    );
    assert!(plain.header("replay-nonce").is_some());
    // A payload is not a POST-as-GET.
    let payload = client
        .post(&client.url("/directory"), Some(&json!({"x": 1})))
        .await;
    assert_eq!(payload.status, StatusCode::BAD_REQUEST, "{payload:?}");

    // RFC 8555 §7.3.6: after deactivation, every request of the account is 401 unauthorized.
    let account = client.kid.clone().unwrap();
    let deactivated = client
        .post(&account, Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(deactivated.json()["status"], "deactivated");
    let refused = client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "late.wire.test"}]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert_eq!(
        refused.json()["type"],
        "urn:ietf:params:acme:error:unauthorized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_terms_of_service_a_new_account_must_agree_to_them() {
    let s = setup("terms_of_service = \"https://ca.wire.test/terms\"").await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);
    let directory = client
        .send(Method::GET, &client.url("/directory"), None)
        .await;
    assert_eq!(
        directory.json()["meta"]["termsOfService"],
        "https://ca.wire.test/terms"
    );
    // RFC 8555 §7.3: without termsOfServiceAgreed, no account.
    let refused = client
        .post(
            &client.url("/acme/new-account"),
            Some(&json!({"contact": ["mailto:tos@example.org"]})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
    assert_eq!(
        refused.json()["type"],
        "urn:ietf:params:acme:error:malformed"
    );
    client.register().await;
}
