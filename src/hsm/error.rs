//! Token errors, and the classification of PKCS#11 return values that drives recovery.

use cryptoki::error::{Error as CkError, RvError};

/// What went wrong talking to the token.
///
/// `Unavailable` is the only retryable kind (the front end answers 503 with `Retry-After`);
/// everything else is permanent until an operator acts.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("PKCS#11 module {path}: {reason}")]
    Module {
        /// Module path as configured.
        path: String,
        /// What failed.
        reason: String,
    },
    /// No slot holds a token matching the configured selector.
    #[error("no token matches {selector}; tokens present: {present}")]
    TokenNotFound {
        /// The selector, as configured.
        selector: String,
        /// Labels of the tokens that are present.
        present: String,
    },
    /// The token refused the PIN. Never retried: repeated attempts lock the token.
    #[error(
        "token {token:?} refused the PIN ({rv}); not retrying, because repeated attempts lock \
         the token. Check the PIN file and restart"
    )]
    PinRefused {
        /// Token label.
        token: String,
        /// The PKCS#11 return value.
        rv: String,
    },
    /// The PIN could not be read.
    #[error("PIN: {0}")]
    Pin(String),
    /// No key with that label exists on the token.
    #[error("key {label:?}: not found on the token")]
    KeyNotFound {
        /// The configured key label.
        label: String,
    },
    /// A key exists but may not be used: wrong attributes, type or duplicate label.
    #[error("key {label:?}: {reason}")]
    KeyRefused {
        /// The configured key label.
        label: String,
        /// Which attribute or property is wrong.
        reason: String,
    },
    /// The profile or the token cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
    /// The token is unreachable or busy; the operation may succeed later.
    #[error("token unavailable: {0}")]
    Unavailable(String),
    /// A PKCS#11 call failed for a reason that retrying will not fix.
    #[error("{op} failed: {rv}")]
    Pkcs11 {
        /// The operation that failed.
        op: &'static str,
        /// The PKCS#11 error.
        rv: String,
    },
    /// Sealed data did not authenticate: wrong associated data, or tampered ciphertext.
    #[error("sealed data failed authentication (tampered, or bound to other data)")]
    UnsealFailed,
    /// The token returned something that is not a valid result.
    #[error("token returned malformed data: {0}")]
    Malformed(String),
}

impl TokenError {
    /// Whether the same request may succeed when retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    pub(crate) fn pkcs11(op: &'static str, err: &CkError) -> Self {
        Self::Pkcs11 {
            op,
            rv: describe(err),
        }
    }
}

/// A short description of a cryptoki error: the function and the return value's name.
pub(crate) fn describe(err: &CkError) -> String {
    match err {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// What the session pool does about a failed call (research/hsm.md §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The session is gone: drop it (without closing: its handle may be reused) and retry.
    SessionLost,
    /// The login is gone: log in again, look keys up again, retry.
    NotLoggedIn,
    /// A cached object handle is stale: look keys up again, retry.
    StaleHandle,
    /// The device or the library lost state: rebuild everything with backoff, retry.
    DeviceLost,
    /// The session has an operation stuck in it: close it, retry.
    OperationActive,
    /// The PIN is wrong, locked or expired: stop, never retry.
    PinRefused,
    /// Anything else: report, do not retry.
    Permanent,
}

pub(crate) fn classify(err: &CkError) -> Failure {
    let CkError::Pkcs11(rv, _) = err else {
        return Failure::Permanent;
    };
    match rv {
        RvError::SessionHandleInvalid | RvError::SessionClosed => Failure::SessionLost,
        RvError::UserNotLoggedIn => Failure::NotLoggedIn,
        RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => Failure::StaleHandle,
        RvError::DeviceRemoved
        | RvError::DeviceError
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::CryptokiNotInitialized => Failure::DeviceLost,
        RvError::OperationActive => Failure::OperationActive,
        RvError::PinIncorrect
        | RvError::PinLocked
        | RvError::PinExpired
        | RvError::PinInvalid
        | RvError::PinLenRange => Failure::PinRefused,
        _ => Failure::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

    use super::*;

    fn rv(rv: RvError) -> CkError {
        CkError::Pkcs11(rv, Function::Sign)
    }

    #[test]
    fn recovery_classes_follow_the_research_table() {
        assert_eq!(
            classify(&rv(RvError::SessionHandleInvalid)),
            Failure::SessionLost
        );
        assert_eq!(classify(&rv(RvError::SessionClosed)), Failure::SessionLost);
        assert_eq!(
            classify(&rv(RvError::UserNotLoggedIn)),
            Failure::NotLoggedIn
        );
        assert_eq!(
            classify(&rv(RvError::KeyHandleInvalid)),
            Failure::StaleHandle
        );
        assert_eq!(classify(&rv(RvError::DeviceRemoved)), Failure::DeviceLost);
        assert_eq!(classify(&rv(RvError::TokenNotPresent)), Failure::DeviceLost);
        assert_eq!(classify(&rv(RvError::PinIncorrect)), Failure::PinRefused);
        assert_eq!(classify(&rv(RvError::PinLocked)), Failure::PinRefused);
        assert_eq!(classify(&rv(RvError::MechanismInvalid)), Failure::Permanent);
        assert_eq!(classify(&CkError::NotSupported), Failure::Permanent);
    }

    #[test]
    fn only_unavailable_is_retryable() {
        assert!(TokenError::Unavailable("x".into()).is_retryable());
        assert!(
            !TokenError::PinRefused {
                token: "t".into(),
                rv: "CKR_PIN_INCORRECT".into()
            }
            .is_retryable()
        );
    }
}
