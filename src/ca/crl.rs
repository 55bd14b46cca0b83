//! Certificate revocation lists (RFC 5280 §5): the v2 CRL profile hsm-acme publishes for
//! each issuing CA, and the revocation reasons (RFC 5280 §5.3.1) it records.
//!
//! Like certificates, a CRL is encoded here, signed through the [`Signer`] seam and checked
//! in software before anyone sees it. Which certificates are revoked, the CRL number and
//! the publication schedule are the caller's business; this module only encodes them.
//!
//! [`Signer`]: crate::hsm::Signer

use std::cmp::Ordering;
use std::fmt;
use std::time::SystemTime;

use der::asn1::{BitString, GeneralizedTime, UtcTime};
use der::{DateTime, Decode, Encode};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::Certificate;
use x509_cert::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::ToExtension;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, CrlReason, SubjectKeyIdentifier};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use super::CaError;
use super::verify::verify_signature;
use crate::hsm::Signer;

/// A CRLReason code (RFC 5280 §5.3.1). Code 7 is unassigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RevocationReason {
    /// No reason given; never written to a CRL entry (RFC 5280 §5.3.1, BR §7.2.2).
    Unspecified = 0,
    /// The certificate's private key is known or suspected to be compromised.
    KeyCompromise = 1,
    /// A CA's private key is compromised (CA certificates only).
    CaCompromise = 2,
    /// The subject's name or other information changed.
    AffiliationChanged = 3,
    /// The certificate has been replaced.
    Superseded = 4,
    /// The certificate is no longer needed.
    CessationOfOperation = 5,
    /// Temporarily on hold; the CA/B Forum BRs forbid it for TLS certificates.
    CertificateHold = 6,
    /// Only meaningful in delta CRLs (RFC 5280 §5.3.1), which hsm-acme does not make.
    RemoveFromCrl = 8,
    /// The subscriber's right to the certificate was withdrawn.
    PrivilegeWithdrawn = 9,
    /// An attribute authority was compromised.
    AaCompromise = 10,
}

/// A revocation reason code RFC 5280 §5.3.1 does not assign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a CRLReason code (RFC 5280 §5.3.1)")]
pub struct UnknownReason(pub u8);

impl RevocationReason {
    /// The CRLReason code, as it appears in the `reason` of an RFC 8555 §7.6 request.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The RFC 5280 name of the reason.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// Whether a subscriber may ask for this reason in an ACME revocation request.
    ///
    /// RFC 8555 §7.6 leaves the allowed set to the CA; CA/B Forum BR §4.9.1.1 and §7.2.2 let
    /// subscribers choose only unspecified, keyCompromise, affiliationChanged, superseded
    /// and cessationOfOperation. privilegeWithdrawn is the CA's own decision; the CA and AA
    /// reasons do not apply to end-entity certificates; hold and removeFromCRL are
    /// forbidden. Anything else is `badRevocationReason` (RFC 8555 §7.6).
    pub fn subscriber_may_use(self) -> bool {
        matches!(
            self,
            Self::Unspecified
                | Self::KeyCompromise
                | Self::AffiliationChanged
                | Self::Superseded
                | Self::CessationOfOperation
        )
    }

    fn crl_reason(self) -> CrlReason {
        match self {
            Self::Unspecified => CrlReason::Unspecified,
            Self::KeyCompromise => CrlReason::KeyCompromise,
            Self::CaCompromise => CrlReason::CaCompromise,
            Self::AffiliationChanged => CrlReason::AffiliationChanged,
            Self::Superseded => CrlReason::Superseded,
            Self::CessationOfOperation => CrlReason::CessationOfOperation,
            Self::CertificateHold => CrlReason::CertificateHold,
            Self::RemoveFromCrl => CrlReason::RemoveFromCRL,
            Self::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
            Self::AaCompromise => CrlReason::AaCompromise,
        }
    }
}

impl TryFrom<u8> for RevocationReason {
    type Error = UnknownReason;

    fn try_from(code: u8) -> Result<Self, UnknownReason> {
        Ok(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return Err(UnknownReason(code)),
        })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One revoked certificate, as it goes into the CRL of the CA that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The certificate's serial number.
    pub serial: SerialNumber,
    /// When it was revoked (the entry's revocationDate, whole seconds).
    pub revoked_at: SystemTime,
    /// Why; `None` and `Some(Unspecified)` both leave the reasonCode out (RFC 5280 §5.3.1).
    pub reason: Option<RevocationReason>,
}

/// What one CRL says.
#[derive(Debug, Clone, Copy)]
pub struct CrlRequest<'a> {
    /// The cRLNumber (RFC 5280 §5.2.3): the caller makes it strictly increase per CA.
    pub number: u64,
    /// thisUpdate: when this CRL was made.
    pub this_update: SystemTime,
    /// nextUpdate: by when the next one will be out; conforming CAs always include it
    /// (RFC 5280 §5.1.2.5).
    pub next_update: SystemTime,
    /// The revoked certificates, in any order.
    pub entries: &'a [RevokedEntry],
}

/// A DER CRL for `request`, signed by `issuer` (whose certificate is `issuer_cert`) on the
/// token and verified in software. Blocking.
pub fn sign_crl(
    issuer_cert: &Certificate,
    issuer: &dyn Signer,
    request: &CrlRequest<'_>,
) -> Result<Vec<u8>, CaError> {
    let tbs = tbs_cert_list(issuer_cert, issuer, request)?;
    let tbs_der = tbs.to_der()?;
    let signature = issuer.sign(&tbs_der)?;
    // A CRL with a bad signature would make every relying party fail hard; never publish one.
    verify_signature(issuer.public_key(), &tbs.signature, &tbs_der, &signature)?;
    let crl = CertificateList {
        signature_algorithm: tbs.signature.clone(),
        tbs_cert_list: tbs,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(crl.to_der()?)
}

/// The TBSCertList for `request`: everything but the signature.
fn tbs_cert_list(
    issuer_cert: &Certificate,
    issuer: &dyn Signer,
    request: &CrlRequest<'_>,
) -> Result<TbsCertList, CaError> {
    let issuer_tbs = issuer_cert.tbs_certificate();
    let issuer_spki = issuer_tbs.subject_public_key_info().to_der()?;
    if issuer_spki != issuer.public_key().to_der()? {
        return Err(CaError::Invalid(
            "the issuer certificate does not belong to the issuer key".into(),
        ));
    }
    if request.next_update <= request.this_update {
        return Err(CaError::Invalid(
            "a CRL's nextUpdate must be after its thisUpdate".into(),
        ));
    }
    // RFC 5280 §5.1.2.3: the issuer field is the issuer certificate's subject, unchanged,
    // so name matching during path validation (§6.3.3) is exact.
    let issuer_name = issuer_tbs.subject().clone();
    let entries = sorted_entries(request.entries)?;
    let mut revoked = Vec::with_capacity(entries.len());
    for entry in entries {
        revoked.push(revoked_cert(entry, &issuer_name)?);
    }
    // RFC 5280 §5.2.1 and BR §7.2.2: keyIdentifier only, equal to the issuer's SKI so
    // relying parties pick the right key when a CA name has more than one.
    let key_identifier = match issuer_tbs.get_extension::<SubjectKeyIdentifier>() {
        Ok(Some((_, ski))) => ski.0,
        _ => SubjectKeyIdentifier::try_from(SubjectPublicKeyInfoRef::from_der(&issuer_spki)?)?.0,
    };
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(key_identifier),
        ..Default::default()
    };
    let mut extensions = vec![aki.to_extension(&issuer_name, &[])?];
    // RFC 5280 §5.2.3: non-critical, at most 20 octets (a u64 always fits).
    extensions.push(CrlNumber::try_from(request.number)?.to_extension(&issuer_name, &extensions)?);
    Ok(TbsCertList {
        version: Version::V2,
        signature: issuer.algorithm(),
        issuer: issuer_name,
        this_update: crl_time(request.this_update)?,
        next_update: Some(crl_time(request.next_update)?),
        // RFC 5280 §5.1.2.6: absent, not an empty SEQUENCE, when nothing is revoked.
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(extensions),
    })
}

fn revoked_cert(
    entry: &RevokedEntry,
    issuer_name: &x509_cert::name::Name,
) -> Result<RevokedCert, CaError> {
    let extensions = match entry.reason {
        // RFC 5280 §5.3.1: "the reason code CRL entry extension SHOULD be absent instead
        // of using the unspecified (0) reasonCode value"; BR §7.2.2 makes it MUST.
        None | Some(RevocationReason::Unspecified) => None,
        Some(RevocationReason::RemoveFromCrl) => {
            return Err(CaError::Invalid(
                "removeFromCRL belongs only in delta CRLs (RFC 5280 §5.3.1)".into(),
            ));
        }
        Some(reason) => Some(vec![reason.crl_reason().to_extension(issuer_name, &[])?]),
    };
    Ok(RevokedCert {
        serial_number: entry.serial.clone(),
        revocation_date: crl_time(entry.revoked_at)?,
        crl_entry_extensions: extensions,
    })
}

/// Entries in ascending numeric serial order, so the same set always encodes the same way;
/// a serial listed twice is refused, as its entry would be ambiguous.
fn sorted_entries(entries: &[RevokedEntry]) -> Result<Vec<&RevokedEntry>, CaError> {
    let mut sorted: Vec<&RevokedEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| serial_order(&a.serial, &b.serial));
    if let Some(pair) = sorted
        .windows(2)
        .find(|w| serial_order(&w[0].serial, &w[1].serial) == Ordering::Equal)
    {
        return Err(CaError::Invalid(format!(
            "serial {} is listed twice",
            hex(pair[0].serial.as_bytes())
        )));
    }
    Ok(sorted)
}

/// Numeric order of positive serials: the byte order of the DER content only agrees with
/// it for equal lengths, so leading zero octets are dropped and shorter sorts first.
fn serial_order(a: &SerialNumber, b: &SerialNumber) -> Ordering {
    let strip = |s: &[u8]| -> Vec<u8> { s.iter().copied().skip_while(|&b| b == 0).collect() };
    let (a, b) = (strip(a.as_bytes()), strip(b.as_bytes()));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 5280 §5.1.2.4–§5.1.2.6: UTCTime through 2049, GeneralizedTime from 2050, both in
/// whole seconds with `Z`; a fraction of a second is dropped.
fn crl_time(time: SystemTime) -> Result<Time, CaError> {
    let date = DateTime::from_system_time(time)
        .map_err(|e| CaError::Invalid(format!("time outside what X.509 encodes: {e}")))?;
    Ok(if date.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(date)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(date))
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
    use x509_cert::name::Name;

    use super::*;
    use crate::ca::test_signer::SoftSigner;
    use crate::hsm::TokenError;

    /// Signs with a key other than the one it claims: the software check must catch it.
    #[derive(Debug)]
    struct WrongKey(SoftSigner, SoftSigner);

    impl Signer for WrongKey {
        fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
            self.0.public_key()
        }
        fn algorithm(&self) -> AlgorithmIdentifierOwned {
            self.0.algorithm()
        }
        fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, TokenError> {
            self.1.sign(tbs_der)
        }
    }

    fn ca(signer: &SoftSigner) -> Certificate {
        let name: Name = "CN=CRL Test CA,O=hsm-acme tests".parse().unwrap();
        super::super::hierarchy::root_certificate(&name, Duration::from_secs(86_400), signer)
            .unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn serial(bytes: &[u8]) -> SerialNumber {
        SerialNumber::new(bytes).unwrap()
    }

    fn entry(bytes: &[u8], reason: Option<RevocationReason>) -> RevokedEntry {
        RevokedEntry {
            serial: serial(bytes),
            revoked_at: at(1_700_000_000),
            reason,
        }
    }

    fn request(entries: &[RevokedEntry]) -> CrlRequest<'_> {
        CrlRequest {
            number: 7,
            this_update: at(1_700_000_000),
            next_update: at(1_700_000_000 + 7 * 86_400),
            entries,
        }
    }

    #[test]
    fn reason_codes_round_trip_and_seven_and_eleven_are_unknown() {
        for code in (0u8..=10).filter(|&c| c != 7) {
            let reason = RevocationReason::try_from(code).unwrap();
            assert_eq!(reason.code(), code);
            assert_eq!(reason.crl_reason() as u32, u32::from(code));
        }
        assert_eq!(RevocationReason::try_from(7), Err(UnknownReason(7)));
        assert_eq!(RevocationReason::try_from(11), Err(UnknownReason(11)));
        assert_eq!(RevocationReason::KeyCompromise.to_string(), "keyCompromise");
    }

    #[test]
    fn subscribers_may_use_only_the_br_reasons() {
        let allowed: Vec<u8> = (0u8..=10)
            .filter_map(|c| RevocationReason::try_from(c).ok())
            .filter(|r| r.subscriber_may_use())
            .map(RevocationReason::code)
            .collect();
        assert_eq!(allowed, [0, 1, 3, 4, 5]);
    }

    #[test]
    fn entries_sort_numerically_and_duplicates_are_refused() {
        let entries = [
            entry(&[0x01, 0x00], None),
            entry(&[0xff], None),
            entry(&[0x02], None),
            entry(&[0x00, 0x80], None),
        ];
        let sorted: Vec<Vec<u8>> = sorted_entries(&entries)
            .unwrap()
            .iter()
            .map(|e| e.serial.as_bytes().to_vec())
            .collect();
        // 0x02 < 0x80 < 0xff < 0x0100, whatever the DER padding.
        let expected: Vec<Vec<u8>> = [&[0x02][..], &[0x00, 0x80], &[0x00, 0xff], &[0x01, 0x00]]
            .iter()
            .map(|b| b.to_vec())
            .collect();
        assert_eq!(sorted, expected);
        let twice = [entry(&[0x05], None), entry(&[0x05], None)];
        assert!(matches!(sorted_entries(&twice), Err(CaError::Invalid(_))));
    }

    #[test]
    fn times_are_utc_until_2049_and_generalized_from_2050_in_whole_seconds() {
        // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z.
        let last_utc = crl_time(at(2_524_607_999) + Duration::from_millis(999)).unwrap();
        assert_eq!(last_utc.to_der().unwrap(), b"\x17\x0d491231235959Z");
        let first_gen = crl_time(at(2_524_608_000)).unwrap();
        assert_eq!(first_gen.to_der().unwrap(), b"\x18\x0f20500101000000Z");
        assert!(crl_time(UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }

    #[test]
    fn an_empty_crl_omits_revoked_certificates_and_carries_aki_and_number() {
        let signer = SoftSigner::new();
        let cert = ca(&signer);
        let tbs = tbs_cert_list(&cert, &signer, &request(&[])).unwrap();
        assert_eq!(tbs.version, Version::V2);
        assert_eq!(tbs.issuer, *cert.tbs_certificate().subject());
        assert!(tbs.revoked_certificates.is_none());
        let der = tbs.to_der().unwrap();
        // The TBS SEQUENCE opens with version INTEGER 1 (v2, RFC 5280 §5.1.2.1).
        let header = if der[1] & 0x80 == 0 {
            2
        } else {
            2 + usize::from(der[1] & 0x7f)
        };
        assert_eq!(&der[header..header + 3], [0x02, 0x01, 0x01]);
        let exts = tbs.crl_extensions.as_ref().unwrap();
        assert_eq!(exts.len(), 2);
        let ski = cert
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
            .unwrap()
            .unwrap()
            .1;
        let aki = AuthorityKeyIdentifier::from_der(exts[0].extn_value.as_bytes()).unwrap();
        assert_eq!(aki.key_identifier, Some(ski.0));
        assert!(aki.authority_cert_issuer.is_none());
        assert!(!exts[1].critical);
        let number = CrlNumber::from_der(exts[1].extn_value.as_bytes()).unwrap();
        assert_eq!(number.0.as_bytes(), [7]);
        // Nothing between nextUpdate and the extensions' [0]: no empty SEQUENCE OF.
        let next = tbs.next_update.unwrap().to_der().unwrap();
        let pos = der.windows(next.len()).position(|w| w == next).unwrap();
        assert_eq!(der[pos + next.len()], 0xa0);
    }

    #[test]
    fn signed_crl_verifies_and_lists_reasons_only_when_specified() {
        let signer = SoftSigner::new();
        let cert = ca(&signer);
        let entries = [
            entry(&[0x42], Some(RevocationReason::KeyCompromise)),
            entry(&[0x07], Some(RevocationReason::Unspecified)),
            entry(&[0x09], None),
        ];
        let der = sign_crl(&cert, &signer, &request(&entries)).unwrap();
        let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der).unwrap();
        let tbs_der = crl.tbs_cert_list.to_der().unwrap();
        verify_signature(
            signer.public_key(),
            &crl.signature_algorithm,
            &tbs_der,
            crl.signature.as_bytes().unwrap(),
        )
        .unwrap();
        let revoked = crl.tbs_cert_list.revoked_certificates.unwrap();
        let serials: Vec<&[u8]> = revoked.iter().map(|r| r.serial_number.as_bytes()).collect();
        assert_eq!(serials, [&[0x07][..], &[0x09], &[0x42]]);
        assert!(revoked[0].crl_entry_extensions.is_none());
        assert!(revoked[1].crl_entry_extensions.is_none());
        let exts = revoked[2].crl_entry_extensions.as_ref().unwrap();
        assert_eq!(exts.len(), 1);
        assert_eq!(
            CrlReason::from_der(exts[0].extn_value.as_bytes()).unwrap(),
            CrlReason::KeyCompromise
        );
        // Same input, same TBS: the order of the entries does not matter.
        let mut shuffled = entries.clone();
        shuffled.reverse();
        assert_eq!(
            tbs_cert_list(&cert, &signer, &request(&shuffled))
                .unwrap()
                .to_der()
                .unwrap(),
            tbs_der
        );
    }

    #[test]
    fn bad_requests_and_bad_signatures_are_refused() {
        let signer = SoftSigner::new();
        let cert = ca(&signer);
        let mut backwards = request(&[]);
        backwards.next_update = backwards.this_update;
        assert!(matches!(
            sign_crl(&cert, &signer, &backwards),
            Err(CaError::Invalid(_))
        ));
        let remove = [entry(&[0x01], Some(RevocationReason::RemoveFromCrl))];
        assert!(matches!(
            sign_crl(&cert, &signer, &request(&remove)),
            Err(CaError::Invalid(_))
        ));
        let other = SoftSigner::new();
        assert!(matches!(
            sign_crl(&cert, &other, &request(&[])),
            Err(CaError::Invalid(_))
        ));
        let liar = WrongKey(signer, other);
        assert!(matches!(
            sign_crl(&cert, &liar, &request(&[])),
            Err(CaError::BadSignature(_))
        ));
    }
}
