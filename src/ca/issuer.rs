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
use super::leaf::{LeafContents, LeafRequest, PreparedCertificate, prepare_leaf};
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
    alternate_chains: Vec<String>,
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
            alternate_chains: Vec::new(),
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

    /// Adds an alternate chain (RFC 8555 §7.4.2): certificates served after a leaf instead
    /// of the default chain, e.g. through a cross-signed certificate of this CA. The first
    /// one must carry this CA's key, so every chain verifies the same leaf.
    pub fn add_alternate_chain(&mut self, chain: &[Certificate]) -> Result<(), CaError> {
        let first = chain
            .first()
            .ok_or_else(|| CaError::Invalid("an alternate chain is empty".into()))?;
        if first.tbs_certificate().subject_public_key_info()
            != self.certificate.tbs_certificate().subject_public_key_info()
        {
            return Err(CaError::Invalid(
                "an alternate chain must start with a certificate for this CA's key".into(),
            ));
        }
        let mut pem = String::new();
        for cert in chain {
            pem.push_str(&cert.to_pem(LineEnding::LF)?);
        }
        self.alternate_chains.push(pem);
        Ok(())
    }

    /// The chains served after a leaf: 0 is the default, then the alternates.
    pub fn chain_pem_at(&self, index: usize) -> Option<&str> {
        match index {
            0 => Some(&self.chain_pem),
            n => self.alternate_chains.get(n - 1).map(String::as_str),
        }
    }

    /// How many chains there are, the default included.
    pub fn chain_count(&self) -> usize {
        1 + self.alternate_chains.len()
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
        let contents = LeafContents::tls_server(self.client_auth);
        self.prepare_with(
            dns_names,
            ip_addresses,
            public_key,
            (not_before, not_after),
            contents,
        )
    }

    /// As [`Issuer::prepare`], with what a certificate profile puts in the certificate.
    pub fn prepare_with(
        &self,
        dns_names: Vec<String>,
        ip_addresses: Vec<IpAddr>,
        public_key: SubjectPublicKeyInfoOwned,
        (not_before, not_after): (u64, u64),
        contents: LeafContents,
    ) -> Result<PreparedCertificate, CaError> {
        let request = LeafRequest {
            dns_names,
            ip_addresses,
            public_key,
            not_before: UNIX_EPOCH + Duration::from_secs(not_before),
            not_after: UNIX_EPOCH + Duration::from_secs(not_after),
            distribution: contents
                .distribution
                .clone()
                .unwrap_or_else(|| self.distribution.clone()),
            contents,
        };
        prepare_leaf(&request, &self.certificate, self.signer.as_ref())
    }

    /// Signs a prepared certificate on the token. Blocking.
    pub fn sign(&self, prepared: PreparedCertificate) -> Result<Certificate, CaError> {
        prepared.sign(self.signer.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use der::Decode;
    use x509_cert::ext::pkix::{CrlDistributionPoints, SubjectAltName};
    use x509_cert::name::Name;

    use super::*;
    use crate::ca::distribution::Distribution;
    use crate::ca::hierarchy::root_certificate;
    use crate::ca::test_signer::SoftSigner;

    fn unit_issuer() -> (Issuer, Arc<SoftSigner>) {
        let signer = Arc::new(SoftSigner::new());
        let name: Name = "CN=Unit Issuing,O=hsm-acme tests".parse().unwrap();
        let cert = root_certificate(&name, Duration::from_secs(86_400), signer.as_ref()).unwrap();
        let settings = IssuerSettings {
            client_auth: false,
            distribution: Distribution::under("http://pki.example.com", "unit"),
        };
        let issuer = Issuer::new("unit".into(), signer.clone(), cert, &[], settings).unwrap();
        (issuer, signer)
    }

    #[test]
    fn leaves_carry_names_only_in_a_critical_san_and_point_at_the_crl() {
        let (issuer, _) = unit_issuer();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let prepared = issuer
            .prepare(
                vec!["www.example.com".into(), "*.example.com".into()],
                vec!["192.0.2.7".parse().unwrap()],
                issuer.signer().public_key().clone(),
                now,
                now + 3600,
            )
            .unwrap();
        let cert = issuer.sign(prepared).unwrap();
        let tbs = cert.tbs_certificate();
        assert!(tbs.subject().is_empty());
        let (critical, san) = tbs.get_extension::<SubjectAltName>().unwrap().unwrap();
        assert!(critical, "an empty subject makes the SAN critical");
        assert_eq!(san.0.len(), 3);
        let (_, cdp) = tbs
            .get_extension::<CrlDistributionPoints>()
            .unwrap()
            .unwrap();
        let der = der::Encode::to_der(&cdp).unwrap();
        let text = String::from_utf8_lossy(&der);
        assert!(
            text.contains("http://pki.example.com/crl/unit.crl"),
            "{text}"
        );
        // The AKI is the issuer's SKI, which is what ARI CertIDs carry.
        let id = crate::acme::ari::CertId::of(&cert).unwrap();
        assert!(issuer.key_identifier_matches(&id.key_identifier));
        assert!(!issuer.key_identifier_matches(b"other"));
        let _ = Certificate::from_der(&der::Encode::to_der(&cert).unwrap()).unwrap();
    }

    #[test]
    fn alternate_chains_must_carry_the_ca_key() {
        let (mut issuer, _) = unit_issuer();
        assert_eq!(issuer.chain_count(), 1);
        assert!(issuer.chain_pem_at(1).is_none());
        let own = issuer.certificate().clone();
        issuer.add_alternate_chain(&[own]).unwrap();
        assert_eq!(issuer.chain_count(), 2);
        assert!(
            issuer
                .chain_pem_at(1)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        let (other, _) = unit_issuer();
        let err = issuer
            .add_alternate_chain(&[other.certificate().clone()])
            .unwrap_err();
        assert!(err.to_string().contains("this CA's key"), "{err}");
        assert!(issuer.add_alternate_chain(&[]).is_err());
    }
}
