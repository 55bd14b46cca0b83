//! TLS client certificates per endpoint (mTLS): an endpoint with `client_ca` serves only
//! connections whose client certificate chains to one of those CAs. rustls asks every
//! client for a certificate (optional, so public ACME clients connect as before) and checks
//! it against all endpoints' CAs together; each request is then checked against its own
//! endpoint's CAs, since the endpoint is known only from the path.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

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

/// The verifier rustls holds for the whole server: it delegates to the one built from the
/// endpoints' CAs, which a reload replaces. With no endpoint asking for client
/// certificates, none is asked for.
#[derive(Debug, Default)]
pub struct ServerClientVerifier {
    current: RwLock<Option<Arc<dyn ClientCertVerifier>>>,
}

impl ServerClientVerifier {
    /// Uses `verifier` (from [`server_verifier`]) from the next handshake on.
    pub fn set(&self, verifier: Option<Arc<dyn ClientCertVerifier>>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = verifier;
    }

    fn get(&self) -> Option<Arc<dyn ClientCertVerifier>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientCertVerifier for ServerClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.get().is_some()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: they would borrow from a verifier a reload may replace, and without them a
    /// client sends the certificate it has.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.get() {
            Some(verifier) => verifier.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::General(
                "no endpoint takes client certificates".into(),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
