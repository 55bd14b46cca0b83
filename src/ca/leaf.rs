//! The subscriber (TLS server) certificate profile: RFC 5280 and CA/Browser Forum Baseline
//! Requirements §7.1.2.7, built in two steps so the caller can commit the serial and the
//! exact to-be-signed bytes to its database before the token signs (DESIGN.md principle 4).

use std::net::IpAddr;
use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::asn1::Ia5String;
use der::flagset::FlagSet;
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::Certificate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::CaError;
use super::distribution::CheckedDistribution;
use super::serial::random_serial;
use super::x509::{SignerKeypair, assemble_verified};
use crate::hsm::Signer;

/// CA/B Forum BR §7.1.6.1 domain-validated policy.
const DOMAIN_VALIDATED: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.1.2.1");
/// rsaEncryption: RSA subscriber keys may also encipher (BR §7.1.2.7.11).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// What a subscriber certificate says.
#[derive(Debug, Clone)]
pub struct LeafRequest {
    /// dNSName SANs.
    pub dns_names: Vec<String>,
    /// iPAddress SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// The subscriber's key.
    pub public_key: SubjectPublicKeyInfoOwned,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity (cut to the issuer's).
    pub not_after: SystemTime,
    /// Subject, usages and policies, from the certificate profile.
    pub contents: LeafContents,
    /// Where the issuer's CRL and certificate are published.
    pub distribution: CheckedDistribution,
}

/// What a certificate profile puts into a subscriber certificate besides its names, key
/// and validity.
#[derive(Debug, Clone)]
pub struct LeafContents {
    /// The subject; empty puts the names in the subjectAltName alone (BR §7.1.2.7.2).
    pub subject: Name,
    /// extendedKeyUsage purposes.
    pub extended_key_usage: Vec<ObjectIdentifier>,
    /// keyUsage bits; `None`: digitalSignature, and keyEncipherment for RSA keys
    /// (BR §7.1.2.7.11).
    pub key_usage: Option<FlagSet<KeyUsages>>,
    /// certificatePolicies; empty omits the extension.
    pub policies: Vec<ObjectIdentifier>,
    /// CRL distribution point and caIssuers URLs instead of the issuer's.
    pub distribution: Option<CheckedDistribution>,
}

impl LeafContents {
    /// The Baseline Requirements TLS server certificate (BR §7.1.2.7), with clientAuth
    /// when asked.
    pub fn tls_server(client_auth: bool) -> Self {
        let mut extended_key_usage = vec![ID_KP_SERVER_AUTH];
        if client_auth {
            extended_key_usage.push(ID_KP_CLIENT_AUTH);
        }
        Self {
            subject: Name::default(),
            extended_key_usage,
            key_usage: None,
            policies: vec![DOMAIN_VALIDATED],
            distribution: None,
        }
    }
}

/// A certificate ready to sign: its serial and exact TBSCertificate are known.
pub struct PreparedCertificate {
    builder: CertificateBuilder<LeafProfile>,
    /// The serial number.
    pub serial: SerialNumber,
    /// The DER TBSCertificate the token will sign.
    pub tbs_der: Vec<u8>,
}

/// The BR subscriber profile as an x509-cert builder profile.
struct LeafProfile {
    issuer: Name,
    /// The issuer's own key identifier, so AKI matches its SKI byte for byte.
    issuer_key_id: Option<SubjectKeyIdentifier>,
    names: Vec<GeneralName>,
    rsa: bool,
    contents: LeafContents,
    distribution: CheckedDistribution,
}

impl BuilderProfile for LeafProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    /// BR §7.1.2.7.2: commonName is NOT RECOMMENDED; by default the names live in the SAN
    /// alone, which RFC 5280 §4.2.1.6 then requires to be critical. A profile may copy
    /// subject attributes from the CSR.
    fn get_subject(&self) -> Name {
        self.contents.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        // BR §7.1.2.7.6: cA FALSE (marked critical, as RFC 5280 §4.2.1.9 allows).
        let mut out: Vec<Extension> = vec![
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            }
            .to_extension(subject, &[])?,
        ];
        // BR §7.1.2.7.11: digitalSignature; keyEncipherment only for RSA keys.
        let usage = self.contents.key_usage.unwrap_or_else(|| {
            let mut usage = KeyUsages::DigitalSignature.into();
            if self.rsa {
                usage |= KeyUsages::KeyEncipherment;
            }
            usage
        });
        out.push(KeyUsage(usage).to_extension(subject, &out)?);
        // BR §7.1.2.7.10: serverAuth, optionally clientAuth, nothing else (by default).
        if !self.contents.extended_key_usage.is_empty() {
            out.push(
                ExtendedKeyUsage(self.contents.extended_key_usage.clone())
                    .to_extension(subject, &out)?,
            );
        }
        // RFC 5280 §4.2.1.6: critical when the subject is empty (the helper decides).
        out.push(SubjectAltName(self.names.clone()).to_extension(subject, &out)?);
        // BR §7.1.2.11.1: keyIdentifier only, equal to the issuer's SKI.
        let key_identifier = match &self.issuer_key_id {
            Some(ski) => ski.0.clone(),
            None => SubjectKeyIdentifier::try_from(issuer_spk)?.0,
        };
        out.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(key_identifier),
                ..Default::default()
            }
            .to_extension(subject, &out)?,
        );
        // BR §7.1.2.7.9: a reserved CA/B Forum policy identifier (by default).
        if !self.contents.policies.is_empty() {
            let policies = self
                .contents
                .policies
                .iter()
                .map(|oid| PolicyInformation {
                    policy_identifier: *oid,
                    policy_qualifiers: None,
                })
                .collect();
            out.push(CertificatePolicies(policies).to_extension(subject, &out)?);
        }
        // BR §7.1.2.7.7 and §7.1.2.7.8: the issuer's CRL and certificate.
        self.distribution.push_extensions(subject, &mut out)?;
        // BR §7.1.2.7.6: subjectKeyIdentifier is NOT RECOMMENDED for subscribers; omitted.
        Ok(out)
    }
}

/// Builds the TBSCertificate for `request`, issued by `issuer_cert` whose key is `issuer`.
pub fn prepare_leaf(
    request: &LeafRequest,
    issuer_cert: &Certificate,
    issuer: &dyn Signer,
) -> Result<PreparedCertificate, CaError> {
    if request.dns_names.is_empty() && request.ip_addresses.is_empty() {
        return Err(CaError::Invalid(
            "a certificate needs at least one name".into(),
        ));
    }
    let issuer_tbs = issuer_cert.tbs_certificate();
    let issuer_end = issuer_tbs.validity().not_after.to_system_time();
    let not_after = request.not_after.min(issuer_end);
    if not_after <= request.not_before {
        return Err(CaError::Invalid(
            "the validity window is empty (or lies beyond the issuer's)".into(),
        ));
    }
    let mut names = Vec::new();
    for name in &request.dns_names {
        let ia5 =
            Ia5String::new(name).map_err(|e| CaError::Invalid(format!("name {name:?}: {e}")))?;
        names.push(GeneralName::DnsName(ia5));
    }
    names.extend(request.ip_addresses.iter().map(|ip| GeneralName::from(*ip)));
    let issuer_key_id = issuer_tbs
        .get_extension::<SubjectKeyIdentifier>()
        .ok()
        .flatten()
        .map(|(_, ski)| ski);
    let profile = LeafProfile {
        issuer: issuer_tbs.subject().clone(),
        issuer_key_id,
        names,
        rsa: request.public_key.algorithm.oid == RSA_ENCRYPTION,
        contents: request.contents.clone(),
        distribution: request.distribution.clone(),
    };
    let serial = random_serial()?;
    let validity = Validity::new(
        Time::try_from(request.not_before)?,
        Time::try_from(not_after)?,
    );
    let mut builder = CertificateBuilder::new(
        profile,
        serial.clone(),
        validity,
        request.public_key.clone(),
    )?;
    let tbs_der = builder.finalize(&SignerKeypair(issuer))?;
    Ok(PreparedCertificate {
        builder,
        serial,
        tbs_der,
    })
}

impl PreparedCertificate {
    /// Signs on the token, assembles, and verifies the result in software. Blocking.
    pub fn sign(self, issuer: &dyn Signer) -> Result<Certificate, CaError> {
        let signature = issuer.sign(&self.tbs_der)?;
        assemble_verified(self.builder, issuer, &signature)
    }
}
