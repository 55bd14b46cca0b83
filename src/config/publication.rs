//! `[publication]`: where CRLs and CA certificates are published.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublication {
    listen: Option<SocketAddr>,
    base_url: Option<String>,
    crl_lifetime_hours: Option<u32>,
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

/// BR §4.9.7: a subscriber CRL's nextUpdate is at most ten days after its thisUpdate.
const MAX_CRL_LIFETIME_HOURS: u32 = 240;

pub(super) fn check_publication(raw: RawPublication) -> Result<PublicationConfig, String> {
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
