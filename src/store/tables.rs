//! Every table, in one place.

use redb::{MultimapTableDefinition, TableDefinition};

/// `schema_version` and other single values.
pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// account id → AccountRecord.
pub(crate) const ACCOUNTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("accounts");
/// JWK thumbprint → account id.
pub(crate) const ACCOUNT_BY_KEY: TableDefinition<'_, &str, &str> =
    TableDefinition::new("account_by_key");
/// order id → OrderRecord.
pub(crate) const ORDERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("orders");
/// account id → order ids.
pub(crate) const ORDERS_BY_ACCOUNT: MultimapTableDefinition<'_, &str, &str> =
    MultimapTableDefinition::new("orders_by_account");
/// authorization id → AuthzRecord.
pub(crate) const AUTHZS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("authzs");
/// serial (hex) → CertRecord.
pub(crate) const CERTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("certs");
/// account id → serials.
pub(crate) const CERTS_BY_ACCOUNT: MultimapTableDefinition<'_, &str, &str> =
    MultimapTableDefinition::new("certs_by_account");
/// serial (hex) → IssuanceIntent.
pub(crate) const ISSUANCE_INTENTS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("issuance_intents");

/// `<authz id>/<type>` → ValidationInFlight.
pub(crate) const VALIDATIONS_IN_FLIGHT: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("validations_in_flight");

/// account id → authorization ids (for reuse and deactivation).
pub(crate) const AUTHZS_BY_ACCOUNT: MultimapTableDefinition<'_, &str, &str> =
    MultimapTableDefinition::new("authzs_by_account");
/// `account id NUL type:value NUL wildcard` → authorization ids, so reuse finds the
/// candidates for one identifier without reading the account's whole history.
pub(crate) const AUTHZS_BY_IDENTIFIER: MultimapTableDefinition<'_, &str, &str> =
    MultimapTableDefinition::new("authzs_by_identifier");
/// SPKI SHA-256 (hex) → BlockedKey.
pub(crate) const BLOCKED_KEYS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("blocked_keys");
/// CA name → revoked serials.
pub(crate) const REVOKED_BY_CA: MultimapTableDefinition<'_, &str, &str> =
    MultimapTableDefinition::new("revoked_by_ca");
/// CA name → CrlRecord.
pub(crate) const CRLS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("crls");

/// kid → EabKeyRecord.
pub(crate) const EAB_KEYS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("eab_keys");
/// kid → ids of the accounts it bound.
pub(crate) const ACCOUNTS_BY_EAB: MultimapTableDefinition<'_, &str, &str> =
    MultimapTableDefinition::new("accounts_by_eab");

/// `<limit> NUL <subject>` → RateLimitRecord.
pub(crate) const RATE_LIMITS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("rate_limits");

/// `<quota> NUL <account id>` → QuotaLedger.
pub(crate) const QUOTAS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("quotas");

/// The schema this build writes.
pub(crate) const SCHEMA_VERSION: u64 = 1;
