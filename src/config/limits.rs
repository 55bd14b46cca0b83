//! `[rate_limits]`: rate limits and quotas, and the public suffix list they use.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ra::limits::{RateLimit, RateLimits};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRateLimits {
    accounts_per_ip: Option<RateLimit>,
    orders_per_account: Option<RateLimit>,
    identifiers_per_order: Option<usize>,
    pending_orders_per_account: Option<usize>,
    pending_authorizations_per_account: Option<usize>,
    certificates_per_domain: Option<RateLimit>,
    public_suffix_list: Option<PathBuf>,
}

/// The limits, and the public suffix list named for them (if any).
pub(super) fn check_rate_limits(
    raw: Option<RawRateLimits>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<(RateLimits, Option<PathBuf>), String> {
    let defaults = RateLimits::default();
    let Some(r) = raw else {
        return Ok((defaults, None));
    };
    let limits = RateLimits {
        accounts_per_ip: r
            .accounts_per_ip
            .unwrap_or(defaults.accounts_per_ip)
            .check("[rate_limits] accounts_per_ip")?,
        orders_per_account: r
            .orders_per_account
            .unwrap_or(defaults.orders_per_account)
            .check("[rate_limits] orders_per_account")?,
        certificates_per_domain: r
            .certificates_per_domain
            .map(|l| l.check("[rate_limits] certificates_per_domain"))
            .transpose()?,
        identifiers_per_order: match r.identifiers_per_order {
            None => defaults.identifiers_per_order,
            Some(n @ 1..=100) => n,
            Some(n) => {
                return Err(format!(
                    "[rate_limits] identifiers_per_order = {n} is not 1..=100"
                ));
            }
        },
        pending_orders_per_account: quota(
            "pending_orders_per_account",
            r.pending_orders_per_account,
            defaults.pending_orders_per_account,
        )?,
        pending_authorizations_per_account: quota(
            "pending_authorizations_per_account",
            r.pending_authorizations_per_account,
            defaults.pending_authorizations_per_account,
        )?,
    };
    Ok((limits, r.public_suffix_list.as_deref().map(resolve)))
}

/// A quota of `[rate_limits]`: 1..=100000 open items.
fn quota(name: &str, value: Option<usize>, default: usize) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(n @ 1..=100_000) => Ok(n),
        Some(n) => Err(format!("[rate_limits] {name} = {n} is not 1..=100000")),
    }
}
