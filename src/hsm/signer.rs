//! `TokenSigner`: a signing key on the token behind the [`Signer`] seam.

use std::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::object::{ObjectClass, ObjectHandle};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::keys;
use super::mechanism::{self, ecdsa_raw_to_der};
use super::pool::Lease;
use super::profile::HandleScope;
use super::token::TokenShared;
use super::{KeyType, RsaPadding, SignatureScheme, Signer, TokenError};

/// A private key on the token. Cheap to share; signing borrows a pooled session.
pub struct TokenSigner {
    token: Arc<TokenShared>,
    label: String,
    id: Vec<u8>,
    key_type: KeyType,
    scheme: SignatureScheme,
    algorithm: AlgorithmIdentifierOwned,
    spki: SubjectPublicKeyInfoOwned,
    /// The key's handle and the lease it was found under; stale once the lease changes.
    handle: Mutex<Option<(Lease, ObjectHandle)>>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .field("key_type", &self.key_type)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    pub(crate) fn new(
        token: Arc<TokenShared>,
        label: String,
        id: Vec<u8>,
        key_type: KeyType,
        padding: RsaPadding,
        spki: SubjectPublicKeyInfoOwned,
    ) -> Result<Self, TokenError> {
        let scheme = SignatureScheme::for_key(key_type, padding);
        let algorithm = mechanism::algorithm_identifier(scheme)
            .map_err(|e| TokenError::Malformed(format!("algorithm identifier: {e}")))?;
        Ok(Self {
            token,
            label,
            id,
            key_type,
            scheme,
            algorithm,
            spki,
            handle: Mutex::new(None),
        })
    }

    /// The key's label on the token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The scheme it signs with.
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// Signs and returns the token's own output: raw `r‖s` for ECDSA (the JWS form,
    /// RFC 7518 §3.4), the signature octets for RSA and Ed25519.
    pub fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let input = mechanism::sign_input(self.scheme, &self.token.profile.sign, message)?;
        self.token.pool.run("C_Sign", |session, lease| {
            let key = self.key_handle(session, lease)?;
            Ok(session.sign(&input.mechanism, key, &input.data)?)
        })
    }

    fn key_handle(
        &self,
        session: &cryptoki::session::Session,
        lease: Lease,
    ) -> Result<ObjectHandle, super::pool::OpError> {
        let per_session = self.token.profile.sessions.handles == HandleScope::PerSession;
        let fresh = |cached: &Lease| {
            cached.handle_epoch == lease.handle_epoch
                && (!per_session || cached.session_id == lease.session_id)
        };
        if let Ok(guard) = self.handle.lock()
            && let Some((cached, handle)) = guard.as_ref()
            && fresh(cached)
        {
            return Ok(*handle);
        }
        let handle = keys::find_by_id(session, ObjectClass::PRIVATE_KEY, &self.id, &self.label)?;
        if let Ok(mut guard) = self.handle.lock() {
            *guard = Some((lease, handle));
        }
        Ok(handle)
    }
}

impl Signer for TokenSigner {
    fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    fn algorithm(&self) -> AlgorithmIdentifierOwned {
        self.algorithm.clone()
    }

    fn sign(&self, tbs_der: &[u8]) -> Result<Vec<u8>, TokenError> {
        let raw = self.sign_raw(tbs_der)?;
        match self.scheme {
            SignatureScheme::EcdsaP256Sha256 | SignatureScheme::EcdsaP384Sha384 => {
                ecdsa_raw_to_der(&raw)
            }
            _ => Ok(raw),
        }
    }
}
