//! TLS client certificates per endpoint (mTLS): an endpoint with `client_ca` serves only
//! connections whose client certificate chains to one of those CAs. rustls asks every
//! client for a certificate (optional, so public ACME clients connect as before) and checks
//! it against all endpoints' CAs together; each request is then checked against its own
//! endpoint's CAs, since the endpoint is known only from the path.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use crate::error::Error;

/// An endpoint's client CAs.
#[derive(Debug)]
pub struct ClientCas {
    /// Where they came from, for messages.
    source: String,
    /// Their certificates, for the server-wide verifier.
    certificates: Vec<CertificateDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCas {
    /// Reads a PEM file of CA certificates.
    pub fn load(path: &Path) -> Result<Self, String> {
        let source = path.display().to_string();
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| format!("client_ca {source}: {e}"))?;
        if certificates.is_empty() {
            return Err(format!("client_ca {source}: no certificate"));
        }
        let verifier =
            verifier(&certificates, false).map_err(|e| format!("client_ca {source}: {e}"))?;
        Ok(Self {
            source,
            certificates,
            verifier,
        })
    }

    /// Whether the connection's client certificate chain (end entity first) is one of
    /// ours; a request without one is `unauthorized`.
    pub fn check(&self, chain: Option<&[CertificateDer<'static>]>) -> Result<(), Error> {
        let Some((end_entity, intermediates)) = chain.and_then(<[_]>::split_first) else {
            return Err(Error::unauthorized(format!(
                "this ACME endpoint requires a TLS client certificate issued by a CA of {}",
                self.source
            )));
        };
        self.verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| {
                Error::unauthorized(format!(
                    "the TLS client certificate is not accepted by this endpoint ({e}); it \
                     must be issued by a CA of {}",
                    self.source
                ))
            })
    }
}

/// The server-wide verifier: a client certificate is optional, and one that is presented
/// must chain to a CA of some endpoint. `None` when no endpoint asks for one.
pub fn server_verifier(cas: &[&ClientCas]) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    if cas.is_empty() {
        return Ok(None);
    }
    let all: Vec<CertificateDer<'static>> = cas
        .iter()
        .flat_map(|c| c.certificates.iter().cloned())
        .collect();
    verifier(&all, true).map(Some)
}

fn verifier(
    certificates: &[CertificateDer<'static>],
    optional: bool,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate.clone())
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    let builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(default_provider()));
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder.build().map_err(|e| e.to_string())
}
