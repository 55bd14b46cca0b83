//! An issuing CA: its token key, its certificate, the chain it serves, and the settings of
//! the certificates it signs.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use der::EncodePem;
use der::pem::LineEnding;
use der::referenced::OwnedToRef;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectKeyIdentifier;

use super::CaError;
use super::distribution::{CheckedDistribution, Distribution};
use super::leaf::{LeafRequest, PreparedCertificate, prepare_leaf};
use crate::hsm::Signer;

/// What goes into every certificate this CA issues, beyond the names and the key.
#[derive(Debug, Clone, Default)]
pub struct IssuerSettings {
    /// Add the clientAuth EKU.
    pub client_auth: bool,
    /// Where this CA's CRL and certificate are published.
    pub distribution: Distribution,
}

/// A CA that issues end-entity certificates.
pub struct Issuer {
    name: String,
    signer: Arc<dyn Signer>,
    certificate: Certificate,
    chain_pem: String,
    client_auth: bool,
    distribution: CheckedDistribution,
    key_identifier: Option<Vec<u8>>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer; `above` are the certificates between it and the root, nearest first.
    pub fn new(
        name: String,
        signer: Arc<dyn Signer>,
        certificate: Certificate,
        above: &[Certificate],
        settings: IssuerSettings,
    ) -> Result<Self, CaError> {
        super::hierarchy::check_ca_certificate(&certificate, signer.public_key())?;
        let mut chain_pem = certificate.to_pem(LineEnding::LF)?;
        for cert in above {
            // The root is the relying party's trust anchor; it is not sent.
            if cert.tbs_certificate().issuer() == cert.tbs_certificate().subject() {
                continue;
            }
            chain_pem.push_str(&cert.to_pem(LineEnding::LF)?);
        }
        let key_identifier = certificate
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
            .ok()
            .flatten()
            .map(|(_, ski)| ski.0.as_bytes().to_vec())
            .or_else(|| {
                SubjectKeyIdentifier::try_from(signer.public_key().owned_to_ref())
                    .ok()
                    .map(|ski| ski.0.as_bytes().to_vec())
            });
        Ok(Self {
            name,
            key_identifier,
            signer,
            certificate,
            chain_pem,
            client_auth: settings.client_auth,
            distribution: settings.distribution.checked()?,
        })
    }

    /// The CA's name in the configuration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA's key on the token (for its CRLs).
    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Whether `key_id` is this CA's subject key identifier (what its certificates carry
    /// as authorityKeyIdentifier).
    pub fn key_identifier_matches(&self, key_id: &[u8]) -> bool {
        self.key_identifier.as_deref() == Some(key_id)
    }

    /// This CA's subject key identifier.
    pub fn key_identifier(&self) -> Option<&[u8]> {
        self.key_identifier.as_deref()
    }

    /// The PEM chain served after a leaf: this CA and any intermediates above it.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Builds the to-be-signed certificate; nothing is signed yet.
    pub fn prepare(
        &self,
        dns_names: Vec<String>,
        ip_addresses: Vec<IpAddr>,
        public_key: SubjectPublicKeyInfoOwned,
        not_before: u64,
        not_after: u64,
    ) -> Result<PreparedCertificate, CaError> {
        let request = LeafRequest {
            dns_names,
            ip_addresses,
            public_key,
            not_before: UNIX_EPOCH + Duration::from_secs(not_before),
            not_after: UNIX_EPOCH + Duration::from_secs(not_after),
            client_auth: self.client_auth,
            distribution: self.distribution.clone(),
        };
        prepare_leaf(&request, &self.certificate, self.signer.as_ref())
    }

    /// Signs a prepared certificate on the token. Blocking.
    pub fn sign(&self, prepared: PreparedCertificate) -> Result<Certificate, CaError> {
        prepared.sign(self.signer.as_ref())
    }
}
