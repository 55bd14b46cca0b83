//! A software P-256 [`Signer`] standing in for the token in pure unit tests of certificate
//! and CRL encoding (DESIGN.md: anything that claims HSM behaviour runs on SoftHSM).
#![allow(clippy::unwrap_used)]

use der::asn1::{BitString, ObjectIdentifier};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::hsm::{SignatureScheme, Signer, TokenError};

/// A software P-256 key standing in for the token (unit tests only).
#[derive(Debug)]
pub(crate) struct SoftSigner {
    key: EcdsaKeyPair,
    spki: SubjectPublicKeyInfoOwned,
}

impl SoftSigner {
    pub(crate) fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
                parameters: Some(
                    der::Any::encode_from(&ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"))
                        .unwrap(),
                ),
            },
            subject_public_key: BitString::from_bytes(key.public_key().as_ref()).unwrap(),
        };
        Self { key, spki }
    }
}

impl Signer for SoftSigner {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }
    fn algorithm(&self) -> AlgorithmIdentifierOwned {
        SignatureScheme::EcdsaP256Sha256
            .algorithm_identifier()
            .unwrap()
    }
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, TokenError> {
        Ok(self
            .key
            .sign(&SystemRandom::new(), tbs_der)
            .unwrap()
            .as_ref()
            .to_vec())
    }
}
