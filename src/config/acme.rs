//! `[acme]` (the default ACME endpoint) and `[[endpoint]]` (more of them, each under
//! `/acme/<name>/`): who may use the CA, and how.

use std::time::Duration;

use serde::Deserialize;

use super::ca::CaConfig;
use crate::policy::CHALLENGE_TYPES;
use crate::policy::rules::IdentifierRules;
use crate::ra::terms::{TermsChange, TermsOfService};
use crate::wfe::endpoints::RESERVED_NAMES;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcme {
    name: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    ca: String,
    #[serde(default)]
    eab_required: bool,
    validity_days: Option<u32>,
    #[serde(default)]
    client_auth: bool,
    terms_of_service: Option<String>,
    website: Option<String>,
    #[serde(default)]
    caa_identities: Vec<String>,
    #[serde(default)]
    allowed_domains: Vec<String>,
    #[serde(default = "yes")]
    wildcards: bool,
    #[serde(default)]
    wildcard_http01: bool,
    #[serde(default = "yes")]
    ip_identifiers: bool,
    #[serde(default = "yes")]
    pre_authorization: bool,
    #[serde(default)]
    authz_reuse_hours: u32,
    caa_recheck_hours: Option<u32>,
    #[serde(default)]
    certificate_profiles: Vec<String>,
    challenges: Option<Vec<String>>,
    #[serde(default)]
    single_active_certificate: bool,
    terms_of_service_version: Option<String>,
    terms_of_service_change: Option<String>,
    #[serde(default)]
    identifier_allow: Vec<String>,
    #[serde(default)]
    identifier_deny: Vec<String>,
    #[serde(default)]
    approve_accounts: bool,
    #[serde(default)]
    approve_key_rollovers: bool,
    approval_hours: Option<u32>,
    order_lifetime_hours: Option<u32>,
    authz_lifetime_hours: Option<u32>,
    client_ca: Option<std::path::PathBuf>,
    redirect_ports: Option<Vec<u16>>,
    dns_resolver: Option<std::net::SocketAddr>,
    dnssec: Option<bool>,
    identifiers_per_order: Option<usize>,
    retry_after_seconds: Option<u64>,
}

fn yes() -> bool {
    true
}

/// `[acme]` or one `[[endpoint]]`: an ACME endpoint.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The endpoint's name (`[acme]`: default `default`): EAB keys and accounts belong to
    /// it, and it answers under `/acme/<name>/`.
    pub name: String,
    /// A disabled endpoint answers every request, its directory included, with a problem
    /// that says so.
    pub enabled: bool,
    /// The `[[ca]]` that issues.
    pub ca: String,
    /// newAccount needs an external account binding (RFC 8555 §7.3.4).
    pub eab_required: bool,
    /// Longest certificate lifetime, days.
    pub validity_days: u32,
    /// Add clientAuth to issued certificates.
    pub client_auth: bool,
    /// Terms of service URL; when set, newAccount must agree.
    pub terms_of_service: Option<String>,
    /// Website URL for the directory.
    pub website: Option<String>,
    /// CAA identities for the directory.
    pub caa_identities: Vec<String>,
    /// Domains issued for (empty: any).
    pub allowed_domains: Vec<String>,
    /// Accept `*.name` identifiers.
    pub wildcards: bool,
    /// Offer http-01 for wildcards too (a divergence; default off).
    pub wildcard_http01: bool,
    /// Accept `ip` identifiers.
    pub ip_identifiers: bool,
    /// Offer newAuthz.
    pub pre_authorization: bool,
    /// Reuse valid authorizations this long (zero: never).
    pub authz_reuse: Duration,
    /// Check CAA again at finalize for authorizations older than this.
    pub caa_recheck: Duration,
    /// The `[[certificate_profile]]`s offered, the first by default; empty: the built-in
    /// TLS server profile with `validity_days` and `client_auth`.
    pub certificate_profiles: Vec<String>,
    /// The challenge types offered.
    pub challenges: Vec<&'static str>,
    /// A new certificate revokes the account's earlier ones for the same identifiers.
    pub single_active_certificate: bool,
    /// Versioned terms of service (RFC 8555 §7.3.3).
    pub terms: Option<TermsOfService>,
    /// Identifier allow and deny lists.
    pub identifier_rules: IdentifierRules,
    /// New accounts wait for the operator's approval, at most this long.
    pub account_approval: Option<Duration>,
    /// After a key rollover, the account waits for approval again, at most this long.
    pub key_rollover_approval: Option<Duration>,
    /// How long a new order stays usable.
    pub order_lifetime: Duration,
    /// How long a pending authorization stays usable.
    pub authz_lifetime: Duration,
    /// mTLS: requests need a TLS client certificate issued by a CA of this PEM file.
    pub client_ca: Option<std::path::PathBuf>,
    /// Ports an http-01 redirect may lead to (default: `[validation] redirect_ports`).
    pub redirect_ports: Option<Vec<u16>>,
    /// The DNS resolver for validation and CAA (default: `[validation]`'s).
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// DNSSEC validation up to the IANA root (default: as `[validation]`).
    pub dnssec: Option<bool>,
    /// Identifiers one order may carry (default: `[rate_limits] identifiers_per_order`).
    pub identifiers_per_order: Option<usize>,
    /// `Retry-After` on orders and challenges still processing, seconds.
    pub retry_after: u64,
}

/// Checks `[acme]` (`default_table`) or an `[[endpoint]]` (which must be named).
pub(super) fn check_acme(
    raw: RawAcme,
    cas: &[CaConfig],
    default_table: bool,
    resolve: &dyn Fn(&std::path::Path) -> std::path::PathBuf,
) -> Result<AcmeConfig, String> {
    let table = match (&raw.name, default_table) {
        (_, true) => "[acme]".to_owned(),
        (Some(name), false) => format!("[[endpoint]] {name:?}"),
        (None, false) => return Err("[[endpoint]] needs a name".into()),
    };
    if !cas.iter().any(|c| c.name == raw.ca) {
        return Err(format!("{table}: ca = {:?} names no [[ca]]", raw.ca));
    }
    let validity_days = raw.validity_days.unwrap_or(90);
    if validity_days == 0 || validity_days > 398 {
        return Err(format!(
            "{table}: validity_days = {validity_days} is not 1..=398"
        ));
    }
    // CA/B Forum BR §3.2.2.8: CAA is checked within 8 hours before issuance.
    let caa_recheck_hours = raw.caa_recheck_hours.unwrap_or(8);
    if caa_recheck_hours > 8 {
        return Err(format!(
            "{table}: caa_recheck_hours = {caa_recheck_hours} exceeds the 8 hours the Baseline \
             Requirements allow"
        ));
    }
    if raw.authz_reuse_hours > 30 * 24 {
        return Err(format!(
            "{table}: authz_reuse_hours = {} exceeds 720 (30 days)",
            raw.authz_reuse_hours
        ));
    }
    let name = raw.name.unwrap_or_else(|| "default".into());
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{table}: name = {name:?}: 1 to 64 letters, digits, '-' and '_'"
        ));
    }
    if RESERVED_NAMES.contains(&name.as_str()) {
        return Err(format!(
            "{table}: name = {name:?} is a resource of /acme/ itself; choose another"
        ));
    }
    let challenges = match raw.challenges {
        None => CHALLENGE_TYPES.to_vec(),
        Some(kinds) if kinds.is_empty() => {
            return Err(format!(
                "{table}: challenges is empty; offer at least one type"
            ));
        }
        Some(kinds) => kinds
            .iter()
            .map(|k| {
                CHALLENGE_TYPES
                    .iter()
                    .copied()
                    .find(|t| t == k)
                    .ok_or_else(|| {
                        format!(
                            "{table}: challenges: {k:?} is not one of {}",
                            CHALLENGE_TYPES.join(", ")
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let terms = match (&raw.terms_of_service, raw.terms_of_service_version) {
        (_, None) if raw.terms_of_service_change.is_some() => {
            return Err(format!(
                "{table}: terms_of_service_change needs terms_of_service_version"
            ));
        }
        (_, None) => None,
        (None, Some(_)) => {
            return Err(format!(
                "{table}: terms_of_service_version needs terms_of_service (the URL)"
            ));
        }
        (Some(url), Some(version)) if !version.is_empty() => Some(TermsOfService {
            url: url.clone(),
            version,
            on_change: match raw.terms_of_service_change.as_deref() {
                None | Some("agree-again") => TermsChange::AgreeAgain,
                Some("new-account") => TermsChange::NewAccount,
                Some(other) => {
                    return Err(format!(
                        "{table}: terms_of_service_change = {other:?} is not \"agree-again\" \
                         or \"new-account\""
                    ));
                }
            },
        }),
        (Some(_), Some(_)) => {
            return Err(format!("{table}: terms_of_service_version is empty"));
        }
    };
    let lifetime = |key: &str, value: Option<u32>| match value.unwrap_or(168) {
        hours @ 1..=720 => Ok(Duration::from_secs(u64::from(hours) * 3600)),
        hours => Err(format!("{table}: {key} = {hours} is not 1..=720")),
    };
    let order_lifetime = lifetime("order_lifetime_hours", raw.order_lifetime_hours)?;
    let authz_lifetime = lifetime("authz_lifetime_hours", raw.authz_lifetime_hours)?;
    if raw.redirect_ports.as_ref().is_some_and(Vec::is_empty) {
        return Err(format!("{table}: redirect_ports is empty"));
    }
    let approval_within = match (
        raw.approve_accounts || raw.approve_key_rollovers,
        raw.approval_hours,
    ) {
        (false, Some(_)) => {
            return Err(format!(
                "{table}: approval_hours needs approve_accounts or approve_key_rollovers"
            ));
        }
        (_, hours) => match hours.unwrap_or(168) {
            hours @ 1..=8760 => Duration::from_secs(u64::from(hours) * 3600),
            hours => return Err(format!("{table}: approval_hours = {hours} is not 1..=8760")),
        },
    };
    if let Some(n) = raw.identifiers_per_order.filter(|n| !(1..=100).contains(n)) {
        return Err(format!(
            "{table}: identifiers_per_order = {n} is not 1..=100"
        ));
    }
    let retry_after = raw.retry_after_seconds.unwrap_or(1);
    if !(1..=3600).contains(&retry_after) {
        return Err(format!(
            "{table}: retry_after_seconds = {retry_after} is not 1..=3600"
        ));
    }
    Ok(AcmeConfig {
        identifiers_per_order: raw.identifiers_per_order,
        retry_after,
        client_ca: raw.client_ca.as_deref().map(resolve),
        redirect_ports: raw.redirect_ports,
        dns_resolver: raw.dns_resolver,
        dnssec: raw.dnssec,
        name,
        order_lifetime,
        authz_lifetime,
        enabled: raw.enabled,
        ca: raw.ca,
        eab_required: raw.eab_required,
        validity_days,
        client_auth: raw.client_auth,
        terms_of_service: raw.terms_of_service,
        website: raw.website,
        caa_identities: raw.caa_identities,
        allowed_domains: raw
            .allowed_domains
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        wildcards: raw.wildcards,
        wildcard_http01: raw.wildcard_http01,
        ip_identifiers: raw.ip_identifiers,
        pre_authorization: raw.pre_authorization,
        authz_reuse: Duration::from_secs(u64::from(raw.authz_reuse_hours) * 3600),
        caa_recheck: Duration::from_secs(u64::from(caa_recheck_hours) * 3600),
        certificate_profiles: raw.certificate_profiles,
        challenges,
        single_active_certificate: raw.single_active_certificate,
        terms,
        identifier_rules: IdentifierRules::parse(&raw.identifier_allow, &raw.identifier_deny)
            .map_err(|e| format!("{table}: identifier_allow/identifier_deny: {e}"))?,
        account_approval: raw.approve_accounts.then_some(approval_within),
        key_rollover_approval: raw.approve_key_rollovers.then_some(approval_within),
    })
}
