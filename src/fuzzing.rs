//! Fuzzing entry points: one function per cargo-fuzz target in `fuzz/`.
//!
//! Each function feeds arbitrary bytes to the real parsers and ignores what they return;
//! none may panic, whatever the input. They live in the library so that the fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, built with cargo-fuzz) and the stable corpus replay test
//! (`tests/fuzz_corpora.rs`, run by `cargo test`) call exactly the same code. This module is
//! not an API: it is hidden from the documentation and may change with the fuzz targets.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::acme::{
    AccountStatus, AccountUpdateRequest, AuthorizationUpdateRequest, FinalizeRequest, Identifier,
    KeyChangeRequest, NewAccountRequest, NewAuthzRequest, NewOrderRequest, RevocationRequest,
};
use crate::ca::csr::{KeyPolicy, parse_csr};
use crate::config::Config;
use crate::error::Error;
use crate::hsm::Pkcs11Profile;
use crate::hsm::uri::Pkcs11Uri;
use crate::policy::Policy;
use crate::policy::pattern::{IdentifierPattern, parse_patterns};
use crate::store::{
    AccountRecord, AuthzRecord, BlockedKey, CertRecord, ChallengeRecord, CrlRecord, EabKeyRecord,
    IssuanceIntent, OrderRecord, ValidationInFlight,
};
use crate::va::caa::{CaaRequest, evaluate};
use crate::va::resolver::CaaRecord;
use crate::wfe::jws::{
    Context, KeyRule, VerifierCache, parse_external_account_binding, verify,
    verify_key_change_inner,
};
use crate::wfe::nonce::NonceStore;

/// The request URL every fuzzed JWS is taken to be sent to (and the keyChange inner `url`).
pub const JWS_URL: &str = "https://ca.test/acme/fuzz";
/// Account URLs of the fuzzed server: `kid` is this followed by an account id.
pub const ACCOUNT_URL_PREFIX: &str = "https://ca.test/acme/acct/";
/// The id of the one valid account; [`DEACTIVATED_ACCOUNT_ID`] names a deactivated one.
/// Both hold [`ACCOUNT_JWK`].
pub const VALID_ACCOUNT_ID: &str = "1";
/// The id of a deactivated account.
pub const DEACTIVATED_ACCOUNT_ID: &str = "2";
/// The accounts' key: the P-256 public key of RFC 7515 Appendix A.3.
pub const ACCOUNT_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
/// The RFC 7638 thumbprint of [`ACCOUNT_JWK`].
const ACCOUNT_THUMBPRINT: &str = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U";

/// The CA identities a fuzzed CAA record is checked against.
pub const CAA_IDENTITIES: [&str; 2] = ["letsencrypt.org", "hsm-acme.test"];
/// The account URI a fuzzed CAA `accounturi` is compared with.
pub const CAA_ACCOUNT_URI: &str = "https://ca.test/acme/acct/1";

/// JWS verification (RFC 8555 §6.2–6.5): `data` is a request body.
///
/// The body is verified as sent under each [`KeyRule`]; nonces are random, so a body as
/// sent stops at the nonce check. Then, where the protected header carries a `nonce`, it is
/// replaced by one just issued and the body verified again, which reaches the key lookup,
/// key import and signature check (the re-encoded header makes the signature fail). The
/// bytes also go to the EAB parser (the body itself and any `externalAccountBinding`
/// member) and to the keyChange inner-JWS verifier.
pub fn jws(data: &[u8]) {
    let nonces = NonceStore::new(8, Duration::from_secs(60));
    let verifiers = VerifierCache::default();
    let lookup = |id: &str| -> Result<Option<AccountRecord>, Error> {
        Ok(match id {
            VALID_ACCOUNT_ID => fixed_account(id, AccountStatus::Valid),
            DEACTIVATED_ACCOUNT_ID => fixed_account(id, AccountStatus::Deactivated),
            _ => None,
        })
    };
    let ctx = Context {
        url: JWS_URL,
        nonces: &nonces,
        account_url_prefix: ACCOUNT_URL_PREFIX,
        account: &lookup,
        verifiers: &verifiers,
    };
    for rule in [KeyRule::Jwk, KeyRule::Kid, KeyRule::Either] {
        let _ = verify(data, rule, &ctx);
        if let Some(body) = with_live_nonce(data, &nonces) {
            let _ = verify(&body, rule, &ctx);
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        let _ = parse_external_account_binding(&value);
        if let Some(eab) = value.get("externalAccountBinding") {
            let _ = parse_external_account_binding(eab);
        }
    }
    let _ = verify_key_change_inner(data, JWS_URL);
}

/// An account holding [`ACCOUNT_JWK`].
fn fixed_account(id: &str, status: AccountStatus) -> Option<AccountRecord> {
    Some(AccountRecord {
        id: id.to_owned(),
        status,
        contact: vec!["mailto:fuzz@ca.test".into()],
        tos_agreed: Some(true),
        tos_version: None,
        approval_expires: None,
        jwk: serde_json::from_str(ACCOUNT_JWK).ok()?,
        thumbprint: ACCOUNT_THUMBPRINT.to_owned(),
        created: 0,
        eab_kid: None,
        profile: "default".into(),
    })
}

/// `body` with the protected header's `nonce` replaced by a fresh one from `nonces`; `None`
/// unless `body` is a JSON object whose `protected` member decodes to a JSON object with a
/// `nonce`.
fn with_live_nonce(body: &[u8], nonces: &NonceStore) -> Option<Vec<u8>> {
    let mut outer: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let protected = outer.get("protected")?.as_str()?;
    let header_bytes = URL_SAFE_NO_PAD.decode(protected).ok()?;
    let mut header: Map<String, Value> = serde_json::from_slice(&header_bytes).ok()?;
    let nonce = header.get_mut("nonce")?;
    *nonce = Value::String(nonces.issue());
    let header_bytes = serde_json::to_vec(&header).ok()?;
    outer.insert(
        "protected".into(),
        Value::String(URL_SAFE_NO_PAD.encode(header_bytes)),
    );
    serde_json::to_vec(&outer).ok()
}

/// RFC 8555 request payloads: `data` is a JWS payload, parsed as every request type;
/// identifiers that parse are checked by the issuance policy and read back as patterns.
/// The bytes, as text, are also parsed as identifier patterns (EAB `--allowed-domains`).
pub fn payloads(data: &[u8]) {
    let policies = [
        Policy::default(),
        Policy {
            allowed_domains: vec!["example.com".into(), "ca.test".into()],
            max_identifiers: 3,
            wildcards: false,
            ip_identifiers: false,
            wildcard_http01: true,
            ..Policy::default()
        },
    ];
    let _ = serde_json::from_slice::<NewAccountRequest>(data);
    let _ = serde_json::from_slice::<AccountUpdateRequest>(data);
    let _ = serde_json::from_slice::<KeyChangeRequest>(data);
    let _ = serde_json::from_slice::<RevocationRequest>(data);
    let _ = serde_json::from_slice::<FinalizeRequest>(data);
    let _ = serde_json::from_slice::<AuthorizationUpdateRequest>(data);
    let mut identifiers = Vec::new();
    if let Ok(order) = serde_json::from_slice::<NewOrderRequest>(data) {
        identifiers = order.identifiers;
    }
    if let Ok(authz) = serde_json::from_slice::<NewAuthzRequest>(data) {
        identifiers.push(authz.identifier);
    }
    for policy in &policies {
        if let Ok(checked) = policy.check_identifiers(&identifiers) {
            for identifier in &checked {
                covered_by_itself(policy, identifier);
            }
        }
    }

    let text = String::from_utf8_lossy(data);
    if let Ok(pattern) = IdentifierPattern::from_str(&text) {
        let _ = pattern.to_string();
    }
    if let Ok(patterns) = parse_patterns(&text) {
        for pattern in &patterns {
            for identifier in &identifiers {
                let _ = pattern.covers(identifier);
            }
        }
    }
}

/// A normalised identifier against the pattern written the same way, and its challenges.
fn covered_by_itself(policy: &Policy, identifier: &Identifier) {
    let base = identifier.wildcard_base();
    let _ = policy.challenges_for(identifier, base.is_some());
    if let Ok(pattern) = IdentifierPattern::from_str(&identifier.value) {
        let _ = pattern.covers(identifier);
    }
}

/// Finalize CSRs (RFC 2986): `data` is DER, decoded and checked under the default key
/// policy and under one that admits RSA-1024 and Ed25519, so more inputs reach the
/// signature and name checks.
pub fn csr(data: &[u8]) {
    let permissive = KeyPolicy {
        rsa_min_bits: 1024,
        allow_ed25519: true,
        ..KeyPolicy::default()
    };
    for policy in [KeyPolicy::default(), permissive] {
        let _ = parse_csr(data, &policy);
    }
}

/// Stored records, as JSON. The store's own decoder (`store::codec::decode`: one version
/// byte, then this JSON) is private, so the fuzzer feeds the JSON form of every public
/// record type; a record that parses is encoded again.
pub fn record(data: &[u8]) {
    json_round::<AccountRecord>(data);
    json_round::<OrderRecord>(data);
    json_round::<AuthzRecord>(data);
    json_round::<ChallengeRecord>(data);
    json_round::<CertRecord>(data);
    json_round::<EabKeyRecord>(data);
    json_round::<CrlRecord>(data);
    json_round::<IssuanceIntent>(data);
    json_round::<BlockedKey>(data);
    json_round::<ValidationInFlight>(data);
}

fn json_round<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(record) = serde_json::from_slice::<T>(data) {
        let _ = serde_json::to_vec(&record);
    }
}

/// The configuration file: `data` as TOML text (non-UTF-8 input is skipped), parsed and
/// checked as a configuration, as a PKCS#11 profile, and as a PKCS#11 URI.
///
/// A configuration whose `[hsm] profile` is a path is not given to [`Config::parse`],
/// which would read that file: the fuzzer must not read `/dev/zero` or block on a FIFO.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !names_a_profile_file(text) {
        let _ = Config::parse(Path::new("/nonexistent/fuzz.toml"), text);
    }
    let _ = Pkcs11Profile::parse("fuzz.toml", text);
    let _ = Pkcs11Uri::parse(text);
}

/// Whether `text` is TOML whose `[hsm] profile` is a string that `Pkcs11Profile::load`
/// would take for a path.
fn names_a_profile_file(text: &str) -> bool {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return false;
    };
    table
        .get("hsm")
        .and_then(|hsm| hsm.get("profile"))
        .and_then(toml::Value::as_str)
        .is_some_and(|spec| spec.contains('/') || spec.ends_with(".toml"))
}

/// CAA policy (RFC 8659 §4, RFC 8657): the value grammar is private to `va::caa`, so the
/// bytes reach it through the public [`evaluate`]. First the whole input is the value of
/// one `issue` record, and of one `issuewild` record for a wildcard; then each line is
/// read as a record in presentation form, `<flags> <tag> <value>` (the value may be
/// quoted), and the set is evaluated for a plain name and for a wildcard.
pub fn caa(data: &[u8]) {
    let identities: Vec<String> = CAA_IDENTITIES.iter().map(|s| (*s).to_owned()).collect();
    let request = |wildcard: bool, method: &'static str| CaaRequest {
        name: "www.example.com",
        wildcard,
        identities: &identities,
        account_uri: CAA_ACCOUNT_URI,
        method,
    };
    let whole = |tag: &str| CaaRecord {
        flags: 0,
        tag: tag.to_owned(),
        value: data.to_vec(),
    };
    let _ = evaluate("example.com", &[whole("issue")], &request(false, "dns-01"));
    let _ = evaluate(
        "example.com",
        &[whole("issuewild")],
        &request(true, "http-01"),
    );

    let records: Vec<CaaRecord> = data
        .split(|b| *b == b'\n')
        .filter_map(presentation_record)
        .collect();
    if !records.is_empty() {
        let _ = evaluate("example.com", &records, &request(false, "http-01"));
        let _ = evaluate("example.com", &records, &request(true, "dns-01"));
    }
}

/// `<flags> <tag> <value>`: flags a decimal octet (anything else is 0), the value the rest
/// of the line without surrounding quotes. `None` for a line without a tag.
fn presentation_record(line: &[u8]) -> Option<CaaRecord> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |b| *b == b' ');
    let flags = std::str::from_utf8(parts.next()?)
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    let tag = String::from_utf8_lossy(parts.next()?).into_owned();
    let value = parts.next().unwrap_or_default();
    let value = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(value);
    Some(CaaRecord {
        flags,
        tag,
        value: value.to_vec(),
    })
}
