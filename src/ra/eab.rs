//! External account binding (RFC 8555 §7.3.4): the keys the operator hands out, the rules
//! a newAccount's binding must meet before any account exists, and what a binding limits
//! afterwards (allowed names, pre-validated names, a revoked key).
//!
//! Two kinds of key: an HMAC key (RFC 8555 §7.3.4 as written), drawn from the token's RNG
//! and stored only sealed by the token's AES-GCM key; and a public key registered by the
//! operator (EJBCA's "asymmetric" EAB), whose private half signs the binding. Either way
//! the binding is a JWS over the account's JWK with `kid` and `url` in its header.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::{Decode, DecodePem};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::acme::ExternalAccountBinding;
use crate::acme::Identifier;
use crate::acme::jwk::{spki_to_jwk, thumbprint, verifier};
use crate::acme::problem::{ProblemType, Subproblem};
use crate::error::{Error, ErrorKind};
use crate::hsm::Sealer;
use crate::policy::pattern::any_covers;
use crate::store::{AccountRecord, EabCredential, EabKeyRecord, Store, StoreReader, Tx};

/// MAC algorithms for HMAC keys, and the key length each gets: the hash's output size
/// (RFC 7518 §3.2 asks at least that; some clients refuse keys under 256 bits).
pub const HMAC_ALGORITHMS: [(&str, usize); 3] = [("HS256", 32), ("HS384", 48), ("HS512", 64)];

/// What the operator asks for in `eab create`.
#[derive(Debug, Clone)]
pub struct NewEabKey {
    /// The ACME profile whose accounts it binds.
    pub profile: String,
    /// An HMAC key of this algorithm, or a registered public key.
    pub credential: NewCredential,
    /// Patterns bound accounts may order (checked by the caller).
    pub allowed_domains: Vec<String>,
    /// Patterns whose authorizations are created valid.
    pub prevalidated_domains: Vec<String>,
    /// When it stops binding new accounts.
    pub expires: Option<u64>,
    /// Whether it binds more than one account.
    pub reusable: bool,
    /// The operator's note.
    pub label: Option<String>,
}

/// The credential of a new key.
#[derive(Debug, Clone)]
pub enum NewCredential {
    /// An HMAC key for `HS256`, `HS384` or `HS512`, generated on the token.
    Hmac(String),
    /// A public key or certificate, PEM.
    PublicKey(String),
}

/// A key just created; `hmac_key` is shown to the operator once and never again.
#[derive(Debug)]
pub struct CreatedEabKey {
    /// The stored record (the sealed key only).
    pub record: EabKeyRecord,
    /// The HMAC key, base64url without padding, for HMAC keys.
    pub hmac_key: Option<Zeroizing<String>>,
}

/// The associated data an HMAC key is sealed with: a sealed key copied to another kid or
/// profile does not unseal.
fn sealing_aad(kid: &str, profile: &str) -> Vec<u8> {
    format!("hsm-acme eab v1\0{kid}\0{profile}").into_bytes()
}

/// The JWS algorithm a registered public key signs with.
fn public_key_alg(jwk: &Value) -> Option<&'static str> {
    match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
        (Some("EC"), Some("P-256")) => Some("ES256"),
        (Some("EC"), Some("P-384")) => Some("ES384"),
        (Some("RSA"), _) => Some("RS256"),
        (Some("OKP"), Some("Ed25519")) => Some("EdDSA"),
        _ => None,
    }
}

/// Reads a PEM public key or certificate as the JWK a binding must verify with.
pub fn registered_public_key(pem: &str) -> Result<(String, Value), Error> {
    let bad = |why: String| Error::malformed(format!("public key: {why}"));
    let spki = if pem.contains("-----BEGIN CERTIFICATE-----") {
        let cert = Certificate::from_pem(pem.trim()).map_err(|e| bad(e.to_string()))?;
        cert.tbs_certificate().subject_public_key_info().clone()
    } else if pem.contains("-----BEGIN PUBLIC KEY-----") {
        let (label, der) =
            der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| bad(e.to_string()))?;
        if label != "PUBLIC KEY" {
            return Err(bad(format!("a PEM {label:?} block is not a public key")));
        }
        SubjectPublicKeyInfoOwned::from_der(&der).map_err(|e| bad(e.to_string()))?
    } else {
        return Err(bad(
            "expected a PEM \"PUBLIC KEY\" or \"CERTIFICATE\" (a private key is never taken)"
                .into(),
        ));
    };
    let jwk = spki_to_jwk(&spki)
        .ok_or_else(|| bad("only P-256, P-384, RSA and Ed25519 keys can sign bindings".into()))?;
    let alg = public_key_alg(&jwk)
        .ok_or_else(|| bad("only P-256, P-384, RSA and Ed25519 keys can sign bindings".into()))?;
    // Refuses what could never verify, such as RSA under 2048 bits.
    verifier(alg, &jwk).map_err(|e| bad(e.detail))?;
    Ok((alg.to_owned(), jwk))
}

/// Creates a key: the kid is random, an HMAC key comes from the token's RNG and is stored
/// only sealed. `now` is Unix seconds.
pub fn create_key(
    store: &Store,
    sealer: Option<&dyn Sealer>,
    spec: NewEabKey,
    now: u64,
) -> Result<CreatedEabKey, Error> {
    if spec.expires.is_some_and(|at| at <= now) {
        return Err(Error::malformed("the expiry lies in the past"));
    }
    let mut id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| Error::internal("the system RNG failed"))?;
    let kid = URL_SAFE_NO_PAD.encode(id);
    let (credential, hmac_key) = match &spec.credential {
        NewCredential::Hmac(alg) => {
            let (alg, len) = HMAC_ALGORITHMS
                .iter()
                .find(|(name, _)| name == alg)
                .copied()
                .ok_or_else(|| {
                    Error::malformed(format!("MAC algorithm {alg:?}: use HS256, HS384 or HS512"))
                })?;
            let sealer = sealer.ok_or_else(|| {
                Error::malformed(
                    "HMAC keys are sealed on the token: configure [sealing] key_label \
                     (and create the key with `hsm-acme hsm keygen`)",
                )
            })?;
            let key = sealer.random(len)?;
            let sealed = sealer.seal(&key, &sealing_aad(&kid, &spec.profile))?;
            let shown = Zeroizing::new(URL_SAFE_NO_PAD.encode(key.as_slice()));
            (
                EabCredential::Hmac {
                    alg: alg.to_owned(),
                    sealed,
                },
                Some(shown),
            )
        }
        NewCredential::PublicKey(pem) => {
            let (alg, jwk) = registered_public_key(pem)?;
            (EabCredential::PublicKey { alg, jwk }, None)
        }
    };
    let record = EabKeyRecord {
        kid,
        profile: spec.profile,
        credential,
        label: spec.label,
        allowed_domains: spec.allowed_domains,
        prevalidated_domains: spec.prevalidated_domains,
        expires: spec.expires,
        reusable: spec.reusable,
        created: now,
        revoked: None,
        bindings: 0,
    };
    let stored = record.clone();
    store.write(move |tx| {
        if tx.get::<EabKeyRecord>(&stored.kid)?.is_some() {
            return Err(Error::internal("a random kid collided"));
        }
        tx.put(&stored)?;
        Ok(())
    })?;
    Ok(CreatedEabKey { record, hmac_key })
}

/// Revokes a key: it binds no new account, and accounts it bound may order no more.
pub fn revoke_key_in(tx: &mut Tx<'_>, kid: &str, now: u64) -> Result<EabKeyRecord, Error> {
    let mut record = tx
        .get::<EabKeyRecord>(kid)?
        .ok_or_else(|| Error::not_found(format!("no EAB key {kid:?}")))?;
    if record.revoked.is_some() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("EAB key {kid:?} is already revoked"),
        ));
    }
    record.revoked = Some(now);
    tx.put(&record)?;
    Ok(record)
}

/// Whether a key can bind another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// It can.
    Usable,
    /// A single-use key that already bound its account.
    Used,
    /// Past `expires`.
    Expired,
    /// Revoked by the operator.
    Revoked,
}

impl KeyState {
    /// The state of `record` at `now`; revocation wins over expiry, expiry over use.
    pub fn of(record: &EabKeyRecord, now: u64) -> Self {
        if record.revoked.is_some() {
            Self::Revoked
        } else if record.expires.is_some_and(|at| at <= now) {
            Self::Expired
        } else if !record.reusable && record.bindings > 0 {
            Self::Used
        } else {
            Self::Usable
        }
    }

    /// Its name in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::Used => "used",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Why `record` may not bind another account at `now`, if it may not. Checked before the
/// MAC and again inside the transaction that binds.
fn binding_refused(record: &EabKeyRecord, now: u64) -> Option<String> {
    let kid = &record.kid;
    match KeyState::of(record, now) {
        KeyState::Usable => None,
        KeyState::Revoked => Some(format!("EAB key {kid:?} was revoked")),
        KeyState::Expired => Some(format!("EAB key {kid:?} has expired")),
        KeyState::Used => Some(format!(
            "EAB key {kid:?} is for one account and is already bound"
        )),
    }
}

/// Checks a binding against its key (RFC 8555 §7.3.4), before the account exists: `url`
/// is the newAccount URL, `alg` the key's, the MAC (compared in constant time) or
/// signature right, the payload the outer JWS's key, and the key still able to bind.
pub(super) fn check_binding(
    binding: &ExternalAccountBinding,
    record: &EabKeyRecord,
    sealer: Option<&dyn Sealer>,
    new_account_url: &str,
    profile: &str,
    outer_thumbprint: &str,
    now: u64,
) -> Result<(), Error> {
    if binding.url != new_account_url {
        return Err(Error::malformed(format!(
            "externalAccountBinding: \"url\" {:?} is not the newAccount URL {new_account_url:?}",
            binding.url
        )));
    }
    let unauthorized = |why: String| Error::unauthorized(format!("externalAccountBinding: {why}"));
    if record.profile != profile {
        return Err(unauthorized(format!(
            "EAB key {:?} is not for this ACME profile",
            record.kid
        )));
    }
    if binding.alg != record.credential.alg() {
        return Err(unauthorized(format!(
            "EAB key {:?} is {}; the binding says {:?}",
            record.kid,
            record.credential.alg(),
            binding.alg
        )));
    }
    match &record.credential {
        EabCredential::Hmac { alg, sealed } => {
            let algorithm = match alg.as_str() {
                "HS256" => ring::hmac::HMAC_SHA256,
                "HS384" => ring::hmac::HMAC_SHA384,
                "HS512" => ring::hmac::HMAC_SHA512,
                other => return Err(Error::internal(format!("stored MAC algorithm {other:?}"))),
            };
            let sealer = sealer.ok_or_else(|| {
                Error::internal("an HMAC EAB key is stored but no [sealing] key is configured")
            })?;
            let key = sealer.unseal(sealed, &sealing_aad(&record.kid, &record.profile))?;
            let mac_key = ring::hmac::Key::new(algorithm, &key);
            drop(key);
            // ring compares in constant time.
            ring::hmac::verify(
                &mac_key,
                binding.signing_input.as_bytes(),
                &binding.signature,
            )
            .map_err(|_| unauthorized("the MAC does not verify with this kid's key".into()))?;
        }
        EabCredential::PublicKey { alg, jwk } => {
            verifier(alg, jwk)?
                .verify(binding.signing_input.as_bytes(), &binding.signature)
                .map_err(|_| {
                    unauthorized("the signature does not verify with this kid's public key".into())
                })?;
        }
    }
    let payload: Value = serde_json::from_slice(&binding.payload)
        .map_err(|e| Error::malformed(format!("externalAccountBinding payload: {e}")))?;
    if !payload.is_object() || thumbprint(&payload)? != outer_thumbprint {
        return Err(unauthorized(
            "the payload is not the key that signs this newAccount request".into(),
        ));
    }
    if let Some(why) = binding_refused(record, now) {
        return Err(unauthorized(why));
    }
    Ok(())
}

/// Records that `kid` bound `account_id`, refusing if the key became unusable since it
/// was checked (a single-use key raced by two newAccount requests binds one of them).
pub(super) fn bind_in(tx: &mut Tx<'_>, kid: &str, account_id: &str, now: u64) -> Result<(), Error> {
    let mut record = tx.get::<EabKeyRecord>(kid)?.ok_or_else(|| {
        Error::unauthorized(format!("externalAccountBinding: no EAB key {kid:?}"))
    })?;
    if let Some(why) = binding_refused(&record, now) {
        return Err(Error::unauthorized(format!(
            "externalAccountBinding: {why}"
        )));
    }
    record.bindings += 1;
    tx.put(&record)?;
    tx.link_eab_account(kid, account_id)?;
    Ok(())
}

/// The binding key of `account`, when it has one; new orders of accounts whose key was
/// revoked are refused.
pub(super) fn binding_of(
    reader: &StoreReader,
    account: &AccountRecord,
) -> Result<Option<EabKeyRecord>, Error> {
    let Some(kid) = &account.eab_kid else {
        return Ok(None);
    };
    let record = reader
        .get::<EabKeyRecord>(kid)?
        .ok_or_else(|| Error::internal(format!("account bound to missing EAB key {kid:?}")))?;
    if record.revoked.is_some() {
        return Err(Error::unauthorized(format!(
            "the external account binding key {kid:?} of this account was revoked by the \
             operator; no new orders are accepted"
        )));
    }
    Ok(Some(record))
}

/// Refuses identifiers outside the key's `allowed_domains` (when it has any), each as a
/// subproblem (RFC 8555 §6.7.1).
pub(super) fn check_allowed(
    record: &EabKeyRecord,
    identifiers: &[Identifier],
) -> Result<(), Error> {
    if record.allowed_domains.is_empty() {
        return Ok(());
    }
    let problems: Vec<Subproblem> = identifiers
        .iter()
        .filter(|id| !any_covers(&record.allowed_domains, id))
        .map(|id| {
            Subproblem::new(
                ProblemType::RejectedIdentifier,
                format!(
                    "{} is not among the names this account was registered for",
                    id.value
                ),
                id.clone(),
            )
        })
        .collect();
    match problems.len() {
        0 => Ok(()),
        n => Err(Error::new(
            ErrorKind::RejectedIdentifier,
            if n == 1 {
                problems[0].detail.clone()
            } else {
                format!("{n} identifiers are outside this account's registration; see subproblems")
            },
        )
        .with_subproblems(problems)),
    }
}

/// Whether the key pre-validates `identifier` (as ordered: `*.x` for a wildcard).
pub(super) fn prevalidates(record: &EabKeyRecord, identifier: &Identifier) -> bool {
    any_covers(&record.prevalidated_domains, identifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::{Sealed, TokenError};

    /// A sealer for pure rule tests: "seals" by XOR, so only the rules are under test;
    /// the token's sealing is tested on SoftHSM.
    #[derive(Debug)]
    struct XorSealer;

    impl Sealer for XorSealer {
        fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, TokenError> {
            Ok(Sealed {
                key_label: "test".into(),
                iv: aad.to_vec(),
                ciphertext: plaintext.iter().map(|b| b ^ 0x5a).collect(),
            })
        }
        fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, TokenError> {
            if sealed.iv != aad {
                return Err(TokenError::UnsealFailed);
            }
            Ok(Zeroizing::new(
                sealed.ciphertext.iter().map(|b| b ^ 0x5a).collect(),
            ))
        }
        fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, TokenError> {
            let mut out = vec![0u8; len];
            SystemRandom::new()
                .fill(&mut out)
                .map_err(|_| TokenError::UnsealFailed)?;
            Ok(Zeroizing::new(out))
        }
    }

    const URL: &str = "https://ca.test/acme/new-account";

    fn account_jwk() -> Value {
        serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        (dir, store)
    }

    fn hmac_key(store: &Store, alg: &str, reusable: bool) -> (EabKeyRecord, Vec<u8>) {
        let created = create_key(
            store,
            Some(&XorSealer),
            NewEabKey {
                profile: "default".into(),
                credential: NewCredential::Hmac(alg.into()),
                allowed_domains: vec![],
                prevalidated_domains: vec![],
                expires: None,
                reusable,
                label: None,
            },
            100,
        )
        .unwrap();
        let key = URL_SAFE_NO_PAD
            .decode(created.hmac_key.unwrap().as_bytes())
            .unwrap();
        (created.record, key)
    }

    fn binding(
        header: &Value,
        payload: &Value,
        alg: ring::hmac::Algorithm,
        key: &[u8],
    ) -> ExternalAccountBinding {
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload_b64 = URL_SAFE_NO_PAD.encode(payload.to_string());
        let input = format!("{protected}.{payload_b64}");
        let tag = ring::hmac::sign(&ring::hmac::Key::new(alg, key), input.as_bytes());
        ExternalAccountBinding {
            alg: header["alg"].as_str().unwrap().into(),
            kid: header["kid"].as_str().unwrap().into(),
            url: header["url"].as_str().unwrap().into(),
            payload: payload.to_string().into_bytes(),
            signature: tag.as_ref().to_vec(),
            signing_input: input,
        }
    }

    fn check(b: &ExternalAccountBinding, record: &EabKeyRecord, now: u64) -> Result<(), Error> {
        let outer = thumbprint(&account_jwk()).unwrap();
        check_binding(b, record, Some(&XorSealer), URL, "default", &outer, now)
    }

    #[test]
    fn hmac_keys_are_long_enough_and_stored_sealed() {
        let (_dir, store) = store();
        for (alg, len) in HMAC_ALGORITHMS {
            let (record, key) = hmac_key(&store, alg, false);
            assert_eq!(key.len(), len);
            assert!(key.len() >= 32);
            let EabCredential::Hmac { sealed, .. } = &record.credential else {
                panic!("not an HMAC key");
            };
            assert_ne!(sealed.ciphertext, key);
            assert_eq!(
                store.reader().get::<EabKeyRecord>(&record.kid).unwrap(),
                Some(record.clone())
            );
        }
    }

    #[test]
    fn a_binding_is_checked_as_rfc_8555_7_3_4_says() {
        let (_dir, store) = store();
        let (record, key) = hmac_key(&store, "HS256", false);
        let header = serde_json::json!({"alg": "HS256", "kid": record.kid, "url": URL});
        let good = binding(&header, &account_jwk(), ring::hmac::HMAC_SHA256, &key);
        check(&good, &record, 200).unwrap();

        let kind =
            |b: &ExternalAccountBinding, r: &EabKeyRecord| check(b, r, 200).unwrap_err().kind;
        // Wrong key.
        let wrong = binding(&header, &account_jwk(), ring::hmac::HMAC_SHA256, &[7u8; 32]);
        assert_eq!(kind(&wrong, &record), ErrorKind::Unauthorized);
        // Another URL.
        let mut other_url = header.clone();
        other_url["url"] = "https://ca.test/acme/new-order".into();
        let b = binding(&other_url, &account_jwk(), ring::hmac::HMAC_SHA256, &key);
        assert_eq!(kind(&b, &record), ErrorKind::Malformed);
        // Another algorithm than the key's.
        let mut hs512 = header.clone();
        hs512["alg"] = "HS512".into();
        let b = binding(&hs512, &account_jwk(), ring::hmac::HMAC_SHA512, &key);
        assert_eq!(kind(&b, &record), ErrorKind::Unauthorized);
        // A payload that is another key.
        let mut other_key = account_jwk();
        other_key["x"] = "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0".into();
        let b = binding(&header, &other_key, ring::hmac::HMAC_SHA256, &key);
        assert_eq!(kind(&b, &record), ErrorKind::Unauthorized);
        // Revoked, expired, another profile.
        let mut revoked = record.clone();
        revoked.revoked = Some(150);
        assert_eq!(kind(&good, &revoked), ErrorKind::Unauthorized);
        let mut expired = record.clone();
        expired.expires = Some(150);
        assert_eq!(kind(&good, &expired), ErrorKind::Unauthorized);
        let mut elsewhere = record.clone();
        elsewhere.profile = "other".into();
        assert_eq!(kind(&good, &elsewhere), ErrorKind::Unauthorized);
        // The sealed key is bound to its kid and profile: moved, it does not unseal.
        let EabCredential::Hmac { sealed, .. } = &record.credential else {
            panic!("not an HMAC key");
        };
        assert!(
            XorSealer
                .unseal(sealed, &sealing_aad(&record.kid, "other"))
                .is_err()
        );
        assert!(
            XorSealer
                .unseal(sealed, &sealing_aad("other", "default"))
                .is_err()
        );
    }

    #[test]
    fn a_single_use_key_binds_once_and_a_reusable_one_many_times() {
        let (_dir, store) = store();
        let (single, _) = hmac_key(&store, "HS256", false);
        let (reusable, _) = hmac_key(&store, "HS384", true);
        store
            .write(|tx| bind_in(tx, &single.kid, "a1", 200))
            .unwrap();
        let err = store
            .write(|tx| bind_in(tx, &single.kid, "a2", 200))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        for account in ["b1", "b2", "b3"] {
            store
                .write(|tx| bind_in(tx, &reusable.kid, account, 200))
                .unwrap();
        }
        let reader = store.reader();
        assert_eq!(reader.accounts_of_eab(&single.kid).unwrap(), ["a1"]);
        assert_eq!(reader.accounts_of_eab(&reusable.kid).unwrap().len(), 3);
        store
            .write(|tx| revoke_key_in(tx, &reusable.kid, 300).map(drop))
            .unwrap();
        let err = store
            .write(|tx| bind_in(tx, &reusable.kid, "b4", 300))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized);
    }

    #[test]
    fn allowed_domains_refuse_each_name_outside_them() {
        let record = EabKeyRecord {
            kid: "k".into(),
            profile: "default".into(),
            credential: EabCredential::PublicKey {
                alg: "ES256".into(),
                jwk: account_jwk(),
            },
            label: None,
            allowed_domains: vec!["*.corp.example".into(), "10.0.0.0/8".into()],
            prevalidated_domains: vec!["ss1.corp.example".into()],
            expires: None,
            reusable: true,
            created: 0,
            revoked: None,
            bindings: 0,
        };
        let ok = [
            Identifier::dns("a.corp.example"),
            Identifier::ip("10.2.3.4".parse().unwrap()),
        ];
        check_allowed(&record, &ok).unwrap();
        let err = check_allowed(
            &record,
            &[
                Identifier::dns("a.corp.example"),
                Identifier::dns("evil.example"),
                Identifier::ip("192.0.2.1".parse().unwrap()),
            ],
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::RejectedIdentifier);
        assert_eq!(err.subproblems.len(), 2);
        assert!(prevalidates(&record, &Identifier::dns("ss1.corp.example")));
        assert!(!prevalidates(&record, &Identifier::dns("ss2.corp.example")));
    }

    #[test]
    fn public_keys_are_registered_from_pem_and_private_keys_refused() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let (alg, jwk) = registered_public_key(&pair.public_key_pem()).unwrap();
        assert_eq!(alg, "ES384");
        assert_eq!(jwk["crv"], "P-384");
        assert!(registered_public_key(&pair.serialize_pem()).is_err());
        assert!(registered_public_key("not pem").is_err());
        // A certificate stands for its key.
        let cert = rcgen::CertificateParams::new(vec!["client.corp.example".to_owned()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        assert_eq!(registered_public_key(&cert.pem()).unwrap(), (alg, jwk));
    }
}
