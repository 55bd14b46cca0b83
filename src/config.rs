//! The configuration file (TOML): typed and checked before anything touches the token.
//!
//! Relative paths are resolved against the directory of the configuration file, so a
//! deployment directory can be moved as a whole. Secrets are never in this file: the PIN is
//! read from `pin_file` (which may name a systemd credential).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use x509_cert::name::Name;

use crate::ca::distribution::Distribution;
use crate::hsm::uri::Pkcs11Uri;
use crate::hsm::{KeyType, Pkcs11Profile, RsaPadding, TokenSelector, TokenSettings};
use crate::policy::network::NetworkPolicy;
use crate::ra::limits::{RateLimit, RateLimits};
use crate::va::resolver::Dnssec;
use crate::wfe::server::ConnectionLimits;

/// Default number of worker sessions on the token.
const DEFAULT_SESSIONS: usize = 4;

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
    hsm: RawHsm,
    #[serde(default)]
    server: Option<RawServer>,
    #[serde(default)]
    acme: Option<RawAcme>,
    #[serde(default)]
    validation: Option<RawValidation>,
    #[serde(default)]
    publication: Option<RawPublication>,
    #[serde(default)]
    storage: Option<RawStorage>,
    #[serde(default)]
    sealing: Option<RawSealing>,
    #[serde(default)]
    rate_limits: Option<RawRateLimits>,
    #[serde(default, rename = "ca")]
    cas: Vec<RawCa>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHsm {
    profile: String,
    module: Option<PathBuf>,
    token_label: Option<String>,
    token_serial: Option<String>,
    token_uri: Option<String>,
    pin_file: Option<String>,
    sessions: Option<usize>,
    wait_for_token_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: SocketAddr,
    base_url: Option<String>,
    tls_names: Option<Vec<String>>,
    tls_key_label: Option<String>,
    tls_certificate: PathBuf,
    tls_validity_seconds: Option<u64>,
    tls_key_file: Option<PathBuf>,
    admin_socket: Option<PathBuf>,
    max_connections: Option<usize>,
    idle_timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAcme {
    name: Option<String>,
    ca: String,
    #[serde(default)]
    eab_required: bool,
    validity_days: Option<u32>,
    #[serde(default)]
    client_auth: bool,
    terms_of_service: Option<String>,
    website: Option<String>,
    #[serde(default)]
    caa_identities: Vec<String>,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default = "yes")]
    wildcards: bool,
    #[serde(default)]
    wildcard_http01: bool,
    #[serde(default = "yes")]
    ip_identifiers: bool,
    #[serde(default = "yes")]
    pre_authorization: bool,
    #[serde(default)]
    authz_reuse_hours: u32,
    caa_recheck_hours: Option<u32>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublication {
    listen: Option<SocketAddr>,
    base_url: Option<String>,
    crl_lifetime_hours: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidation {
    http01_port: Option<u16>,
    tls_alpn01_port: Option<u16>,
    dns_resolver: Option<SocketAddr>,
    #[serde(default)]
    dnssec: bool,
    dnssec_trust_anchor: Option<PathBuf>,
    redirect_ports: Option<Vec<u16>>,
    #[serde(default)]
    allow_networks: Vec<String>,
    #[serde(default)]
    deny_networks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimits {
    accounts_per_ip: Option<RateLimit>,
    orders_per_account: Option<RateLimit>,
    identifiers_per_order: Option<usize>,
    pending_orders_per_account: Option<usize>,
    pending_authorizations_per_account: Option<usize>,
    certificates_per_domain: Option<RateLimit>,
    public_suffix_list: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSealing {
    key_label: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCa {
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

/// `[server]`: the HTTPS listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL; `None` means `https://<listen>`.
    pub base_url: Option<String>,
    /// Names (DNS or IP) in the server's own certificate.
    pub tls_names: Vec<String>,
    /// Label of the token key for TLS (when hsm-acme issues its own certificate).
    pub tls_key_label: String,
    /// The server certificate (PEM chain); written by hsm-acme unless `tls_key_file` is set.
    pub tls_certificate: PathBuf,
    /// Lifetime of the server certificate issued for a token key (default: the ACME
    /// profile's `validity_days`); it is renewed in the last third of it.
    pub tls_validity: Option<Duration>,
    /// An operator-managed key file; then `tls_certificate` is operator-managed too.
    pub tls_key_file: Option<PathBuf>,
    /// A Unix socket (mode 0600) on which `serve` takes operator commands such as
    /// `hsm-acme revoke` while it runs.
    pub admin_socket: Option<PathBuf>,
    /// Connections at once, and how long one may make no progress.
    pub limits: ConnectionLimits,
}

/// `[acme]`: the ACME profile.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The profile's name (default `default`): EAB keys and accounts belong to it.
    pub name: String,
    /// The `[[ca]]` that issues.
    pub ca: String,
    /// newAccount needs an external account binding (RFC 8555 §7.3.4).
    pub eab_required: bool,
    /// Longest certificate lifetime, days.
    pub validity_days: u32,
    /// Add clientAuth to issued certificates.
    pub client_auth: bool,
    /// Terms of service URL; when set, newAccount must agree.
    pub terms_of_service: Option<String>,
    /// Website URL for the directory.
    pub website: Option<String>,
    /// CAA identities for the directory.
    pub caa_identities: Vec<String>,
    /// Domains issued for (empty: any).
    pub allowed_domains: Vec<String>,
    /// Accept `*.name` identifiers.
    pub wildcards: bool,
    /// Offer http-01 for wildcards too (a divergence; default off).
    pub wildcard_http01: bool,
    /// Accept `ip` identifiers.
    pub ip_identifiers: bool,
    /// Offer newAuthz.
    pub pre_authorization: bool,
    /// Reuse valid authorizations this long (zero: never).
    pub authz_reuse: Duration,
    /// Check CAA again at finalize for authorizations older than this.
    pub caa_recheck: Duration,
}

/// `[publication]`: the plain-HTTP listener for CRLs and CA certificates, and the base URL
/// that certificates point at (RFC 5280 §4.2.1.13, §4.2.2.1).
#[derive(Debug, Clone)]
pub struct PublicationConfig {
    /// Where `serve` answers; `None` when another web server publishes the files.
    pub listen: Option<SocketAddr>,
    /// `http://host[:port]` as it goes into certificates.
    pub base_url: String,
    /// nextUpdate − thisUpdate of every CRL.
    pub crl_lifetime: Duration,
}

/// `[validation]`: outbound validation.
#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// Port http-01 validation connects to.
    pub http01_port: u16,
    /// Port tls-alpn-01 validation connects to.
    pub tls_alpn01_port: u16,
    /// DNS resolver for validation (default: the system's).
    pub dns_resolver: Option<SocketAddr>,
    /// DNSSEC validation of every answer used for validation and CAA.
    pub dnssec: Dnssec,
    /// Ports a redirect may lead to.
    pub redirect_ports: Vec<u16>,
    /// Addresses validation may connect to (and `ip` identifiers may name).
    pub network: NetworkPolicy,
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
    /// The ACME profile, for `serve`.
    pub acme: Option<AcmeConfig>,
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

impl ServerConfig {
    /// The public base URL.
    pub fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.listen))
    }
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

        let profile = Pkcs11Profile::load(&raw.hsm.profile).map_err(|e| err(e.to_string()))?;
        let mut selector = TokenSelector {
            label: raw.hsm.token_label.clone(),
            serial: raw.hsm.token_serial.clone(),
            ..TokenSelector::default()
        };
        let mut module = raw.hsm.module.as_deref().map(resolve);
        let mut pin_file = raw.hsm.pin_file.clone();
        if let Some(uri) = &raw.hsm.token_uri {
            if selector.label.is_some() || selector.serial.is_some() {
                return Err(err(
                    "[hsm] token_uri and token_label/token_serial exclude each other".into(),
                ));
            }
            let uri = Pkcs11Uri::parse(uri).map_err(|e| err(format!("[hsm] token_uri: {e}")))?;
            selector = TokenSelector::from_uri(&uri);
            if module.is_none() {
                module = uri.module_path.as_deref().map(PathBuf::from);
            }
            if pin_file.is_none() {
                pin_file = uri.pin_source.clone();
            }
        }
        if selector.is_empty() {
            return Err(err(
                "[hsm] needs token_label, token_serial or token_uri".into()
            ));
        }
        let pin_file = pin_file.map(|p| {
            if p.contains("${") || Path::new(&p).is_absolute() {
                p
            } else {
                base.join(p).display().to_string()
            }
        });
        let module = module.unwrap_or_else(|| PathBuf::from(profile.default_library()));
        let sessions = raw.hsm.sessions.unwrap_or(DEFAULT_SESSIONS);
        if sessions == 0 || sessions > 1024 {
            return Err(err(format!("[hsm] sessions = {sessions} is not 1..=1024")));
        }

        let cas = check_cas(raw.cas, &profile, &resolve).map_err(err)?;
        let server = raw
            .server
            .map(|s| check_server(s, &resolve))
            .transpose()
            .map_err(err)?;
        let acme = raw
            .acme
            .map(|a| check_acme(a, &cas))
            .transpose()
            .map_err(err)?;
        let validation = match raw.validation {
            None => ValidationConfig {
                http01_port: 80,
                tls_alpn01_port: 443,
                dns_resolver: None,
                dnssec: Dnssec::Off,
                redirect_ports: vec![80, 443],
                network: NetworkPolicy::default(),
            },
            Some(v) => ValidationConfig {
                network: NetworkPolicy::parse(&v.allow_networks, &v.deny_networks)
                    .map_err(|e| err(format!("[validation] allow_networks/deny_networks: {e}")))?,
                http01_port: v.http01_port.unwrap_or(80),
                tls_alpn01_port: v.tls_alpn01_port.unwrap_or(443),
                dns_resolver: v.dns_resolver,
                dnssec: match (v.dnssec, v.dnssec_trust_anchor) {
                    (_, Some(anchor)) => Dnssec::TrustAnchor(resolve(&anchor)),
                    (true, None) => Dnssec::Root,
                    (false, None) => Dnssec::Off,
                },
                redirect_ports: v.redirect_ports.unwrap_or_else(|| vec![80, 443]),
            },
        };
        let publication = raw
            .publication
            .map(check_publication)
            .transpose()
            .map_err(err)?;
        let sealing_key = raw.sealing.map(|s| s.key_label);
        let defaults = RateLimits::default();
        let public_suffix_list = raw
            .rate_limits
            .as_ref()
            .and_then(|r| r.public_suffix_list.as_deref())
            .map(resolve);
        let rate_limits = match raw.rate_limits {
            None => defaults,
            Some(r) => RateLimits {
                accounts_per_ip: r
                    .accounts_per_ip
                    .unwrap_or(defaults.accounts_per_ip)
                    .check("[rate_limits] accounts_per_ip")
                    .map_err(err)?,
                orders_per_account: r
                    .orders_per_account
                    .unwrap_or(defaults.orders_per_account)
                    .check("[rate_limits] orders_per_account")
                    .map_err(err)?,
                certificates_per_domain: r
                    .certificates_per_domain
                    .map(|l| l.check("[rate_limits] certificates_per_domain"))
                    .transpose()
                    .map_err(err)?,
                identifiers_per_order: match r.identifiers_per_order {
                    None => defaults.identifiers_per_order,
                    Some(n @ 1..=100) => n,
                    Some(n) => {
                        return Err(err(format!(
                            "[rate_limits] identifiers_per_order = {n} is not 1..=100"
                        )));
                    }
                },
                pending_orders_per_account: quota(
                    "pending_orders_per_account",
                    r.pending_orders_per_account,
                    defaults.pending_orders_per_account,
                )
                .map_err(err)?,
                pending_authorizations_per_account: quota(
                    "pending_authorizations_per_account",
                    r.pending_authorizations_per_account,
                    defaults.pending_authorizations_per_account,
                )
                .map_err(err)?,
            },
        };
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
            token: TokenSettings {
                profile,
                module,
                selector,
                pin_file,
                sessions,
                wait_for_token: Duration::from_secs(match raw.hsm.wait_for_token_seconds {
                    None => 0,
                    Some(n @ 0..=3600) => n,
                    Some(n) => {
                        return Err(err(format!(
                            "[hsm] wait_for_token_seconds = {n} is not 0..=3600"
                        )));
                    }
                }),
            },
            server,
            acme,
            validation,
            publication,
            storage_path: raw.storage.map(|s| resolve(&s.path)),
            public_suffix_list,
            sealing_key,
            rate_limits,
            cas,
        })
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

/// BR §4.9.7: a subscriber CRL's nextUpdate is at most ten days after its thisUpdate.
const MAX_CRL_LIFETIME_HOURS: u32 = 240;

fn check_publication(raw: RawPublication) -> Result<PublicationConfig, String> {
    let base_url = match (raw.base_url, raw.listen) {
        (Some(base), _) => base.trim_end_matches('/').to_owned(),
        (None, Some(listen)) => format!("http://{listen}"),
        (None, None) => return Err("[publication] needs listen or base_url".into()),
    };
    if !base_url.starts_with("http://") || base_url.len() <= "http://".len() {
        return Err(format!(
            "[publication] base_url {base_url:?} must be an http:// URL: relying parties \
             fetch CRLs without TLS (RFC 5280 §4.2.1.13)"
        ));
    }
    if !base_url.is_ascii() || base_url.contains(['?', '#', ' ']) {
        return Err(format!(
            "[publication] base_url {base_url:?} must be plain ASCII without query or fragment"
        ));
    }
    let hours = raw.crl_lifetime_hours.unwrap_or(168);
    if !(2..=MAX_CRL_LIFETIME_HOURS).contains(&hours) {
        return Err(format!(
            "[publication] crl_lifetime_hours = {hours} is not 2..={MAX_CRL_LIFETIME_HOURS}"
        ));
    }
    Ok(PublicationConfig {
        listen: raw.listen,
        base_url,
        crl_lifetime: Duration::from_secs(u64::from(hours) * 3600),
    })
}

fn check_server(
    raw: RawServer,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ServerConfig, String> {
    let base_url = raw.base_url.map(|b| b.trim_end_matches('/').to_owned());
    if let Some(base_url) = base_url.as_deref().filter(|b| !b.starts_with("https://")) {
        return Err(format!(
            "[server] base_url {base_url:?} must start with https://"
        ));
    }
    let defaults = ConnectionLimits::default();
    let max_connections = raw.max_connections.unwrap_or(defaults.max_connections);
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(format!(
            "[server] max_connections = {max_connections} is not 1..=1000000"
        ));
    }
    let idle = raw
        .idle_timeout_seconds
        .unwrap_or(defaults.idle_timeout.as_secs());
    if !(1..=3600).contains(&idle) {
        return Err(format!(
            "[server] idle_timeout_seconds = {idle} is not 1..=3600"
        ));
    }
    let limits = ConnectionLimits {
        max_connections,
        idle_timeout: Duration::from_secs(idle),
    };
    let tls_names = raw
        .tls_names
        .unwrap_or_else(|| vec![raw.listen.ip().to_string()]);
    if tls_names.is_empty() {
        return Err("[server] tls_names is empty".into());
    }
    Ok(ServerConfig {
        listen: raw.listen,
        base_url,
        tls_names,
        tls_key_label: raw.tls_key_label.unwrap_or_else(|| "hsm-acme-tls".into()),
        tls_certificate: resolve(&raw.tls_certificate),
        tls_validity: match raw.tls_validity_seconds {
            None => None,
            Some(n @ 30..=34_387_200) => Some(Duration::from_secs(n)),
            Some(n) => {
                return Err(format!(
                    "[server] tls_validity_seconds = {n} is not 30..=34387200 (398 days)"
                ));
            }
        },
        tls_key_file: raw.tls_key_file.as_deref().map(resolve),
        admin_socket: raw.admin_socket.as_deref().map(resolve),
        limits,
    })
}

fn check_acme(raw: RawAcme, cas: &[CaConfig]) -> Result<AcmeConfig, String> {
    if !cas.iter().any(|c| c.name == raw.ca) {
        return Err(format!("[acme] ca = {:?} names no [[ca]]", raw.ca));
    }
    let validity_days = raw.validity_days.unwrap_or(90);
    if validity_days == 0 || validity_days > 398 {
        return Err(format!(
            "[acme] validity_days = {validity_days} is not 1..=398"
        ));
    }
    // CA/B Forum BR §3.2.2.8: CAA is checked within 8 hours before issuance.
    let caa_recheck_hours = raw.caa_recheck_hours.unwrap_or(8);
    if caa_recheck_hours > 8 {
        return Err(format!(
            "[acme] caa_recheck_hours = {caa_recheck_hours} exceeds the 8 hours the Baseline \
             Requirements allow"
        ));
    }
    if raw.authz_reuse_hours > 30 * 24 {
        return Err(format!(
            "[acme] authz_reuse_hours = {} exceeds 720 (30 days)",
            raw.authz_reuse_hours
        ));
    }
    let name = raw.name.unwrap_or_else(|| "default".into());
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "[acme] name = {name:?}: 1 to 64 letters, digits, '-' and '_'"
        ));
    }
    Ok(AcmeConfig {
        name,
        ca: raw.ca,
        eab_required: raw.eab_required,
        validity_days,
        client_auth: raw.client_auth,
        terms_of_service: raw.terms_of_service,
        website: raw.website,
        caa_identities: raw.caa_identities,
        allowed_domains: raw
            .allowed_domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        wildcards: raw.wildcards,
        wildcard_http01: raw.wildcard_http01,
        ip_identifiers: raw.ip_identifiers,
        pre_authorization: raw.pre_authorization,
        authz_reuse: Duration::from_secs(u64::from(raw.authz_reuse_hours) * 3600),
        caa_recheck: Duration::from_secs(u64::from(caa_recheck_hours) * 3600),
    })
}

fn check_cas(
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

/// A quota of `[rate_limits]`: 1..=100000 open items.
fn quota(name: &str, value: Option<usize>, default: usize) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(n @ 1..=100_000) => Ok(n),
        Some(n) => Err(format!("[rate_limits] {name} = {n} is not 1..=100000")),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(config.token.sessions, DEFAULT_SESSIONS);
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
}
