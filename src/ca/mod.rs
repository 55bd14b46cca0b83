//! Certificate authority: builds and signs certificates through the [`Signer`] seam.
//!
//! Knows nothing of ACME; the RA decides what to issue, this module decides how it is
//! encoded. Every signature the token returns is verified in software before it is used.
//!
//! [`Signer`]: crate::hsm::Signer

pub mod crl;
pub mod csr;
pub mod distribution;
pub mod hierarchy;
pub mod issuer;
pub mod leaf;
pub mod profile;
pub mod serial;
#[cfg(test)]
pub(crate) mod test_signer;
pub mod verify;
pub mod x509;

/// The address in an X.509 iPAddress general name (RFC 5280 §4.2.1.6: four octets for
/// IPv4, sixteen for IPv6); `None` for any other length.
pub fn ip_address(octets: &[u8]) -> Option<std::net::IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(Into::into),
        16 => <[u8; 16]>::try_from(octets).ok().map(Into::into),
        _ => None,
    }
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The token failed to sign.
    #[error(transparent)]
    Token(#[from] crate::hsm::TokenError),
    /// Encoding failed.
    #[error("certificate encoding: {0}")]
    Encoding(String),
    /// The token's signature did not verify against its public key.
    #[error("the token's signature does not verify against the key's public key: {0}")]
    BadSignature(#[from] verify::VerifyError),
    /// The input does not describe a valid certificate.
    #[error("{0}")]
    Invalid(String),
}

impl From<der::Error> for CaError {
    fn from(e: der::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}

impl From<x509_cert::builder::Error> for CaError {
    fn from(e: x509_cert::builder::Error) -> Self {
        Self::Encoding(e.to_string())
    }
}
