//! One case per rejection (RFC 8555 §6.2–6.5), plus the accepted shapes.

use std::time::Duration;

use josekit::jws::{ES256, ES384, JwsSigner, alg::ecdsa::EcdsaJwsAlgorithm};
use serde_json::json;

use super::*;

const URL: &str = "https://ca.test/acme/new-order";
const ACCT_PREFIX: &str = "https://ca.test/acme/acct/";

struct Client {
    signer: Box<dyn JwsSigner>,
    jwk: Value,
}

fn client(alg: EcdsaJwsAlgorithm) -> Client {
    let pair = alg.generate_key_pair().unwrap();
    let signer = Box::new(alg.signer_from_jwk(&pair.to_jwk_private_key()).unwrap());
    let jwk = Value::Object(pair.to_jwk_public_key().as_ref().clone());
    Client { signer, jwk }
}

fn encode(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(value)
}

#[allow(clippy::needless_pass_by_value)]
fn sign(client: &Client, header: Value, payload: &[u8]) -> Vec<u8> {
    let protected = encode(header.to_string().as_bytes());
    let payload = encode(payload);
    let input = format!("{protected}.{payload}");
    let signature = encode(&client.signer.sign(input.as_bytes()).unwrap());
    json!({"protected": protected, "payload": payload, "signature": signature})
        .to_string()
        .into_bytes()
}

fn account(client: &Client, status: AccountStatus) -> AccountRecord {
    AccountRecord {
        id: "a1".into(),
        status,
        contact: vec![],
        tos_agreed: Some(true),
        tos_version: None,
        approval_expires: None,
        jwk: client.jwk.clone(),
        thumbprint: thumbprint(&client.jwk).unwrap(),
        created: 0,
        eab_kid: None,
        profile: "default".into(),
    }
}

fn run(
    body: &[u8],
    rule: KeyRule,
    nonces: &NonceStore,
    accounts: &[AccountRecord],
) -> Result<Verified, Error> {
    let lookup = |id: &str| Ok(accounts.iter().find(|a| a.id == id).cloned());
    let ctx = Context {
        url: URL,
        nonces,
        account_url_prefix: ACCT_PREFIX,
        account: &lookup,
        verifiers: &VerifierCache::default(),
    };
    verify(body, rule, &ctx)
}

fn kind(result: Result<Verified, Error>) -> ErrorKind {
    match result {
        Ok(_) => panic!("accepted a request that must be refused"),
        Err(e) => e.kind,
    }
}

#[test]
fn a_jwk_request_verifies_and_yields_the_thumbprint() {
    let nonces = NonceStore::new(10, Duration::from_secs(60));
    let c = client(ES256);
    let header = json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": c.jwk});
    let verified = run(&sign(&c, header, b"{\"a\":1}"), KeyRule::Jwk, &nonces, &[]).unwrap();
    assert_eq!(verified.payload, b"{\"a\":1}");
    match verified.key {
        VerifiedKey::Jwk { thumbprint: t, .. } => assert_eq!(t, thumbprint(&c.jwk).unwrap()),
        VerifiedKey::Account(_) => panic!("expected a jwk"),
    }
}

#[test]
fn a_kid_request_finds_the_account_and_post_as_get_is_empty() {
    let nonces = NonceStore::new(10, Duration::from_secs(60));
    let c = client(ES384);
    let header = json!({"alg": "ES384", "nonce": nonces.issue(), "url": URL, "kid": format!("{ACCT_PREFIX}a1")});
    let accounts = [account(&c, AccountStatus::Valid)];
    let verified = run(&sign(&c, header, b""), KeyRule::Kid, &nonces, &accounts).unwrap();
    assert!(verified.is_post_as_get());
    assert_eq!(verified.account().unwrap().id, "a1");
}

#[test]
fn every_malformed_or_unauthorised_request_gets_its_problem() {
    let nonces = NonceStore::new(100, Duration::from_secs(60));
    let c = client(ES256);
    let other = client(ES256);
    let kid = format!("{ACCT_PREFIX}a1");
    let valid = [account(&c, AccountStatus::Valid)];
    let deactivated = [account(&c, AccountStatus::Deactivated)];
    let n = || nonces.issue();

    type Case<'a> = (&'a str, Vec<u8>, KeyRule, &'a [AccountRecord], ErrorKind);
    let cases: Vec<Case<'_>> = vec![
        (
            "alg none",
            sign(
                &c,
                json!({"alg": "none", "nonce": n(), "url": URL, "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::BadSignatureAlgorithm,
        ),
        (
            "alg HS256",
            sign(
                &c,
                json!({"alg": "HS256", "nonce": n(), "url": URL, "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::BadSignatureAlgorithm,
        ),
        (
            "no alg",
            sign(&c, json!({"nonce": n(), "url": URL, "jwk": c.jwk}), b"{}"),
            KeyRule::Jwk,
            &[],
            ErrorKind::Malformed,
        ),
        (
            "jwk and kid",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "jwk": c.jwk, "kid": kid}),
                b"{}",
            ),
            KeyRule::Either,
            &valid,
            ErrorKind::Malformed,
        ),
        (
            "neither",
            sign(&c, json!({"alg": "ES256", "nonce": n(), "url": URL}), b"{}"),
            KeyRule::Either,
            &[],
            ErrorKind::Malformed,
        ),
        (
            "jwk where kid is required",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Kid,
            &[],
            ErrorKind::Malformed,
        ),
        (
            "kid where jwk is required",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "kid": kid}),
                b"{}",
            ),
            KeyRule::Jwk,
            &valid,
            ErrorKind::Malformed,
        ),
        (
            "wrong url",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": "https://ca.test/acme/other", "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::Unauthorized,
        ),
        (
            "no url",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::Malformed,
        ),
        (
            "no nonce",
            sign(&c, json!({"alg": "ES256", "url": URL, "jwk": c.jwk}), b"{}"),
            KeyRule::Jwk,
            &[],
            ErrorKind::BadNonce,
        ),
        (
            "unknown nonce",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": "AAAAAAAAAAAAAAAAAAAAAA", "url": URL, "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::BadNonce,
        ),
        (
            "unknown kid",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "kid": format!("{ACCT_PREFIX}zz")}),
                b"{}",
            ),
            KeyRule::Kid,
            &valid,
            ErrorKind::AccountDoesNotExist,
        ),
        (
            "foreign kid",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "kid": "https://elsewhere/acct/a1"}),
                b"{}",
            ),
            KeyRule::Kid,
            &valid,
            ErrorKind::AccountDoesNotExist,
        ),
        (
            "deactivated account",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "kid": kid}),
                b"{}",
            ),
            KeyRule::Kid,
            &deactivated,
            ErrorKind::AccountNotValid,
        ),
        (
            "signed by another key",
            sign(
                &other,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "kid": kid}),
                b"{}",
            ),
            KeyRule::Kid,
            &valid,
            ErrorKind::Malformed,
        ),
        (
            "alg does not fit the key",
            sign(
                &c,
                json!({"alg": "ES384", "nonce": n(), "url": URL, "jwk": c.jwk}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::BadPublicKey,
        ),
        (
            "unencoded payload",
            sign(
                &c,
                json!({"alg": "ES256", "nonce": n(), "url": URL, "jwk": c.jwk, "b64": false}),
                b"{}",
            ),
            KeyRule::Jwk,
            &[],
            ErrorKind::Malformed,
        ),
    ];
    for (name, body, rule, accounts, expected) in cases {
        assert_eq!(
            kind(run(&body, rule, &nonces, accounts)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn replayed_nonce_and_other_serializations_are_refused() {
    let nonces = NonceStore::new(10, Duration::from_secs(60));
    let c = client(ES256);
    let body = sign(
        &c,
        json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": c.jwk}),
        b"{}",
    );
    assert!(run(&body, KeyRule::Jwk, &nonces, &[]).is_ok());
    assert_eq!(
        kind(run(&body, KeyRule::Jwk, &nonces, &[])),
        ErrorKind::BadNonce,
        "replay"
    );

    let mut general: Value = serde_json::from_slice(&body).unwrap();
    general["signatures"] = json!([]);
    assert_eq!(
        kind(run(
            general.to_string().as_bytes(),
            KeyRule::Jwk,
            &nonces,
            &[]
        )),
        ErrorKind::Malformed
    );
    let mut unprotected: Value = serde_json::from_slice(&body).unwrap();
    unprotected["header"] = json!({"kid": "x"});
    assert_eq!(
        kind(run(
            unprotected.to_string().as_bytes(),
            KeyRule::Jwk,
            &nonces,
            &[]
        )),
        ErrorKind::Malformed
    );
    assert_eq!(
        kind(run(b"eyJhbGciOi.e30.c2ln", KeyRule::Jwk, &nonces, &[])),
        ErrorKind::Malformed,
        "compact"
    );

    let mut with_private = c.jwk.clone();
    with_private["d"] = json!("AAAA");
    let body = sign(
        &c,
        json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": with_private}),
        b"{}",
    );
    assert_eq!(
        kind(run(&body, KeyRule::Jwk, &nonces, &[])),
        ErrorKind::Malformed
    );
}

#[test]
fn key_change_inner_jws_rules() {
    let new = client(ES384);
    let url = "https://ca.test/acme/key-change";
    let payload = br#"{"account":"https://ca.test/acme/acct/a1","oldKey":{}}"#;
    let good = json!({"alg": "ES384", "jwk": new.jwk, "url": url});
    let inner = verify_key_change_inner(&sign(&new, good, payload), url).unwrap();
    assert_eq!(inner.thumbprint, thumbprint(&new.jwk).unwrap());
    assert_eq!(inner.payload, payload);

    let cases = [
        (
            json!({"alg": "ES384", "jwk": new.jwk, "url": url, "nonce": "n"}),
            "nonce",
        ),
        (
            json!({"alg": "ES384", "kid": "https://ca.test/acme/acct/a1", "url": url}),
            "kid",
        ),
        (json!({"alg": "ES384", "url": url}), "jwk"),
        (
            json!({"alg": "ES384", "jwk": new.jwk, "url": "https://ca.test/other"}),
            "url",
        ),
        (
            json!({"alg": "HS256", "jwk": new.jwk, "url": url}),
            "not accepted",
        ),
    ];
    for (header, expected) in cases {
        let err = verify_key_change_inner(&sign(&new, header, payload), url).unwrap_err();
        assert!(err.detail.contains(expected), "{expected}: {}", err.detail);
    }
    // Signed by another key than the jwk it carries.
    let other = client(ES384);
    let forged = sign(
        &other,
        json!({"alg": "ES384", "jwk": new.jwk, "url": url}),
        payload,
    );
    let err = verify_key_change_inner(&forged, url).unwrap_err();
    assert!(err.detail.contains("does not verify"), "{}", err.detail);
    assert!(verify_key_change_inner(b"not json", url).is_err());
}

#[test]
fn cached_verifiers_are_per_key_and_never_accept_another_keys_signature() {
    let nonces = NonceStore::new(10, Duration::from_secs(60));
    let cache = VerifierCache::default();
    let (a, b) = (client(ES256), client(ES256));
    let accounts = [account(&a, AccountStatus::Valid)];
    let lookup = |id: &str| Ok(accounts.iter().find(|x| x.id == id).cloned());
    let ctx = Context {
        url: URL,
        nonces: &nonces,
        account_url_prefix: ACCT_PREFIX,
        account: &lookup,
        verifiers: &cache,
    };
    let kid = format!("{ACCT_PREFIX}a1");
    let header = || json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "kid": kid});
    // The first request builds and caches a1's verifier; the second uses it.
    assert!(verify(&sign(&a, header(), b""), KeyRule::Kid, &ctx).is_ok());
    assert!(verify(&sign(&a, header(), b""), KeyRule::Kid, &ctx).is_ok());
    // Signed by another key in a1's name: the cached verifier refuses it.
    let forged = verify(&sign(&b, header(), b""), KeyRule::Kid, &ctx);
    assert_eq!(kind(forged), ErrorKind::Malformed);
    // Another key as jwk gets a verifier of its own.
    let header = json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": b.jwk});
    assert!(verify(&sign(&b, header, b""), KeyRule::Jwk, &ctx).is_ok());
    assert_eq!(cache.map.lock().unwrap().len(), 2);
}

#[test]
fn external_account_bindings_are_parsed_strictly() {
    let eab = |header: Value| {
        json!({
            "protected": encode(header.to_string().as_bytes()),
            "payload": encode(b"{}"),
            "signature": encode(b"mac"),
        })
    };
    let url = "https://ca.test/acme/new-account";
    let good =
        parse_external_account_binding(&eab(json!({"alg": "HS256", "kid": "k1", "url": url})))
            .unwrap();
    assert_eq!(
        (good.alg.as_str(), good.kid.as_str(), good.url.as_str()),
        ("HS256", "k1", url)
    );
    assert_eq!(good.signature, b"mac");

    let long_kid = "k".repeat(MAX_EAB_KID + 1);
    let refused = [
        eab(json!({"alg": "HS256", "kid": long_kid, "url": url})),
        eab(json!({"alg": "HS256", "kid": "", "url": url})),
        eab(json!({"alg": "HS256", "kid": "k1", "url": url, "nonce": "n"})),
        eab(json!({"alg": "HS256", "url": url})),
        eab(json!({"kid": "k1", "url": url})),
        eab(json!({"alg": "HS256", "kid": "k1"})),
        eab(json!({"alg": "HS256", "kid": 7, "url": url})),
        json!({"protected": "!!", "payload": "", "signature": ""}),
        json!({"protected": encode(b"{}"), "payload": "", "signature": "", "header": {}}),
        json!("a string"),
    ];
    for value in refused {
        let err = parse_external_account_binding(&value).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Malformed, "{value}");
    }
}

#[test]
fn critical_extensions_are_refused_and_bad_signatures_are_not_cached() {
    let nonces = NonceStore::new(100, Duration::from_secs(60));
    let c = client(ES256);
    let other = client(ES256);
    let verifiers = VerifierCache::default();
    let lookup = |_: &str| Ok(None);
    let ctx = Context {
        url: URL,
        nonces: &nonces,
        account_url_prefix: ACCT_PREFIX,
        account: &lookup,
        verifiers: &verifiers,
    };
    let crit = sign(
        &c,
        json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": c.jwk,
               "crit": ["exp"], "exp": 1}),
        b"{}",
    );
    let err = verify(&crit, KeyRule::Jwk, &ctx).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.detail.contains("crit"), "{}", err.detail);

    // Signed by another key than the jwk it carries: refused, and nothing is kept.
    let forged = sign(
        &other,
        json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": c.jwk}),
        b"{}",
    );
    assert!(verify(&forged, KeyRule::Jwk, &ctx).is_err());
    assert_eq!(verifiers.len(), 0);
    let good = sign(
        &c,
        json!({"alg": "ES256", "nonce": nonces.issue(), "url": URL, "jwk": c.jwk}),
        b"{}",
    );
    verify(&good, KeyRule::Jwk, &ctx).unwrap();
    assert_eq!(verifiers.len(), 1);
}
