//! Certificate profiles: what a certificate of a profile says beyond its names and key
//! (validity, key usages, policies, subject), and which CSRs it accepts (key types, the
//! subject attributes it copies and the pattern each must match). An ACME endpoint offers
//! one or more; a client picks one by name in newOrder (draft-ietf-acme-profiles).
//!
//! The built-in profile is the Baseline Requirements' TLS server certificate: an empty
//! subject, every name in a critical subjectAltName. A profile that copies subject
//! attributes serves clients such as X-Road security servers, whose authentication
//! certificates carry C, O, serialNumber and CN, the name possibly in the CN alone
//! (RFC 8555 §7.4 allows that).

use std::collections::BTreeSet;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use regex::Regex;
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::name::{Name, RdnSequence};

use crate::ca::csr::KeyPolicy;
use crate::ca::leaf::LeafContents;

/// The profile an endpoint without `certificate_profiles` issues with.
pub const BUILT_IN: &str = "default";

/// One certificate profile.
#[derive(Debug, Clone)]
pub struct CertificateProfile {
    /// Its name, as clients ask for it.
    pub name: String,
    /// What it is for, shown in the directory.
    pub description: String,
    /// Validity when the order asks for none.
    pub validity: Duration,
    /// Longest validity an order may ask for.
    pub max_validity: Duration,
    /// Subscriber keys it accepts.
    pub key_policy: KeyPolicy,
    /// Which CSR subject attributes it copies, and how they must look.
    pub subject: SubjectPolicy,
    /// Extensions and subject of its certificates, but for the subject.
    pub contents: LeafContents,
}

impl CertificateProfile {
    /// The Baseline Requirements TLS server profile, with clientAuth when asked.
    pub fn built_in(validity: Duration, client_auth: bool) -> Self {
        Self {
            name: BUILT_IN.into(),
            description: "TLS server certificate: names in the subjectAltName only".into(),
            validity,
            max_validity: validity,
            key_policy: KeyPolicy::default(),
            subject: SubjectPolicy::default(),
            contents: LeafContents::tls_server(client_auth),
        }
    }
}

/// Subject attributes a profile takes from the CSR. Empty: the certificate's subject is
/// empty and whatever the CSR's subject holds is not used (its commonName is one of the
/// requested names). Otherwise every attribute of the CSR's subject must be listed, match
/// its pattern, and every required one must be present.
#[derive(Debug, Clone, Default)]
pub struct SubjectPolicy {
    /// The attributes copied, in the order of the configuration.
    pub copy: Vec<SubjectAttribute>,
}

/// One copied attribute.
#[derive(Debug, Clone)]
pub struct SubjectAttribute {
    /// Its short name (`C`, `O`, `serialNumber`, …) or dotted OID, as configured.
    pub name: String,
    /// Its OID.
    pub oid: ObjectIdentifier,
    /// The whole value must match this, when set.
    pub pattern: Option<Regex>,
    /// The CSR must carry it.
    pub required: bool,
}

/// Attribute short names a configuration may use (RFC 4519, RFC 5280 §4.1.2.4).
const ATTRIBUTES: &[(&str, &str)] = &[
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("CN", "2.5.4.3"),
    ("serialNumber", "2.5.4.5"),
    ("title", "2.5.4.12"),
    ("street", "2.5.4.9"),
    ("postalCode", "2.5.4.17"),
    ("givenName", "2.5.4.42"),
    ("surname", "2.5.4.4"),
    ("organizationIdentifier", "2.5.4.97"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
    ("emailAddress", "1.2.840.113549.1.9.1"),
];

/// The OID of an attribute short name or dotted OID.
pub fn attribute_oid(name: &str) -> Result<ObjectIdentifier, String> {
    if let Some((_, oid)) = ATTRIBUTES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        return ObjectIdentifier::new(oid).map_err(|e| e.to_string());
    }
    ObjectIdentifier::new(name).map_err(|_| {
        let known: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown subject attribute {name:?}: use one of {} or a dotted OID",
            known.join(", ")
        )
    })
}

fn attribute_name(oid: ObjectIdentifier) -> String {
    ATTRIBUTES
        .iter()
        .find(|(_, o)| ObjectIdentifier::new(o).is_ok_and(|o| o == oid))
        .map_or_else(|| oid.to_string(), |(n, _)| (*n).to_owned())
}

impl SubjectPolicy {
    /// The certificate's subject for a CSR with `subject`, or why the CSR is refused
    /// (for `badCSR`).
    pub fn subject_for(&self, subject: &Name) -> Result<Name, String> {
        if self.copy.is_empty() {
            return Ok(Name::default());
        }
        let mut seen = BTreeSet::new();
        let mut kept = Vec::new();
        for rdn in subject.iter_rdn() {
            for atv in rdn.iter() {
                let Some(rule) = self.copy.iter().find(|a| a.oid == atv.oid) else {
                    return Err(format!(
                        "the CSR subject carries {}, which this certificate profile does not \
                         take; it takes {}",
                        attribute_name(atv.oid),
                        self.names()
                    ));
                };
                let value = atv
                    .value
                    .decode_as::<DirectoryString>()
                    .map(|d| d.value().to_string())
                    .or_else(|_| {
                        atv.value
                            .decode_as::<der::asn1::Ia5StringRef<'_>>()
                            .map(|s| s.as_str().to_owned())
                    })
                    .map_err(|_| format!("the CSR subject's {} is not a string", rule.name))?;
                if let Some(pattern) = &rule.pattern
                    && !pattern.is_match(&value)
                {
                    return Err(format!(
                        "the CSR subject's {} {value:?} does not match {:?}",
                        rule.name,
                        pattern.as_str()
                    ));
                }
                if !seen.insert(atv.oid) {
                    return Err(format!("the CSR subject carries {} twice", rule.name));
                }
            }
            kept.push(rdn.clone());
        }
        if let Some(missing) = self
            .copy
            .iter()
            .find(|a| a.required && !seen.contains(&a.oid))
        {
            return Err(format!(
                "the CSR subject lacks {}, which this certificate profile requires",
                missing.name
            ));
        }
        let rdns = RdnSequence::from(kept);
        let der = rdns.to_der().map_err(|e| e.to_string())?;
        Name::from_der(&der).map_err(|e| e.to_string())
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.copy.iter().map(|a| a.name.as_str()).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn xroad() -> SubjectPolicy {
        let attr = |name: &str, pattern: Option<&str>| SubjectAttribute {
            name: name.into(),
            oid: attribute_oid(name).unwrap(),
            pattern: pattern.map(|p| Regex::new(&format!("^(?:{p})$")).unwrap()),
            required: true,
        };
        SubjectPolicy {
            copy: vec![
                attr("C", Some("[A-Z]{2}")),
                attr("O", None),
                attr("serialNumber", Some("[A-Za-z0-9:/-]+")),
                attr("CN", None),
            ],
        }
    }

    #[test]
    fn an_x_road_subject_is_copied_as_the_csr_has_it() {
        let csr =
            Name::from_str("C=EE,O=Test Org,serialNumber=EE/GOV/1234,CN=ss1.xroad.test").unwrap();
        let subject = xroad().subject_for(&csr).unwrap();
        assert_eq!(subject.to_der().unwrap(), csr.to_der().unwrap());
    }

    #[test]
    fn attributes_not_taken_bad_values_and_missing_ones_are_refused() {
        let policy = xroad();
        let cases = [
            ("C=EE,O=Org,OU=Unit,serialNumber=1,CN=a.test", "OU"),
            ("C=Estonia,O=Org,serialNumber=1,CN=a.test", "does not match"),
            ("C=EE,O=Org,serialNumber=1 2,CN=a.test", "serialNumber"),
            ("C=EE,O=Org,CN=a.test", "lacks serialNumber"),
            ("C=EE,O=Org,O=Other,serialNumber=1,CN=a.test", "twice"),
        ];
        for (subject, expected) in cases {
            let err = policy
                .subject_for(&Name::from_str(subject).unwrap())
                .unwrap_err();
            assert!(err.contains(expected), "{subject}: {err}");
        }
    }

    #[test]
    fn the_built_in_profile_makes_an_empty_subject_whatever_the_csr_says() {
        let csr = Name::from_str("O=Anything,CN=a.test").unwrap();
        assert!(
            SubjectPolicy::default()
                .subject_for(&csr)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn attribute_names_resolve_and_unknown_ones_say_what_is_known() {
        assert_eq!(
            attribute_oid("serialnumber").unwrap().to_string(),
            "2.5.4.5"
        );
        assert_eq!(attribute_oid("1.2.3.4").unwrap().to_string(), "1.2.3.4");
        let err = attribute_oid("Colour").unwrap_err();
        assert!(err.contains("serialNumber"), "{err}");
    }
}
