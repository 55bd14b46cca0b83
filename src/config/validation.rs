//! `[validation]`: how and where challenges are validated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::network::NetworkPolicy;
use crate::va::resolver::Dnssec;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawValidation {
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

/// The validation settings; without a `[validation]` table, the defaults.
pub(super) fn check_validation(
    raw: Option<RawValidation>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<ValidationConfig, String> {
    Ok(match raw {
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
                .map_err(|e| format!("[validation] allow_networks/deny_networks: {e}"))?,
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
    })
}
