//! The server's own TLS certificate when its key lives on the token: the key is generated
//! on first start, the certificate is issued by the ACME profile's CA for `[server]
//! tls_names`, and it is renewed while serving, in the last third of its life, so a server
//! that runs for months never presents an expired certificate. New handshakes get the new
//! certificate at once; open connections keep the one they started with.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::pem::LineEnding;
use der::{Encode, EncodePem};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::tls::{self, ServedCertificate, TlsBudget};
use crate::ca::issuer::Issuer;
use crate::hsm::{KeyType, Pkcs11Token, RsaPadding, Signer, TokenSigner};

/// Longest pause between two freshness checks.
const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// The certificate served with a token key, and what renewing it takes.
pub struct ServerCertificate {
    recipe: Recipe,
    served: Arc<ServedCertificate>,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("path", &self.recipe.path)
            .field("names", &(&self.recipe.dns, &self.recipe.ips))
            .finish_non_exhaustive()
    }
}

/// How the certificate is made: key, CA, names, lifetime, and where it is kept.
struct Recipe {
    signer: Arc<TokenSigner>,
    issuer: Arc<Issuer>,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    path: PathBuf,
    lifetime: Duration,
}

/// What the server certificate is made of.
#[derive(Debug, Clone)]
pub struct ServerCertificateSettings<'a> {
    /// The key's label on the token (generated there when missing).
    pub key_label: &'a str,
    /// `[server] tls_names`: DNS names and IP addresses.
    pub names: &'a [String],
    /// Where the chain is kept (PEM), so a restart reuses it.
    pub path: &'a Path,
    /// How long each certificate is valid.
    pub lifetime: Duration,
}

impl ServerCertificate {
    /// At start: the key on the token, a certificate that fits it (reused from `path`, or
    /// issued and written there), and the TLS configuration that serves it.
    pub fn start(
        settings: &ServerCertificateSettings<'_>,
        token: &Pkcs11Token,
        issuer: Arc<Issuer>,
        budget: TlsBudget,
        clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    ) -> Result<(Arc<Self>, Arc<rustls::ServerConfig>), String> {
        let label = settings.key_label;
        if !token.has_label(label).map_err(|e| e.to_string())? {
            token
                .generate_key_pair(label, KeyType::EcdsaP256)
                .map_err(|e| format!("TLS key {label:?}: {e}"))?;
            tracing::info!(label = %label, "generated the server's TLS key on the token");
        }
        let signer = Arc::new(
            token
                .signer(label, RsaPadding::Pkcs1)
                .map_err(|e| format!("TLS key {label:?}: {e}"))?,
        );
        let (dns, ips) = split_names(settings.names);
        let recipe = Recipe {
            signer,
            issuer,
            dns,
            ips,
            path: settings.path.to_owned(),
            lifetime: settings.lifetime,
        };
        let on_file = std::fs::read(&recipe.path)
            .ok()
            .and_then(|pem| Certificate::load_pem_chain(&pem).ok())
            .and_then(|mut chain| (!chain.is_empty()).then(|| chain.remove(0)));
        if !on_file.is_some_and(|cert| recipe.fits(&cert, now())) {
            recipe.issue()?;
        }
        let chain = read_chain(&recipe.path)?;
        let (config, served) =
            tls::token_server_config(chain, Arc::clone(&recipe.signer), budget, clients)
                .map_err(|e| e.to_string())?;
        Ok((Arc::new(Self { recipe, served }), config))
    }

    /// Issues and serves a new certificate if the one served is due (in the last third of
    /// its life, or no longer fitting); returns whether it did. Signs on the token: call it
    /// from a blocking thread.
    pub fn renew_if_due(&self) -> Result<bool, String> {
        let served = self.served.get();
        let current = served
            .cert
            .first()
            .and_then(|der| der::Decode::from_der(der.as_ref()).ok());
        if current.is_some_and(|cert: Certificate| self.recipe.fits(&cert, now())) {
            return Ok(false);
        }
        self.recipe.issue()?;
        self.served
            .replace(read_chain(&self.recipe.path)?)
            .map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Checks freshness every tenth of the lifetime (at most hourly) until `stopped`.
    pub async fn keep_fresh(self: Arc<Self>, stopped: impl Future<Output = ()>) {
        let every = (self.recipe.lifetime / 10).clamp(Duration::from_secs(1), MAX_CHECK_INTERVAL);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => return,
                () = tokio::time::sleep(every) => {}
            }
            let this = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || this.renew_if_due()).await {
                Ok(Ok(true)) => tracing::info!(path = %self.recipe.path.display(),
                    "renewed the server's TLS certificate; new handshakes get it"),
                Ok(Ok(false)) => {}
                // The served certificate stays until a later check succeeds.
                Ok(Err(e)) => tracing::error!(error = %e,
                    "renewing the server's TLS certificate failed; retrying"),
                Err(e) => tracing::error!(error = %e, "the TLS renewal task failed"),
            }
        }
    }
}

impl Recipe {
    /// Issues a certificate for the names and key, and writes the chain to `path`.
    fn issue(&self) -> Result<(), String> {
        let now = now().as_secs();
        let prepared = self
            .issuer
            .prepare(
                self.dns.clone(),
                self.ips.clone(),
                self.signer.public_key().clone(),
                now,
                now + self.lifetime.as_secs(),
            )
            .map_err(|e| format!("server certificate: {e}"))?;
        let cert = self
            .issuer
            .sign(prepared)
            .map_err(|e| format!("server certificate: {e}"))?;
        let mut pem = cert.to_pem(LineEnding::LF).map_err(|e| e.to_string())?;
        pem.push_str(self.issuer.chain_pem());
        write_atomically(&self.path, pem.as_bytes())?;
        tracing::info!(path = %self.path.display(), names = ?(&self.dns, &self.ips),
            "issued the server's TLS certificate");
        Ok(())
    }

    /// Whether `cert` may be served at `now`: for this key, by this CA, naming every
    /// configured name, and not yet in the last third of its life.
    fn fits(&self, cert: &Certificate, now: Duration) -> bool {
        let tbs = cert.tbs_certificate();
        let same_key =
            tbs.subject_public_key_info().to_der().ok() == self.signer.public_key().to_der().ok();
        let ca = self.issuer.certificate().tbs_certificate();
        let same_issuer = tbs.issuer() == ca.subject()
            && crate::ca::verify::verify_certificate(cert, ca.subject_public_key_info()).is_ok();
        let validity = tbs.validity();
        let start = validity.not_before.to_unix_duration();
        let end = validity.not_after.to_unix_duration();
        let fresh = now + end.saturating_sub(start) / 3 < end;
        let covers = tbs
            .get_extension::<SubjectAltName>()
            .ok()
            .flatten()
            .is_some_and(|(_, san)| {
                let mut dns = Vec::new();
                let mut ips = Vec::new();
                for name in san.0 {
                    match name {
                        GeneralName::DnsName(n) => dns.push(n.to_string().to_ascii_lowercase()),
                        GeneralName::IpAddress(bytes) => {
                            ips.extend(crate::ca::ip_address(bytes.as_bytes()));
                        }
                        _ => {}
                    }
                }
                self.dns.iter().all(|n| dns.contains(n))
                    && self.ips.iter().all(|ip| ips.contains(ip))
            });
        same_key && same_issuer && fresh && covers
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `[server] tls_names` split into DNS names (lower case) and IP addresses.
fn split_names(names: &[String]) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in names {
        match name.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) => dns.push(name.to_ascii_lowercase()),
        }
    }
    (dns, ips)
}

/// Writes beside the file and renames over it, so a reader (or a crash) never sees half.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_dns_and_addresses() {
        let (dns, ips) = split_names(&[
            "CA.Example".into(),
            "127.0.0.1".into(),
            "::1".into(),
            "localhost".into(),
        ]);
        assert_eq!(dns, ["ca.example", "localhost"]);
        assert_eq!(
            ips,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
    }
}
