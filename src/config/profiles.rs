//! `[[certificate_profile]]`: what certificates of a profile say and which CSRs they
//! accept; an endpoint lists the ones it offers in `certificate_profiles`.

use std::collections::BTreeMap;
use std::time::Duration;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{
    ID_KP_CLIENT_AUTH, ID_KP_CODE_SIGNING, ID_KP_EMAIL_PROTECTION, ID_KP_OCSP_SIGNING,
    ID_KP_SERVER_AUTH, ID_KP_TIME_STAMPING,
};
use der::flagset::FlagSet;
use regex::Regex;
use serde::Deserialize;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::name::Name;

use crate::ca::csr::KeyPolicy;
use crate::ca::distribution::Distribution;
use crate::ca::leaf::LeafContents;
use crate::policy::certificate::{
    BUILT_IN, CertificateProfile, SubjectAttribute, SubjectPolicy, attribute_oid,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    validity_days: Option<u32>,
    max_validity_days: Option<u32>,
    extended_key_usage: Option<Vec<String>>,
    key_usage: Option<Vec<String>>,
    policy_oids: Option<Vec<String>>,
    key_types: Option<Vec<String>>,
    rsa_min_bits: Option<usize>,
    #[serde(default)]
    subject_attributes: Vec<String>,
    #[serde(default)]
    subject_patterns: BTreeMap<String, String>,
    #[serde(default)]
    subject_required: Vec<String>,
    crl_url: Option<String>,
    ca_issuers_url: Option<String>,
}

/// CA/B Forum BR §7.1.6.1 domain-validated policy, the default.
const DOMAIN_VALIDATED: &str = "2.23.140.1.2.1";

pub(super) fn check_profile(raw: RawProfile) -> Result<CertificateProfile, String> {
    let here = format!("[[certificate_profile]] {:?}", raw.name);
    if raw.name.is_empty()
        || raw.name.len() > 64
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{here}: names are 1 to 64 letters, digits, '-' and '_'"
        ));
    }
    if raw.name == BUILT_IN {
        return Err(format!(
            "{here}: {BUILT_IN:?} is the built-in profile's name; choose another"
        ));
    }
    let days = raw.validity_days.unwrap_or(90);
    let max_days = raw.max_validity_days.unwrap_or(days);
    if days == 0 || max_days < days || max_days > 3650 {
        return Err(format!(
            "{here}: validity_days = {days} and max_validity_days = {max_days} must satisfy \
             1 <= validity_days <= max_validity_days <= 3650"
        ));
    }
    let extended_key_usage = raw
        .extended_key_usage
        .unwrap_or_else(|| vec!["serverAuth".into()])
        .iter()
        .map(|p| purpose(p).map_err(|e| format!("{here}: extended_key_usage: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let key_usage = raw
        .key_usage
        .map(|bits| {
            let mut flags = FlagSet::<KeyUsages>::default();
            for bit in &bits {
                flags |= usage(bit).map_err(|e| format!("{here}: key_usage: {e}"))?;
            }
            Ok::<_, String>(flags)
        })
        .transpose()?;
    let policies = raw
        .policy_oids
        .unwrap_or_else(|| vec![DOMAIN_VALIDATED.into()])
        .iter()
        .map(|oid| {
            ObjectIdentifier::new(oid)
                .map_err(|e| format!("{here}: policy_oids: {oid:?} is not an OID: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_policy = key_policy(raw.key_types.as_deref(), raw.rsa_min_bits)
        .map_err(|e| format!("{here}: {e}"))?;
    let subject = subject_policy(
        &raw.subject_attributes,
        &raw.subject_patterns,
        &raw.subject_required,
    )
    .map_err(|e| format!("{here}: {e}"))?;
    let distribution = match (raw.crl_url, raw.ca_issuers_url) {
        (None, None) => None,
        (crl_url, ca_issuers_url) => Some(
            Distribution {
                crl_url,
                ca_issuers_url,
            }
            .checked()
            .map_err(|e| format!("{here}: {e}"))?,
        ),
    };
    Ok(CertificateProfile {
        name: raw.name,
        description: raw.description,
        validity: Duration::from_secs(u64::from(days) * 86_400),
        max_validity: Duration::from_secs(u64::from(max_days) * 86_400),
        key_policy,
        subject,
        contents: LeafContents {
            subject: Name::default(),
            extended_key_usage,
            key_usage,
            policies,
            distribution,
        },
    })
}

/// An extendedKeyUsage purpose by RFC 5280 name, or a dotted OID.
fn purpose(name: &str) -> Result<ObjectIdentifier, String> {
    Ok(match name {
        "serverAuth" => ID_KP_SERVER_AUTH,
        "clientAuth" => ID_KP_CLIENT_AUTH,
        "codeSigning" => ID_KP_CODE_SIGNING,
        "emailProtection" => ID_KP_EMAIL_PROTECTION,
        "timeStamping" => ID_KP_TIME_STAMPING,
        "OCSPSigning" => ID_KP_OCSP_SIGNING,
        other => ObjectIdentifier::new(other).map_err(|_| {
            format!(
                "{other:?} is neither serverAuth, clientAuth, codeSigning, emailProtection, \
                 timeStamping, OCSPSigning nor a dotted OID"
            )
        })?,
    })
}

/// A keyUsage bit by RFC 5280 §4.2.1.3 name; CA bits are not for subscribers.
fn usage(name: &str) -> Result<KeyUsages, String> {
    Ok(match name {
        "digitalSignature" => KeyUsages::DigitalSignature,
        "nonRepudiation" | "contentCommitment" => KeyUsages::NonRepudiation,
        "keyEncipherment" => KeyUsages::KeyEncipherment,
        "dataEncipherment" => KeyUsages::DataEncipherment,
        "keyAgreement" => KeyUsages::KeyAgreement,
        other => {
            return Err(format!(
                "{other:?} is not one of digitalSignature, nonRepudiation, keyEncipherment, \
                 dataEncipherment, keyAgreement"
            ));
        }
    })
}

fn key_policy(types: Option<&[String]>, rsa_min_bits: Option<usize>) -> Result<KeyPolicy, String> {
    let defaults = KeyPolicy::default();
    let rsa_min_bits = rsa_min_bits.unwrap_or(defaults.rsa_min_bits);
    if !(2048..=defaults.rsa_max_bits).contains(&rsa_min_bits) {
        return Err(format!("rsa_min_bits = {rsa_min_bits} is not 2048..=8192"));
    }
    let Some(types) = types else {
        return Ok(KeyPolicy {
            rsa_min_bits,
            ..defaults
        });
    };
    let mut policy = KeyPolicy {
        rsa_min_bits,
        rsa_max_bits: 0,
        allow_p256: false,
        allow_p384: false,
        allow_ed25519: false,
    };
    for kind in types {
        match kind.as_str() {
            "rsa" => policy.rsa_max_bits = defaults.rsa_max_bits,
            "ecdsa-p256" => policy.allow_p256 = true,
            "ecdsa-p384" => policy.allow_p384 = true,
            "ed25519" => policy.allow_ed25519 = true,
            other => {
                return Err(format!(
                    "key_types: {other:?} is not one of rsa, ecdsa-p256, ecdsa-p384, ed25519"
                ));
            }
        }
    }
    if policy.rsa_max_bits == 0 {
        // No RSA: a range no key fits.
        policy.rsa_min_bits = usize::MAX;
    }
    Ok(policy)
}

fn subject_policy(
    attributes: &[String],
    patterns: &BTreeMap<String, String>,
    required: &[String],
) -> Result<SubjectPolicy, String> {
    let mut copy = Vec::with_capacity(attributes.len());
    for name in attributes {
        let oid = attribute_oid(name)?;
        let pattern = patterns
            .get(name)
            .map(|p| {
                // The whole value must match, however the pattern is anchored.
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("subject_patterns.{name}: {e}"))
            })
            .transpose()?;
        copy.push(SubjectAttribute {
            name: name.clone(),
            oid,
            pattern,
            required: required.contains(name),
        });
    }
    if let Some(stray) = patterns
        .keys()
        .chain(required)
        .find(|n| !attributes.contains(n))
    {
        return Err(format!(
            "{stray:?} has a pattern or is required but is not in subject_attributes"
        ));
    }
    Ok(SubjectPolicy { copy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(toml_text: &str) -> RawProfile {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn an_x_road_profile_reads_and_bad_settings_are_named() {
        let profile = check_profile(raw(r#"
            name = "xroad-auth"
            description = "X-Road authentication"
            validity_days = 365
            max_validity_days = 730
            extended_key_usage = ["clientAuth", "serverAuth"]
            key_usage = ["digitalSignature", "keyEncipherment"]
            key_types = ["rsa"]
            subject_attributes = ["C", "O", "serialNumber", "CN"]
            subject_patterns = { C = "[A-Z]{2}" }
            subject_required = ["C", "O", "serialNumber", "CN"]
        "#))
        .unwrap();
        assert_eq!(profile.max_validity, Duration::from_secs(730 * 86_400));
        assert_eq!(
            profile.contents.extended_key_usage,
            [ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH]
        );
        assert!(!profile.key_policy.allow_p256);
        assert_eq!(profile.subject.copy.len(), 4);
        assert!(profile.subject.copy.iter().all(|a| a.required));

        let cases = [
            (r#"name = "default""#, "built-in"),
            (r#"name = "a b""#, "names are"),
            (
                "name = \"p\"\nvalidity_days = 30\nmax_validity_days = 10",
                "max_validity_days",
            ),
            (
                "name = \"p\"\nextended_key_usage = [\"teaMaking\"]",
                "teaMaking",
            ),
            ("name = \"p\"\nkey_usage = [\"keyCertSign\"]", "keyCertSign"),
            ("name = \"p\"\nkey_types = [\"dsa\"]", "dsa"),
            ("name = \"p\"\npolicy_oids = [\"x.y\"]", "policy_oids"),
            ("name = \"p\"\nsubject_attributes = [\"Colour\"]", "Colour"),
            (
                "name = \"p\"\nsubject_required = [\"CN\"]",
                "not in subject_attributes",
            ),
            (
                "name = \"p\"\nsubject_attributes = [\"C\"]\nsubject_patterns = { C = \"(\" }",
                "subject_patterns.C",
            ),
        ];
        for (text, expected) in cases {
            let err = check_profile(raw(text)).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
