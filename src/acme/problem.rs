//! RFC 8555 §6.7 problem documents (RFC 7807), with §6.7.1 subproblems.

use serde::{Deserialize, Serialize};

use super::Identifier;

/// The `urn:ietf:params:acme:error:*` types of RFC 8555 §6.7 (and RFC 9773's
/// `alreadyReplaced`, draft-ietf-acme-profiles' `invalidProfile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub enum ProblemType {
    AccountDoesNotExist,
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Compound,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    /// draft-ietf-acme-profiles: the order names a profile the endpoint does not offer.
    InvalidProfile,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
    UserActionRequired,
}

impl ProblemType {
    /// The full URN.
    pub fn urn(self) -> String {
        let name = match self {
            // The registry spells it badCSR.
            Self::BadCsr => "badCSR".to_owned(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "serverInternal".into()),
        };
        format!("urn:ietf:params:acme:error:{name}")
    }

    /// Parses a URN back into a type.
    pub fn from_urn(urn: &str) -> Option<Self> {
        let name = urn.strip_prefix("urn:ietf:params:acme:error:")?;
        if name == "badCSR" {
            return Some(Self::BadCsr);
        }
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// A problem document, as sent to clients and as stored in a challenge or order `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type URN.
    #[serde(rename = "type")]
    pub kind: String,
    /// A human-readable explanation for this occurrence.
    pub detail: String,
    /// The HTTP status, when sent as a response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Per-identifier problems (RFC 8555 §6.7.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// For `badSignatureAlgorithm`: the algorithms accepted (RFC 8555 §6.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// RFC 7807 `instance`; for `userActionRequired`, where the user acts (RFC 8555 §7.3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// A problem about one identifier (RFC 8555 §6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    /// The problem type URN.
    #[serde(rename = "type")]
    pub kind: String,
    /// What is wrong with this identifier.
    pub detail: String,
    /// The identifier concerned.
    pub identifier: Identifier,
}

impl Problem {
    /// A problem of `kind` with `detail`, without an HTTP status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind: kind.urn(),
            detail: detail.into(),
            status: None,
            subproblems: Vec::new(),
            algorithms: Vec::new(),
            instance: None,
        }
    }
}

impl Subproblem {
    /// A subproblem of `kind` about `identifier`.
    pub fn new(kind: ProblemType, detail: impl Into<String>, identifier: Identifier) -> Self {
        Self {
            kind: kind.urn(),
            detail: detail.into(),
            identifier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_follow_the_registry_spelling() {
        assert_eq!(
            ProblemType::BadCsr.urn(),
            "urn:ietf:params:acme:error:badCSR"
        );
        assert_eq!(
            ProblemType::AccountDoesNotExist.urn(),
            "urn:ietf:params:acme:error:accountDoesNotExist"
        );
        assert_eq!(
            ProblemType::from_urn(&ProblemType::BadNonce.urn()),
            Some(ProblemType::BadNonce)
        );
        assert_eq!(
            ProblemType::from_urn("urn:ietf:params:acme:error:badCSR"),
            Some(ProblemType::BadCsr)
        );
        assert_eq!(ProblemType::from_urn("urn:x:nope"), None);
    }

    #[test]
    fn empty_lists_are_not_serialized() {
        let json = serde_json::to_value(Problem::new(ProblemType::Malformed, "x")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "urn:ietf:params:acme:error:malformed", "detail": "x"})
        );
    }
}
