//! External account binding (RFC 8555 §7.3.4) over real HTTPS against a SoftHSM token:
//! HMAC keys of each algorithm made by `hsm-acme eab create` (drawn and sealed on the
//! token), public-key EAB, every refusal, allowed and pre-validated names, the operator's
//! commands through the admin socket and on the stopped state file, and the admin socket
//! refusing other users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::acme::{Setup, setup};
use common::net::{ServerProcess, free_port};
use common::raw::{Answer, RawClient};
use common::text;
use hyper::{Method, StatusCode};
use josekit::jwk::KeyPair;
use josekit::jws::{ES256, EdDSA, JwsSigner};
use serde_json::{Value, json};

/// `[acme]` keys and the sealing key for every test here.
const EAB_REQUIRED: &str = "eab_required = true\n\n[sealing]\nkey_label = \"seal\"\n";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Runs `hsm-acme … --json` and returns its JSON answer; fails the test if it fails.
fn cli_json(s: &Setup, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = s.token.hsm_acme(&s.config, &all);
    assert!(out.status.success(), "hsm-acme {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

/// Runs `hsm-acme …` expecting a refusal; returns what it said.
fn cli_refused(s: &Setup, args: &[&str]) -> String {
    let out = s.token.hsm_acme(&s.config, args);
    assert!(
        !out.status.success(),
        "hsm-acme {args:?} succeeded: {}",
        text(&out)
    );
    text(&out)
}

/// An EAB JWS over `payload` with `header`, MACed with `key` under `alg`.
fn hmac_eab(header: &Value, payload: &Value, alg: ring::hmac::Algorithm, key: &[u8]) -> Value {
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(payload.to_string().as_bytes());
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(alg, key),
        format!("{protected}.{payload}").as_bytes(),
    );
    json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
}

/// An EAB JWS signed with `signer` (public-key EAB).
fn signed_eab(header: &Value, payload: &Value, signer: &dyn JwsSigner) -> Value {
    let protected = b64(header.to_string().as_bytes());
    let payload = b64(payload.to_string().as_bytes());
    let signature = signer
        .sign(format!("{protected}.{payload}").as_bytes())
        .unwrap();
    json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
}

/// Builds a binding for a client's key.
type MakeBinding<'a> = Box<dyn Fn(&RawClient) -> Value + 'a>;

fn mac_alg(name: &str) -> ring::hmac::Algorithm {
    match name {
        "HS256" => ring::hmac::HMAC_SHA256,
        "HS384" => ring::hmac::HMAC_SHA384,
        _ => ring::hmac::HMAC_SHA512,
    }
}

/// newAccount with `eab` (if any); remembers the account URL on success.
async fn new_account(client: &mut RawClient, eab: Option<Value>) -> Answer {
    let mut payload = json!({"termsOfServiceAgreed": true, "contact": ["mailto:eab@example.org"]});
    if let Some(eab) = eab {
        payload["externalAccountBinding"] = eab;
    }
    let answer = client
        .post(&client.url("/acme/new-account"), Some(&payload))
        .await;
    if answer.status == StatusCode::CREATED {
        client.kid = answer.header("location");
    }
    answer
}

fn problem(answer: &Answer) -> String {
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{answer:?}"
    );
    answer.json()["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("urn:ietf:params:acme:error:")
        .to_owned()
}

/// An HMAC key from the CLI: (kid, key bytes, base64url text).
fn create_hmac(s: &Setup, extra: &[&str]) -> (String, Vec<u8>, String) {
    let mut args = vec!["eab", "create", "--profile", "default"];
    args.extend_from_slice(extra);
    let created = cli_json(s, &args);
    let text = created["hmac_key"].as_str().unwrap().to_owned();
    (
        created["kid"].as_str().unwrap().to_owned(),
        URL_SAFE_NO_PAD.decode(&text).unwrap(),
        text,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_keys_bind_accounts_and_every_bad_binding_is_refused() {
    let s = setup(EAB_REQUIRED).await;
    let port = free_port();
    let server = s.start(port);
    let new_account_url = format!("https://127.0.0.1:{port}/acme/new-account");

    let probe = RawClient::new(&s.root(), port);
    let directory = probe
        .send(Method::GET, &probe.url("/directory"), None)
        .await;
    assert_eq!(directory.json()["meta"]["externalAccountRequired"], true);

    // Without a binding: externalAccountRequired.
    let mut client = RawClient::new(&s.root(), port);
    let refused = new_account(&mut client, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    assert_eq!(problem(&refused), "externalAccountRequired");

    // One key per algorithm, each binding one account; keys are as long as their hash.
    let mut keys = Vec::new();
    for (alg, len) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
        let (kid, key, text) = create_hmac(&s, &["--alg", alg, "--label", "tests"]);
        assert_eq!(key.len(), len);
        let mut client = RawClient::new(&s.root(), port);
        let header = json!({"alg": alg, "kid": kid, "url": new_account_url});
        let eab = hmac_eab(&header, &client.jwk, mac_alg(alg), &key);
        let created = new_account(&mut client, Some(eab)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{alg}: {created:?}");
        keys.push((alg, kid, key, text, client));
    }
    let (_, hs256_kid, hs256_key, _, _) = &keys[0];
    let (_, hs512_kid, hs512_key, _, _) = &keys[2];

    // onlyReturnExisting needs no binding.
    let existing = &keys[1].4;
    let found = existing
        .post_jwk(
            &existing.url("/acme/new-account"),
            Some(&json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{found:?}");
    assert_eq!(found.header("location"), existing.kid);
    // RFC 8555 §7.3.1: the key of an account gets that account back, without a binding.
    let again = existing
        .post_jwk(
            &existing.url("/acme/new-account"),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(again.header("location"), existing.kid);

    // Every bad binding: the problem type, and no account made.
    let reusable = create_hmac(&s, &["--reusable"]);
    let short_lived = create_hmac(&s, &["--expires", "2s"]);
    let revoked = create_hmac(&s, &[]);
    cli_json(&s, &["eab", "revoke", &revoked.0]);
    let other = RawClient::new(&s.root(), port);
    let h = |kid: &str, url: &str, alg: &str| json!({"alg": alg, "kid": kid, "url": url});
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut cases: Vec<(&str, MakeBinding<'_>, &str)> = vec![
        (
            "wrong MAC",
            Box::new(|c: &RawClient| {
                hmac_eab(
                    &h(&reusable.0, &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    hs256_key,
                )
            }),
            "unauthorized",
        ),
        (
            "wrong url",
            Box::new(|c: &RawClient| {
                let url = new_account_url.replace("new-account", "new-order");
                hmac_eab(
                    &h(&reusable.0, &url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    &reusable.1,
                )
            }),
            "malformed",
        ),
        (
            "payload is not the outer key",
            Box::new(|_: &RawClient| {
                hmac_eab(
                    &h(&reusable.0, &new_account_url, "HS256"),
                    &other.jwk,
                    mac_alg("HS256"),
                    &reusable.1,
                )
            }),
            "unauthorized",
        ),
        (
            "unknown kid",
            Box::new(|c: &RawClient| {
                hmac_eab(
                    &h("no-such-kid", &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    &reusable.1,
                )
            }),
            "unauthorized",
        ),
        (
            "single-use kid bound already",
            Box::new(|c: &RawClient| {
                hmac_eab(
                    &h(hs256_kid, &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    hs256_key,
                )
            }),
            "unauthorized",
        ),
        (
            "revoked kid",
            Box::new(|c: &RawClient| {
                hmac_eab(
                    &h(&revoked.0, &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    &revoked.1,
                )
            }),
            "unauthorized",
        ),
        (
            "expired kid",
            Box::new(|c: &RawClient| {
                hmac_eab(
                    &h(&short_lived.0, &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    &short_lived.1,
                )
            }),
            "unauthorized",
        ),
        (
            "HS256 MAC for an HS512 key",
            Box::new(|c: &RawClient| {
                hmac_eab(
                    &h(hs512_kid, &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    hs512_key,
                )
            }),
            "unauthorized",
        ),
        (
            "a nonce in the inner header",
            Box::new(|c: &RawClient| {
                let mut header = h(&reusable.0, &new_account_url, "HS256");
                header["nonce"] = json!("abc");
                hmac_eab(&header, &c.jwk, mac_alg("HS256"), &reusable.1)
            }),
            "malformed",
        ),
        (
            "a malformed inner JWS",
            Box::new(|_: &RawClient| json!({"protected": "e30", "payload": 7})),
            "malformed",
        ),
        (
            "a kid over 256 bytes",
            Box::new(|c: &RawClient| {
                let kid = "k".repeat(257);
                hmac_eab(
                    &h(&kid, &new_account_url, "HS256"),
                    &c.jwk,
                    mac_alg("HS256"),
                    &reusable.1,
                )
            }),
            "malformed",
        ),
    ];
    for (what, eab, expected) in cases.drain(..) {
        let mut client = RawClient::new(&s.root(), port);
        let binding = eab(&client);
        let answer = new_account(&mut client, Some(binding)).await;
        assert_eq!(problem(&answer), expected, "{what}: {answer:?}");
        assert!(client.kid.is_none(), "{what}");
    }
    // The reusable key itself works, more than once.
    for _ in 0..2 {
        let mut client = RawClient::new(&s.root(), port);
        let eab = hmac_eab(
            &h(&reusable.0, &new_account_url, "HS256"),
            &client.jwk,
            mac_alg("HS256"),
            &reusable.1,
        );
        assert_eq!(
            new_account(&mut client, Some(eab)).await.status,
            StatusCode::CREATED
        );
    }

    // Five accounts exist: one per algorithm and two on the reusable key, each bound.
    let accounts = cli_json(&s, &["account", "list"]);
    let accounts = accounts.as_array().unwrap();
    assert_eq!(accounts.len(), 5, "{accounts:?}");
    assert!(accounts.iter().all(|a| a["eab_kid"].is_string()));
    let shown = cli_json(&s, &["eab", "show", &reusable.0]);
    assert_eq!(shown["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(shown["kind"], "hmac");
    assert!(
        !shown.to_string().contains(&reusable.2),
        "eab show printed the key"
    );

    // No created HMAC key is in the state file or the server's log, in any encoding.
    server.kill();
    let state = std::fs::read(s.token.dir.join("state.redb")).unwrap();
    let log = std::fs::read(s.token.dir.join(format!("serve-{port}.log"))).unwrap();
    let all_keys = keys
        .iter()
        .map(|(_, _, key, text, _)| (key.clone(), text.clone()))
        .chain([reusable.clone(), short_lived.clone(), revoked.clone()].map(|(_, k, t)| (k, t)));
    for (key, text) in all_keys {
        for haystack in [&state, &log] {
            for needle in [
                key.as_slice(),
                text.as_bytes(),
                base64::engine::general_purpose::STANDARD
                    .encode(&key)
                    .as_bytes(),
            ] {
                assert!(
                    !haystack.windows(needle.len()).any(|w| w == needle),
                    "an HMAC key is in the clear on disk"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_eab_binds_only_with_the_registered_key() {
    let s = setup(EAB_REQUIRED).await;
    let port = free_port();
    let _server = s.start(port);
    let new_account_url = format!("https://127.0.0.1:{port}/acme/new-account");

    for (alg, pair_pem, signer) in [
        {
            let pair = ES256.generate_key_pair().unwrap();
            let signer: Box<dyn JwsSigner> =
                Box::new(ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap());
            ("ES256", pair.to_pem_public_key(), signer)
        },
        {
            let pair = EdDSA
                .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                .unwrap();
            let signer: Box<dyn JwsSigner> =
                Box::new(EdDSA.signer_from_jwk(&pair.to_jwk_private_key()).unwrap());
            ("EdDSA", pair.to_pem_public_key(), signer)
        },
    ] {
        let pem = s.token.dir.join(format!("eab-{alg}.pub.pem"));
        std::fs::write(&pem, &pair_pem).unwrap();
        let created = cli_json(
            &s,
            &[
                "eab",
                "create",
                "--profile",
                "default",
                "--public-key",
                pem.to_str().unwrap(),
            ],
        );
        assert_eq!(created["alg"], alg);
        assert!(created.get("hmac_key").is_none());
        let kid = created["kid"].as_str().unwrap();
        let header = json!({"alg": alg, "kid": kid, "url": new_account_url});

        // Signed by another key of the same type: refused.
        let mut client = RawClient::new(&s.root(), port);
        let stranger = ES256.generate_key_pair().unwrap();
        let stranger = ES256
            .signer_from_jwk(&stranger.to_jwk_private_key())
            .unwrap();
        let forged = if alg == "ES256" {
            signed_eab(&header, &client.jwk, &stranger)
        } else {
            let other = EdDSA
                .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                .unwrap();
            signed_eab(
                &header,
                &client.jwk,
                &EdDSA.signer_from_jwk(&other.to_jwk_private_key()).unwrap(),
            )
        };
        let answer = new_account(&mut client, Some(forged)).await;
        assert_eq!(problem(&answer), "unauthorized", "{alg}: {answer:?}");

        // Signed by the registered key: an account, bound to the kid.
        let eab = signed_eab(&header, &client.jwk, signer.as_ref());
        let answer = new_account(&mut client, Some(eab)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{alg}: {answer:?}");
        let id = client
            .kid
            .as_deref()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let account = cli_json(&s, &["account", "show", &id]);
        assert_eq!(account["eab_kid"], kid);

        // An HMAC over the same header is not a signature.
        let mut client = RawClient::new(&s.root(), port);
        let mut hs = header.clone();
        hs["alg"] = json!("HS256");
        let binding = hmac_eab(&hs, &client.jwk, mac_alg("HS256"), &[1; 32]);
        let answer = new_account(&mut client, Some(binding)).await;
        assert_eq!(problem(&answer), "unauthorized", "{answer:?}");
    }
    // A private key is never taken as a registration.
    let pair = ES256.generate_key_pair().unwrap();
    let private = s.token.dir.join("private.pem");
    std::fs::write(&private, pair.to_pem_private_key()).unwrap();
    let said = cli_refused(
        &s,
        &[
            "eab",
            "create",
            "--profile",
            "default",
            "--public-key",
            private.to_str().unwrap(),
        ],
    );
    assert!(said.contains("private key is never taken"), "{said}");
}

/// Orders `names` with `client`; the answer.
async fn new_order(client: &RawClient, names: &[&str]) -> Answer {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(_) => json!({"type": "ip", "value": n}),
            Err(_) => json!({"type": "dns", "value": n}),
        })
        .collect();
    client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({ "identifiers": identifiers })),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_names_limit_orders_and_prevalidated_names_issue_without_a_challenge() {
    let s = setup(EAB_REQUIRED).await;
    let port = free_port();
    let _server = s.start(port);
    let (kid, key, _) = create_hmac(
        &s,
        &[
            "--reusable",
            "--allowed-domains",
            "*.corp.test,10.0.0.0/8",
            "--prevalidated-domains",
            "ss1.corp.test",
        ],
    );
    let mut client = RawClient::new(&s.root(), port);
    let header = json!({"alg": "HS256", "kid": kid, "url": client.url("/acme/new-account")});
    let eab = hmac_eab(&header, &client.jwk, mac_alg("HS256"), &key);
    assert_eq!(
        new_account(&mut client, Some(eab)).await.status,
        StatusCode::CREATED
    );

    // Outside the registration: rejectedIdentifier, one subproblem per name.
    let refused = new_order(&client, &["a.corp.test", "evil.test", "127.0.0.1"]).await;
    assert_eq!(problem(&refused), "rejectedIdentifier", "{refused:?}");
    let subproblems = refused.json()["subproblems"].as_array().unwrap().clone();
    let named: Vec<&str> = subproblems
        .iter()
        .map(|p| p["identifier"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["evil.test", "127.0.0.1"]);

    // Inside, not pre-validated: a challenge as usual.
    let order = new_order(&client, &["a.corp.test"]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    assert_eq!(order.json()["status"], "pending");
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let answered = client.answer_http01(&authz, &s.tokens).await;
    assert_eq!(answered.json()["status"], "valid", "{answered:?}");

    // Pre-validated: ready at once, its authorization valid with no challenge, and issued.
    let order = new_order(&client, &["ss1.corp.test"]).await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    assert_eq!(order.json()["status"], "ready", "{order:?}");
    let order_url = order.header("location").unwrap();
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    assert_eq!(authz["status"], "valid");
    assert_eq!(authz["challenges"], json!([]));
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["ss1.corp.test".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key_pair).unwrap();
    let finalized = client
        .post(
            order.json()["finalize"].as_str().unwrap(),
            Some(&json!({ "csr": b64(csr.der()) })),
        )
        .await;
    assert_eq!(finalized.json()["status"], "valid", "{finalized:?}");
    let cert_url = client.post(&order_url, None).await.json()["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    let chain = client.post(&cert_url, None).await;
    assert_eq!(chain.status, StatusCode::OK);

    // Revoking the key stops new orders; the certificate stays valid.
    cli_json(&s, &["eab", "revoke", &kid]);
    let refused = new_order(&client, &["a.corp.test"]).await;
    assert_eq!(problem(&refused), "unauthorized", "{refused:?}");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    let id = client
        .kid
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let account = cli_json(&s, &["account", "show", &id]);
    let certificates = account["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 1);
    assert!(certificates[0]["revoked"].is_null());
    assert_eq!(account["orders"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_keys_and_accounts_through_the_socket_and_on_the_stopped_file() {
    let s = setup(EAB_REQUIRED).await;
    let port = free_port();
    let server = s.start(port);
    let (kid, key, _) = create_hmac(&s, &["--label", "branch office", "--expires", "30d"]);
    let mut client = RawClient::new(&s.root(), port);
    let header = json!({"alg": "HS256", "kid": kid, "url": client.url("/acme/new-account")});
    let eab = hmac_eab(&header, &client.jwk, mac_alg("HS256"), &key);
    assert_eq!(
        new_account(&mut client, Some(eab)).await.status,
        StatusCode::CREATED
    );
    let id = client
        .kid
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    let serving = [
        cli_json(&s, &["eab", "list"]),
        cli_json(&s, &["eab", "show", &kid]),
        cli_json(&s, &["account", "list"]),
        cli_json(&s, &["account", "show", &id]),
    ];
    assert_eq!(serving[1]["label"], "branch office");
    assert_eq!(serving[1]["state"], "used");
    assert_eq!(serving[3]["url"], client.kid.clone().unwrap());
    assert_eq!(serving[2][0]["id"], id);
    let human = s.token.hsm_acme(&s.config, &["account", "show", &id]);
    assert!(text(&human).contains(&kid), "{}", text(&human));

    // Stopped: the same commands on the state file give the same answers.
    server.kill();
    let stopped = [
        cli_json(&s, &["eab", "list"]),
        cli_json(&s, &["eab", "show", &kid]),
        cli_json(&s, &["account", "list"]),
        cli_json(&s, &["account", "show", &id]),
    ];
    // The server was started with --listen, so its URLs name that port, not the file's.
    let without_urls = |mut answers: [Value; 4]| {
        for account in answers[2].as_array_mut().unwrap() {
            account.as_object_mut().unwrap().remove("url");
        }
        answers[3].as_object_mut().unwrap().remove("url");
        answers
    };
    assert_eq!(without_urls(serving), without_urls(stopped));
    let made = create_hmac(&s, &["--alg", "HS384"]);
    assert_eq!(made.1.len(), 48);
    let deactivated = cli_json(&s, &["account", "deactivate", &id]);
    assert_eq!(deactivated["status"], "deactivated");
    assert!(cli_refused(&s, &["account", "deactivate", &id]).contains("already deactivated"));
    assert!(cli_refused(&s, &["eab", "show", "nope"]).contains("no EAB key"));
    assert!(cli_refused(&s, &["eab", "create", "--profile", "nope"]).contains("no ACME profile"));
    let said = cli_refused(
        &s,
        &[
            "eab",
            "create",
            "--profile",
            "default",
            "--allowed-domains",
            "a b.test",
        ],
    );
    assert!(said.contains("--allowed-domains"), "{said}");
    // --json refusals are JSON too.
    let out = s
        .token
        .hsm_acme(&s.config, &["eab", "revoke", "nope", "--json"]);
    assert!(!out.status.success());
    let refusal: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(refusal["ok"], false);

    // Served again: the deactivated account is refused, the key made offline binds.
    let _server = s.start(port);
    let order = new_order(&client, &["x.corp.test"]).await;
    assert_eq!(problem(&order), "unauthorized", "{order:?}");
    let mut fresh = RawClient::new(&s.root(), port);
    let header = json!({"alg": "HS384", "kid": made.0, "url": fresh.url("/acme/new-account")});
    let eab = hmac_eab(&header, &fresh.jwk, mac_alg("HS384"), &made.1);
    assert_eq!(
        new_account(&mut fresh, Some(eab)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_socket_refuses_other_users_and_other_files() {
    let s = setup(EAB_REQUIRED).await;
    // A file where the socket belongs stops the start, and is left alone.
    let socket = s.token.dir.join("admin.sock");
    std::fs::write(&socket, "not a socket").unwrap();
    let port = free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hsm-acme"))
        .env("SOFTHSM2_CONF", s.token.conf())
        .arg("--config")
        .arg(&s.config)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(&s.args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("is not a socket"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");
    std::fs::remove_file(&socket).unwrap();

    let _server: ServerProcess = s.start(port);
    if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .ok()
        != Some(0)
    {
        panic!("this test needs root, to connect as another user");
    }
    // Loosen the file's mode, as a careless operator might: the peer check still holds.
    use std::os::unix::fs::PermissionsExt;
    for path in [&s.token.dir, &socket] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(&s.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(env!("CARGO_BIN_EXE_hsm-acme"))
            .uid(65534)
            .gid(65534)
            .env("SOFTHSM2_CONF", s.token.conf())
            .arg("--config")
            .arg(&s.config)
            .args(["eab", "list"])
            .output()
            .unwrap()
    };
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("uid 65534 may not use the admin socket"),
        "{}",
        text(&out)
    );
    let log = std::fs::read_to_string(s.token.dir.join(format!("serve-{port}.log"))).unwrap();
    assert!(
        log.contains("connection from a user other than root"),
        "{log}"
    );
    // Root still gets in.
    cli_json(&s, &["eab", "list"]);
}
