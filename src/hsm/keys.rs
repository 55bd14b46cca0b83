//! Finding, inspecting and generating keys on the token; building SPKIs from public keys.
//!
//! Keys are found by `CKA_LABEL` (unique, or refused) and then addressed by `CKA_ID`, which
//! pairs a private key with its public key. A private key must be sensitive and never
//! extractable; anything else is refused by name and attribute before it signs anything.

use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::{AnyRef, BitString, ObjectIdentifier, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use ring::rand::{SecureRandom, SystemRandom};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::mechanism::ED25519;
use super::pool::OpError;
use super::profile::{Ed25519Params, Pkcs11Profile};
use super::{KeyType, TokenError};

/// id-ecPublicKey (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (RFC 5480 §2.1.1.1).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (RFC 5480 §2.1.1.1).
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// rsaEncryption (RFC 8017 §A.1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// RFC 8017 §A.1.1 `RSAPublicKey`.
#[derive(Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// One boolean attribute as the token reports it (`None`: the token did not say).
#[derive(Debug, Clone)]
pub struct KeyAttributeReport {
    /// PKCS#11 attribute name.
    pub name: &'static str,
    /// Its value.
    pub value: Option<bool>,
}

/// What `hsm check` shows about a key.
#[derive(Debug, Clone)]
pub struct KeyReport {
    /// The key's label.
    pub label: String,
    /// Its CKA_ID, hex.
    pub id_hex: String,
    /// The key type, when it is one hsm-acme can use.
    pub key_type: Option<KeyType>,
    /// Security-relevant attributes.
    pub attributes: Vec<KeyAttributeReport>,
    /// Reasons the key is refused; empty when it may be used.
    pub refusals: Vec<String>,
    /// Things an auditor should know that do not block use.
    pub warnings: Vec<String>,
}

const CHECKED: [(AttributeType, &str); 7] = [
    (AttributeType::Sensitive, "CKA_SENSITIVE"),
    (AttributeType::Extractable, "CKA_EXTRACTABLE"),
    (AttributeType::AlwaysSensitive, "CKA_ALWAYS_SENSITIVE"),
    (AttributeType::NeverExtractable, "CKA_NEVER_EXTRACTABLE"),
    (AttributeType::Private, "CKA_PRIVATE"),
    (AttributeType::Token, "CKA_TOKEN"),
    (AttributeType::Modifiable, "CKA_MODIFIABLE"),
];

/// Finds the one private (or secret) key labelled `label`.
pub(crate) fn find_by_label(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<ObjectHandle, OpError> {
    let found = session.find_objects(&[
        Attribute::Class(class),
        Attribute::Label(label.as_bytes().to_vec()),
    ])?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(not_found(session, label)?),
        many => Err(TokenError::KeyRefused {
            label: label.to_owned(),
            reason: format!(
                "{} keys carry this label; labels must be unique so the right key signs",
                many.len()
            ),
        }
        .into()),
    }
}

/// Finds the object of `class` with `id` (the private key of a pair, after a re-login).
pub(crate) fn find_by_id(
    session: &Session,
    class: ObjectClass,
    id: &[u8],
    label: &str,
) -> Result<ObjectHandle, OpError> {
    let found = session.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(not_found(session, label)?),
        many => Err(TokenError::KeyRefused {
            label: label.to_owned(),
            reason: format!(
                "{} objects share its CKA_ID; IDs must be unique",
                many.len()
            ),
        }
        .into()),
    }
}

/// Private objects are invisible without a login, so an empty search in a session that has
/// lost its login (a `C_Logout` elsewhere in the process) says nothing about the key.
fn logged_in(session: &Session) -> Result<bool, OpError> {
    use cryptoki::session::SessionState;
    let state = session.get_session_info()?.session_state();
    Ok(!matches!(
        state,
        SessionState::RoPublic | SessionState::RwPublic
    ))
}

/// "Not found", or, in a session without a login, "perhaps logged out": the pool then logs
/// in again and retries when it is meant to be logged in.
fn not_found(session: &Session, label: &str) -> Result<OpError, OpError> {
    let error = TokenError::KeyNotFound {
        label: label.to_owned(),
    };
    Ok(if logged_in(session)? {
        OpError::Token(error)
    } else {
        OpError::MaybeLoggedOut(error)
    })
}

/// Reads a key's identity and security attributes and decides whether it may be used.
pub(crate) fn inspect(
    session: &Session,
    handle: ObjectHandle,
    label: &str,
) -> Result<(Vec<u8>, Option<CkKeyType>, KeyReport), OpError> {
    let mut wanted: Vec<AttributeType> = CHECKED.iter().map(|(t, _)| *t).collect();
    wanted.extend([AttributeType::Id, AttributeType::KeyType]);
    let values = session.get_attributes(handle, &wanted)?;

    let mut id = Vec::new();
    let mut ck_type = None;
    let mut attributes: Vec<KeyAttributeReport> = CHECKED
        .iter()
        .map(|(_, name)| KeyAttributeReport { name, value: None })
        .collect();
    for value in values {
        let (slot, flag) = match value {
            Attribute::Sensitive(v) => (0, v),
            Attribute::Extractable(v) => (1, v),
            Attribute::AlwaysSensitive(v) => (2, v),
            Attribute::NeverExtractable(v) => (3, v),
            Attribute::Private(v) => (4, v),
            Attribute::Token(v) => (5, v),
            Attribute::Modifiable(v) => (6, v),
            Attribute::Id(v) => {
                id = v;
                continue;
            }
            Attribute::KeyType(t) => {
                ck_type = Some(t);
                continue;
            }
            _ => continue,
        };
        attributes[slot].value = Some(flag);
    }

    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    let value = |i: usize| attributes[i].value;
    // DESIGN.md principle 1: the key must never be able to leave the token.
    match value(0) {
        Some(true) => {}
        Some(false) => refusals.push("CKA_SENSITIVE is false: the token would reveal it".into()),
        None => refusals.push("the token does not report CKA_SENSITIVE".into()),
    }
    match value(1) {
        Some(false) => {}
        Some(true) => refusals.push("CKA_EXTRACTABLE is true: the key could be exported".into()),
        None => refusals.push("the token does not report CKA_EXTRACTABLE".into()),
    }
    if value(5) != Some(true) {
        refusals.push("CKA_TOKEN is not true: the key would vanish with the session".into());
    }
    if value(2) == Some(false) {
        warnings.push("CKA_ALWAYS_SENSITIVE is false: the key was readable at some time".into());
    }
    if value(3) == Some(false) {
        warnings.push("CKA_NEVER_EXTRACTABLE is false: the key was exportable at some time".into());
    }
    if value(6) == Some(true) {
        warnings.push("CKA_MODIFIABLE is true: its attributes can still be changed".into());
    }
    if id.is_empty() {
        refusals.push("CKA_ID is empty: the key cannot be paired with its public key".into());
    }
    let report = KeyReport {
        label: label.to_owned(),
        id_hex: id.iter().map(|b| format!("{b:02x}")).collect(),
        key_type: None,
        attributes,
        refusals,
        warnings,
    };
    Ok((id, ck_type, report))
}

/// Reads the public key paired with `id` and returns its type and SPKI.
pub(crate) fn public_key_info(
    session: &Session,
    id: &[u8],
    label: &str,
) -> Result<(KeyType, SubjectPublicKeyInfoOwned), OpError> {
    let handle = find_by_id(session, ObjectClass::PUBLIC_KEY, id, label).map_err(|e| match e {
        OpError::Token(TokenError::KeyNotFound { label }) => {
            OpError::Token(TokenError::KeyRefused {
                label,
                reason: "no public key object with the same CKA_ID".into(),
            })
        }
        other => other,
    })?;
    let refuse = |reason: String| {
        OpError::Token(TokenError::KeyRefused {
            label: label.to_owned(),
            reason,
        })
    };
    let values = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let (mut ck_type, mut params, mut point, mut modulus, mut exponent) =
        (None, None, None, None, None);
    for value in values {
        match value {
            Attribute::KeyType(t) => ck_type = Some(t),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => modulus = Some(v),
            Attribute::PublicExponent(v) => exponent = Some(v),
            _ => {}
        }
    }
    let malformed = |what: &str| refuse(format!("public key: {what}"));
    match ck_type {
        Some(t) if t == CkKeyType::EC => {
            let params = params.ok_or_else(|| malformed("no CKA_EC_PARAMS"))?;
            let curve = ObjectIdentifier::from_der(&params)
                .map_err(|_| malformed("CKA_EC_PARAMS is not a named curve"))?;
            let (key_type, point_len) = match curve {
                P256 => (KeyType::EcdsaP256, 65),
                P384 => (KeyType::EcdsaP384, 97),
                other => return Err(refuse(format!("curve {other} is not P-256 or P-384"))),
            };
            let point = ec_point(
                &point.ok_or_else(|| malformed("no CKA_EC_POINT"))?,
                point_len,
            )
            .ok_or_else(|| malformed("CKA_EC_POINT is not an uncompressed point"))?;
            let spki = spki(
                EC_PUBLIC_KEY,
                Some(der::asn1::Any::encode_from(&curve)),
                &point,
            )
            .map_err(|e| malformed(&e.to_string()))?;
            Ok((key_type, spki))
        }
        Some(t) if t == CkKeyType::EC_EDWARDS => {
            let point = ec_point(&point.ok_or_else(|| malformed("no CKA_EC_POINT"))?, 32)
                .ok_or_else(|| malformed("CKA_EC_POINT is not a 32-byte Ed25519 key"))?;
            let spki = spki(ED25519, None, &point).map_err(|e| malformed(&e.to_string()))?;
            Ok((KeyType::Ed25519, spki))
        }
        Some(t) if t == CkKeyType::RSA => {
            let modulus = modulus.ok_or_else(|| malformed("no CKA_MODULUS"))?;
            let exponent = exponent.ok_or_else(|| malformed("no CKA_PUBLIC_EXPONENT"))?;
            let n = UintRef::new(&modulus).map_err(|e| malformed(&e.to_string()))?;
            let bits = n.as_bytes().len() * 8;
            let key_type = match bits {
                2048 => KeyType::Rsa2048,
                3072 => KeyType::Rsa3072,
                4096 => KeyType::Rsa4096,
                other => {
                    return Err(refuse(format!(
                        "RSA modulus of {other} bits is not supported"
                    )));
                }
            };
            let rsa = RsaPublicKey {
                modulus: n,
                public_exponent: UintRef::new(&exponent).map_err(|e| malformed(&e.to_string()))?,
            };
            let der = rsa.to_der().map_err(|e| malformed(&e.to_string()))?;
            // RFC 3279 §2.3.1: the parameters MUST be NULL.
            let spki = spki(RSA_ENCRYPTION, Some(Ok(AnyRef::NULL.into())), &der)
                .map_err(|e| malformed(&e.to_string()))?;
            Ok((key_type, spki))
        }
        _ => Err(refuse("key type is not EC, EC_EDWARDS or RSA".into())),
    }
}

fn spki(
    oid: ObjectIdentifier,
    parameters: Option<Result<der::asn1::Any, der::Error>>,
    key: &[u8],
) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid,
            parameters: parameters.transpose()?,
        },
        subject_public_key: BitString::from_bytes(key)?,
    })
}

/// `CKA_EC_POINT` is a DER OCTET STRING on most modules and the raw point on some; the
/// expected length of the raw point tells the two apart without guessing.
fn ec_point(value: &[u8], raw_len: usize) -> Option<Vec<u8>> {
    if value.len() == raw_len {
        return Some(value.to_vec());
    }
    let inner = <&OctetStringRef>::from_der(value).ok()?;
    (inner.as_bytes().len() == raw_len).then(|| inner.as_bytes().to_vec())
}

/// A fresh random CKA_ID.
pub(crate) fn random_id(len: usize) -> Result<Vec<u8>, TokenError> {
    let mut id = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| TokenError::Unavailable("the system RNG failed".into()))?;
    Ok(id)
}

/// Attributes every generated private or secret key carries (DESIGN.md principle 1).
fn protected(profile: &Pkcs11Profile, label: &str, id: &[u8]) -> Vec<Attribute> {
    let mut attrs = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    if !profile.keygen.modifiable {
        attrs.push(Attribute::Modifiable(false));
    }
    attrs
}

/// Generates a signing key pair on the token.
pub(crate) fn generate_key_pair(
    session: &Session,
    profile: &Pkcs11Profile,
    label: &str,
    key_type: KeyType,
    id: &[u8],
) -> Result<(), OpError> {
    use cryptoki::mechanism::Mechanism;
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let mut private = protected(profile, label, id);
    private.push(Attribute::Sign(true));
    let mechanism = match key_type {
        KeyType::EcdsaP256 | KeyType::EcdsaP384 => {
            let curve = if key_type == KeyType::EcdsaP256 {
                P256
            } else {
                P384
            };
            let params = curve
                .to_der()
                .map_err(|e| TokenError::Malformed(e.to_string()))?;
            public.push(Attribute::EcParams(params));
            Mechanism::EccKeyPairGen
        }
        KeyType::Ed25519 => {
            let params = match profile.sign.ed25519_params {
                Ed25519Params::Oid => ED25519.to_der(),
                Ed25519Params::PrintableString => {
                    der::asn1::PrintableStringRef::new("edwards25519").and_then(|s| s.to_der())
                }
            }
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
            public.push(Attribute::EcParams(params));
            Mechanism::EccEdwardsKeyPairGen
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = key_type.rsa_bits().unwrap_or(2048);
            public.push(Attribute::ModulusBits(bits.into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    session.generate_key_pair(&mechanism, &public, &private)?;
    Ok(())
}

/// Generates an AES-256 key for sealing secrets.
pub(crate) fn generate_sealing_key(
    session: &Session,
    profile: &Pkcs11Profile,
    label: &str,
    id: &[u8],
) -> Result<(), OpError> {
    let mut template = protected(profile, label, id);
    template.extend([
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(CkKeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ]);
    session.generate_key(&cryptoki::mechanism::Mechanism::AesKeyGen, &template)?;
    Ok(())
}

/// Whether any object (of any class) already carries `label`.
pub(crate) fn label_taken(session: &Session, label: &str) -> Result<bool, OpError> {
    Ok(!session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])?
        .is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_accepts_wrapped_and_raw_forms_only_at_the_right_length() {
        let mut raw = vec![0x04];
        raw.extend([0x3f; 64]);
        assert_eq!(ec_point(&raw, 65).unwrap(), raw);
        let wrapped = OctetStringRef::new(&raw).unwrap().to_der().unwrap();
        assert_eq!(ec_point(&wrapped, 65).unwrap(), raw);
        assert!(ec_point(&raw[..60], 65).is_none());
        assert!(ec_point(&wrapped, 97).is_none());
    }

    #[test]
    fn rsa_spki_has_null_parameters() {
        let n = [0xc5u8; 256];
        let rsa = RsaPublicKey {
            modulus: UintRef::new(&n).unwrap(),
            public_exponent: UintRef::new(&[1, 0, 1]).unwrap(),
        };
        let info = spki(
            RSA_ENCRYPTION,
            Some(Ok(AnyRef::NULL.into())),
            &rsa.to_der().unwrap(),
        )
        .unwrap();
        assert_eq!(
            info.algorithm.parameters.unwrap().to_der().unwrap(),
            vec![0x05, 0x00]
        );
    }
}
