//! The server's TLS identity: a certificate chain and a key that signs handshakes on the
//! token (rustls `SigningKey` over our [`Signer`]), or an operator's key file.

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};
use rustls::server::ServerConfig;
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::hsm::{SignatureScheme as Scheme, Signer, TokenSigner};

/// A token key presented to rustls. Only ECDSA keys: their scheme does not depend on the
/// TLS version, which keeps the key's single configured scheme valid for 1.2 and 1.3.
#[derive(Debug)]
struct TokenTlsKey {
    signer: Arc<TokenSigner>,
    scheme: SignatureScheme,
}

impl SigningKey for TokenTlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(TokenTlsSigner {
                signer: Arc::clone(&self.signer),
                scheme: self.scheme,
            }) as Box<dyn rustls::sign::Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        der::Encode::to_der(self.signer.public_key())
            .ok()
            .map(SubjectPublicKeyInfoDer::from)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

#[derive(Debug)]
struct TokenTlsSigner {
    signer: Arc<TokenSigner>,
    scheme: SignatureScheme,
}

impl rustls::sign::Signer for TokenTlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // The handshake runs on a reactor thread; let the runtime move other work away
        // while the token signs.
        let sign = || self.signer.sign(message);
        let result = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(sign)
            }
            _ => sign(),
        };
        result.map_err(|e| rustls::Error::General(format!("token signature: {e}")))
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

/// A server configuration whose key stays on the token.
pub fn token_server_config(
    chain: Vec<CertificateDer<'static>>,
    signer: Arc<TokenSigner>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let scheme = match signer.scheme() {
        Scheme::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
        Scheme::EcdsaP384Sha384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        other => {
            return Err(TlsError(format!(
                "the TLS key must be ECDSA P-256 or P-384, not {other:?}"
            )));
        }
    };
    let key = Arc::new(TokenTlsKey { signer, scheme });
    finish(CertifiedKey::new(chain, key))
}

/// A server configuration from a certificate chain and a PEM key file (operator-managed).
pub fn file_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = default_provider();
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError(format!("private key: {e}")))?;
    finish(CertifiedKey::new(chain, key))
}

fn finish(certified: CertifiedKey) -> Result<Arc<ServerConfig>, TlsError> {
    certified.keys_match().or_else(|e| match e {
        // Token keys may not expose their SPKI through rustls; the caller checked it.
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown) => Ok(()),
        other => Err(TlsError(format!(
            "certificate and key do not match: {other}"
        ))),
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
