//! ACME Renewal Information (RFC 9773) on the wire: the certificate identifier in a
//! `renewalInfo` URL and a `replaces` field (§4.1), the renewal-info resource (§4.2), and
//! the window hsm-acme suggests. Pure: no storage, no clock, no keys.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;

/// Why a certificate identifier was refused; the server answers `malformed` (RFC 9773 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AriError {
    /// Not exactly two parts separated by one `.`.
    #[error("a certificate identifier is two base64url parts joined by '.', found {0} part(s)")]
    PartCount(usize),
    /// A part is empty.
    #[error("the {0} part of the certificate identifier is empty")]
    EmptyPart(&'static str),
    /// A part ends in `=`; RFC 9773 §4.1 uses base64url without padding (RFC 8555 §6.1).
    #[error("the {0} part of the certificate identifier must not carry '=' padding")]
    Padding(&'static str),
    /// A part is not base64url.
    #[error("the {0} part of the certificate identifier is not base64url: {1}")]
    Base64(&'static str, String),
    /// The serial part is not the content of a DER INTEGER of a positive number.
    #[error("the serial part is not a DER-encoded positive INTEGER ({0})")]
    Serial(&'static str),
}

/// A certificate's ARI identifier (RFC 9773 §4.1): its issuer's key identifier and its serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The keyIdentifier of the certificate's authorityKeyIdentifier extension.
    pub key_identifier: Vec<u8>,
    /// The content octets of the DER serialNumber INTEGER (no tag or length; a leading
    /// 0x00 stays when DER needs it to keep the number positive).
    pub serial: Vec<u8>,
}

impl CertId {
    /// The identifier of `cert`; `None` if it has no authorityKeyIdentifier keyIdentifier,
    /// which RFC 9773 §4.1 needs (and RFC 5280 §4.2.1.1 requires of CA-issued certificates).
    pub fn of(cert: &Certificate) -> Option<Self> {
        let (_, aki) = cert
            .tbs_certificate()
            .get_extension::<AuthorityKeyIdentifier>()
            .ok()
            .flatten()?;
        Some(Self {
            key_identifier: aki.key_identifier?.as_bytes().to_vec(),
            serial: cert.tbs_certificate().serial_number().as_bytes().to_vec(),
        })
    }

    /// Parses the `{keyIdentifier}.{serial}` text of a `renewalInfo` URL path or a
    /// newOrder `replaces` field (RFC 9773 §4.1, §5).
    pub fn parse(text: &str) -> Result<Self, AriError> {
        let parts: Vec<&str> = text.split('.').collect();
        let [key_identifier, serial] = parts[..] else {
            return Err(AriError::PartCount(parts.len()));
        };
        let key_identifier = decode_part(key_identifier, "keyIdentifier")?;
        let serial = decode_part(serial, "serial")?;
        check_serial(&serial)?;
        Ok(Self {
            key_identifier,
            serial,
        })
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.key_identifier),
            URL_SAFE_NO_PAD.encode(&self.serial)
        )
    }
}

impl std::str::FromStr for CertId {
    type Err = AriError;

    fn from_str(text: &str) -> Result<Self, AriError> {
        Self::parse(text)
    }
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, AriError> {
    if part.is_empty() {
        return Err(AriError::EmptyPart(what));
    }
    if part.contains('=') {
        return Err(AriError::Padding(what));
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(AriError::Base64(
            what,
            format!("{c:?} is not in the base64url alphabet"),
        ));
    }
    // The engine also refuses a length no encoding has and non-zero trailing bits, so
    // every identifier has exactly one accepted spelling.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| AriError::Base64(what, e.to_string()))
}

/// X.690 §8.3.2: minimal two's complement; RFC 5280 §4.1.2.2: positive.
fn check_serial(serial: &[u8]) -> Result<(), AriError> {
    match serial {
        [] => Err(AriError::Serial("empty")),
        [first, ..] if first & 0x80 != 0 => Err(AriError::Serial("negative")),
        [0x00, second, ..] if second & 0x80 == 0 => Err(AriError::Serial("not minimal")),
        [0x00] => Err(AriError::Serial("zero")),
        _ => Ok(()),
    }
}

/// The renewal-info resource (RFC 9773 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalInfo {
    /// When the client should renew.
    #[serde(rename = "suggestedWindow")]
    pub suggested_window: SuggestedWindow,
    /// A page explaining why the window is what it is (e.g. a mass revocation).
    #[serde(
        rename = "explanationURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation_url: Option<String>,
}

/// A renewal window as RFC 3339 times; `end` is later than `start` (RFC 9773 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    /// The start of the window.
    pub start: String,
    /// The end of the window.
    pub end: String,
}

impl RenewalInfo {
    /// The resource for a window of Unix seconds, as [`suggested_window`] computes it.
    pub fn new((start, end): (u64, u64), explanation_url: Option<String>) -> Self {
        Self {
            suggested_window: SuggestedWindow {
                start: crate::clock::rfc3339(start),
                end: crate::clock::rfc3339(end),
            },
            explanation_url,
        }
    }
}

/// How far in the past the window of a revoked certificate lies.
const IMMEDIATE: u64 = 3600;

/// The renewal window (Unix seconds, start < end) for a certificate valid from `not_before`
/// to `not_after`.
///
/// A good certificate: the sixth of its lifetime starting two thirds in, so renewal leaves
/// a third of the lifetime to retry (Let's Encrypt suggests the same) and clients spread
/// over the window rather than all renewing at one instant (RFC 9773 §1). A revoked one: a
/// window ending `now`, so every time a client picks in it is in the past and RFC 9773
/// §4.2's client algorithm renews at once.
pub fn suggested_window(not_before: u64, not_after: u64, revoked: bool, now: u64) -> (u64, u64) {
    if revoked {
        return (now.saturating_sub(IMMEDIATE), now.max(1));
    }
    let lifetime = not_after.saturating_sub(not_before);
    let start = not_before.saturating_add(lifetime / 3 * 2 + lifetime % 3 * 2 / 3);
    let end = start.saturating_add(lifetime / 6).min(not_after);
    // A degenerate (zero or one second) lifetime still gets a non-empty window.
    (start, end.max(start.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9773 §4.1's example.
    const EXAMPLE: &str = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";
    const EXAMPLE_KEY_ID: [u8; 20] = [
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE,
        0x2C, 0xDE, 0x01, 0xC8, 0xD4,
    ];
    const EXAMPLE_SERIAL: [u8; 5] = [0x00, 0x87, 0x65, 0x43, 0x21];

    #[test]
    fn the_rfc_example_round_trips() {
        let id = CertId::parse(EXAMPLE).unwrap();
        assert_eq!(id.key_identifier, EXAMPLE_KEY_ID);
        assert_eq!(id.serial, EXAMPLE_SERIAL);
        assert_eq!(id.to_string(), EXAMPLE);
        assert_eq!(EXAMPLE.parse::<CertId>().unwrap(), id);
    }

    #[test]
    fn malformed_identifiers_are_refused_with_the_reason() {
        let cases: &[(&str, AriError)] = &[
            ("aYhba4dGQEHhs3uEe6CuLN4ByNQ", AriError::PartCount(1)),
            ("a.b.c", AriError::PartCount(3)),
            ("", AriError::PartCount(1)),
            (".AIdlQyE", AriError::EmptyPart("keyIdentifier")),
            (
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
                AriError::EmptyPart("serial"),
            ),
            (
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
                AriError::Padding("keyIdentifier"),
            ),
            (
                "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=",
                AriError::Padding("serial"),
            ),
            ("AQ.gA", AriError::Serial("negative")),
            ("AQ.AAE", AriError::Serial("not minimal")),
            ("AQ.AA", AriError::Serial("zero")),
        ];
        for (text, expected) in cases {
            assert_eq!(CertId::parse(text).as_ref(), Err(expected), "{text:?}");
        }
        for text in [
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl+yE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl/yE",
            "aYhba4dG QEHhs3uEe6CuLN4ByNQ.AIdlQyE",
            // Five characters encode no whole number of octets.
            "AQIDB.AIdlQyE",
            // Non-zero trailing bits: "AR" would also decode to 0x01.
            "AR.AIdlQyE",
        ] {
            assert!(
                matches!(CertId::parse(text), Err(AriError::Base64(..))),
                "{text:?}"
            );
        }
    }

    #[test]
    fn cert_id_of_a_certificate_is_its_aki_and_serial() {
        use der::DecodePem;
        // Made with openssl: the RFC example's key identifier as SKI and AKI, serial
        // 0x87654321 (DER 00 87 65 43 21).
        let cert = Certificate::from_pem(include_str!("testdata/ari-example.pem")).unwrap();
        assert_eq!(CertId::of(&cert).unwrap().to_string(), EXAMPLE);
        let no_aki = Certificate::from_pem(include_str!("testdata/no-aki.pem")).unwrap();
        assert_eq!(CertId::of(&no_aki), None);
    }

    #[test]
    fn renewal_info_serializes_as_rfc_9773_says() {
        let info = RenewalInfo::new((1_700_000_000, 1_700_086_400), None);
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "suggestedWindow": {
                    "start": "2023-11-14T22:13:20Z",
                    "end": "2023-11-15T22:13:20Z"
                }
            })
        );
        let with_url = RenewalInfo::new((0, 1), Some("https://ca.example/incident".into()));
        let text = serde_json::to_string(&with_url).unwrap();
        assert!(
            text.contains(r#""explanationURL":"https://ca.example/incident""#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<RenewalInfo>(&text).unwrap(),
            with_url
        );
    }

    #[test]
    fn window_is_the_sixth_after_two_thirds_of_the_lifetime() {
        let day = 86_400;
        let nb = 1_700_000_000;
        assert_eq!(
            suggested_window(nb, nb + 90 * day, false, nb),
            (nb + 60 * day, nb + 75 * day)
        );
        // Six-day certificates: renew on day 4, within a day.
        assert_eq!(
            suggested_window(nb, nb + 6 * day, false, nb + day),
            (nb + 4 * day, nb + 5 * day)
        );
        // Odd lifetimes stay inside the validity, start < end.
        for lifetime in [0, 1, 2, 3, 5, 7, 100, 7_776_001] {
            let (start, end) = suggested_window(nb, nb + lifetime, false, nb);
            assert!(start < end, "{lifetime}");
            assert!(start >= nb, "{lifetime}");
            if lifetime >= 6 {
                assert!(end < nb + lifetime, "{lifetime}");
            }
        }
        // No overflow at the end of time.
        let (start, end) = suggested_window(u64::MAX - 10, u64::MAX, false, 0);
        assert!(start < end);
    }

    #[test]
    fn revoked_certificates_renew_now() {
        let now = 1_700_000_000;
        let (start, end) = suggested_window(now - 10, now + 90 * 86_400, true, now);
        assert!(start < end);
        assert_eq!(end, now);
        assert_eq!(suggested_window(0, 10, true, 0), (0, 1));
    }
}
