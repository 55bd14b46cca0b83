//! Software verification of X.509 signatures (ring): checks of what the token signed, of
//! certificate chains on import, and of CSR self-signatures.

use der::Decode;
use der::asn1::ObjectIdentifier;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const RSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The key and algorithm pair is not one we accept.
    #[error("unsupported signature algorithm {algorithm} for a {key} key")]
    Unsupported {
        /// Signature algorithm OID.
        algorithm: String,
        /// Key algorithm (and curve).
        key: String,
    },
    /// The signature does not match.
    #[error("signature does not verify")]
    BadSignature,
}

fn ring_algorithm(
    key: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
) -> Option<&'static dyn VerificationAlgorithm> {
    let curve = key
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let alg: &'static dyn VerificationAlgorithm = match (key.algorithm.oid, curve, algorithm.oid) {
        (EC_PUBLIC_KEY, Some(P256), ECDSA_SHA256) => &signature::ECDSA_P256_SHA256_ASN1,
        (EC_PUBLIC_KEY, Some(P256), ECDSA_SHA384) => &signature::ECDSA_P256_SHA384_ASN1,
        (EC_PUBLIC_KEY, Some(P384), ECDSA_SHA256) => &signature::ECDSA_P384_SHA256_ASN1,
        (EC_PUBLIC_KEY, Some(P384), ECDSA_SHA384) => &signature::ECDSA_P384_SHA384_ASN1,
        (RSA_ENCRYPTION, _, RSA_SHA256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (RSA_ENCRYPTION, _, RSA_SHA384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (RSA_ENCRYPTION, _, RSA_SHA512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (RSA_ENCRYPTION, _, RSA_PSS) if is_pss_sha256(algorithm) => {
            &signature::RSA_PSS_2048_8192_SHA256
        }
        (ED25519, _, ED25519) => &signature::ED25519,
        _ => return None,
    };
    Some(alg)
}

/// Accepts exactly the RSASSA-PSS parameters hsm-acme itself writes: SHA-256, MGF1-SHA-256,
/// a 32-byte salt (ring verifies exactly that combination).
fn is_pss_sha256(algorithm: &AlgorithmIdentifierOwned) -> bool {
    let Some(params) = &algorithm.parameters else {
        return false;
    };
    let Ok(der) = der::Encode::to_der(params) else {
        return false;
    };
    let expected = crate::hsm::SignatureScheme::RsaPssSha256
        .algorithm_identifier()
        .ok()
        .and_then(|id| id.parameters)
        .and_then(|p| der::Encode::to_der(&p).ok());
    expected.is_some_and(|e| e == der)
}

/// Verifies `signature` over `message` made by `key` with `algorithm` (X.509 encodings:
/// DER `ECDSA-Sig-Value` for ECDSA).
pub fn verify_signature(
    key: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let alg = ring_algorithm(key, algorithm).ok_or_else(|| VerifyError::Unsupported {
        algorithm: algorithm.oid.to_string(),
        key: key.algorithm.oid.to_string(),
    })?;
    UnparsedPublicKey::new(alg, key.subject_public_key.raw_bytes())
        .verify(message, signature)
        .map_err(|_| VerifyError::BadSignature)
}

/// Verifies that `cert` was signed by the holder of `issuer_key`.
pub fn verify_certificate(
    cert: &x509_cert::Certificate,
    issuer_key: &SubjectPublicKeyInfoOwned,
) -> Result<(), VerifyError> {
    let tbs = der::Encode::to_der(cert.tbs_certificate()).map_err(|_| VerifyError::BadSignature)?;
    let signature = cert
        .signature()
        .as_bytes()
        .ok_or(VerifyError::BadSignature)?;
    verify_signature(issuer_key, cert.signature_algorithm(), &tbs, signature)
}

/// Decodes a DER `SubjectPublicKeyInfo`.
pub fn spki_from_der(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
    SubjectPublicKeyInfoOwned::from_der(der)
}
