//! Algorithm ↔ PKCS#11 mechanism mapping, and the encodings around it.
//!
//! Every scheme hashes on the host unless the profile says the token hashes: that path works
//! on every module surveyed (research/hsm.md §7.1). The token's raw ECDSA `r‖s` is turned into
//! DER here and nowhere else.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use der::asn1::{Any, AnyRef, ObjectIdentifier, UintRef};
use der::{Encode, Sequence};
use ring::digest;
use spki::AlgorithmIdentifierOwned;

use super::profile::{HashPlacement, PssMode, RsaPkcs1Mode, SignSection};
use super::{SignatureScheme, TokenError};

/// ecdsa-with-SHA256 (RFC 5758 §3.2).
pub(crate) const ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384 (RFC 5758 §3.2).
pub(crate) const ECDSA_WITH_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// sha256WithRSAEncryption (RFC 4055 §5).
pub(crate) const SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// id-RSASSA-PSS (RFC 4055 §3.1).
pub(crate) const RSASSA_PSS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
/// id-mgf1 (RFC 4055 §2.2).
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
/// id-sha256 (RFC 4055 §2.1).
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-Ed25519 (RFC 8410 §3).
pub(crate) const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// DigestInfo prefixes for SHA-256 (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The PSS salt length: the digest length, as RFC 8446 §4.2.3 and the CA/B Forum require.
const PSS_SALT_LEN: u8 = 32;

/// RFC 4055 §3.1 `RSASSA-PSS-params`, with every field present (no DEFAULTs are used).
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u8,
}

fn sha256_identifier() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: SHA256,
        parameters: Some(AnyRef::NULL.into()),
    }
}

/// The X.509 `AlgorithmIdentifier` for `scheme`.
pub(crate) fn algorithm_identifier(
    scheme: SignatureScheme,
) -> Result<AlgorithmIdentifierOwned, der::Error> {
    let (oid, parameters) = match scheme {
        SignatureScheme::EcdsaP256Sha256 => (ECDSA_WITH_SHA256, None),
        SignatureScheme::EcdsaP384Sha384 => (ECDSA_WITH_SHA384, None),
        // RFC 4055 §5: the parameters MUST be NULL.
        SignatureScheme::RsaPkcs1Sha256 => (SHA256_WITH_RSA, Some(AnyRef::NULL.into())),
        SignatureScheme::RsaPssSha256 => (RSASSA_PSS, Some(pss_parameters()?)),
        // RFC 8410 §3: the parameters MUST be absent.
        SignatureScheme::Ed25519 => (ED25519, None),
    };
    Ok(AlgorithmIdentifierOwned { oid, parameters })
}

fn pss_parameters() -> Result<Any, der::Error> {
    let params = PssParams {
        hash_algorithm: sha256_identifier(),
        mask_gen_algorithm: AlgorithmIdentifierOwned {
            oid: MGF1,
            parameters: Some(Any::encode_from(&sha256_identifier())?),
        },
        salt_length: PSS_SALT_LEN,
    };
    Any::encode_from(&params)
}

/// A mechanism plus the bytes to hand to `C_Sign` for it.
pub(crate) struct SignInput {
    pub(crate) mechanism: Mechanism<'static>,
    pub(crate) data: Vec<u8>,
}

/// Chooses the mechanism for `scheme` as the profile says, and prepares the input.
pub(crate) fn sign_input(
    scheme: SignatureScheme,
    profile: &SignSection,
    message: &[u8],
) -> Result<SignInput, TokenError> {
    let sha256 = || digest::digest(&digest::SHA256, message).as_ref().to_vec();
    let (mechanism, data) = match scheme {
        SignatureScheme::EcdsaP256Sha256 => match profile.ecdsa {
            HashPlacement::HostHash => (Mechanism::Ecdsa, sha256()),
            HashPlacement::TokenHash => (Mechanism::EcdsaSha256, message.to_vec()),
        },
        SignatureScheme::EcdsaP384Sha384 => match profile.ecdsa {
            HashPlacement::HostHash => (
                Mechanism::Ecdsa,
                digest::digest(&digest::SHA384, message).as_ref().to_vec(),
            ),
            HashPlacement::TokenHash => (Mechanism::EcdsaSha384, message.to_vec()),
        },
        SignatureScheme::RsaPkcs1Sha256 => match profile.rsa_pkcs1 {
            RsaPkcs1Mode::HostDigestInfo => {
                let mut data = SHA256_DIGEST_INFO.to_vec();
                data.extend_from_slice(&sha256());
                (Mechanism::RsaPkcs, data)
            }
            RsaPkcs1Mode::TokenHash => (Mechanism::Sha256RsaPkcs, message.to_vec()),
        },
        SignatureScheme::RsaPssSha256 => {
            let params = PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: u64::from(PSS_SALT_LEN).into(),
            };
            match profile.rsa_pss {
                PssMode::HostHash => (Mechanism::RsaPkcsPss(params), sha256()),
                PssMode::TokenHash => (Mechanism::Sha256RsaPkcsPss(params), message.to_vec()),
                PssMode::Unsupported => {
                    return Err(TokenError::Unsupported(
                        "this PKCS#11 profile has no RSA-PSS; use rsa_padding = \"pkcs1\"".into(),
                    ));
                }
            }
        }
        SignatureScheme::Ed25519 => (
            Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
            message.to_vec(),
        ),
    };
    Ok(SignInput { mechanism, data })
}

/// RFC 5480 §2.2 / RFC 3279 §2.2.3 `ECDSA-Sig-Value`.
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Converts a PKCS#11 ECDSA signature (`r‖s`, each half the field size) into the DER
/// `ECDSA-Sig-Value` that X.509 and CSRs carry. JWS (RFC 7518 §3.4) keeps the raw form.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, TokenError> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 132 {
        return Err(TokenError::Malformed(format!(
            "ECDSA signature of {} bytes is not r||s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let value = EcdsaSigValue {
        r: UintRef::new(r).map_err(|e| TokenError::Malformed(e.to_string()))?,
        s: UintRef::new(s).map_err(|e| TokenError::Malformed(e.to_string()))?,
    };
    value
        .to_der()
        .map_err(|e| TokenError::Malformed(format!("encoding ECDSA-Sig-Value: {e}")))
}

#[cfg(test)]
mod tests {
    use der::Decode;

    use super::*;

    #[test]
    fn raw_ecdsa_becomes_minimal_der_integers() {
        // r has a leading zero byte (must be stripped), s has its top bit set (needs a pad).
        let mut raw = vec![0u8; 64];
        raw[1] = 0x11;
        raw[32] = 0x80;
        let der = ecdsa_raw_to_der(&raw).unwrap();
        let parsed = EcdsaSigValue::from_der(&der).unwrap();
        assert_eq!(parsed.r.as_bytes()[0], 0x11);
        assert_eq!(parsed.r.as_bytes().len(), 31);
        assert_eq!(parsed.s.as_bytes().len(), 32);
        // 0x80 needs a leading 0x00 on the wire to stay positive.
        assert!(der.windows(3).any(|w| w == [0x02, 0x21, 0x00]));
    }

    #[test]
    fn odd_or_empty_raw_signatures_are_refused() {
        assert!(ecdsa_raw_to_der(&[]).is_err());
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn pss_identifier_carries_sha256_mgf1_and_salt_32() {
        let id = algorithm_identifier(SignatureScheme::RsaPssSha256).unwrap();
        assert_eq!(id.oid, RSASSA_PSS);
        let params = id.parameters.unwrap().to_der().unwrap();
        let parsed = PssParams::from_der(&params).unwrap();
        assert_eq!(parsed.hash_algorithm.oid, SHA256);
        assert_eq!(parsed.mask_gen_algorithm.oid, MGF1);
        assert_eq!(parsed.salt_length, 32);
    }

    #[test]
    fn host_digest_info_is_prefix_plus_sha256() {
        let profile = crate::hsm::Pkcs11Profile::load("softhsm2").unwrap().sign;
        let input = sign_input(SignatureScheme::RsaPkcs1Sha256, &profile, b"abc").unwrap();
        assert_eq!(input.data.len(), 19 + 32);
        assert_eq!(&input.data[..19], &SHA256_DIGEST_INFO);
    }
}
