//! The server's TLS identity: a certificate chain and a key that signs handshakes on the
//! token (rustls `SigningKey` over our [`Signer`]), or an operator's key file.
//!
//! Handshakes sign on the same token as issuance and CRLs, so they get a budget of their
//! own: at most [`TlsBudget`] signatures at once, and a handshake that finds the budget
//! spent fails at once rather than queueing (the client retries; a flood costs refused
//! handshakes, not stalled issuance). Session resumption (tickets and a session cache)
//! lets returning clients skip the signature altogether.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::ring::default_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::hsm::{SignatureScheme as Scheme, Signer, TokenSigner};

/// A token key presented to rustls. Only ECDSA keys: their scheme does not depend on the
/// TLS version, which keeps the key's single configured scheme valid for 1.2 and 1.3.
#[derive(Debug)]
struct TokenTlsKey {
    signer: Arc<TokenSigner>,
    scheme: SignatureScheme,
    budget: TlsBudget,
}

/// Handshake signatures on the token at once (its share of the session pool), and a short
/// bounded queue in front of them.
#[derive(Debug, Clone)]
pub struct TlsBudget {
    permits: Arc<tokio::sync::Semaphore>,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

/// Handshakes that may wait for a signature at once; more are refused at once.
const QUEUE: usize = 16;
/// How long a queued handshake waits for its signature.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

impl TlsBudget {
    /// A budget of `permits` concurrent signatures.
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(permits.max(1))),
            waiting: Arc::default(),
        }
    }

    /// A permit now, or after a short wait in a bounded queue; `None` when the queue is
    /// full or the wait runs out (the handshake then fails and the client retries).
    fn acquire(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.permits.try_acquire() {
            return Some(permit);
        }
        let handle = tokio::runtime::Handle::try_current().ok()?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return None;
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= QUEUE {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = tokio::task::block_in_place(|| {
            handle.block_on(tokio::time::timeout(QUEUE_WAIT, self.permits.acquire()))
        });
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit.ok()?.ok()
    }
}

/// Resumable sessions kept by the server (each a few hundred bytes).
const SESSION_CACHE: usize = 16_384;

impl SigningKey for TokenTlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(TokenTlsSigner {
                signer: Arc::clone(&self.signer),
                scheme: self.scheme,
                budget: self.budget.clone(),
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
    budget: TlsBudget,
}

impl rustls::sign::Signer for TokenTlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        // A bounded queue and fast failure: at most QUEUE threads wait here, briefly.
        let Some(_permit) = self.budget.acquire() else {
            tracing::debug!("handshake refused: the token's handshake budget is in use");
            return Err(rustls::Error::General(
                "the server is busy; retry the handshake".into(),
            ));
        };
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

/// The certificate the server presents, replaced in place when it is renewed: handshakes
/// after the swap get the new chain, connections already open keep theirs.
#[derive(Debug)]
pub struct ServedCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServedCertificate {
    fn new(certified: CertifiedKey) -> Result<Self, TlsError> {
        check_keys(&certified)?;
        Ok(Self {
            current: RwLock::new(Arc::new(certified)),
        })
    }

    /// Serves `chain` with the same key from now on.
    pub fn replace(&self, chain: Vec<CertificateDer<'static>>) -> Result<(), TlsError> {
        let key = Arc::clone(&self.get().key);
        let certified = CertifiedKey::new(chain, key);
        check_keys(&certified)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }

    /// The chain and key served now.
    pub fn get(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// A server configuration whose key stays on the token, and the handle that renews its
/// certificate.
pub fn token_server_config(
    chain: Vec<CertificateDer<'static>>,
    signer: Arc<TokenSigner>,
    budget: TlsBudget,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<(Arc<ServerConfig>, Arc<ServedCertificate>), TlsError> {
    let scheme = match signer.scheme() {
        Scheme::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
        Scheme::EcdsaP384Sha384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        other => {
            return Err(TlsError(format!(
                "the TLS key must be ECDSA P-256 or P-384, not {other:?}"
            )));
        }
    };
    let key = Arc::new(TokenTlsKey {
        signer,
        scheme,
        budget,
    });
    let served = Arc::new(ServedCertificate::new(CertifiedKey::new(chain, key))?);
    Ok((
        finish(Arc::clone(&served) as Arc<dyn ResolvesServerCert>, clients)?,
        served,
    ))
}

/// A server configuration from a certificate chain and a PEM key file (operator-managed).
pub fn file_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = default_provider();
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError(format!("private key: {e}")))?;
    finish(
        Arc::new(ServedCertificate::new(CertifiedKey::new(chain, key))?),
        clients,
    )
}

fn check_keys(certified: &CertifiedKey) -> Result<(), TlsError> {
    certified.keys_match().or_else(|e| match e {
        // Token keys may not expose their SPKI through rustls; the caller checked it.
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown) => Ok(()),
        other => Err(TlsError(format!(
            "certificate and key do not match: {other}"
        ))),
    })
}

fn finish(
    resolver: Arc<dyn ResolvesServerCert>,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    // mTLS endpoints: a client certificate is asked for, never required (`client_auth`).
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Resumption needs no signature: stateless tickets (keys rotate in memory) and a cache
    // for clients that do not take tickets.
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError(format!("tickets: {e}")))?;
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    Ok(Arc::new(config))
}
