//! What is stored: one record type per table, serialised by `codec`.
//!
//! Times are Unix seconds. An order's stored status is never `ready`: `ready` is derived
//! from its authorizations when the order is read (RFC 8555 §7.1.6), so it cannot go stale.

use serde::{Deserialize, Serialize};

use crate::acme::{
    AccountStatus, AuthorizationStatus, ChallengeStatus, Identifier, OrderStatus, Problem,
};
use crate::hsm::Sealed;

/// An ACME account (RFC 8555 §7.1.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Random id; the last segment of the account URL.
    pub id: String,
    /// Status.
    pub status: AccountStatus,
    /// Contact URLs.
    pub contact: Vec<String>,
    /// Whether the terms of service were agreed to.
    pub tos_agreed: Option<bool>,
    /// The version of the terms of service it agreed to (RFC 8555 §7.3.3), when the
    /// endpoint versions them.
    #[serde(default)]
    pub tos_version: Option<String>,
    /// While the account awaits operator approval: when the request lapses (Unix seconds).
    #[serde(default)]
    pub approval_expires: Option<u64>,
    /// The account's public key as a JWK.
    pub jwk: serde_json::Value,
    /// RFC 7638 thumbprint of `jwk`.
    pub thumbprint: String,
    /// Creation time.
    pub created: u64,
    /// The external account binding key it was created with (RFC 8555 §7.3.4).
    #[serde(default)]
    pub eab_kid: Option<String>,
    /// The ACME profile it was created on.
    #[serde(default = "default_profile")]
    pub profile: String,
}

fn default_profile() -> String {
    "default".into()
}

/// An external account binding key (RFC 8555 §7.3.4) handed out by the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EabKeyRecord {
    /// The key identifier clients send as `kid`.
    pub kid: String,
    /// The ACME profile whose accounts it may bind.
    pub profile: String,
    /// How the binding is proven.
    pub credential: EabCredential,
    /// The operator's note.
    #[serde(default)]
    pub label: Option<String>,
    /// Names and networks bound accounts may order (empty: any the profile allows).
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Names whose authorizations bound accounts get without a challenge.
    #[serde(default)]
    pub prevalidated_domains: Vec<String>,
    /// After this no new account may be bound.
    #[serde(default)]
    pub expires: Option<u64>,
    /// Whether it may bind more than one account.
    #[serde(default)]
    pub reusable: bool,
    /// Creation time.
    pub created: u64,
    /// Set when the operator revoked it: no new binding, and no new orders of bound accounts.
    #[serde(default)]
    pub revoked: Option<u64>,
    /// How many accounts it has bound.
    #[serde(default)]
    pub bindings: u64,
}

/// What proves an external account binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EabCredential {
    /// A MAC key shared with the client, stored only sealed by the token's AES key
    /// (associated data: kid and profile).
    Hmac {
        /// `HS256`, `HS384` or `HS512`.
        alg: String,
        /// The sealed key.
        sealed: Sealed,
    },
    /// A public key registered by the operator; the client signs with its private half.
    PublicKey {
        /// The JWS algorithm the key signs with.
        alg: String,
        /// The key as a JWK (public members).
        jwk: serde_json::Value,
    },
}

impl EabCredential {
    /// The JWS algorithm a binding must use.
    pub fn alg(&self) -> &str {
        match self {
            Self::Hmac { alg, .. } | Self::PublicKey { alg, .. } => alg,
        }
    }
}

/// The state of one rate limit for one subject (GCRA's theoretical arrival time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitRecord {
    /// `<limit name> NUL <subject>`.
    pub key: String,
    /// When the subject's budget is whole again, Unix milliseconds.
    pub tat_ms: u64,
}

/// What one account holds open against one quota (`ra::quota`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLedger {
    /// `<quota name> NUL <account id>`.
    pub key: String,
    /// The items opened and not yet seen finished or expired.
    pub open: Vec<OpenItem>,
}

/// One entry of a [`QuotaLedger`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenItem {
    /// Order or authorization id.
    pub id: String,
    /// Its expiry, Unix seconds.
    pub expires: u64,
}

/// An order (RFC 8555 §7.1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Random id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Stored status: pending, processing, valid or invalid (never ready, see module doc).
    pub status: OrderStatus,
    /// Requested identifiers, normalised.
    pub identifiers: Vec<Identifier>,
    /// Authorization ids, one per identifier.
    pub authz_ids: Vec<String>,
    /// Requested notBefore.
    pub not_before: Option<u64>,
    /// Requested notAfter.
    pub not_after: Option<u64>,
    /// Expiry of the order.
    pub expires: u64,
    /// Creation time.
    pub created: u64,
    /// Why the order is invalid.
    pub error: Option<Problem>,
    /// Serial (hex) of the issued certificate.
    pub certificate: Option<String>,
    /// RFC 9773 §5: the ARI CertID of the certificate this order renews.
    #[serde(default)]
    pub replaces: Option<String>,
    /// The certificate profile it was made for (`None`: the endpoint's first).
    #[serde(default)]
    pub profile: Option<String>,
}

/// An authorization (RFC 8555 §7.1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthzRecord {
    /// Random id.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// The identifier (for a wildcard, its base name).
    pub identifier: Identifier,
    /// Status.
    pub status: AuthorizationStatus,
    /// Expiry.
    pub expires: u64,
    /// Whether it was created for a wildcard name.
    pub wildcard: bool,
    /// Created by newAuthz (RFC 8555 §7.4.1) rather than for an order.
    #[serde(default)]
    pub preauthorized: bool,
    /// Created valid without a challenge: the operator pre-validated the name for the
    /// external account binding key with this kid.
    #[serde(default)]
    pub prevalidated_by: Option<String>,
    /// Challenges offered.
    pub challenges: Vec<ChallengeRecord>,
}

/// A challenge inside an authorization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    /// `http-01`, `dns-01`, `tls-alpn-01`.
    pub kind: String,
    /// Random token (RFC 8555 §8.1: at least 128 bits, base64url).
    pub token: String,
    /// Status.
    pub status: ChallengeStatus,
    /// When it was validated.
    pub validated: Option<u64>,
    /// Why it failed.
    pub error: Option<Problem>,
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertRecord {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The account that ordered it.
    pub account_id: String,
    /// The order it fulfilled.
    pub order_id: String,
    /// Name of the issuing CA.
    pub ca: String,
    /// The certificate, DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// Issuance time.
    pub issued: u64,
    /// notAfter.
    pub not_after: u64,
    /// notBefore.
    #[serde(default)]
    pub not_before: u64,
    /// Set once revoked (RFC 8555 §7.6).
    #[serde(default)]
    pub revocation: Option<Revocation>,
    /// The order that renews it (RFC 9773 §5 `replaces`).
    #[serde(default)]
    pub replaced_by: Option<String>,
}

/// When and why a certificate was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// Revocation time.
    pub at: u64,
    /// RFC 5280 §5.3.1 reason code.
    pub reason: u8,
}

/// A subscriber key revoked for keyCompromise: later CSRs with it are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedKey {
    /// Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: String,
    /// The certificate whose revocation blocked it.
    pub serial: String,
    /// When.
    pub at: u64,
}

/// The newest CRL of a CA, kept so a restart serves it and numbers keep rising.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrlRecord {
    /// The CA's name.
    pub ca: String,
    /// RFC 5280 §5.2.3 cRLNumber.
    pub number: u64,
    /// thisUpdate.
    pub this_update: u64,
    /// nextUpdate.
    pub next_update: u64,
    /// The CRL, DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
}

/// What is about to be signed: committed before the token signs, removed when the
/// certificate is stored. One left behind marks an issuance that did not complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuanceIntent {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The order being finalised.
    pub order_id: String,
    /// Issuing CA.
    pub ca: String,
    /// The exact TBSCertificate to be signed, DER.
    #[serde(with = "b64")]
    pub tbs: Vec<u8>,
    /// When the intent was committed.
    pub created: u64,
}

/// A challenge whose validation is running; removed with its result. One left behind after
/// a crash is validated again at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationInFlight {
    /// `<authz id>/<challenge type>`.
    pub key: String,
    /// The authorization.
    pub authz_id: String,
    /// The challenge type.
    pub kind: String,
}

impl ValidationInFlight {
    /// The marker for one challenge.
    pub fn new(authz_id: &str, kind: &str) -> Self {
        Self {
            key: format!("{authz_id}/{kind}"),
            authz_id: authz_id.to_owned(),
            kind: kind.to_owned(),
        }
    }
}

/// Bytes as base64 in the JSON encoding.
mod b64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}
