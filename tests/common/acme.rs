//! ACME test support: a CA on a fresh token, `hsm-acme serve` as a child process, and
//! instant-acme driving it with http-01 answered locally and names from a mock DNS.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder,
};

use super::net::{ServerProcess, SharedZone, Tokens, http01_responder, mock_dns};
use super::{TOKEN_LABEL, TestToken, text};

/// Writes a configuration (root and issuing CA on the token) and runs `ca init`. `extra`
/// is appended right after the `[acme]` table, so it may add `[acme]` keys before any
/// further tables.
pub fn write_config(t: &TestToken, extra: &str) -> PathBuf {
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
admin_socket = "admin.sock"

[storage]
path = "state.redb"

# The tests' responders and mock DNS live on loopback; nothing else may be reached.
[validation]
allow_networks = ["127.0.0.1/32", "::1/128"]

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
# The default chain is the issuing CA alone; the alternate also carries the root.
alternate_chains = ["alt-chain.pem"]

[acme]
ca = "issuing"
validity_days = 30
{extra}
"#
    );
    std::fs::write(&path, config).unwrap();
    let out = t.hsm_acme(&path, &["ca", "init"]);
    assert!(out.status.success(), "{}", text(&out));
    let issuing = std::fs::read_to_string(t.dir.join("issuing.pem")).unwrap();
    let root = std::fs::read_to_string(t.dir.join("root.pem")).unwrap();
    std::fs::write(t.dir.join("alt-chain.pem"), issuing + &root).unwrap();
    path
}

/// A token with a CA, a mock DNS and an http-01 responder.
pub struct Setup {
    pub token: TestToken,
    pub config: PathBuf,
    pub tokens: Tokens,
    pub dns: SharedZone,
    pub args: Vec<String>,
}

/// Sets up a test CA; `extra` is appended to its configuration.
pub async fn setup(extra: &str) -> Setup {
    let token = TestToken::create();
    let config = write_config(&token, extra);
    let (dns_addr, dns) = mock_dns().await;
    let (http_port, tokens) = http01_responder().await;
    let args = vec![
        "--http01-port".to_owned(),
        http_port.to_string(),
        "--dns-resolver".to_owned(),
        dns_addr.to_string(),
    ];
    Setup {
        token,
        config,
        tokens,
        dns,
        args,
    }
}

impl Setup {
    pub fn start(&self, port: u16) -> ServerProcess {
        ServerProcess::start(&self.token.conf(), &self.config, port, &self.args)
    }

    pub fn root(&self) -> PathBuf {
        self.token.dir.join("root.pem")
    }
}

/// A test CA (`extra` as for [`setup`]) serving on a free port, and one account on it.
pub async fn running(extra: &str) -> (Setup, ServerProcess, Account) {
    let s = setup(extra).await;
    let port = super::net::free_port();
    let server = s.start(port);
    let directory = format!("https://127.0.0.1:{port}/directory");
    let (account, _) = new_account(&s.root(), &directory).await;
    (s, server, account)
}

/// A new account with a contact and the terms agreed.
pub async fn new_account(root: &Path, directory: &str) -> (Account, AccountCredentials) {
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
pub async fn order(
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

/// The RFC 9773 identifier of a certificate, for `replaces`.
pub fn cert_id(cert: &x509_cert::Certificate) -> instant_acme::CertificateIdentifier<'static> {
    use x509_cert::ext::pkix::AuthorityKeyIdentifier;
    let (_, aki) = cert
        .tbs_certificate()
        .get_extension::<AuthorityKeyIdentifier>()
        .unwrap()
        .unwrap();
    let key_id = aki.key_identifier.unwrap();
    let serial = cert.tbs_certificate().serial_number().as_bytes().to_vec();
    instant_acme::CertificateIdentifier::new(key_id.as_bytes().into(), serial.into()).into_owned()
}

/// Runs openssl and returns its stdout; fails the test if openssl fails.
pub fn openssl(args: &[&str], input: Option<&Path>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    if let Some(input) = input {
        cmd.arg(input);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
