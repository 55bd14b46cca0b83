//! End-to-end issuance over real HTTPS: `hsm-acme serve` (a child process, keys on a
//! SoftHSM token, state in redb) driven by instant-acme, with http-01 answered by a local
//! responder and names resolved by a mock DNS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::net::{ServerProcess, Tokens, free_port, http01_responder, mock_dns};
use common::{TOKEN_LABEL, TestToken, text};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

fn write_config(t: &TestToken) -> PathBuf {
    let path = t.dir.join("hsm-acme.toml");
    let config = format!(
        r#"
[hsm]
profile = "softhsm2"
token_label = "{TOKEN_LABEL}"
pin_file = "user-pin"
sessions = 4

[server]
listen = "127.0.0.1:8443"
tls_names = ["127.0.0.1", "localhost"]
tls_certificate = "tls.pem"

[acme]
ca = "issuing"
validity_days = 30

[storage]
path = "state.redb"

[[ca]]
name = "root"
key_label = "root-key"
key_type = "ecdsa-p384"
subject = "CN=Test Root,O=hsm-acme tests"
certificate = "root.pem"

[[ca]]
name = "issuing"
key_label = "issuing-key"
key_type = "ecdsa-p256"
subject = "CN=Test Issuing,O=hsm-acme tests"
certificate = "issuing.pem"
issuer = "root"
path_len = 0
"#
    );
    std::fs::write(&path, config).unwrap();
    let out = t.hsm_acme(&path, &["ca", "init"]);
    assert!(out.status.success(), "{}", text(&out));
    path
}

struct Setup {
    token: TestToken,
    config: PathBuf,
    tokens: Tokens,
    args: Vec<String>,
}

async fn setup() -> Setup {
    let token = TestToken::create();
    let config = write_config(&token);
    let dns = mock_dns().await;
    let (http_port, tokens) = http01_responder().await;
    let args = vec![
        "--http01-port".to_owned(),
        http_port.to_string(),
        "--dns-resolver".to_owned(),
        dns.to_string(),
    ];
    Setup {
        token,
        config,
        tokens,
        args,
    }
}

impl Setup {
    fn start(&self, port: u16) -> ServerProcess {
        ServerProcess::start(&self.token.conf(), &self.config, port, &self.args)
    }

    fn root(&self) -> PathBuf {
        self.token.dir.join("root.pem")
    }
}

async fn new_account(root: &Path, directory: &str) -> (Account, AccountCredentials) {
    Account::builder_with_root(root)
        .unwrap()
        .create(
            &NewAccount {
                contact: &["mailto:tests@example.org"],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.to_owned(),
            None,
        )
        .await
        .unwrap()
}

/// Runs one order for `names`; the responder answers with `answer(key_authorization)`.
async fn order(
    account: &Account,
    tokens: &Tokens,
    names: &[&str],
    answer: impl Fn(&str) -> String,
) -> (instant_acme::Order, Vec<String>) {
    let mut failures = Vec::new();
    let identifiers: Vec<Identifier> = names
        .iter()
        .map(|n| Identifier::Dns((*n).to_owned()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .unwrap();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.unwrap();
        assert_eq!(authz.status, AuthorizationStatus::Pending);
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .expect("http-01 offered");
        let key_authorization = challenge.key_authorization().as_str().to_owned();
        tokens
            .lock()
            .unwrap()
            .insert(challenge.token.clone(), answer(&key_authorization));
        // The server validates before it answers: a failed validation comes back at once.
        if let Err(e) = challenge.set_ready().await {
            failures.push(format!("{e:?}"));
        }
    }
    (order, failures)
}

fn openssl(args: &[&str], input: Option<&Path>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    if let Some(input) = input {
        cmd.arg(input);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_acme_gets_a_certificate_signed_on_the_token_and_it_survives_kill_9() {
    let s = setup().await;
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
    let s = setup().await;
    let port = free_port();
    let _server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _) = new_account(&s.root(), &directory).await;
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
