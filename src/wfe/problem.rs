//! The one place where errors become RFC 8555 §6.7 problem documents and HTTP statuses.
//! `Internal` and `Unavailable` details go to the log under a request id; the client gets a
//! fixed message with that id.

use hyper::StatusCode;

use crate::acme::Problem;
use crate::acme::problem::ProblemType;
use crate::error::{Error, ErrorKind};
use crate::wfe::jws::ALGORITHMS;

/// The problem document and status for `error`.
pub fn problem_for(error: &Error, request_id: &str) -> (StatusCode, Problem) {
    use ErrorKind as K;
    let (kind, status) = match error.kind {
        K::Malformed => (ProblemType::Malformed, StatusCode::BAD_REQUEST),
        K::Unauthorized => (ProblemType::Unauthorized, StatusCode::FORBIDDEN),
        K::AccountNotValid => (ProblemType::Unauthorized, StatusCode::UNAUTHORIZED),
        K::AccountDoesNotExist => (ProblemType::AccountDoesNotExist, StatusCode::BAD_REQUEST),
        K::BadNonce => (ProblemType::BadNonce, StatusCode::BAD_REQUEST),
        K::BadSignatureAlgorithm => (ProblemType::BadSignatureAlgorithm, StatusCode::BAD_REQUEST),
        K::BadCsr => (ProblemType::BadCsr, StatusCode::BAD_REQUEST),
        K::BadPublicKey => (ProblemType::BadPublicKey, StatusCode::BAD_REQUEST),
        K::RejectedIdentifier => (ProblemType::RejectedIdentifier, StatusCode::BAD_REQUEST),
        K::UnsupportedIdentifier => (ProblemType::UnsupportedIdentifier, StatusCode::BAD_REQUEST),
        K::OrderNotReady => (ProblemType::OrderNotReady, StatusCode::FORBIDDEN),
        K::AlreadyRevoked => (ProblemType::AlreadyRevoked, StatusCode::BAD_REQUEST),
        K::AlreadyReplaced => (ProblemType::AlreadyReplaced, StatusCode::CONFLICT),
        K::BadRevocationReason => (ProblemType::BadRevocationReason, StatusCode::BAD_REQUEST),
        K::ExternalAccountRequired => (
            ProblemType::ExternalAccountRequired,
            StatusCode::UNAUTHORIZED,
        ),
        K::InvalidContact => (ProblemType::InvalidContact, StatusCode::BAD_REQUEST),
        K::InvalidProfile => (ProblemType::InvalidProfile, StatusCode::BAD_REQUEST),
        K::UnsupportedContact => (ProblemType::UnsupportedContact, StatusCode::BAD_REQUEST),
        K::Caa => (ProblemType::Caa, StatusCode::FORBIDDEN),
        K::NotFound => (ProblemType::Malformed, StatusCode::NOT_FOUND),
        K::MethodNotAllowed => (ProblemType::Malformed, StatusCode::METHOD_NOT_ALLOWED),
        K::UnsupportedMediaType => (ProblemType::Malformed, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        K::PayloadTooLarge => (ProblemType::Malformed, StatusCode::PAYLOAD_TOO_LARGE),
        K::Conflict => (ProblemType::Malformed, StatusCode::CONFLICT),
        K::RateLimited => (ProblemType::RateLimited, StatusCode::TOO_MANY_REQUESTS),
        K::UserActionRequired => (ProblemType::UserActionRequired, StatusCode::FORBIDDEN),
        K::Unavailable => (ProblemType::ServerInternal, StatusCode::SERVICE_UNAVAILABLE),
        K::Internal => (
            ProblemType::ServerInternal,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    };
    let detail = match error.kind {
        K::Internal => format!("internal error; reference {request_id}"),
        K::Unavailable => format!("temporarily unavailable, retry later; reference {request_id}"),
        _ => error.detail.clone(),
    };
    let mut problem = Problem::new(kind, detail);
    problem.status = Some(status.as_u16());
    problem.subproblems = error.subproblems.clone();
    problem.instance = error.action.as_ref().map(|a| a.instance.clone());
    if error.kind == K::BadSignatureAlgorithm {
        problem.algorithms = ALGORITHMS.iter().map(|a| (*a).to_owned()).collect();
    }
    (status, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_client() {
        let (status, problem) = problem_for(&Error::internal("redb: /var/lib/x corrupt"), "r1");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!problem.detail.contains("redb"));
        assert!(problem.detail.contains("r1"));
        let (status, problem) = problem_for(&Error::unavailable("token: CKR_DEVICE_REMOVED"), "r2");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!problem.detail.contains("CKR"));
    }

    #[test]
    fn statuses_and_types_follow_rfc_8555() {
        let cases = [
            (ErrorKind::BadNonce, 400, "badNonce"),
            (ErrorKind::Unauthorized, 403, "unauthorized"),
            (ErrorKind::OrderNotReady, 403, "orderNotReady"),
            (ErrorKind::BadCsr, 400, "badCSR"),
            (ErrorKind::NotFound, 404, "malformed"),
            (ErrorKind::MethodNotAllowed, 405, "malformed"),
            (ErrorKind::UnsupportedMediaType, 415, "malformed"),
            (ErrorKind::AccountDoesNotExist, 400, "accountDoesNotExist"),
        ];
        for (kind, status, urn) in cases {
            let (s, p) = problem_for(&Error::new(kind, "x"), "r");
            assert_eq!(s.as_u16(), status, "{kind:?}");
            assert_eq!(p.kind, format!("urn:ietf:params:acme:error:{urn}"));
            assert_eq!(p.status, Some(status));
        }
        let (_, p) = problem_for(&Error::new(ErrorKind::BadSignatureAlgorithm, "x"), "r");
        assert!(p.algorithms.contains(&"ES256".to_owned()));
    }
}
