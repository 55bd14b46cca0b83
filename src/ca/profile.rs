//! Certificate profiles for the CA hierarchy: roots and subordinate (issuing) CAs.
//!
//! Written as x509-cert `BuilderProfile`s so the builder computes the key identifiers;
//! the extension set follows RFC 5280 §4.2 and CA/B Forum BR §7.1.2.1 (root) and
//! §7.1.2.6 (TLS subordinate CA).

use const_oid::db::rfc5280::{ANY_POLICY, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;

use super::distribution::CheckedDistribution;

/// A root CA: self-signed, unconstrained path length.
pub struct RootProfile {
    /// The root's name (subject and issuer).
    pub subject: Name,
}

/// A subordinate CA signed by `issuer`.
pub struct SubordinateProfile {
    /// The new CA's name.
    pub subject: Name,
    /// The signing CA's subject, byte for byte as in its certificate.
    pub issuer: Name,
    /// pathLenConstraint; `Some(0)` for a CA that issues only end-entity certificates.
    pub path_len: Option<u8>,
    /// Where the issuer's CRL and certificate are published (BR §7.1.2.6: the CRL
    /// distribution point is required, caIssuers recommended).
    pub distribution: CheckedDistribution,
}

/// KU for every CA (RFC 5280 §4.2.1.3, BR §7.1.2.10.7): certificates and CRLs only.
fn ca_key_usage() -> KeyUsage {
    KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
}

impl BuilderProfile for RootProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut out: Vec<Extension> = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        // BR §7.1.2.1.2: basicConstraints cA=TRUE with no path length.
        out.push(
            BasicConstraints {
                ca: true,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &out)?,
        );
        out.push(ca_key_usage().to_extension(tbs.subject(), &out)?);
        // BR §7.1.2.1.3: the AKI of a root carries only the key identifier, equal to the SKI.
        out.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(ski.0.clone()),
                ..Default::default()
            }
            .to_extension(tbs.subject(), &out)?,
        );
        out.push(ski.to_extension(tbs.subject(), &out)?);
        Ok(out)
    }
}

impl BuilderProfile for SubordinateProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut out: Vec<Extension> = vec![
            BasicConstraints {
                ca: true,
                path_len_constraint: self.path_len,
            }
            .to_extension(tbs.subject(), &[])?,
        ];
        out.push(ca_key_usage().to_extension(tbs.subject(), &out)?);
        out.push(AuthorityKeyIdentifier::try_from(issuer_spk)?.to_extension(tbs.subject(), &out)?);
        out.push(SubjectKeyIdentifier::try_from(spk)?.to_extension(tbs.subject(), &out)?);
        // BR §7.1.2.6.1: a TLS subordinate CA carries EKU (serverAuth; clientAuth because
        // private networks such as X-Road use the same CA for both ends) and policies.
        out.push(
            ExtendedKeyUsage(vec![ID_KP_SERVER_AUTH, ID_KP_CLIENT_AUTH])
                .to_extension(tbs.subject(), &out)?,
        );
        out.push(
            CertificatePolicies(vec![PolicyInformation {
                policy_identifier: ANY_POLICY,
                policy_qualifiers: None,
            }])
            .to_extension(tbs.subject(), &out)?,
        );
        self.distribution.push_extensions(tbs.subject(), &mut out)?;
        Ok(out)
    }
}
