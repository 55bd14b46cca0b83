//! The configuration file (TOML): typed and checked before anything touches the token. One
//! module per section; this one reads the file and puts the sections together.
//!
//! Relative paths are resolved against the directory of the configuration file, so a
//! deployment directory can be moved as a whole. Secrets are never in this file: the PIN is
//! read from `pin_file` (which may name a systemd credential).

mod acme;
mod ca;
mod hsm;
mod limits;
mod profiles;
mod publication;
mod server;
mod validation;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use acme::AcmeConfig;
pub use ca::{CaConfig, CaIssuer};
pub use publication::PublicationConfig;
pub use server::ServerConfig;
pub use validation::ValidationConfig;

use crate::ca::distribution::Distribution;
use crate::hsm::TokenSettings;
use crate::policy::certificate::CertificateProfile;
use crate::ra::limits::RateLimits;

/// A configuration error, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl ConfigError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hsm: hsm::RawHsm,
    #[serde(default)]
    server: Option<server::RawServer>,
    #[serde(default)]
    acme: Option<acme::RawAcme>,
    #[serde(default)]
    validation: Option<validation::RawValidation>,
    #[serde(default)]
    publication: Option<publication::RawPublication>,
    #[serde(default)]
    storage: Option<RawStorage>,
    #[serde(default)]
    sealing: Option<RawSealing>,
    #[serde(default)]
    rate_limits: Option<limits::RawRateLimits>,
    #[serde(default, rename = "ca")]
    cas: Vec<ca::RawCa>,
    #[serde(default, rename = "endpoint")]
    endpoints: Vec<acme::RawAcme>,
    #[serde(default, rename = "certificate_profile")]
    certificate_profiles: Vec<profiles::RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSealing {
    key_label: String,
}

/// The whole, checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// How to reach the token.
    pub token: TokenSettings,
    /// The HTTPS listener, for `serve`.
    pub server: Option<ServerConfig>,
    /// The default ACME endpoint, for `serve`.
    pub acme: Option<AcmeConfig>,
    /// More ACME endpoints (`[[endpoint]]`), each under `/acme/<name>/`.
    pub endpoints: Vec<AcmeConfig>,
    /// Certificate profiles endpoints may offer.
    pub certificate_profiles: Vec<CertificateProfile>,
    /// Outbound validation.
    pub validation: ValidationConfig,
    /// CRL and CA certificate publication.
    pub publication: Option<PublicationConfig>,
    /// The redb state file.
    pub storage_path: Option<PathBuf>,
    /// Label of the AES key that seals stored secrets.
    pub sealing_key: Option<String>,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// The public suffix list for registered domains (default: the system's, if any).
    pub public_suffix_list: Option<PathBuf>,
    /// The CAs, parents before children.
    pub cas: Vec<CaConfig>,
}

impl Config {
    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses and checks configuration text; `path` locates relative paths and errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new(path, m);
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = e.to_string();
            // Keys that moved: say where to, not just that they are unknown.
            if message.contains("unknown field `crl_url`")
                || message.contains("unknown field `ca_issuers_url`")
            {
                err(format!(
                    "{message}\n[acme] crl_url and ca_issuers_url are replaced by [publication] \
                     base_url: certificates then point at <base_url>/crl/<ca>.crl and \
                     <base_url>/ca/<ca>.crt"
                ))
            } else {
                err(message)
            }
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let token = hsm::check_hsm(raw.hsm, base, &resolve).map_err(err)?;
        let cas = ca::check_cas(raw.cas, &token.profile, &resolve).map_err(err)?;
        let server = raw
            .server
            .map(|s| server::check_server(s, &resolve))
            .transpose()
            .map_err(err)?;
        let acme = raw
            .acme
            .map(|a| acme::check_acme(a, &cas, true, &resolve))
            .transpose()
            .map_err(err)?;
        let mut endpoints = Vec::with_capacity(raw.endpoints.len());
        let mut names: BTreeSet<String> = acme.iter().map(|a| a.name.clone()).collect();
        for raw_endpoint in raw.endpoints {
            let endpoint = acme::check_acme(raw_endpoint, &cas, false, &resolve).map_err(err)?;
            if acme.is_none() {
                return Err(err(
                    "[[endpoint]] needs an [acme] table: the default endpoint".into(),
                ));
            }
            if !names.insert(endpoint.name.clone()) {
                return Err(err(format!(
                    "the endpoint name {:?} is used twice",
                    endpoint.name
                )));
            }
            endpoints.push(endpoint);
        }
        let mut certificate_profiles: Vec<CertificateProfile> = Vec::new();
        for raw_profile in raw.certificate_profiles {
            let profile = profiles::check_profile(raw_profile).map_err(err)?;
            if certificate_profiles.iter().any(|p| p.name == profile.name) {
                return Err(err(format!(
                    "[[certificate_profile]] {:?} is defined twice",
                    profile.name
                )));
            }
            certificate_profiles.push(profile);
        }
        for endpoint in acme.iter().chain(&endpoints) {
            if let Some(missing) = endpoint
                .certificate_profiles
                .iter()
                .find(|name| !certificate_profiles.iter().any(|p| &p.name == *name))
            {
                return Err(err(format!(
                    "endpoint {:?}: certificate_profiles names {missing:?}, which no \
                     [[certificate_profile]] defines",
                    endpoint.name
                )));
            }
        }
        let validation = validation::check_validation(raw.validation, &resolve).map_err(err)?;
        let publication = raw
            .publication
            .map(publication::check_publication)
            .transpose()
            .map_err(err)?;
        let sealing_key = raw.sealing.map(|s| s.key_label);
        let (rate_limits, public_suffix_list) =
            limits::check_rate_limits(raw.rate_limits, &resolve).map_err(err)?;
        let mut labels = BTreeSet::new();
        let tls_label = server
            .as_ref()
            .filter(|s| s.tls_key_file.is_none())
            .map(|s| &s.tls_key_label);
        for label in cas
            .iter()
            .map(|c| &c.key_label)
            .chain(sealing_key.as_ref())
            .chain(tls_label)
        {
            if !labels.insert(label.clone()) {
                return Err(err(format!("key label {label:?} is used twice")));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            token,
            server,
            acme,
            endpoints,
            certificate_profiles,
            validation,
            publication,
            storage_path: raw.storage.map(|s| resolve(&s.path)),
            public_suffix_list,
            sealing_key,
            rate_limits,
            cas,
        })
    }

    /// The certificate profiles `endpoint` offers, its first the default; the built-in TLS
    /// server profile when it names none.
    pub fn profiles_of(&self, endpoint: &AcmeConfig) -> Vec<CertificateProfile> {
        if endpoint.certificate_profiles.is_empty() {
            return vec![CertificateProfile::built_in(
                std::time::Duration::from_secs(u64::from(endpoint.validity_days) * 86_400),
                endpoint.client_auth,
            )];
        }
        endpoint
            .certificate_profiles
            .iter()
            .filter_map(|name| self.certificate_profiles.iter().find(|p| &p.name == name))
            .cloned()
            .collect()
    }

    /// The CA called `name`.
    pub fn ca(&self, name: &str) -> Option<&CaConfig> {
        self.cas.iter().find(|c| c.name == name)
    }

    /// Where certificates signed by the CA called `issuer` say its CRL and certificate are.
    /// Empty without `[publication]`, or for a name that is not one of our CAs.
    pub fn distribution(&self, issuer: &str) -> Distribution {
        match (&self.publication, self.ca(issuer)) {
            (Some(publication), Some(ca)) => Distribution::under(&publication.base_url, &ca.name),
            _ => Distribution::default(),
        }
    }
}

/// What a reload from `old` to `new` changes in the endpoints, profiles and limits, one
/// line each.
pub fn reload_changes(old: &Config, new: &Config) -> Vec<String> {
    let endpoints = |c: &Config| -> std::collections::BTreeMap<String, String> {
        c.acme
            .iter()
            .chain(&c.endpoints)
            .map(|e| (e.name.clone(), format!("{e:?}")))
            .collect()
    };
    let (before, after) = (endpoints(old), endpoints(new));
    let mut changes = Vec::new();
    for (name, settings) in &after {
        match before.get(name) {
            None => changes.push(format!("endpoint {name:?} added")),
            Some(old) if old != settings => changes.push(format!("endpoint {name:?} changed")),
            Some(_) => {}
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        changes.push(format!("endpoint {name:?} removed"));
    }
    if format!("{:?}", old.certificate_profiles) != format!("{:?}", new.certificate_profiles) {
        changes.push("certificate profiles changed".into());
    }
    if old.rate_limits != new.rate_limits {
        changes.push("rate limits changed".into());
    }
    if changes.is_empty() {
        changes.push("no change to endpoints, certificate profiles or rate limits".into());
    }
    changes
}

/// Sections whose changes a reload does not apply (they take effect at the next start).
pub fn restart_sections(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    let mut check = |name, a: String, b: String| {
        if a != b {
            sections.push(name);
        }
    };
    check(
        "[hsm]",
        format!("{:?}", old.token),
        format!("{:?}", new.token),
    );
    check(
        "[server]",
        format!("{:?}", old.server),
        format!("{:?}", new.server),
    );
    check(
        "[storage]",
        format!("{:?}", old.storage_path),
        format!("{:?}", new.storage_path),
    );
    check(
        "[validation]",
        format!("{:?}", old.validation),
        format!("{:?}", new.validation),
    );
    check(
        "[publication]",
        format!("{:?}", old.publication),
        format!("{:?}", new.publication),
    );
    check(
        "[sealing]",
        format!("{:?}", old.sealing_key),
        format!("{:?}", new.sealing_key),
    );
    check(
        "[rate_limits] public_suffix_list",
        format!("{:?}", old.public_suffix_list),
        format!("{:?}", new.public_suffix_list),
    );
    sections
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const GOOD: &str = r#"
        [hsm]
        profile = "softhsm2"
        token_label = "t"
        pin_file = "pin"

        [sealing]
        key_label = "seal"

        [[ca]]
        name = "issuing"
        key_label = "issuing-key"
        key_type = "ecdsa-p256"
        subject = "CN=Issuing,O=Example"
        certificate = "issuing.pem"
        issuer = "root"

        [[ca]]
        name = "root"
        key_label = "root-key"
        key_type = "ecdsa-p384"
        subject = "CN=Root,O=Example"
        certificate = "/etc/root.pem"
    "#;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("/srv/acme/hsm-acme.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn orders_parents_first_and_resolves_relative_paths() {
        let config = parse(GOOD).unwrap();
        let names: Vec<_> = config.cas.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["root", "issuing"]);
        assert_eq!(
            config.cas[1].certificate,
            PathBuf::from("/srv/acme/issuing.pem")
        );
        assert_eq!(config.cas[0].certificate, PathBuf::from("/etc/root.pem"));
        assert_eq!(config.token.pin_file.as_deref(), Some("/srv/acme/pin"));
        assert_eq!(config.token.sessions, hsm::DEFAULT_SESSIONS);
        assert_eq!(config.cas[1].issuer, CaIssuer::Ca("root".into()));
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            (
                GOOD.replace("issuer = \"root\"", "issuer = \"nope\""),
                "not defined",
            ),
            (GOOD.replace("ecdsa-p256", "dsa-1024"), "unknown key type"),
            (
                GOOD.replace("token_label = \"t\"", ""),
                "token_label, token_serial or token_uri",
            ),
            (
                GOOD.replace("key_label = \"seal\"", "key_label = \"root-key\""),
                "used twice",
            ),
            (GOOD.replace("pin_file", "pin_flie"), "unknown field"),
            (
                format!("{GOOD}\n[acme]\nca = \"issuing\"\ncrl_url = \"http://x/c.crl\"\n"),
                "[publication] base_url",
            ),
            (
                format!("{GOOD}\n[publication]\nbase_url = \"https://pki.example\"\n"),
                "must be an http:// URL",
            ),
            (
                format!(
                    "{GOOD}\n[publication]\nlisten = \"127.0.0.1:80\"\ncrl_lifetime_hours = 500\n"
                ),
                "crl_lifetime_hours",
            ),
            (
                GOOD.replace("softhsm2", "nosuch"),
                "no such shipped profile",
            ),
            (
                GOOD.replace(
                    "token_label = \"t\"",
                    "token_uri = \"pkcs11:token=t?pin-value=1\"",
                ),
                "pin-value",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
            assert!(err.starts_with("/srv/acme/hsm-acme.toml"), "{err}");
        }
    }

    #[test]
    fn publication_urls_follow_the_listener_unless_a_base_url_is_given() {
        let config = parse(&format!(
            "{GOOD}\n[publication]\nlisten = \"127.0.0.1:8080\"\n"
        ))
        .unwrap();
        let publication = config.publication.as_ref().unwrap();
        assert_eq!(publication.base_url, "http://127.0.0.1:8080");
        assert_eq!(publication.crl_lifetime, Duration::from_secs(168 * 3600));
        let d = config.distribution("issuing");
        assert_eq!(
            d.crl_url.as_deref(),
            Some("http://127.0.0.1:8080/crl/issuing.crl")
        );
        assert_eq!(config.distribution("nope"), Distribution::default());
        let config = parse(&format!(
            "{GOOD}\n[publication]\nlisten = \"0.0.0.0:80\"\nbase_url = \"http://pki.example.net/\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.distribution("root").ca_issuers_url.as_deref(),
            Some("http://pki.example.net/ca/root.crt")
        );
        assert_eq!(
            parse(GOOD).unwrap().distribution("root"),
            Distribution::default()
        );
    }

    #[test]
    fn uri_selects_token_and_pin_source() {
        let text = GOOD.replace(
            "token_label = \"t\"\n        pin_file = \"pin\"",
            "token_uri = \"pkcs11:token=t;serial=42?pin-source=file:/run/pin\"",
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.token.selector.serial.as_deref(), Some("42"));
        assert_eq!(config.token.pin_file.as_deref(), Some("/run/pin"));
    }

    /// The README's example configurations, with the tables they leave out, parse.
    #[test]
    fn the_readme_examples_parse() {
        let readme = include_str!("../../README.md");
        let base = r#"
            [hsm]
            profile = "softhsm2"
            token_label = "t"
            pin_file = "pin"

            [[ca]]
            name = "root"
            key_label = "root-key"
            key_type = "ecdsa-p384"
            subject = "CN=Root"
            certificate = "root.pem"

            [[ca]]
            name = "issuing"
            key_label = "issuing-key"
            key_type = "ecdsa-p256"
            subject = "CN=Issuing"
            certificate = "issuing.pem"
            issuer = "root"

            [[ca]]
            name = "issuing-xroad"
            key_label = "xroad-key"
            key_type = "rsa-3072"
            subject = "CN=X-Road"
            certificate = "xroad.pem"
            issuer = "root"
        "#;
        for heading in [
            "### Example: a regulated network",
            "### Example: an open internal network",
        ] {
            let after = &readme[readme.find(heading).unwrap()..];
            let start = after.find("```toml\n").unwrap() + "```toml\n".len();
            let example = &after[start..];
            let example = &example[..example.find("```").unwrap()];
            let config =
                parse(&format!("{base}\n{example}")).unwrap_or_else(|e| panic!("{heading}: {e}"));
            assert!(config.acme.is_some(), "{heading}");
        }
    }
}
