//! The error that crosses module boundaries: a kind close to the RFC 8555 §6.7 problem
//! types, a detail for the client, and optional subproblems. `wfe::problem` maps it to an
//! HTTP response in exactly one place; internal causes go to the log, never to the client.

use std::fmt;
use std::time::Duration;

use crate::acme::problem::Subproblem;

/// What kind of failure, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ErrorKind {
    Malformed,
    Unauthorized,
    /// The request is signed by an account that is deactivated or revoked (RFC 8555
    /// §7.3.6): `unauthorized` with 401.
    AccountNotValid,
    AccountDoesNotExist,
    BadNonce,
    BadSignatureAlgorithm,
    BadCsr,
    BadPublicKey,
    RejectedIdentifier,
    UnsupportedIdentifier,
    OrderNotReady,
    AlreadyRevoked,
    /// RFC 9773 §5: the certificate named in `replaces` was already replaced (409).
    AlreadyReplaced,
    BadRevocationReason,
    ExternalAccountRequired,
    InvalidContact,
    /// draft-ietf-acme-profiles: an unknown certificate profile (400).
    InvalidProfile,
    UnsupportedContact,
    Caa,
    /// The resource does not exist (404).
    NotFound,
    /// The method is not allowed on the resource (405).
    MethodNotAllowed,
    /// The request body is not `application/jose+json` (415).
    UnsupportedMediaType,
    /// The request body is too large (413).
    PayloadTooLarge,
    /// The state changed underneath the request (409).
    Conflict,
    RateLimited,
    /// RFC 8555 §7.3.3: the terms of service changed; the user must agree again (403),
    /// with a `terms-of-service` link and `instance`.
    UserActionRequired,
    /// A dependency (the token, the database) is unavailable: retry later (503).
    Unavailable,
    /// A bug or an unexpected failure: the detail is logged, not sent (500).
    Internal,
}

/// A failed request.
#[derive(Debug, Clone)]
pub struct Error {
    /// The kind.
    pub kind: ErrorKind,
    /// Explanation; shown to the client except for `Internal` and `Unavailable`.
    pub detail: String,
    /// Per-identifier problems (RFC 8555 §6.7.1).
    pub subproblems: Vec<Subproblem>,
    /// For `Unavailable` and `RateLimited`: when to retry.
    pub retry_after: Option<Duration>,
    /// For `Conflict` on newAccount/keyChange: the existing resource.
    pub location: Option<String>,
    /// For `UserActionRequired`: where the user acts.
    pub action: Option<Box<UserAction>>,
}

/// RFC 8555 §7.3.3: what a `userActionRequired` problem points at.
#[derive(Debug, Clone)]
pub struct UserAction {
    /// A `Link` header value (`<url>;rel="terms-of-service"`).
    pub link: String,
    /// The problem's `instance`: where a human acts.
    pub instance: String,
}

impl Error {
    /// An error of `kind` with `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            subproblems: Vec::new(),
            retry_after: None,
            location: None,
            action: None,
        }
    }

    /// Points at the existing resource (409 Conflict).
    #[must_use]
    pub fn with_location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    /// Attaches subproblems.
    #[must_use]
    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }

    /// Shorthand for `Malformed`.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, detail)
    }

    /// Shorthand for `Unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, detail)
    }

    /// Shorthand for `NotFound`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    /// Shorthand for `Internal`; the detail is for the log.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, detail)
    }

    /// Shorthand for `Unavailable`, with a retry hint.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Unavailable, detail);
        e.retry_after = Some(Duration::from_secs(5));
        e
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for Error {}

impl From<crate::hsm::TokenError> for Error {
    fn from(e: crate::hsm::TokenError) -> Self {
        if e.is_retryable() {
            Self::unavailable(format!("token: {e}"))
        } else {
            Self::internal(format!("token: {e}"))
        }
    }
}

impl From<crate::ca::CaError> for Error {
    fn from(e: crate::ca::CaError) -> Self {
        match e {
            crate::ca::CaError::Token(t) => t.into(),
            other => Self::internal(format!("certificate authority: {other}")),
        }
    }
}
