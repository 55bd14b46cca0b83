//! Everything that touches a PKCS#11 token. This is the only module that imports `cryptoki`.
//!
//! The rest of the crate sees two narrow seams: [`Signer`] for CA, CRL and TLS keys, and
//! [`Sealer`] for secrets stored in the database (EAB MAC keys). [`Pkcs11Token`] implements
//! both over a pool of logged-in sessions; keys never leave the token (DESIGN.md principle 1).

mod error;
mod keys;
mod mechanism;
mod module;
mod offload;
mod pin;
mod pool;
pub mod profile;
mod sealer;
mod signer;
mod token;
pub mod uri;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use zeroize::Zeroizing;

pub use error::TokenError;
pub use keys::{KeyAttributeReport, KeyReport};
pub use mechanism::ecdsa_raw_to_der;
pub use module::loaded_module;
pub use offload::HsmRunner;
pub use pin::read_pin;
pub use profile::Pkcs11Profile;
pub use sealer::TokenSealer;
pub use signer::TokenSigner;
pub use token::{MechanismReport, Pkcs11Token, TokenReport, TokenSelector, TokenSettings};

/// The only way the crate touches a signing key.
///
/// Blocking: a call may wait for a session or a slow network HSM, so call it from a blocking
/// thread (see [`HsmRunner`]).
pub trait Signer: Send + Sync + fmt::Debug {
    /// The key's public half; compared with the CA certificate at start-up.
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned;
    /// The signature algorithm that goes into certificates and CRLs signed by this key.
    fn algorithm(&self) -> AlgorithmIdentifierOwned;
    /// Signs `tbs_der` and returns the X.509 encoding of the signature (DER `ECDSA-Sig-Value`
    /// for ECDSA, the raw octets for RSA and Ed25519).
    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, TokenError>;
}

/// Seals secrets that must be stored (EAB MAC keys) under a key that never leaves the token.
pub trait Sealer: Send + Sync + fmt::Debug {
    /// Encrypts and authenticates `plaintext`, binding it to `aad`.
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, TokenError>;
    /// Reverses [`Sealer::seal`]; fails unless `aad` is the one the secret was sealed with.
    fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, TokenError>;
    /// `len` bytes from the token's random number generator (`C_GenerateRandom`), for
    /// secrets that are sealed right after: they are born where they are protected.
    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, TokenError>;
}

/// A secret sealed with AES-256-GCM by a token key, as stored in the database.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Label of the token key that sealed it, so a rotated key can still be found.
    pub key_label: String,
    /// The GCM nonce.
    pub iv: Vec<u8>,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_label", &self.key_label)
            .field("iv_len", &self.iv.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Key types the token can generate for us and we can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyType {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// Ed25519 (RFC 8032), where the token supports it.
    Ed25519,
}

impl KeyType {
    /// Every key type, in the order reports list them.
    pub const ALL: [Self; 6] = [
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::Ed25519,
    ];

    /// The name used in configuration files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Ed25519 => "ed25519",
        }
    }

    /// RSA modulus size in bits, for RSA key types.
    pub fn rsa_bits(self) -> Option<u64> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown key type {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl TryFrom<String> for KeyType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeyType> for String {
    fn from(k: KeyType) -> Self {
        k.name().to_owned()
    }
}

/// How an RSA key signs; ECDSA and Ed25519 keys have exactly one scheme each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RsaPadding {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every relying party accepts.
    #[default]
    Pkcs1,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    Pss,
}

/// A signature scheme: a key type's algorithm plus, for RSA, its padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureScheme {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256.
    RsaPssSha256,
    /// Pure Ed25519.
    Ed25519,
}

impl SignatureScheme {
    /// The scheme a key of `key_type` signs with.
    pub fn for_key(key_type: KeyType, padding: RsaPadding) -> Self {
        match (key_type, padding) {
            (KeyType::EcdsaP256, _) => Self::EcdsaP256Sha256,
            (KeyType::EcdsaP384, _) => Self::EcdsaP384Sha384,
            (KeyType::Ed25519, _) => Self::Ed25519,
            (_, RsaPadding::Pkcs1) => Self::RsaPkcs1Sha256,
            (_, RsaPadding::Pss) => Self::RsaPssSha256,
        }
    }

    /// The X.509 `AlgorithmIdentifier` of signatures made with this scheme.
    pub fn algorithm_identifier(self) -> Result<AlgorithmIdentifierOwned, der::Error> {
        mechanism::algorithm_identifier(self)
    }
}
