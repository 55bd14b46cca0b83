//! `[[ca]]`: the CAs whose keys live on the token, ordered parents first.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use x509_cert::name::Name;

use crate::hsm::{KeyType, Pkcs11Profile, RsaPadding};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCa {
    name: String,
    key_label: String,
    key_type: KeyType,
    #[serde(default)]
    rsa_padding: RsaPadding,
    subject: String,
    certificate: PathBuf,
    issuer: Option<String>,
    chain: Option<PathBuf>,
    validity_days: Option<u32>,
    path_len: Option<u8>,
    #[serde(default)]
    alternate_chains: Vec<PathBuf>,
}

/// Who signs a CA's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaIssuer {
    /// The CA signs its own certificate (a root).
    SelfSigned,
    /// Another CA of this configuration signs it.
    Ca(String),
    /// A CA outside hsm-acme signs it: `ca init` writes a CSR, `ca import` takes the answer.
    External,
}

/// One CA whose key lives on the token.
#[derive(Debug, Clone)]
pub struct CaConfig {
    /// Name used on the command line and in URLs.
    pub name: String,
    /// CKA_LABEL of its private key.
    pub key_label: String,
    /// Type of its key.
    pub key_type: KeyType,
    /// For RSA keys: the padding its signatures use.
    pub rsa_padding: RsaPadding,
    /// Its subject name.
    pub subject: Name,
    /// The subject as written in the configuration.
    pub subject_text: String,
    /// Where its certificate (PEM) is kept.
    pub certificate: PathBuf,
    /// Certificates above it up to the root (PEM), for an externally issued CA.
    pub chain: Option<PathBuf>,
    /// Who signs its certificate.
    pub issuer: CaIssuer,
    /// Lifetime of the certificate `ca init` makes.
    pub validity: Duration,
    /// pathLenConstraint for a subordinate CA.
    pub path_len: Option<u8>,
    /// Other chains to offer after a leaf (PEM files, e.g. through a cross-signed
    /// certificate), as RFC 8555 §7.4.2 alternates.
    pub alternate_chains: Vec<PathBuf>,
}

pub(super) fn check_cas(
    raw: Vec<RawCa>,
    profile: &Pkcs11Profile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<CaConfig>, String> {
    let mut by_name = BTreeMap::new();
    for ca in raw {
        let here = format!("[[ca]] {:?}", ca.name);
        if ca.name.is_empty()
            || !ca
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "{here}: names use only letters, digits, '-' and '_'"
            ));
        }
        if !profile.supports(ca.key_type) {
            return Err(format!(
                "{here}: key_type {} is not supported by profile {}",
                ca.key_type, profile.module.name
            ));
        }
        let subject = Name::from_str(&ca.subject).map_err(|e| {
            format!(
                "{here}: subject {:?} is not a distinguished name: {e}",
                ca.subject
            )
        })?;
        let issuer = match ca.issuer.as_deref() {
            None => CaIssuer::SelfSigned,
            Some("external") => CaIssuer::External,
            Some(parent) if parent == ca.name => {
                return Err(format!(
                    "{here}: issuer names the CA itself; omit it for a root"
                ));
            }
            Some(parent) => CaIssuer::Ca(parent.to_owned()),
        };
        if ca.chain.is_some() && issuer != CaIssuer::External {
            return Err(format!("{here}: chain is only for issuer = \"external\""));
        }
        let default_days = if issuer == CaIssuer::SelfSigned {
            3650
        } else {
            1825
        };
        let days = ca.validity_days.unwrap_or(default_days);
        if days == 0 || days > 36500 {
            return Err(format!("{here}: validity_days = {days} is not 1..=36500"));
        }
        let config = CaConfig {
            key_label: ca.key_label,
            key_type: ca.key_type,
            rsa_padding: ca.rsa_padding,
            subject,
            subject_text: ca.subject,
            certificate: resolve(&ca.certificate),
            chain: ca.chain.as_deref().map(resolve),
            alternate_chains: ca.alternate_chains.iter().map(|p| resolve(p)).collect(),
            issuer,
            validity: Duration::from_secs(u64::from(days) * 86_400),
            path_len: ca.path_len,
            name: ca.name.clone(),
        };
        if by_name.insert(ca.name.clone(), config).is_some() {
            return Err(format!("{here}: defined twice"));
        }
    }
    // Parents before children; a parent that is missing or a cycle is an error.
    let mut ordered: Vec<CaConfig> = Vec::new();
    while !by_name.is_empty() {
        let ready: Vec<String> = by_name
            .values()
            .filter(|ca| match &ca.issuer {
                CaIssuer::Ca(parent) => ordered.iter().any(|o| &o.name == parent),
                _ => true,
            })
            .map(|ca| ca.name.clone())
            .collect();
        if ready.is_empty() {
            let stuck: Vec<String> = by_name
                .values()
                .map(|ca| match &ca.issuer {
                    CaIssuer::Ca(parent) => format!("{:?} (issuer {parent:?})", ca.name),
                    _ => format!("{:?}", ca.name),
                })
                .collect();
            return Err(format!(
                "these CAs name an issuer that is not defined, or form a cycle: {}",
                stuck.join(", ")
            ));
        }
        for name in ready {
            if let Some(ca) = by_name.remove(&name) {
                ordered.push(ca);
            }
        }
    }
    Ok(ordered)
}

impl fmt::Display for CaIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfSigned => f.write_str("self-signed"),
            Self::Ca(name) => write!(f, "signed by {name:?}"),
            Self::External => f.write_str("signed by an external CA"),
        }
    }
}
