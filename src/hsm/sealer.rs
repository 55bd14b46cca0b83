//! `TokenSealer`: AES-256-GCM under a token key behind the [`Sealer`] seam.
//!
//! The IV is drawn on the host or by the token, as the profile says; either way hsm-acme
//! enforces the IV length and the 128-bit tag itself, because SoftHSM accepts an empty IV
//! and a zero-length tag (research/hsm.md §3.5).

use std::fmt;
use std::sync::Arc;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::ObjectClass;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::error::{Failure, classify};
use super::keys;
use super::pool::OpError;
use super::profile::GcmMode;
use super::token::TokenShared;
use super::{Sealed, Sealer, TokenError};

const TAG_LEN: usize = 16;

/// An AES key on the token that seals secrets for storage.
pub struct TokenSealer {
    token: Arc<TokenShared>,
    label: String,
    id: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSealer")
            .field("token", &self.token.label)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TokenSealer {
    pub(crate) fn new(
        token: Arc<TokenShared>,
        label: String,
        id: Vec<u8>,
    ) -> Result<Self, TokenError> {
        if token.profile.aead.gcm == GcmMode::Unsupported {
            return Err(TokenError::Unsupported(format!(
                "profile {} has no AES-GCM; secrets cannot be sealed on this token",
                token.profile.module.name
            )));
        }
        Ok(Self {
            token,
            label,
            id,
            rng: SystemRandom::new(),
        })
    }

    fn key(
        &self,
        session: &cryptoki::session::Session,
    ) -> Result<cryptoki::object::ObjectHandle, OpError> {
        // Lookups per call keep this simple; sealing is rare (EAB key creation and use).
        keys::find_by_id(session, ObjectClass::SECRET_KEY, &self.id, &self.label)
    }
}

impl Sealer for TokenSealer {
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, TokenError> {
        let aead = &self.token.profile.aead;
        let mut host_iv = vec![0u8; aead.iv_len];
        if aead.gcm == GcmMode::HostIv {
            self.rng
                .fill(&mut host_iv)
                .map_err(|_| TokenError::Unavailable("the system RNG failed".into()))?;
        }
        let (iv, ciphertext) = self.token.pool.run("C_Encrypt", |session, _| {
            let key = self.key(session)?;
            // A token-generated IV is written back into this (zeroed) buffer.
            let mut iv = host_iv.clone();
            let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())?;
            let ciphertext = session.encrypt(&Mechanism::AesGcm(params), key, plaintext)?;
            Ok((iv, ciphertext))
        })?;
        if ciphertext.len() != plaintext.len() + TAG_LEN {
            return Err(TokenError::Malformed(format!(
                "AES-GCM returned {} bytes for {} bytes of plaintext",
                ciphertext.len(),
                plaintext.len()
            )));
        }
        if aead.gcm == GcmMode::TokenIv && iv.iter().all(|b| *b == 0) {
            return Err(TokenError::Malformed(
                "the token did not return the IV it generated".into(),
            ));
        }
        Ok(Sealed {
            key_label: self.label.clone(),
            iv,
            ciphertext,
        })
    }

    fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, TokenError> {
        if sealed.key_label != self.label {
            return Err(TokenError::KeyRefused {
                label: sealed.key_label.clone(),
                reason: format!("sealed by another key than {:?}", self.label),
            });
        }
        if sealed.iv.len() != self.token.profile.aead.iv_len || sealed.ciphertext.len() < TAG_LEN {
            return Err(TokenError::UnsealFailed);
        }
        self.token.pool.run("C_Decrypt", |session, _| {
            let key = self.key(session)?;
            let mut iv = sealed.iv.clone();
            let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())?;
            match session.decrypt(&Mechanism::AesGcm(params), key, &sealed.ciphertext) {
                Ok(plain) => Ok(Zeroizing::new(plain)),
                // A bad tag is CKR_ENCRYPTED_DATA_INVALID (SoftHSM 2.7) or
                // CKR_GENERAL_ERROR (2.6): either way the data did not authenticate.
                Err(e) if classify(&e) == Failure::Permanent => {
                    Err(OpError::Token(TokenError::UnsealFailed))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, TokenError> {
        let want = u32::try_from(len)
            .map_err(|_| TokenError::Malformed(format!("{len} random bytes asked for")))?;
        let bytes = self.token.pool.run("C_GenerateRandom", |session, _| {
            Ok(Zeroizing::new(session.generate_random_vec(want)?))
        })?;
        // A module that returns fewer bytes, or none at all, must not shorten a secret.
        if bytes.len() != len || (len >= 16 && bytes.iter().all(|b| *b == 0)) {
            return Err(TokenError::Malformed(format!(
                "C_GenerateRandom returned {} unusable bytes for {len}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}
