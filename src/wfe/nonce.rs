//! Replay-Nonce values (RFC 8555 §6.5): issued on every response, each redeemable once,
//! for a limited time.
//!
//! Nonces are made so that issuing one stores nothing: each carries its issue time and a
//! random part, authenticated by an HMAC under a key that lives only in this process. A
//! flood of HEAD requests therefore cannot push anyone's nonce out of a table. Only
//! redeemed nonces are remembered (to refuse a replay), at most `capacity` of them; when
//! that set is full the oldest entries go and every nonce issued before them is refused,
//! so forgetting never lets a replay through.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Issue time (8 bytes) and random part (8 bytes).
const BODY: usize = 16;
/// Truncated HMAC-SHA256 tag.
const TAG: usize = 16;

/// Outstanding nonces, verifiable without a table, and the redeemed ones.
#[derive(Debug)]
pub struct NonceStore {
    key: Option<hmac::Key>,
    epoch: Instant,
    state: Mutex<Redeemed>,
    capacity: usize,
    lifetime: Duration,
    rng: SystemRandom,
}

#[derive(Debug, Default)]
struct Redeemed {
    seen: HashSet<[u8; BODY]>,
    order: VecDeque<[u8; BODY]>,
    /// Nonces issued before this (milliseconds since `epoch`) are refused.
    floor_ms: u64,
}

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Never issued here, already used, or forgotten.
    Unknown,
    /// Issued too long ago.
    Expired,
}

impl NonceStore {
    /// A store remembering at most `capacity` redeemed nonces, each valid for `lifetime`.
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        let rng = SystemRandom::new();
        // Without OS entropy there is no key, and no nonce will ever verify: every request
        // then fails with badNonce, which is the right failure.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).ok();
        Self {
            key,
            epoch: Instant::now(),
            state: Mutex::new(Redeemed::default()),
            capacity: capacity.max(1),
            lifetime,
            rng,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn tag(&self, body: &[u8]) -> Option<[u8; TAG]> {
        let full = hmac::sign(self.key.as_ref()?, body);
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(full.as_ref().get(..TAG)?);
        Some(tag)
    }

    /// A fresh nonce (RFC 8555 §6.5.1: base64url, unpredictable): 64 random bits with the
    /// issue time, under a 128-bit tag.
    pub fn issue(&self) -> String {
        let mut body = [0u8; BODY];
        body[..8].copy_from_slice(&self.now_ms().to_be_bytes());
        if self.rng.fill(&mut body[8..]).is_err() {
            return "unavailable".into();
        }
        let Some(tag) = self.tag(&body) else {
            return "unavailable".into();
        };
        let mut nonce = [0u8; BODY + TAG];
        nonce[..BODY].copy_from_slice(&body);
        nonce[BODY..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// Redeems `nonce`: succeeds once, if it was issued here and is not too old.
    pub fn redeem(&self, nonce: &str) -> Result<(), NonceError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| NonceError::Unknown)?;
        if bytes.len() != BODY + TAG {
            return Err(NonceError::Unknown);
        }
        let (body, tag) = bytes.split_at(BODY);
        let expected = self.tag(body).ok_or(NonceError::Unknown)?;
        if !bool::from(expected.ct_eq(tag)) {
            return Err(NonceError::Unknown);
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&body[..8]);
        let issued = u64::from_be_bytes(issued);
        let now = self.now_ms();
        if issued > now {
            return Err(NonceError::Unknown);
        }
        let lifetime = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        if now - issued > lifetime {
            return Err(NonceError::Expired);
        }
        let mut key = [0u8; BODY];
        key.copy_from_slice(body);
        let mut state = self.state.lock().map_err(|_| NonceError::Unknown)?;
        if issued < state.floor_ms || !state.seen.insert(key) {
            return Err(NonceError::Unknown);
        }
        state.order.push_back(key);
        while state.order.len() > self.capacity {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            state.seen.remove(&oldest);
            // Forgotten means refused: nothing issued up to it can be redeemed any more.
            let mut at = [0u8; 8];
            at.copy_from_slice(&oldest[..8]);
            state.floor_ms = state.floor_ms.max(u64::from_be_bytes(at) + 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_redeemable_once_and_only_if_issued_here() {
        let store = NonceStore::new(10, Duration::from_secs(60));
        let nonce = store.issue();
        assert_eq!(nonce.len(), 43);
        assert_eq!(store.redeem(&nonce), Ok(()));
        assert_eq!(store.redeem(&nonce), Err(NonceError::Unknown));
        assert_eq!(store.redeem("never-issued"), Err(NonceError::Unknown));
        // Another server's nonce, or a tampered one, does not verify.
        let other = NonceStore::new(10, Duration::from_secs(60)).issue();
        assert_eq!(store.redeem(&other), Err(NonceError::Unknown));
        let mut bytes = URL_SAFE_NO_PAD.decode(store.issue()).unwrap();
        bytes[9] ^= 1;
        assert_eq!(
            store.redeem(&URL_SAFE_NO_PAD.encode(bytes)),
            Err(NonceError::Unknown)
        );
    }

    #[test]
    fn a_flood_of_new_nonces_pushes_no_nonce_out() {
        let store = NonceStore::new(3, Duration::from_secs(60));
        let mine = store.issue();
        for _ in 0..10_000 {
            store.issue();
        }
        assert_eq!(store.redeem(&mine), Ok(()));
    }

    #[test]
    fn old_nonces_expire_and_forgetting_a_redeemed_one_refuses_what_came_before() {
        let store = NonceStore::new(3, Duration::from_millis(0));
        let first = store.issue();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(store.redeem(&first), Err(NonceError::Expired));

        let store = NonceStore::new(2, Duration::from_secs(60));
        let early = store.issue();
        std::thread::sleep(Duration::from_millis(2));
        let used: Vec<String> = (0..3)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(2));
                store.issue()
            })
            .collect();
        for nonce in &used {
            assert_eq!(store.redeem(nonce), Ok(()));
        }
        // The first redeemed one was forgotten: it, and anything older, is refused.
        assert_eq!(store.redeem(&used[0]), Err(NonceError::Unknown));
        assert_eq!(store.redeem(&early), Err(NonceError::Unknown));
        assert!(store.state.lock().unwrap().order.len() <= 2);
        assert_eq!(store.redeem(&store.issue()), Ok(()));
    }
}
