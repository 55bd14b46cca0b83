//! CRLs signed on a SoftHSM token (RFC 5280 §5), checked with the openssl CLI: signature,
//! fields, and revocation checking of a leaf issued under the same CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use common::{isolated, text};
use der::pem::LineEnding;
use der::{Decode, EncodePem};
use hsm_acme::ca::crl::{CrlRequest, RevocationReason, RevokedEntry, sign_crl};
use hsm_acme::ca::distribution::Distribution;
use hsm_acme::ca::hierarchy::{root_certificate, subordinate_certificate};
use hsm_acme::ca::issuer::{Issuer, IssuerSettings};
use hsm_acme::hsm::{KeyType, RsaPadding, Signer};
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    text(&out)
}

fn write_pem(dir: &Path, name: &str, pem: &str) {
    std::fs::write(dir.join(name), pem).unwrap();
}

/// The line after `label` in openssl's `-text` output, trimmed: where it puts a value.
fn value_after<'a>(listing: &'a str, label: &str) -> Option<&'a str> {
    let mut lines = listing.lines();
    lines.find(|l| l.trim_end().ends_with(label))?;
    lines.next().map(str::trim)
}

fn crl_pem(der: &[u8]) -> String {
    der::pem::encode_string("X509 CRL", LineEnding::LF, der).unwrap()
}

#[test]
fn token_signed_crls_revoke_in_openssl() {
    isolated("token_signed_crls_revoke_in_openssl", |t| {
        let token = t.open(2);
        let dir = t.dir.as_path();

        // An ECDSA P-384 root over an RSA-PSS issuing CA, both on the token.
        token.generate_key_pair("root", KeyType::EcdsaP384).unwrap();
        token
            .generate_key_pair("issuing", KeyType::Rsa2048)
            .unwrap();
        token.generate_key_pair("leaf", KeyType::EcdsaP256).unwrap();
        let root = token.signer("root", RsaPadding::Pkcs1).unwrap();
        let issuing = token.signer("issuing", RsaPadding::Pss).unwrap();
        let leaf_key = token.signer("leaf", RsaPadding::Pkcs1).unwrap();
        let root_cert = root_certificate(
            &Name::from_str("CN=CRL Test Root,O=hsm-acme tests").unwrap(),
            YEAR,
            &root,
        )
        .unwrap();
        let issuing_cert = subordinate_certificate(
            &Name::from_str("CN=CRL Test Issuing,O=hsm-acme tests").unwrap(),
            issuing.public_key(),
            YEAR,
            Some(0),
            Distribution::under("http://ca.example", "issuing"),
            &root_cert,
            &root,
        )
        .unwrap();

        let issuer = Issuer::new(
            "issuing".into(),
            std::sync::Arc::new(issuing),
            issuing_cert.clone(),
            std::slice::from_ref(&root_cert),
            IssuerSettings {
                client_auth: false,
                distribution: Distribution::under("http://ca.example", "issuing"),
            },
        )
        .unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let prepared = issuer
            .prepare(
                vec!["revoked.example".into()],
                vec![],
                leaf_key.public_key().clone(),
                now - 300,
                now + 90 * 86_400,
            )
            .unwrap();
        let serial = prepared.serial.clone();
        let leaf = issuer.sign(prepared).unwrap();

        write_pem(dir, "root.pem", &root_cert.to_pem(LineEnding::LF).unwrap());
        write_pem(
            dir,
            "issuing.pem",
            &issuing_cert.to_pem(LineEnding::LF).unwrap(),
        );
        write_pem(dir, "leaf.pem", &leaf.to_pem(LineEnding::LF).unwrap());

        // The issuing CA signs on the token; a second signer handle stands in for the
        // Issuer's own, as the CRL publisher would use.
        let crl_signer = token.signer("issuing", RsaPadding::Pss).unwrap();
        let this_update = SystemTime::now() - Duration::from_secs(60);
        let next_update = this_update + Duration::from_secs(7 * 86_400);
        let other_serial = x509_cert::serial_number::SerialNumber::new(&[0x01, 0x02]).unwrap();
        let entries = [
            RevokedEntry {
                serial: serial.clone(),
                revoked_at: this_update,
                reason: Some(RevocationReason::KeyCompromise),
            },
            RevokedEntry {
                serial: other_serial,
                revoked_at: this_update,
                reason: Some(RevocationReason::Unspecified),
            },
        ];
        let revoking = sign_crl(
            &issuing_cert,
            &crl_signer,
            &CrlRequest {
                number: 42,
                this_update,
                next_update,
                entries: &entries,
            },
        )
        .unwrap();
        let empty = sign_crl(
            &issuing_cert,
            &crl_signer,
            &CrlRequest {
                number: 43,
                this_update,
                next_update,
                entries: &[],
            },
        )
        .unwrap();
        // The root's own (ECDSA P-384) CRL for the CAs under it.
        let root_crl = sign_crl(
            &root_cert,
            &root,
            &CrlRequest {
                number: 1,
                this_update,
                next_update,
                entries: &[],
            },
        )
        .unwrap();
        assert!(CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&revoking).is_ok());
        write_pem(dir, "crl.pem", &crl_pem(&revoking));
        write_pem(dir, "empty.pem", &crl_pem(&empty));
        write_pem(dir, "root-crl.pem", &crl_pem(&root_crl));

        for (crl, ca) in [
            ("crl.pem", "issuing.pem"),
            ("empty.pem", "issuing.pem"),
            ("root-crl.pem", "root.pem"),
        ] {
            let out = openssl_ok(
                dir,
                &["crl", "-in", crl, "-CAfile", ca, "-noout", "-verify"],
            );
            assert!(out.contains("verify OK"), "{crl}: {out}");
        }
        // A CRL does not verify under a CA that did not sign it.
        let wrong = openssl(
            dir,
            &[
                "crl", "-in", "crl.pem", "-CAfile", "root.pem", "-noout", "-verify",
            ],
        );
        assert!(!text(&wrong).contains("verify OK"), "{}", text(&wrong));

        let listing = openssl_ok(dir, &["crl", "-in", "crl.pem", "-noout", "-text"]);
        println!("{listing}");
        assert!(listing.contains("Version 2 (0x1)"), "{listing}");
        assert_eq!(
            value_after(&listing, "X509v3 CRL Number:"),
            Some("42"),
            "{listing}"
        );
        assert!(
            listing.contains("X509v3 Authority Key Identifier:"),
            "{listing}"
        );
        assert_eq!(
            value_after(&listing, "X509v3 CRL Reason Code:"),
            Some("Key Compromise"),
            "{listing}"
        );
        assert!(listing.contains("rsassaPss"), "{listing}");
        assert!(listing.contains("Next Update:"), "{listing}");
        // Exactly one reason: the unspecified entry has none (RFC 5280 §5.3.1).
        assert_eq!(listing.matches("CRL Reason Code").count(), 1, "{listing}");
        let leaf_serial: String = serial
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert!(
            listing.contains(&leaf_serial),
            "{leaf_serial} not in {listing}"
        );
        // The AKI is the issuing CA's SKI.
        let issuing_text = openssl_ok(dir, &["x509", "-in", "issuing.pem", "-noout", "-text"]);
        let ski = issuing_text
            .split("Subject Key Identifier:")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap()
            .to_owned();
        assert_eq!(
            value_after(&listing, "X509v3 Authority Key Identifier:"),
            Some(ski.as_str()),
            "{listing}"
        );

        let empty_listing = openssl_ok(dir, &["crl", "-in", "empty.pem", "-noout", "-text"]);
        assert!(
            empty_listing.contains("No Revoked Certificates."),
            "{empty_listing}"
        );
        assert_eq!(
            value_after(&empty_listing, "X509v3 CRL Number:"),
            Some("43"),
            "{empty_listing}"
        );

        let verify = |crl: &str| {
            openssl(
                dir,
                &[
                    "verify",
                    "-crl_check",
                    "-CAfile",
                    "root.pem",
                    "-untrusted",
                    "issuing.pem",
                    "-CRLfile",
                    crl,
                    "leaf.pem",
                ],
            )
        };
        let revoked = verify("crl.pem");
        assert!(!revoked.status.success(), "{}", text(&revoked));
        assert!(
            text(&revoked).contains("certificate revoked"),
            "{}",
            text(&revoked)
        );
        let good = verify("empty.pem");
        assert!(good.status.success(), "{}", text(&good));
        assert!(text(&good).contains("leaf.pem: OK"), "{}", text(&good));
        // Whole chain checked against both CRLs: the root's says the issuing CA is fine.
        let out = openssl(
            dir,
            &[
                "verify",
                "-crl_check_all",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuing.pem",
                "-CRLfile",
                "empty.pem",
                "-CRLfile",
                "root-crl.pem",
                "leaf.pem",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    });
}
