//! The operator commands end to end: the `hsm-acme` binary against a SoftHSM token, checked
//! with openssl and pkcs11-tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TOKEN_LABEL, TestToken, text};

fn write_config(t: &TestToken, cas: &str) -> PathBuf {
    let path = t.dir.join("hsm-acme.toml");
    let config = format!(
        r#"
[hsm]
profile = "softhsm2"
token_label = "{TOKEN_LABEL}"
pin_file = "user-pin"
sessions = 2

[sealing]
key_label = "seal"
{cas}"#
    );
    std::fs::write(&path, config).unwrap();
    path
}

const HIERARCHY: &str = r#"
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

[[ca]]
name = "issuing-rsa"
key_label = "issuing-rsa-key"
key_type = "rsa-3072"
rsa_padding = "pss"
subject = "CN=Test Issuing RSA,O=hsm-acme tests"
certificate = "issuing-rsa.pem"
issuer = "root"
"#;

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (header, Access flags) of every private and secret key in a `pkcs11-tool --list-objects`.
fn key_objects(listing: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut header: Option<String> = None;
    for line in listing.lines() {
        if !line.starts_with(' ') {
            let is_key =
                line.starts_with("Private Key Object") || line.starts_with("Secret Key Object");
            header = is_key.then(|| line.to_owned());
        } else if let (Some(h), Some(access)) = (&header, line.trim().strip_prefix("Access:")) {
            out.push((h.clone(), access.trim().to_owned()));
        }
    }
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn ca_init_builds_a_hierarchy_on_the_token_that_openssl_verifies() {
    let t = TestToken::create();
    let config = write_config(&t, HIERARCHY);
    let out = t.hsm_acme(&config, &["ca", "init"]);
    assert!(out.status.success(), "{}", text(&out));

    let root = t.dir.join("root.pem");
    for name in ["issuing.pem", "issuing-rsa.pem"] {
        let leaf = t.dir.join(name);
        let verified = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            path(&root),
            path(&leaf),
        ]);
        assert!(verified.contains(": OK"), "{verified}");
    }
    let issuing = openssl(&[
        "x509",
        "-in",
        path(&t.dir.join("issuing.pem")),
        "-noout",
        "-text",
    ]);
    assert!(issuing.contains("CA:TRUE, pathlen:0"), "{issuing}");
    assert!(issuing.contains("Certificate Sign, CRL Sign"), "{issuing}");
    let rsa = openssl(&[
        "x509",
        "-in",
        path(&t.dir.join("issuing-rsa.pem")),
        "-noout",
        "-text",
    ]);
    assert!(rsa.contains("Public-Key: (3072 bit)"), "{rsa}");

    // Every private and secret key is on the token, sensitive and never extractable.
    let objects = t.pkcs11_tool(&["--list-objects"]);
    let listing = String::from_utf8_lossy(&objects.stdout).into_owned();
    let keys = key_objects(&listing);
    assert_eq!(keys.len(), 4, "{listing}");
    for (header, access) in &keys {
        let flags: Vec<&str> = access.split(", ").map(str::trim).collect();
        assert!(flags.contains(&"sensitive"), "{header}: {access}");
        assert!(flags.contains(&"never extractable"), "{header}: {access}");
        assert!(!flags.contains(&"extractable"), "{header}: {access}");
    }

    // Nothing private lies outside the token's own files.
    for entry in std::fs::read_dir(&t.dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            assert!(!content.contains("PRIVATE KEY"), "{:?}", entry.path());
        }
    }

    let check = t.hsm_acme(&config, &["hsm", "check"]);
    let report = text(&check);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("all 4 keys OK"), "{report}");
    assert!(report.contains("verified in software"), "{report}");
    // The same for scripts: one JSON answer with the report's lines.
    let check = t.hsm_acme(&config, &["hsm", "check", "--json"]);
    assert!(check.status.success(), "{}", text(&check));
    let answer: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(answer["ok"], true);
    let lines = answer["report"].as_array().unwrap();
    assert!(lines.iter().any(|l| l == "all 4 keys OK"), "{answer}");

    // A second run changes nothing.
    let before = std::fs::read(&root).unwrap();
    let again = t.hsm_acme(&config, &["ca", "init"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("already present"));
    assert_eq!(std::fs::read(&root).unwrap(), before);
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let t = TestToken::create();
    let config = write_config(&t, HIERARCHY);
    assert!(t.hsm_acme(&config, &["ca", "init"]).status.success());
    // Swap the issuing CA's certificate for the root's: its key is not the issuing key.
    std::fs::copy(t.dir.join("root.pem"), t.dir.join("issuing.pem")).unwrap();
    let out = t.hsm_acme(&config, &["hsm", "check"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not the key on the token"),
        "{}",
        text(&out)
    );
    let out = t.hsm_acme(&config, &["hsm", "check", "--json"]);
    assert!(!out.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["ok"], false);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("failed the check"),
        "{answer}"
    );
}

#[test]
fn external_root_gets_a_csr_and_its_answer_is_imported() {
    let t = TestToken::create();
    let cas = r#"
[[ca]]
name = "sub"
key_label = "sub-key"
key_type = "ecdsa-p256"
subject = "CN=Sub under External,O=hsm-acme tests"
certificate = "sub.pem"
chain = "sub-chain.pem"
issuer = "external"
"#;
    let config = write_config(&t, cas);
    let out = t.hsm_acme(&config, &["ca", "init"]);
    assert!(out.status.success(), "{}", text(&out));
    let csr = t.dir.join("sub.csr");
    assert!(openssl(&["req", "-in", path(&csr), "-verify", "-noout"]).is_empty());

    // An external root in software, as another organisation would run it.
    let ext = tempfile::tempdir().unwrap();
    let root_key = ext.path().join("root.key");
    let root_cert = ext.path().join("root.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path(&root_key),
        "-out",
        path(&root_cert),
        "-subj",
        "/CN=External Root",
        "-days",
        "30",
    ]);
    let extfile = ext.path().join("ext.cnf");
    std::fs::write(
        &extfile,
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    let signed = ext.path().join("sub.pem");
    openssl(&[
        "x509",
        "-req",
        "-in",
        path(&csr),
        "-CA",
        path(&root_cert),
        "-CAkey",
        path(&root_key),
        "-CAcreateserial",
        "-out",
        path(&signed),
        "-days",
        "10",
        "-extfile",
        path(&extfile),
    ]);

    // A chain that does not lead to the issuer is refused.
    let out = t.hsm_acme(
        &config,
        &[
            "ca",
            "import",
            "--ca",
            "sub",
            "--cert",
            path(&signed),
            "--chain",
            path(&signed),
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("chain"), "{}", text(&out));

    let out = t.hsm_acme(
        &config,
        &[
            "ca",
            "import",
            "--ca",
            "sub",
            "--cert",
            path(&signed),
            "--chain",
            path(&root_cert),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let check = t.hsm_acme(&config, &["hsm", "check"]);
    assert!(check.status.success(), "{}", text(&check));
    let verified = openssl(&[
        "verify",
        "-CAfile",
        path(&root_cert),
        path(&t.dir.join("sub.pem")),
    ]);
    assert!(verified.contains(": OK"));
}

#[test]
fn hsm_check_refuses_an_extractable_key_by_name_and_attribute() {
    let t = TestToken::create();
    t.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "leaky",
        "--id",
        "01",
        "--extractable",
    ]);
    let cas = r#"
[[ca]]
name = "root"
key_label = "leaky"
key_type = "ecdsa-p256"
subject = "CN=Leaky Root"
certificate = "root.pem"
"#;
    let config = write_config(&t, cas);
    let out = t.hsm_acme(&config, &["hsm", "check"]);
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("leaky") && report.contains("CKA_EXTRACTABLE is true"),
        "{report}"
    );
    let out = t.hsm_acme(&config, &["ca", "init"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("CKA_EXTRACTABLE is true"),
        "{}",
        text(&out)
    );
    assert!(
        !t.dir.join("root.pem").exists(),
        "no certificate for a refused key"
    );
}

#[test]
fn hsm_info_lists_mechanisms_without_a_pin() {
    let t = TestToken::create();
    let config = write_config(&t, "");
    std::fs::remove_file(t.dir.join("user-pin")).unwrap();
    let out = t.hsm_acme(&config, &["hsm", "info"]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("CKM_ECDSA") && report.contains("CKM_AES_GCM"),
        "{report}"
    );
    assert!(report.contains(TOKEN_LABEL), "{report}");
}

#[test]
fn bad_configuration_is_reported_with_file_and_reason() {
    let t = TestToken::create();
    let config = write_config(&t, "[[ca]]\nname = \"x\"\n");
    let out = t.hsm_acme(&config, &["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    let message = text(&out);
    assert!(
        message.contains("hsm-acme.toml") && message.contains("missing field"),
        "{message}"
    );

    let config = write_config(&t, HIERARCHY);
    let out = t.hsm_acme(&config, &["check-config"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("configuration OK"));
    let out = t.hsm_acme(&config, &["check-config", "--json"]);
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert!(
        answer["report"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "configuration OK")
    );
}
