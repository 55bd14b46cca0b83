//! `[server]`: the HTTPS listener and the server's own certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::wfe::server::ConnectionLimits;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
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

impl ServerConfig {
    /// The public base URL.
    pub fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.listen))
    }
}

pub(super) fn check_server(
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
