//! Against a real local TLS responder (tokio-rustls) presenting generated certificates.

use std::sync::Mutex;
use std::time::Duration;

use der::asn1::{BitString, ContextSpecific, Ia5String, OctetString, Uint};
use der::{Sequence, TagMode, TagNumber};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tokio::net::TcpListener;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::time::Validity;

use super::*;
use crate::va::testing::ScriptedDns;

const KEY_AUTH: &str = "tok_en-123.thumbprint";
const NAME: &str = "www.example.test";

/// TBSCertificate (RFC 5280 §4.1), spelled out so tests can write what builders refuse.
#[derive(Sequence)]
struct Tbs {
    version: ContextSpecific<u8>,
    serial: Uint,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    extensions: ContextSpecific<Vec<Extension>>,
}

#[derive(Sequence)]
struct Cert {
    tbs: Tbs,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

fn explicit<T>(tag: u32, value: T) -> ContextSpecific<T> {
    ContextSpecific {
        tag_number: TagNumber(tag),
        tag_mode: TagMode::Explicit,
        value,
    }
}

/// What the responder's certificate says.
#[derive(Clone)]
struct Spec {
    sans: Vec<GeneralName>,
    /// (critical, extnValue bytes); `None` leaves the extension out.
    acme_id: Option<(bool, Vec<u8>)>,
}

fn dns(name: &str) -> GeneralName {
    GeneralName::DnsName(Ia5String::new(name).unwrap())
}

fn digest_of(key_authorization: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes())
        .as_ref()
        .to_vec()
}

fn acme_id(key_authorization: &str) -> Vec<u8> {
    OctetString::new(digest_of(key_authorization))
        .unwrap()
        .to_der()
        .unwrap()
}

fn good(san: GeneralName) -> Spec {
    Spec {
        sans: vec![san],
        acme_id: Some((true, acme_id(KEY_AUTH))),
    }
}

fn pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// A self-signed P-256 certificate for `spec`, certifying the key in `subject_pkcs8`.
fn certificate(spec: &Spec, subject_pkcs8: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, subject_pkcs8, &rng).unwrap();
    let ec_public_key = der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    let p256 = der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    let ecdsa_sha256 = AlgorithmIdentifierOwned {
        oid: der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
        parameters: None,
    };
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ec_public_key,
            parameters: Some(der::Any::from(&p256)),
        },
        subject_public_key: BitString::from_bytes(key.public_key().as_ref()).unwrap(),
    };
    let mut extensions = vec![Extension {
        extn_id: ID_CE_SUBJECT_ALT_NAME,
        critical: false,
        extn_value: OctetString::new(SubjectAltName(spec.sans.clone()).to_der().unwrap()).unwrap(),
    }];
    if let Some((critical, value)) = &spec.acme_id {
        extensions.push(Extension {
            extn_id: ID_PE_ACME_IDENTIFIER,
            critical: *critical,
            extn_value: OctetString::new(value.clone()).unwrap(),
        });
    }
    let tbs = Tbs {
        version: explicit(0, 2),
        serial: Uint::new(&[1, 2, 3]).unwrap(),
        signature: ecdsa_sha256.clone(),
        issuer: Name::default(),
        validity: Validity::from_now(Duration::from_secs(3600)).unwrap(),
        subject: Name::default(),
        spki,
        extensions: explicit(3, extensions),
    };
    let signature = key.sign(&rng, &tbs.to_der().unwrap()).unwrap();
    Cert {
        tbs,
        algorithm: ecdsa_sha256,
        signature: BitString::from_bytes(signature.as_ref()).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// Presents one certificate and remembers the SNI it was asked for.
#[derive(Debug)]
struct Presenter {
    key: Arc<CertifiedKey>,
    sni: Arc<Mutex<Option<String>>>,
}

impl ResolvesServerCert for Presenter {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        *self.sni.lock().unwrap() = hello.server_name().map(str::to_owned);
        Some(Arc::clone(&self.key))
    }
}

struct Responder {
    alpn: Vec<Vec<u8>>,
    tls12_only: bool,
    /// Sign the handshake with this key instead of the certified one.
    other_key: Option<Vec<u8>>,
}

impl Default for Responder {
    fn default() -> Self {
        Self {
            alpn: vec![ACME_TLS_1.to_vec()],
            tls12_only: false,
            other_key: None,
        }
    }
}

impl Responder {
    /// Serves `spec` on 127.0.0.1; returns the port and the SNI seen.
    async fn start(self, spec: &Spec) -> (u16, Arc<Mutex<Option<String>>>) {
        let certified = pkcs8();
        let der = certificate(spec, &certified);
        let signing = self.other_key.unwrap_or(certified);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing)))
            .unwrap();
        let sni = Arc::new(Mutex::new(None));
        let presenter = Presenter {
            key: Arc::new(CertifiedKey::new(vec![CertificateDer::from(der)], key)),
            sni: Arc::clone(&sni),
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider);
        let builder = if self.tls12_only {
            builder.with_protocol_versions(&[&rustls::version::TLS12])
        } else {
            builder.with_safe_default_protocol_versions()
        };
        let mut config = builder
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(presenter));
        config.alpn_protocols = self.alpn;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let mut buf = [0u8; 16];
                        let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await;
                    }
                });
            }
        });
        (port, sni)
    }
}

fn config(port: u16) -> VaConfig {
    VaConfig {
        caa_identities: Vec::new(),
        tls_alpn01_port: port,
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(3),
        network: loopback(),
        ..VaConfig::default()
    }
}

/// The one network these tests may reach.
fn loopback() -> crate::policy::network::NetworkPolicy {
    crate::policy::network::NetworkPolicy::parse(&["127.0.0.1/32".into(), "::1/128".into()], &[])
        .unwrap()
}

fn localhost() -> ScriptedDns {
    ScriptedDns::default().ip(NAME, &["127.0.0.1"])
}

async fn run(port: u16, identifier: &Identifier) -> Result<(), ValidationFailure> {
    validate_tls_alpn01(&config(port), &localhost(), identifier, KEY_AUTH).await
}

async fn outcome(responder: Responder, spec: &Spec) -> Result<(), ValidationFailure> {
    let (port, _) = responder.start(spec).await;
    run(port, &Identifier::dns(NAME)).await
}

#[tokio::test]
async fn a_correct_responder_validates_with_sni_and_alpn() {
    let (port, sni) = Responder::default().start(&good(dns(NAME))).await;
    run(port, &Identifier::dns(NAME)).await.unwrap();
    assert_eq!(sni.lock().unwrap().as_deref(), Some(NAME));
}

#[tokio::test]
async fn the_san_matches_case_insensitively() {
    let spec = good(dns("WWW.Example.TEST"));
    outcome(Responder::default(), &spec).await.unwrap();
}

#[tokio::test]
async fn tls_1_2_responders_validate_and_their_signature_is_checked() {
    let tls12 = || Responder {
        tls12_only: true,
        ..Responder::default()
    };
    outcome(tls12(), &good(dns(NAME))).await.unwrap();

    let err = outcome(
        Responder {
            other_key: Some(pkcs8()),
            ..tls12()
        },
        &good(dns(NAME)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Tls(m) if m.contains("handshake")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_responder_without_the_certified_private_key_fails_the_handshake() {
    let responder = Responder {
        other_key: Some(pkcs8()),
        ..Responder::default()
    };
    let err = outcome(responder, &good(dns(NAME))).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Tls(m) if m.contains("handshake")),
        "{err:?}"
    );
}

#[tokio::test]
async fn certificate_defects_fail_with_clear_details() {
    let wrong_hash = Spec {
        acme_id: Some((true, acme_id("other.thumbprint"))),
        ..good(dns(NAME))
    };
    let not_octet_string = Spec {
        acme_id: Some((true, digest_of(KEY_AUTH))),
        ..good(dns(NAME))
    };
    let cases: Vec<(&str, Spec, &str, &str)> = vec![
        (
            "no acmeIdentifier",
            Spec {
                acme_id: None,
                ..good(dns(NAME))
            },
            "unauthorized",
            "exactly one acmeIdentifier",
        ),
        (
            "non-critical acmeIdentifier",
            Spec {
                acme_id: Some((false, acme_id(KEY_AUTH))),
                ..good(dns(NAME))
            },
            "unauthorized",
            "not marked critical",
        ),
        (
            "wrong digest",
            wrong_hash,
            "incorrectResponse",
            "expected SHA-256 of the key authorization",
        ),
        (
            "digest not DER-wrapped",
            not_octet_string,
            "incorrectResponse",
            "not a DER OCTET STRING",
        ),
        (
            "wrong SAN",
            good(dns("other.example.test")),
            "unauthorized",
            "dNSName \"other.example.test\" is not www.example.test",
        ),
        (
            "two SANs",
            Spec {
                sans: vec![dns(NAME), dns("other.example.test")],
                ..good(dns(NAME))
            },
            "unauthorized",
            "exactly one name, it holds 2",
        ),
        (
            "an IP SAN for a dns identifier",
            good(GeneralName::from(IpAddr::from([127, 0, 0, 1]))),
            "unauthorized",
            "iPAddress 127.0.0.1 is not",
        ),
    ];
    for (what, spec, kind, detail) in cases {
        let err = outcome(Responder::default(), &spec).await.unwrap_err();
        assert_eq!(err.problem_type(), kind, "{what}: {err:?}");
        assert!(err.to_string().contains(detail), "{what}: {err}");
        assert!(err.to_string().contains(NAME), "{what}: {err}");
    }
}

#[tokio::test]
async fn alpn_must_be_negotiated() {
    let none = Responder {
        alpn: Vec::new(),
        ..Responder::default()
    };
    let err = outcome(none, &good(dns(NAME))).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Unauthorized(m) if m.contains("acme-tls/1")),
        "{err:?}"
    );

    // A server that only speaks another protocol refuses the handshake.
    let other = Responder {
        alpn: vec![b"h2".to_vec()],
        ..Responder::default()
    };
    let err = outcome(other, &good(dns(NAME))).await.unwrap_err();
    assert!(matches!(err, ValidationFailure::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn ip_identifiers_use_the_reverse_name_as_sni_and_an_ip_san() {
    let (port, sni) = Responder::default()
        .start(&good(GeneralName::from(IpAddr::from([127, 0, 0, 1]))))
        .await;
    let ip = Identifier {
        kind: "ip".into(),
        value: "127.0.0.1".into(),
    };
    run(port, &ip).await.unwrap();
    assert_eq!(
        sni.lock().unwrap().as_deref(),
        Some("1.0.0.127.in-addr.arpa")
    );

    let (port, _) = Responder::default().start(&good(dns(NAME))).await;
    let err = run(port, &ip).await.unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Unauthorized(m) if m.contains("is not 127.0.0.1")),
        "{err:?}"
    );
}

#[test]
fn reverse_names_follow_rfc_8738_6() {
    assert_eq!(
        reverse_name("192.0.2.5".parse().unwrap()),
        "5.2.0.192.in-addr.arpa"
    );
    // RFC 8738 §6's example address.
    assert_eq!(
        reverse_name("2001:db8::567:89ab".parse().unwrap()),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
}

#[tokio::test]
async fn connection_failures_fall_back_and_then_are_connection_problems() {
    let (port, _) = Responder::default().start(&good(dns(NAME))).await;
    // An address nothing listens on first, then one that answers.
    let both = ScriptedDns::default().ip(NAME, &["::1", "127.0.0.1"]);
    validate_tls_alpn01(&config(port), &both, &Identifier::dns(NAME), KEY_AUTH)
        .await
        .unwrap();

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = run(closed, &Identifier::dns(NAME)).await.unwrap_err();
    assert!(matches!(err, ValidationFailure::Connection(_)), "{err:?}");

    let err = validate_tls_alpn01(
        &config(closed),
        &ScriptedDns::default(),
        &Identifier::dns(NAME),
        KEY_AUTH,
    )
    .await
    .unwrap_err();
    assert_eq!(err.problem_type(), "dns", "{err:?}");
}

#[tokio::test]
async fn a_silent_server_hits_the_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut cfg = config(port);
    cfg.request_timeout = Duration::from_millis(300);
    let err = validate_tls_alpn01(&cfg, &localhost(), &Identifier::dns(NAME), KEY_AUTH)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ValidationFailure::Connection(m) if m.contains("no answer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn wildcards_and_unknown_kinds_are_refused_before_connecting() {
    for identifier in [
        Identifier::dns("*.example.test"),
        Identifier {
            kind: "email".into(),
            value: "a@example.test".into(),
        },
    ] {
        let err = run(9, &identifier).await.unwrap_err();
        assert!(matches!(err, ValidationFailure::Unauthorized(_)), "{err:?}");
    }
}

#[test]
fn webpki_refuses_the_critical_acme_identifier_so_the_key_is_read_with_x509_cert() {
    let der = CertificateDer::from(certificate(&good(dns(NAME)), &pkcs8()));
    assert!(rustls::server::ParsedCertificate::try_from(&der).is_err());
    let non_critical = Spec {
        acme_id: Some((false, acme_id(KEY_AUTH))),
        ..good(dns(NAME))
    };
    let der = CertificateDer::from(certificate(&non_critical, &pkcs8()));
    assert!(rustls::server::ParsedCertificate::try_from(&der).is_ok());
    assert!(SpkiParts::of(&der).is_ok());
}
