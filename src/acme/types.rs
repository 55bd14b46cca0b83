//! RFC 8555 §7.1 resources and §7.3–7.5 request payloads.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Problem;

/// An identifier a certificate is requested for (RFC 8555 §9.7.7).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` (RFC 8555) or `ip` (RFC 8738).
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or address.
    pub value: String,
}

impl Identifier {
    /// A `dns` identifier.
    pub fn dns(value: impl Into<String>) -> Self {
        Self {
            kind: "dns".into(),
            value: value.into(),
        }
    }

    /// An `ip` identifier (RFC 8738 §3).
    pub fn ip(value: std::net::IpAddr) -> Self {
        Self {
            kind: "ip".into(),
            value: value.to_string(),
        }
    }

    /// The address of an `ip` identifier.
    pub fn ip_addr(&self) -> Option<std::net::IpAddr> {
        (self.kind == "ip")
            .then(|| self.value.parse().ok())
            .flatten()
    }

    /// For `*.name`, the base name an authorization is for (RFC 8555 §7.1.3).
    pub fn wildcard_base(&self) -> Option<&str> {
        (self.kind == "dns")
            .then(|| self.value.strip_prefix("*."))
            .flatten()
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }
        impl $name {
            /// The status as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// RFC 8555 §7.1.6 account states.
    AccountStatus {
        /// In use.
        Valid = "valid",
        /// Deactivated by its holder (§7.3.6).
        Deactivated = "deactivated",
        /// Revoked by the server.
        Revoked = "revoked",
    }
);

status_enum!(
    /// RFC 8555 §7.1.6 order states.
    OrderStatus {
        /// Authorizations are not yet all valid.
        Pending = "pending",
        /// Every authorization is valid; finalize may be sent.
        Ready = "ready",
        /// The certificate is being issued.
        Processing = "processing",
        /// The certificate is issued.
        Valid = "valid",
        /// The order failed or expired.
        Invalid = "invalid",
    }
);

status_enum!(
    /// RFC 8555 §7.1.6 authorization states.
    AuthorizationStatus {
        /// Waiting for a challenge to be answered.
        Pending = "pending",
        /// A challenge succeeded.
        Valid = "valid",
        /// A challenge failed.
        Invalid = "invalid",
        /// Deactivated by the client (§7.5.2).
        Deactivated = "deactivated",
        /// Expired before it was used.
        Expired = "expired",
        /// Revoked by the server.
        Revoked = "revoked",
    }
);

status_enum!(
    /// RFC 8555 §7.1.6 challenge states.
    ChallengeStatus {
        /// Not yet answered.
        Pending = "pending",
        /// Being validated.
        Processing = "processing",
        /// Validated.
        Valid = "valid",
        /// Validation failed.
        Invalid = "invalid",
    }
);

/// RFC 8555 §7.1.1 directory `meta`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// Terms of service URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// Website URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// CAA identities of this CA.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Whether newAccount needs an external account binding.
    pub external_account_required: bool,
    /// draft-ietf-acme-profiles: the certificate profiles offered, name → description.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub profiles: std::collections::BTreeMap<String, String>,
}

/// RFC 8555 §7.1.1 directory.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// newNonce URL.
    pub new_nonce: String,
    /// newAccount URL.
    pub new_account: String,
    /// newOrder URL.
    pub new_order: String,
    /// revokeCert URL.
    pub revoke_cert: String,
    /// keyChange URL.
    pub key_change: String,
    /// newAuthz URL (§7.4.1), when pre-authorization is offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// RFC 9773 §3: renewalInfo URL.
    pub renewal_info: String,
    /// Metadata.
    pub meta: DirectoryMeta,
}

/// RFC 8555 §7.1.2 account object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Status.
    pub status: AccountStatus,
    /// Contact URLs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Whether the terms of service were agreed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// URL of the account's orders list.
    pub orders: String,
}

/// RFC 8555 §7.1.3 order object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Status.
    pub status: OrderStatus,
    /// When the order expires (RFC 3339).
    pub expires: String,
    /// Requested identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Why the order is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// Authorization URLs.
    pub authorizations: Vec<String>,
    /// Finalize URL.
    pub finalize: String,
    /// Certificate URL, once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// RFC 9773 §5: the CertID this order renews.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// draft-ietf-acme-profiles: the certificate profile the order was made for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// RFC 8555 §7.1.4 authorization object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The identifier (for a wildcard, its base name).
    pub identifier: Identifier,
    /// Status.
    pub status: AuthorizationStatus,
    /// Expiry (RFC 3339).
    pub expires: String,
    /// Challenges offered.
    pub challenges: Vec<Challenge>,
    /// Whether the order asked for the wildcard of this name.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wildcard: bool,
}

/// RFC 8555 §8 challenge object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// Challenge type, e.g. `http-01`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Challenge URL.
    pub url: String,
    /// Status.
    pub status: ChallengeStatus,
    /// Token (RFC 8555 §8.1).
    pub token: String,
    /// When it was validated (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    /// Why validation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// RFC 8555 §7.3 newAccount payload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccountRequest {
    /// Contact URLs.
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// Agreement to the terms of service.
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
    /// Only look up an existing account (§7.3.1).
    #[serde(default)]
    pub only_return_existing: Option<bool>,
    /// External account binding (§7.3.4).
    #[serde(default)]
    pub external_account_binding: Option<Value>,
}

/// RFC 8555 §7.3.4: the inner JWS of newAccount's `externalAccountBinding`, in its parts.
#[derive(Debug, Clone)]
pub struct ExternalAccountBinding {
    /// Protected header `alg`: a MAC algorithm, or a signature algorithm for public-key EAB.
    pub alg: String,
    /// Protected header `kid`: the key the operator handed out.
    pub kid: String,
    /// Protected header `url`: must be the newAccount URL.
    pub url: String,
    /// The payload: the account's JWK.
    pub payload: Vec<u8>,
    /// The MAC or signature.
    pub signature: Vec<u8>,
    /// `protected.payload`, as MACed or signed.
    pub signing_input: String,
}

/// RFC 8555 §7.3.2 / §7.3.6 account update payload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdateRequest {
    /// New contact URLs.
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// `deactivated` to deactivate.
    #[serde(default)]
    pub status: Option<String>,
    /// Ignored on update (§7.3.3 allows re-sending it).
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
}

/// RFC 8555 §7.4 newOrder payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderRequest {
    /// Requested identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339).
    #[serde(default)]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339).
    #[serde(default)]
    pub not_after: Option<String>,
    /// RFC 9773 §5: the ARI CertID of the certificate this order renews.
    #[serde(default)]
    pub replaces: Option<String>,
    /// draft-ietf-acme-profiles: the certificate profile asked for.
    #[serde(default)]
    pub profile: Option<String>,
}

/// RFC 8555 §7.4.1 newAuthz payload.
#[derive(Debug, Clone, Deserialize)]
pub struct NewAuthzRequest {
    /// The identifier to pre-authorize.
    pub identifier: Identifier,
}

/// RFC 8555 §7.3.5 keyChange: the payload of the inner JWS.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChangeRequest {
    /// The account URL.
    pub account: String,
    /// The current key.
    pub old_key: Value,
}

/// RFC 8555 §7.6 revokeCert payload.
#[derive(Debug, Clone, Deserialize)]
pub struct RevocationRequest {
    /// base64url DER certificate.
    pub certificate: String,
    /// RFC 5280 §5.3.1 reason code.
    #[serde(default)]
    pub reason: Option<i64>,
}

/// RFC 8555 §7.4 finalize payload.
#[derive(Debug, Clone, Deserialize)]
pub struct FinalizeRequest {
    /// base64url DER CSR.
    pub csr: String,
}

/// RFC 8555 §7.5.2 authorization update payload.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationUpdateRequest {
    /// `deactivated`.
    pub status: String,
}
