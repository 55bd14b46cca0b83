//! Replay-Nonce values (RFC 8555 §6.5): issued on every response, each redeemable once,
//! for a limited time. Memory is bounded: past `capacity` outstanding nonces, the oldest
//! are forgotten (a client holding one gets `badNonce` and retries with a fresh one).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// Outstanding nonces, bounded in number and age.
#[derive(Debug)]
pub struct NonceStore {
    state: Mutex<State>,
    capacity: usize,
    lifetime: Duration,
    rng: SystemRandom,
}

#[derive(Debug, Default)]
struct State {
    issued: HashMap<String, Instant>,
    order: VecDeque<String>,
}

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Never issued, already used, or forgotten.
    Unknown,
    /// Issued too long ago.
    Expired,
}

impl NonceStore {
    /// A store holding at most `capacity` nonces, each valid for `lifetime`.
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            lifetime,
            rng: SystemRandom::new(),
        }
    }

    /// A fresh nonce: 128 random bits, base64url (RFC 8555 §6.5.1).
    pub fn issue(&self) -> String {
        let mut bytes = [0u8; 16];
        // Without OS entropy no nonce may be issued; a value that is never stored costs the
        // client one badNonce round trip, which is the right failure.
        if self.rng.fill(&mut bytes).is_err() {
            return "unavailable".into();
        }
        let nonce = URL_SAFE_NO_PAD.encode(bytes);
        if let Ok(mut state) = self.state.lock() {
            while state.order.len() >= self.capacity {
                if let Some(old) = state.order.pop_front() {
                    state.issued.remove(&old);
                }
            }
            state.issued.insert(nonce.clone(), Instant::now());
            state.order.push_back(nonce.clone());
        }
        nonce
    }

    /// Redeems `nonce`: succeeds once, if it was issued here and is not too old.
    pub fn redeem(&self, nonce: &str) -> Result<(), NonceError> {
        let mut state = self.state.lock().map_err(|_| NonceError::Unknown)?;
        let issued = state.issued.remove(nonce).ok_or(NonceError::Unknown)?;
        // The queue entry stays until it reaches the front; removing it here would be O(n).
        if issued.elapsed() > self.lifetime {
            return Err(NonceError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_redeemable_once() {
        let store = NonceStore::new(10, Duration::from_secs(60));
        let nonce = store.issue();
        assert_eq!(nonce.len(), 22);
        assert_eq!(store.redeem(&nonce), Ok(()));
        assert_eq!(store.redeem(&nonce), Err(NonceError::Unknown));
        assert_eq!(store.redeem("never-issued"), Err(NonceError::Unknown));
    }

    #[test]
    fn old_nonces_expire_and_capacity_is_bounded() {
        let store = NonceStore::new(3, Duration::from_millis(0));
        let first = store.issue();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(store.redeem(&first), Err(NonceError::Expired));

        let store = NonceStore::new(3, Duration::from_secs(60));
        let nonces: Vec<_> = (0..5).map(|_| store.issue()).collect();
        assert_eq!(
            store.redeem(&nonces[0]),
            Err(NonceError::Unknown),
            "evicted"
        );
        assert_eq!(store.redeem(&nonces[4]), Ok(()));
        assert!(store.state.lock().unwrap().order.len() <= 3);
    }
}
