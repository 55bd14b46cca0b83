//! Several ACME endpoints on one server over real HTTPS against a SoftHSM token: each at
//! `/acme/<name>/directory` with its own issuing CA and rules, the default one also at its
//! original `/directory`; accounts belong to the endpoint they were made at; a disabled
//! endpoint refuses everything with a problem that says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::acme::{new_account, order, setup};
use common::net::free_port;
use common::raw::RawClient;
use hyper::{Method, StatusCode};
use instant_acme::RetryPolicy;
use serde_json::{Value, json};
use x509_cert::Certificate;

const ENDPOINTS: &str = r#"
[[ca]]
name = "issuing-b"
key_label = "issuing-b-key"
key_type = "ecdsa-p256"
subject = "CN=Test Issuing B,O=hsm-acme tests"
certificate = "issuing-b.pem"
issuer = "root"
path_len = 0

[[endpoint]]
name = "xroad"
ca = "issuing-b"
validity_days = 10
allowed_domains = ["xroad.test"]
challenges = ["http-01"]
order_lifetime_hours = 2

[[endpoint]]
name = "off"
ca = "issuing"
enabled = false
"#;

/// Issues a certificate for `name` through the directory at `directory`; returns the leaf.
async fn issue(s: &common::acme::Setup, directory: &str, name: &str) -> Certificate {
    let (account, _) = new_account(&s.root(), directory).await;
    let (mut order, failures) = order(&account, &s.tokens, &[name], str::to_owned).await;
    assert!(failures.is_empty(), "{failures:?}");
    order.poll_ready(&RetryPolicy::default()).await.unwrap();
    order.finalize().await.unwrap();
    let chain = order
        .poll_certificate(&RetryPolicy::default())
        .await
        .unwrap();
    Certificate::load_pem_chain(chain.as_bytes())
        .unwrap()
        .remove(0)
}

fn lifetime_days(cert: &Certificate) -> u64 {
    let validity = cert.tbs_certificate().validity();
    (validity.not_after.to_unix_duration() - validity.not_before.to_unix_duration()).as_secs()
        / 86_400
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_issue_by_their_own_rules_and_keep_their_accounts_apart() {
    let s = setup(ENDPOINTS).await;
    // The operator sees the endpoints the configuration defines.
    let out = s.token.hsm_acme(&s.config, &["endpoint", "list", "--json"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Vec<(String, bool, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["enabled"].as_bool().unwrap(),
                e["ca"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("default".to_owned(), true, "issuing".to_owned()),
            ("xroad".to_owned(), true, "issuing-b".to_owned()),
            ("off".to_owned(), false, "issuing".to_owned()),
        ]
    );
    let out = s.token.hsm_acme(&s.config, &["endpoint", "show", "xroad"]);
    let shown = common::text(&out);
    assert!(
        shown.contains("issuing-b") && shown.contains("http-01"),
        "{shown}"
    );
    let out = s.token.hsm_acme(&s.config, &["endpoint", "show", "nope"]);
    assert!(!out.status.success());
    assert!(common::text(&out).contains("default, xroad, off"));

    let port = free_port();
    let _server = s.start(port);
    let raw = RawClient::new(&s.root(), port);
    let get = async |path: &str| raw.send(Method::GET, &raw.url(path), None).await;

    // Each endpoint's directory names its own URLs; the default one keeps its original ones.
    let directory = get("/directory").await;
    assert_eq!(directory.status, StatusCode::OK);
    assert_eq!(
        directory.json()["newOrder"],
        raw.url("/acme/new-order").as_str()
    );
    let default_named = get("/acme/default/directory").await;
    assert_eq!(
        default_named.json()["newOrder"],
        raw.url("/acme/default/new-order").as_str()
    );
    let xroad = get("/acme/xroad/directory").await;
    assert_eq!(xroad.status, StatusCode::OK);
    let xroad_dir: Value = xroad.json();
    for resource in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
    ] {
        assert!(
            xroad_dir[resource]
                .as_str()
                .unwrap()
                .starts_with(&raw.url("/acme/xroad/")),
            "{resource}: {xroad_dir}"
        );
    }

    // A disabled endpoint says so on every request; an unknown one does not exist.
    for path in ["/acme/off/directory", "/acme/off/new-nonce"] {
        let off = get(path).await;
        assert_eq!(off.status, StatusCode::FORBIDDEN, "{path}: {off:?}");
        assert_eq!(
            off.json()["type"],
            "urn:ietf:params:acme:error:unauthorized"
        );
        assert!(off.json()["detail"].as_str().unwrap().contains("disabled"));
    }
    let unknown = get("/acme/nope/directory").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");
    assert_eq!(
        unknown.json()["type"],
        "urn:ietf:params:acme:error:malformed"
    );

    // Each endpoint issues with its CA and its validity.
    let default_leaf = issue(&s, &s_url(port, "/directory"), "www.default.test").await;
    let xroad_leaf = issue(&s, &s_url(port, "/acme/xroad/directory"), "ss1.xroad.test").await;
    let legacy_named = issue(
        &s,
        &s_url(port, "/acme/default/directory"),
        "b.default.test",
    )
    .await;
    let issuer_cn = |cert: &Certificate| cert.tbs_certificate().issuer().to_string();
    assert!(
        issuer_cn(&default_leaf).contains("CN=Test Issuing,"),
        "{}",
        issuer_cn(&default_leaf)
    );
    assert!(issuer_cn(&legacy_named).contains("CN=Test Issuing,"));
    assert!(
        issuer_cn(&xroad_leaf).contains("CN=Test Issuing B"),
        "{}",
        issuer_cn(&xroad_leaf)
    );
    assert_eq!(lifetime_days(&default_leaf), 30);
    assert_eq!(lifetime_days(&xroad_leaf), 10);

    // The xroad endpoint's allow-list holds there only.
    let mut client = RawClient::new(&s.root(), port);
    client.register_at("/acme/xroad").await;
    let refused = client
        .post(
            &client.url("/acme/xroad/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "www.default.test"}]})),
        )
        .await;
    assert_eq!(
        refused.json()["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier",
        "{refused:?}"
    );

    // It offers http-01 alone, so a wildcard (dns-01 only) is refused there.
    let order = client
        .post(
            &client.url("/acme/xroad/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "ss2.xroad.test"}]})),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    // Its orders live two hours.
    let expires = order.json()["expires"].as_str().unwrap().to_owned();
    let expires =
        time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(110) && left <= time::Duration::minutes(120),
        "{left}"
    );
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let kinds: Vec<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["http-01"]);
    let wildcard = client
        .post(
            &client.url("/acme/xroad/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "*.xroad.test"}]})),
        )
        .await;
    assert_eq!(
        wildcard.json()["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier",
        "{wildcard:?}"
    );
    assert!(
        wildcard.json()["detail"]
            .as_str()
            .unwrap()
            .contains("http-01")
    );

    // Accounts belong to their endpoint: the default endpoint does not know this one ...
    let id = client.kid.clone().unwrap();
    let id = id.rsplit('/').next().unwrap().to_owned();
    client.kid = Some(client.url(&format!("/acme/acct/{id}")));
    let unknown = client
        .post(
            &client.url("/acme/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "www.default.test"}]})),
        )
        .await;
    assert_eq!(
        unknown.json()["type"],
        "urn:ietf:params:acme:error:accountDoesNotExist",
        "{unknown:?}"
    );
    // ... and the same key opens no second account there.
    client.kid = None;
    let again = client
        .post(
            &client.url("/acme/new-account"),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{again:?}");
    assert!(
        again.json()["detail"]
            .as_str()
            .unwrap()
            .contains("another ACME endpoint"),
        "{again:?}"
    );
}

fn s_url(port: u16, path: &str) -> String {
    format!("https://127.0.0.1:{port}{path}")
}

const PROFILES: &str = r#"
[[endpoint]]
name = "xroad"
ca = "issuing"
certificate_profiles = ["xroad-auth", "tls"]

[[certificate_profile]]
name = "xroad-auth"
description = "X-Road security server authentication certificate"
validity_days = 20
extended_key_usage = ["clientAuth", "serverAuth"]
key_usage = ["digitalSignature", "keyEncipherment"]
policy_oids = []
subject_attributes = ["C", "O", "serialNumber", "CN"]
subject_patterns = { C = "[A-Z]{2}", serialNumber = "[A-Z]{2}/[A-Z]+/[0-9]+" }
subject_required = ["C", "O", "serialNumber", "CN"]
crl_url = "http://crl.xroad.test/auth.crl"
ca_issuers_url = "http://crl.xroad.test/auth-ca.crt"

[[certificate_profile]]
name = "tls"
description = "TLS server certificate"
validity_days = 7
"#;

/// A CSR with `subject` and no subjectAltName (the name in the CN alone), as X-Road
/// security servers make them; `extra` adds an OU.
fn xroad_csr(cn: &str, ou: bool) -> String {
    use base64::Engine;
    use rcgen::{DnType, DnValue};
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("EE".try_into().unwrap()),
    );
    dn.push(DnType::OrganizationName, "Test Org");
    if ou {
        dn.push(DnType::OrganizationalUnitName, "Unit");
    }
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString("EE/GOV/1234".try_into().unwrap()),
    );
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(csr.der())
}

/// An order for `name` under `profile`, its authorization answered; returns the order.
async fn ready_order(
    client: &RawClient,
    tokens: &common::net::Tokens,
    name: &str,
    profile: Option<&str>,
) -> Value {
    let mut payload = json!({"identifiers": [{"type": "dns", "value": name}]});
    if let Some(profile) = profile {
        payload["profile"] = json!(profile);
    }
    let order = client
        .post(&client.url("/acme/xroad/new-order"), Some(&payload))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    let url = order.header("location").unwrap();
    let authz = client
        .post(order.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    client.answer_http01(&authz, tokens).await;
    let mut body = order.json();
    body["url"] = json!(url);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_profiles_are_offered_chosen_and_x_road_csrs_are_issued_as_asked() {
    let s = setup(PROFILES).await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);

    // draft-ietf-acme-profiles: the directory lists the endpoint's profiles.
    let directory = client
        .send(Method::GET, &client.url("/acme/xroad/directory"), None)
        .await
        .json();
    assert_eq!(
        directory["meta"]["profiles"],
        json!({"xroad-auth": "X-Road security server authentication certificate",
               "tls": "TLS server certificate"})
    );
    let default_dir = client
        .send(Method::GET, &client.url("/directory"), None)
        .await
        .json();
    assert!(
        default_dir["meta"].get("profiles").is_none(),
        "{default_dir}"
    );

    client.register_at("/acme/xroad").await;

    // An unknown profile is invalidProfile.
    let unknown = client
        .post(
            &client.url("/acme/xroad/new-order"),
            Some(
                &json!({"identifiers": [{"type": "dns", "value": "ss1.xroad.test"}],
                         "profile": "nope"}),
            ),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.json()["type"],
        "urn:ietf:params:acme:error:invalidProfile"
    );
    assert!(
        unknown.json()["detail"]
            .as_str()
            .unwrap()
            .contains("xroad-auth")
    );

    // A CSR with an attribute the profile does not take is badCSR, and the order stays ready.
    let order = ready_order(&client, &s.tokens, "ss0.xroad.test", Some("xroad-auth")).await;
    assert_eq!(order["profile"], "xroad-auth");
    let refused = client
        .post(
            order["finalize"].as_str().unwrap(),
            Some(&json!({"csr": xroad_csr("ss0.xroad.test", true)})),
        )
        .await;
    assert_eq!(refused.json()["type"], "urn:ietf:params:acme:error:badCSR");
    assert!(
        refused.json()["detail"].as_str().unwrap().contains("OU"),
        "{refused:?}"
    );
    let still = client
        .post(order["url"].as_str().unwrap(), None)
        .await
        .json();
    assert_eq!(still["status"], "ready");

    // The X-Road CSR (no SAN, the name in the CN) is issued with its subject; the order
    // without a profile gets the endpoint's first.
    let order = ready_order(&client, &s.tokens, "ss1.xroad.test", None).await;
    assert_eq!(order["profile"], "xroad-auth");
    let finalized = client
        .post(
            order["finalize"].as_str().unwrap(),
            Some(&json!({"csr": xroad_csr("ss1.xroad.test", false)})),
        )
        .await;
    assert_eq!(finalized.status, StatusCode::OK, "{finalized:?}");
    let mut state = finalized.json();
    for _ in 0..50 {
        if state["status"] == "valid" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        state = client
            .post(order["url"].as_str().unwrap(), None)
            .await
            .json();
    }
    assert_eq!(state["status"], "valid", "{state}");
    let chain = client
        .post(state["certificate"].as_str().unwrap(), None)
        .await;
    let leaf = Certificate::load_pem_chain(&chain.body).unwrap().remove(0);
    let tbs = leaf.tbs_certificate();
    assert_eq!(
        tbs.subject().to_string(),
        "CN=ss1.xroad.test,SERIALNUMBER=EE/GOV/1234,O=Test Org,C=EE"
    );
    assert_eq!(lifetime_days(&leaf), 20);
    let (_, eku) = tbs
        .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .unwrap()
        .unwrap();
    assert_eq!(
        eku.0,
        [
            const_oid::db::rfc5280::ID_KP_CLIENT_AUTH,
            const_oid::db::rfc5280::ID_KP_SERVER_AUTH
        ]
    );
    let (_, san) = tbs
        .get_extension::<x509_cert::ext::pkix::SubjectAltName>()
        .unwrap()
        .unwrap();
    assert_eq!(san.0.len(), 1, "the CN's name is in the SAN too");
    assert!(
        tbs.get_extension::<x509_cert::ext::pkix::CertificatePolicies>()
            .unwrap()
            .is_none()
    );
    // The profile's own publication URLs, not the issuer's.
    let der = der::Encode::to_der(&leaf).unwrap();
    let text = String::from_utf8_lossy(&der);
    assert!(text.contains("http://crl.xroad.test/auth.crl"));
    assert!(text.contains("http://crl.xroad.test/auth-ca.crt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_single_active_certificate_a_new_certificate_supersedes_the_earlier_one() {
    use instant_acme::{RevocationReason, RevocationRequest};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let s = setup(
        "\n[[endpoint]]\nname = \"single\"\nca = \"issuing\"\nsingle_active_certificate = true\n",
    )
    .await;
    let port = free_port();
    let _server = s.start(port);
    let directory = s_url(port, "/acme/single/directory");
    let (account, _) = new_account(&s.root(), &directory).await;
    let issue = async |names: &[&str]| -> CertificateDer<'static> {
        let (mut order, failures) = order(&account, &s.tokens, names, str::to_owned).await;
        assert!(failures.is_empty(), "{failures:?}");
        order.poll_ready(&RetryPolicy::default()).await.unwrap();
        order.finalize().await.unwrap();
        let chain = order
            .poll_certificate(&RetryPolicy::default())
            .await
            .unwrap();
        CertificateDer::from_pem_slice(chain.as_bytes()).unwrap()
    };
    let first = issue(&["a.single.test"]).await;
    let other = issue(&["a.single.test", "b.single.test"]).await;
    let second = issue(&["a.single.test"]).await;
    let revoke = async |cert: &CertificateDer<'static>| {
        account
            .revoke(&RevocationRequest {
                certificate: cert,
                reason: Some(RevocationReason::Unspecified),
            })
            .await
    };
    // The first was revoked when the second was issued; the one for another set of names
    // and the second itself were not.
    let again = revoke(&first).await.unwrap_err();
    assert!(format!("{again:?}").contains("alreadyRevoked"), "{again:?}");
    revoke(&other).await.unwrap();
    revoke(&second).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_terms_change_accounts_agree_again_or_open_a_new_one() {
    let terms = |version: &str| {
        format!(
            "\n[[endpoint]]\nname = \"terms\"\nca = \"issuing\"\n\
             terms_of_service = \"https://ca.test/tos\"\nterms_of_service_version = \"{version}\"\n\
             \n[[endpoint]]\nname = \"strict\"\nca = \"issuing\"\n\
             terms_of_service = \"https://ca.test/tos\"\nterms_of_service_version = \"{version}\"\n\
             terms_of_service_change = \"new-account\"\n"
        )
    };
    let s = setup(&terms("v1")).await;
    let port = free_port();
    let server = s.start(port);
    let order_payload = json!({"identifiers": [{"type": "dns", "value": "t.terms.test"}]});
    let mut clients = Vec::new();
    for endpoint in ["terms", "strict"] {
        let mut client = RawClient::new(&s.root(), port);
        client.register_at(&format!("/acme/{endpoint}")).await;
        let order = client
            .post(
                &client.url(&format!("/acme/{endpoint}/new-order")),
                Some(&order_payload),
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
        clients.push((endpoint, client));
    }

    // The terms change (version v2): every account is told, with a link to them.
    server.kill();
    let config = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("\"v1\"", "\"v2\"");
    std::fs::write(&s.config, config).unwrap();
    let _server = s.start(port);
    for (endpoint, client) in &clients {
        let refused = client
            .post(
                &client.url(&format!("/acme/{endpoint}/new-order")),
                Some(&order_payload),
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
        let problem = refused.json();
        assert_eq!(
            problem["type"],
            "urn:ietf:params:acme:error:userActionRequired"
        );
        assert_eq!(problem["instance"], "https://ca.test/tos");
        assert!(
            refused
                .links("terms-of-service")
                .contains(&"https://ca.test/tos".to_owned()),
            "{refused:?}"
        );
    }

    // "agree-again": the account agrees, and works again.
    let (_, agreeing) = &clients[0];
    let account_url = agreeing.kid.clone().unwrap();
    let agreed = agreeing
        .post(&account_url, Some(&json!({"termsOfServiceAgreed": true})))
        .await;
    assert_eq!(agreed.status, StatusCode::OK, "{agreed:?}");
    let order = agreeing
        .post(&agreeing.url("/acme/terms/new-order"), Some(&order_payload))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");

    // "new-account": agreeing on the old account is refused; a new account works.
    let (_, strict) = &clients[1];
    let refused = strict
        .post(
            &strict.kid.clone().unwrap(),
            Some(&json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("new account")
    );
    let mut fresh = RawClient::new(&s.root(), port);
    fresh.register_at("/acme/strict").await;
    let order = fresh
        .post(&fresh.url("/acme/strict/new-order"), Some(&order_payload))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifier_allow_and_deny_lists_hold_per_endpoint() {
    let s = setup(
        r#"
[[endpoint]]
name = "lists"
ca = "issuing"
identifiers_per_order = 1
retry_after_seconds = 7
identifier_allow = [".corp.test", 're:ss[0-9]+\.xroad\.test', "127.0.0.0/8"]
identifier_deny = ["bad.corp.test"]
"#,
    )
    .await;
    let port = free_port();
    let _server = s.start(port);
    let mut client = RawClient::new(&s.root(), port);
    client.register_at("/acme/lists").await;
    let new_order =
        |kind: &str, value: &str| json!({"identifiers": [{"type": kind, "value": value}]});
    for (kind, value) in [
        ("dns", "a.corp.test"),
        ("dns", "corp.test"),
        ("dns", "ss5.xroad.test"),
        ("ip", "127.0.0.1"),
    ] {
        let order = client
            .post(
                &client.url("/acme/lists/new-order"),
                Some(&new_order(kind, value)),
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{value}: {order:?}");
    }
    for (value, why) in [
        ("bad.corp.test", "deny list"),
        ("other.test", "allow list"),
        ("ss5.xroad.test.other", "allow list"),
    ] {
        let refused = client
            .post(
                &client.url("/acme/lists/new-order"),
                Some(&new_order("dns", value)),
            )
            .await;
        assert_eq!(
            refused.json()["type"],
            "urn:ietf:params:acme:error:rejectedIdentifier",
            "{value}: {refused:?}"
        );
        assert!(
            refused.json()["detail"].as_str().unwrap().contains(why),
            "{value}: {refused:?}"
        );
    }
    // One identifier per order here.
    let two = client
        .post(
            &client.url("/acme/lists/new-order"),
            Some(
                &json!({"identifiers": [{"type": "dns", "value": "x.corp.test"},
                                         {"type": "dns", "value": "y.corp.test"}]}),
            ),
        )
        .await;
    assert_eq!(
        two.json()["type"],
        "urn:ietf:params:acme:error:rejectedIdentifier",
        "{two:?}"
    );
    let shown = common::text(
        &s.token
            .hsm_acme(&s.config, &["endpoint", "show", "lists", "--json"]),
    );
    let shown: Value = serde_json::from_str(shown.lines().next().unwrap()).unwrap();
    assert_eq!(shown["retry_after_seconds"], 7, "{shown}");
    assert_eq!(shown["identifiers_per_order"], 1, "{shown}");

    // The default endpoint has no lists.
    let mut other = RawClient::new(&s.root(), port);
    other.register().await;
    let order = other
        .post(
            &other.url("/acme/new-order"),
            Some(&new_order("dns", "other.test")),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_accounts_wait_for_the_operators_approval_where_the_endpoint_says_so() {
    let s = setup(
        "\n[[endpoint]]\nname = \"approved\"\nca = \"issuing\"\napprove_accounts = true\n\
         approval_hours = 24\n",
    )
    .await;
    let port = free_port();
    let _server = s.start(port);
    let cli = |args: &[&str]| {
        let out = s.token.hsm_acme(&s.config, args);
        (out.status.success(), common::text(&out))
    };
    let order_payload = json!({"identifiers": [{"type": "dns", "value": "a.approved.test"}]});
    let mut accounts = Vec::new();
    for _ in 0..2 {
        let mut client = RawClient::new(&s.root(), port);
        client.register_at("/acme/approved").await;
        // Until the operator decides, orders are refused with a problem that says why.
        let waiting = client
            .post(
                &client.url("/acme/approved/new-order"),
                Some(&order_payload),
            )
            .await;
        assert_eq!(waiting.status, StatusCode::FORBIDDEN, "{waiting:?}");
        assert!(
            waiting.json()["detail"]
                .as_str()
                .unwrap()
                .contains("awaits approval"),
            "{waiting:?}"
        );
        let id = client
            .kid
            .clone()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        accounts.push((client, id));
    }
    let (ok, listed) = cli(&["account", "list", "--json"]);
    assert!(ok, "{listed}");
    let listed: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    let waiting = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["awaits_approval_until"].is_null())
        .count();
    assert_eq!(waiting, 2, "{listed}");

    // Approved: it works. Rejected: it is deactivated.
    let (approved, approved_id) = &accounts[0];
    let (ok, said) = cli(&["account", "approve", approved_id]);
    assert!(ok && said.contains("approved"), "{said}");
    let order = approved
        .post(
            &approved.url("/acme/approved/new-order"),
            Some(&order_payload),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
    let (rejected, rejected_id) = &accounts[1];
    let (ok, said) = cli(&["account", "reject", rejected_id]);
    assert!(ok && said.contains("rejected"), "{said}");
    let refused = rejected
        .post(
            &rejected.url("/acme/approved/new-order"),
            Some(&order_payload),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    // Approving an account that awaits nothing is a clear error.
    let (ok, said) = cli(&["account", "approve", approved_id]);
    assert!(!ok && said.contains("does not await approval"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_endpoints_and_a_broken_file_leaves_them_as_they_were() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let s = setup("\n[[endpoint]]\nname = \"one\"\nca = \"issuing\"\n").await;
    let port = free_port();
    let server = s.start(port);
    let raw = RawClient::new(&s.root(), port);
    let status = async |path: &str| raw.send(Method::GET, &raw.url(path), None).await.status;
    assert_eq!(status("/acme/one/directory").await, StatusCode::OK);
    assert_eq!(status("/acme/two/directory").await, StatusCode::NOT_FOUND);

    // A connection opened before the reload, kept alive across it.
    let mut open = common::net::connect(&s.root(), port, b"http/1.1")
        .await
        .unwrap();
    let request = format!(
        "GET /directory HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: keep-alive\r\n\r\n"
    );
    let mut ask = async || {
        open.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 16_384];
        let n = open.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200")
    };
    assert!(ask().await);

    let original = std::fs::read_to_string(&s.config).unwrap();
    // Endpoint "two" added, "one" disabled.
    std::fs::write(
        &s.config,
        original.replace(
            "name = \"one\"\nca = \"issuing\"\n",
            "name = \"one\"\nca = \"issuing\"\nenabled = false\n\n[[endpoint]]\nname = \"two\"\nca = \"issuing\"\n",
        ),
    )
    .unwrap();
    // check-config tells what a reload would change, asking the running server.
    let preview = common::text(&s.token.hsm_acme(&s.config, &["check-config"]));
    assert!(
        preview.contains("a reload would apply: endpoint \"two\" added")
            && preview.contains("a reload would apply: endpoint \"one\" changed"),
        "{preview}"
    );
    server.hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while status("/acme/two/directory").await != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload did not happen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status("/acme/one/directory").await, StatusCode::FORBIDDEN);
    assert!(
        ask().await,
        "the connection from before the reload was dropped"
    );
    let preview = common::text(&s.token.hsm_acme(&s.config, &["check-config"]));
    assert!(
        preview.contains("a reload would apply: no change"),
        "{preview}"
    );
    // The admin socket knows the new endpoint: EAB keys can be made for it.
    let eab_key = s.token.dir.join("eab.pub.pem");
    std::fs::write(
        &eab_key,
        rcgen::KeyPair::generate().unwrap().public_key_pem(),
    )
    .unwrap();
    let out = s.token.hsm_acme(
        &s.config,
        &[
            "eab",
            "create",
            "--profile",
            "two",
            "--public-key",
            eab_key.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", common::text(&out));

    // A broken file is refused with a log line; the endpoints stay as they were.
    std::fs::write(&s.config, format!("{original}\n[[endpoint]]\nname = 5\n")).unwrap();
    server.hangup();
    let log_path = s.config.with_file_name(format!("serve-{port}.log"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("configuration reload refused") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status("/acme/two/directory").await, StatusCode::OK);
    assert_eq!(status("/acme/one/directory").await, StatusCode::FORBIDDEN);
    assert!(ask().await);
}

/// A client CA (PEM) and a client certificate it issued, with its key.
fn client_pki(name: &str) -> (String, rustls::pki_types::CertificateDer<'static>, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} client CA"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![format!("{name}.clients.test")]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.der().clone(), key.serialize_der())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_endpoint_serves_only_clients_with_a_certificate_from_its_ca() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let s = setup(
        "\n[[endpoint]]\nname = \"mtls\"\nca = \"issuing\"\nclient_ca = \"client-ca.pem\"\n\
         \n[[endpoint]]\nname = \"other\"\nca = \"issuing\"\nclient_ca = \"other-ca.pem\"\n",
    )
    .await;
    let (ca_pem, cert, key) = client_pki("good");
    std::fs::write(s.token.dir.join("client-ca.pem"), ca_pem).unwrap();
    let (other_pem, other_cert, other_key) = client_pki("other");
    std::fs::write(s.token.dir.join("other-ca.pem"), other_pem).unwrap();
    let port = free_port();
    let _server = s.start(port);
    let client = |c: &rustls::pki_types::CertificateDer<'static>, k: &[u8]| {
        RawClient::with_client_certificate(
            &s.root(),
            port,
            Some((
                vec![c.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.to_vec())),
            )),
        )
    };
    let with_cert = client(&cert, &key);
    let with_other = client(&other_cert, &other_key);
    let without = RawClient::new(&s.root(), port);
    let get = async |c: &RawClient, path: &str| c.send(Method::GET, &c.url(path), None).await;

    assert_eq!(
        get(&with_cert, "/acme/mtls/directory").await.status,
        StatusCode::OK
    );
    let refused = get(&without, "/acme/mtls/directory").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(
        refused.json()["type"],
        "urn:ietf:params:acme:error:unauthorized"
    );
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("TLS client certificate"),
        "{refused:?}"
    );
    // A certificate from another endpoint's CA does not open this one.
    let wrong = get(&with_other, "/acme/mtls/directory").await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{wrong:?}");
    assert_eq!(
        get(&with_other, "/acme/other/directory").await.status,
        StatusCode::OK
    );
    // Endpoints without client_ca take every client, with a certificate or without.
    assert_eq!(get(&without, "/directory").await.status, StatusCode::OK);
    assert_eq!(get(&with_cert, "/directory").await.status, StatusCode::OK);

    // A whole flow with the client certificate.
    let mut account = client(&cert, &key);
    account.register_at("/acme/mtls").await;
    let order = account
        .post(
            &account.url("/acme/mtls/new-order"),
            Some(&json!({"identifiers": [{"type": "dns", "value": "m.mtls.test"}]})),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_validates_through_its_own_resolver() {
    // Nothing answers DNS on 127.0.0.1:9, the endpoint's own resolver: its validations
    // fail, while the default endpoint's, through the server's resolver, succeed.
    let dead = free_port();
    let s = setup(&format!(
        "\n[[endpoint]]\nname = \"dns\"\nca = \"issuing\"\ndns_resolver = \"127.0.0.1:{dead}\"\n"
    ))
    .await;
    let port = free_port();
    let _server = s.start(port);
    let (default_account, _) = new_account(&s.root(), &s_url(port, "/directory")).await;
    let (mut good, _) = order(&default_account, &s.tokens, &["ok.dns.test"], str::to_owned).await;
    let status = good.poll_ready(&RetryPolicy::default()).await.unwrap();
    assert_eq!(status, instant_acme::OrderStatus::Ready);
    let (dns_account, _) = new_account(&s.root(), &s_url(port, "/acme/dns/directory")).await;
    let (mut bad, _) = order(&dns_account, &s.tokens, &["ok.dns.test"], str::to_owned).await;
    let status = bad.poll_ready(&RetryPolicy::default()).await;
    assert!(
        matches!(status, Ok(instant_acme::OrderStatus::Invalid) | Err(_)),
        "{status:?}"
    );
    let state = bad.refresh().await.unwrap();
    assert_eq!(
        state.status,
        instant_acme::OrderStatus::Invalid,
        "{state:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rollover_the_account_waits_for_approval_where_the_endpoint_says_so() {
    use instant_acme::{Identifier, NewOrder};
    let s = setup(
        "\n[[endpoint]]\nname = \"rollover\"\nca = \"issuing\"\napprove_key_rollovers = true\n",
    )
    .await;
    let port = free_port();
    let _server = s.start(port);
    let (mut account, _) = new_account(&s.root(), &s_url(port, "/acme/rollover/directory")).await;
    let names = [Identifier::Dns("r.rollover.test".into())];
    account.new_order(&NewOrder::new(&names)).await.unwrap();
    let _new_credentials = account.update_key().await.unwrap();
    let Err(waiting) = account.new_order(&NewOrder::new(&names)).await else {
        panic!("an order was taken with a rolled-over key before approval");
    };
    assert!(
        format!("{waiting:?}").contains("awaits approval"),
        "{waiting:?}"
    );
    let id = account.id().rsplit('/').next().unwrap().to_owned();
    let out = s.token.hsm_acme(&s.config, &["account", "approve", &id]);
    assert!(out.status.success(), "{}", common::text(&out));
    account.new_order(&NewOrder::new(&names)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_can_turn_mtls_on_for_an_endpoint() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let s = setup("\n[[endpoint]]\nname = \"later\"\nca = \"issuing\"\n").await;
    let (ca_pem, cert, key) = client_pki("later");
    std::fs::write(s.token.dir.join("later-ca.pem"), ca_pem).unwrap();
    let port = free_port();
    let server = s.start(port);
    let with_cert = RawClient::with_client_certificate(
        &s.root(),
        port,
        Some((
            vec![cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )),
    );
    let without = RawClient::new(&s.root(), port);
    let get =
        async |c: &RawClient, path: &str| c.send(Method::GET, &c.url(path), None).await.status;
    assert_eq!(get(&without, "/acme/later/directory").await, StatusCode::OK);

    let config = std::fs::read_to_string(&s.config).unwrap().replace(
        "name = \"later\"\nca = \"issuing\"\n",
        "name = \"later\"\nca = \"issuing\"\nclient_ca = \"later-ca.pem\"\n",
    );
    std::fs::write(&s.config, config).unwrap();
    server.hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while get(&without, "/acme/later/directory").await != StatusCode::FORBIDDEN {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload did not happen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // rustls now asks for the certificate, so the one the client has opens the endpoint.
    assert_eq!(
        get(&with_cert, "/acme/later/directory").await,
        StatusCode::OK
    );
    assert_eq!(get(&without, "/directory").await, StatusCode::OK);
}

/// An HTTP server on loopback that redirects every request to the same path on `to`.
async fn redirector(to: u16) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = format!(
                    "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{to}{path}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_follows_http01_redirects_only_to_its_own_ports() {
    let mut s = setup("").await;
    // The responder's own port is where the redirect leads; validation first connects to
    // the redirector.
    let responder_port: u16 = s.args[1].parse().unwrap();
    let redirecting = redirector(responder_port).await;
    s.args[1] = redirecting.to_string();
    let config = std::fs::read_to_string(&s.config).unwrap()
        + &format!(
            "\n[[endpoint]]\nname = \"redir\"\nca = \"issuing\"\nredirect_ports = [{responder_port}]\n"
        );
    std::fs::write(&s.config, config).unwrap();
    let port = free_port();
    let _server = s.start(port);

    // The default endpoint follows redirects to ports 80 and 443 only: refused.
    let (default_account, _) = new_account(&s.root(), &s_url(port, "/directory")).await;
    let (mut refused, _) = order(
        &default_account,
        &s.tokens,
        &["a.redir.test"],
        str::to_owned,
    )
    .await;
    let _ = refused.poll_ready(&RetryPolicy::default()).await;
    assert_eq!(
        refused.refresh().await.unwrap().status,
        instant_acme::OrderStatus::Invalid
    );
    // The endpoint that allows the responder's port validates through the redirect.
    let (account, _) = new_account(&s.root(), &s_url(port, "/acme/redir/directory")).await;
    let (mut followed, failures) =
        order(&account, &s.tokens, &["b.redir.test"], str::to_owned).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(
        followed.poll_ready(&RetryPolicy::default()).await.unwrap(),
        instant_acme::OrderStatus::Ready
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_validates_dnssec_refuses_unsigned_answers() {
    // The mock DNS signs nothing: an endpoint that validates DNSSEC cannot trust its answer
    // for the name, while the default endpoint (no DNSSEC) validates through it.
    let s = setup("\n[[endpoint]]\nname = \"signed\"\nca = \"issuing\"\ndnssec = true\n").await;
    let port = free_port();
    let _server = s.start(port);
    let (default_account, _) = new_account(&s.root(), &s_url(port, "/directory")).await;
    let (mut good, _) = order(
        &default_account,
        &s.tokens,
        &["u.dnssec.test"],
        str::to_owned,
    )
    .await;
    assert_eq!(
        good.poll_ready(&RetryPolicy::default()).await.unwrap(),
        instant_acme::OrderStatus::Ready
    );
    let (account, _) = new_account(&s.root(), &s_url(port, "/acme/signed/directory")).await;
    let (mut bad, _) = order(&account, &s.tokens, &["u.dnssec.test"], str::to_owned).await;
    let _ = bad.poll_ready(&RetryPolicy::default()).await;
    assert_eq!(
        bad.refresh().await.unwrap().status,
        instant_acme::OrderStatus::Invalid
    );
}
