//! CSR fixtures made with the openssl command line (src/ca/testdata).

use super::*;

fn der(pem: &str) -> Vec<u8> {
    der::pem::decode_vec(pem.as_bytes()).unwrap().1
}

fn parse(pem: &str) -> Result<ParsedCsr, CsrError> {
    parse_csr(&der(pem), &KeyPolicy::default())
}

#[test]
fn names_are_lowercased_and_the_key_is_reported() {
    let csr = parse(include_str!("../testdata/p256-two-names.csr")).unwrap();
    let names: Vec<&str> = csr.dns_names.iter().map(String::as_str).collect();
    assert_eq!(names, ["a.example.test", "b.example.test"]);
    assert_eq!(csr.key, CsrKey::P256);
    assert_eq!(csr.common_name.as_deref(), Some("a.example.test"));
    assert_eq!(
        parse(include_str!("../testdata/p384.csr")).unwrap().key,
        CsrKey::P384
    );
}

#[test]
fn rsa_2048_with_an_ip_name_is_accepted() {
    let csr = parse(include_str!("../testdata/rsa2048-ip.csr")).unwrap();
    assert_eq!(csr.key, CsrKey::Rsa { bits: 2048 });
    assert!(
        csr.ip_addresses
            .contains(&"192.0.2.7".parse::<IpAddr>().unwrap())
    );
    assert_eq!(csr.common_name, None);
}

#[test]
fn bad_requests_are_bad_csr_and_weak_keys_bad_public_key() {
    let cases = [
        (include_str!("../testdata/p256-email.csr"), "rfc822Name"),
        (
            include_str!("../testdata/p256-no-names.csr"),
            "names nothing",
        ),
    ];
    for (pem, expected) in cases {
        match parse(pem) {
            Err(CsrError::BadCsr(m)) => assert!(m.contains(expected), "{m}"),
            other => panic!("expected badCSR with {expected:?}, got {other:?}"),
        }
    }
    match parse(include_str!("../testdata/rsa1024.csr")) {
        Err(CsrError::BadPublicKey(m)) => assert!(m.contains("1024"), "{m}"),
        other => panic!("expected badPublicKey, got {other:?}"),
    }
}

#[test]
fn a_common_name_is_a_requested_name_too() {
    // RFC 8555 §7.4: a name may be in the commonName, the subjectAltName, or both.
    let csr = parse(include_str!("../testdata/p256-cn-not-in-san.csr")).unwrap();
    let cn = csr.common_name.clone().unwrap();
    assert!(csr.dns_names.contains(&cn), "{:?}", csr.dns_names);
    assert!(csr.dns_names.len() >= 2, "{:?}", csr.dns_names);
}

#[test]
fn ed25519_follows_the_policy() {
    let pem = include_str!("../testdata/ed25519.csr");
    assert!(matches!(parse(pem), Err(CsrError::BadPublicKey(_))));
    let policy = KeyPolicy {
        allow_ed25519: true,
        ..KeyPolicy::default()
    };
    assert_eq!(parse_csr(&der(pem), &policy).unwrap().key, CsrKey::Ed25519);
}

#[test]
fn a_broken_signature_or_garbage_is_refused() {
    let mut bytes = der(include_str!("../testdata/p256-two-names.csr"));
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    assert!(matches!(
        parse_csr(&bytes, &KeyPolicy::default()),
        Err(CsrError::BadCsr(_))
    ));
    assert!(matches!(
        parse_csr(b"garbage", &KeyPolicy::default()),
        Err(CsrError::BadCsr(_))
    ));
    let mut trailing = der(include_str!("../testdata/p384.csr"));
    trailing.push(0);
    assert!(parse_csr(&trailing, &KeyPolicy::default()).is_err());
}
