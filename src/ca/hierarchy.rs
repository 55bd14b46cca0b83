//! Making the CA hierarchy on the token: a root, subordinates under it, or a CSR for a
//! root outside hsm-acme.

use std::time::{Duration, SystemTime};

use der::Encode;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;
use x509_cert::builder::{CertificateBuilder, RequestBuilder};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::time::{Time, Validity};

use super::CaError;
use super::distribution::Distribution;
use super::profile::{RootProfile, SubordinateProfile};
use super::serial::random_serial;
use super::x509::{sign_certificate, sign_request};
use crate::hsm::Signer;

/// How far notBefore is set back, so a relying party whose clock is a little behind
/// accepts a certificate made a moment ago.
const BACKDATE: Duration = Duration::from_secs(300);

fn validity(lifetime: Duration) -> Result<Validity, CaError> {
    let now = SystemTime::now();
    let start = now.checked_sub(BACKDATE).unwrap_or(now);
    let end = now
        .checked_add(lifetime)
        .ok_or_else(|| CaError::Invalid("validity overflows the calendar".into()))?;
    Ok(Validity::new(Time::try_from(start)?, Time::try_from(end)?))
}

/// A self-signed root certificate for the key behind `signer`.
pub fn root_certificate(
    subject: &Name,
    lifetime: Duration,
    signer: &dyn Signer,
) -> Result<Certificate, CaError> {
    let profile = RootProfile {
        subject: subject.clone(),
    };
    let builder = CertificateBuilder::new(
        profile,
        random_serial()?,
        validity(lifetime)?,
        signer.public_key().clone(),
    )?;
    sign_certificate(builder, signer)
}

/// A subordinate CA certificate for `subject_key`, signed by `issuer` (whose certificate is
/// `issuer_cert`), pointing at the issuer's CRL and certificate. Its lifetime is cut to the issuer's, as RFC 5280 path validation would.
pub fn subordinate_certificate(
    subject: &Name,
    subject_key: &SubjectPublicKeyInfoOwned,
    lifetime: Duration,
    path_len: Option<u8>,
    distribution: Distribution,
    issuer_cert: &Certificate,
    issuer: &dyn Signer,
) -> Result<Certificate, CaError> {
    if issuer_cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()?
        != issuer.public_key().to_der()?
    {
        return Err(CaError::Invalid(
            "the issuer certificate does not belong to the issuer key".into(),
        ));
    }
    let mut validity = validity(lifetime)?;
    let issuer_end = issuer_cert.tbs_certificate().validity().not_after;
    if issuer_end.to_system_time() < validity.not_after.to_system_time() {
        validity.not_after = issuer_end;
    }
    let profile = SubordinateProfile {
        subject: subject.clone(),
        issuer: issuer_cert.tbs_certificate().subject().clone(),
        path_len,
        distribution: distribution.checked()?,
    };
    let builder =
        CertificateBuilder::new(profile, random_serial()?, validity, subject_key.clone())?;
    sign_certificate(builder, issuer)
}

/// A PKCS#10 request for the key behind `signer`, for a CA outside hsm-acme to certify.
pub fn certificate_request(subject: &Name, signer: &dyn Signer) -> Result<CertReq, CaError> {
    let builder = RequestBuilder::new(subject.clone())?;
    sign_request(builder, signer)
}

/// Checks that `cert` is a CA certificate for `key`: same public key, cA=TRUE.
pub fn check_ca_certificate(
    cert: &Certificate,
    key: &SubjectPublicKeyInfoOwned,
) -> Result<(), CaError> {
    use x509_cert::ext::pkix::BasicConstraints;
    if cert.tbs_certificate().subject_public_key_info().to_der()? != key.to_der()? {
        return Err(CaError::Invalid(
            "its public key is not the key on the token".into(),
        ));
    }
    let is_ca = cert
        .tbs_certificate()
        .get_extension::<BasicConstraints>()
        .ok()
        .flatten()
        .is_some_and(|(_, bc)| bc.ca);
    if !is_ca {
        return Err(CaError::Invalid(
            "it is not a CA certificate (basicConstraints cA)".into(),
        ));
    }
    Ok(())
}
