//! Rate limits: new accounts per client address, new orders per account, certificates per
//! registered domain (quotas on what an account holds open are in `quota`). Each limit is a
//! generic cell rate algorithm (GCRA, as Boulder's limits): one stored "theoretical arrival
//! time" per subject, spent in the same transaction as the change it limits, so limits
//! survive a restart and two racing requests cannot both take the last slot.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind};
use crate::store::{RateLimitRecord, Tx};

/// `count` events per `period`, with bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Events allowed per period.
    pub count: u32,
    /// The period, in hours.
    #[serde(rename = "period_hours")]
    pub hours: u32,
}

impl RateLimit {
    fn period_ms(self) -> u64 {
        u64::from(self.hours) * 3_600_000
    }

    /// Whether the limit makes sense: at least one event in at least one hour.
    pub fn check(self, name: &str) -> Result<Self, String> {
        if self.count == 0 || self.hours == 0 || self.hours > 24 * 365 {
            return Err(format!(
                "{name}: count must be at least 1 and period_hours 1..=8760"
            ));
        }
        Ok(self)
    }
}

/// The limits the RA enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// newAccount per client IP address.
    pub accounts_per_ip: RateLimit,
    /// newOrder per account.
    pub orders_per_account: RateLimit,
    /// Certificates per registered domain (`policy::suffix`); renewals that name the
    /// certificate they replace (RFC 9773 `replaces`) do not count. Off unless configured:
    /// a private CA often serves one registered domain for a whole organisation.
    pub certificates_per_domain: Option<RateLimit>,
    /// Identifiers one order may carry (each costs an authorization and a validation).
    pub identifiers_per_order: usize,
    /// Orders one account may hold `pending` at once.
    pub pending_orders_per_account: usize,
    /// Authorizations one account may hold `pending` at once.
    pub pending_authorizations_per_account: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            accounts_per_ip: RateLimit {
                count: 50,
                hours: 1,
            },
            orders_per_account: RateLimit {
                count: 1000,
                hours: 1,
            },
            certificates_per_domain: None,
            identifiers_per_order: 50,
            pending_orders_per_account: 300,
            pending_authorizations_per_account: 1000,
        }
    }
}

/// Spends one event of `limit` for `subject` at `now` (Unix seconds), or refuses with
/// `rateLimited` and when to retry.
pub(super) fn spend(
    tx: &mut Tx<'_>,
    name: &str,
    limit: RateLimit,
    subject: &str,
    now: u64,
) -> Result<(), Error> {
    let key = format!("{name}\0{subject}");
    let now_ms = now.saturating_mul(1000);
    let interval = limit.period_ms() / u64::from(limit.count.max(1));
    let tolerance = limit.period_ms().saturating_sub(interval);
    let stored = tx.get::<RateLimitRecord>(&key)?.map_or(0, |r| r.tat_ms);
    let tat = stored.max(now_ms);
    if tat - now_ms > tolerance {
        let wait = (tat - now_ms - tolerance).div_ceil(1000).max(1);
        let mut error = Error::new(
            ErrorKind::RateLimited,
            format!(
                "too many {name} for {subject}: at most {} per {} h; retry in {wait} s",
                limit.count, limit.hours
            ),
        );
        error.retry_after = Some(Duration::from_secs(wait));
        return Err(error);
    }
    tx.put(&RateLimitRecord {
        key,
        tat_ms: tat + interval,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_burst_of_count_then_one_per_interval_and_nothing_lost_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let limit = RateLimit { count: 3, hours: 1 };
        let t0 = 1_800_000_000;
        {
            let store = Store::open(&path).unwrap();
            for _ in 0..3 {
                store
                    .write(|tx| spend(tx, "orders", limit, "acct", t0))
                    .unwrap();
            }
            let refused = store
                .write(|tx| spend(tx, "orders", limit, "acct", t0))
                .unwrap_err();
            assert_eq!(refused.kind, ErrorKind::RateLimited);
            // One event comes back every 20 minutes.
            assert_eq!(refused.retry_after, Some(Duration::from_secs(1200)));
            // Another subject has its own budget.
            store
                .write(|tx| spend(tx, "orders", limit, "other", t0))
                .unwrap();
        }
        // Reopened (a restart): still limited until the interval has passed.
        let store = Store::open(&path).unwrap();
        assert!(
            store
                .write(|tx| spend(tx, "orders", limit, "acct", t0 + 1199))
                .is_err()
        );
        store
            .write(|tx| spend(tx, "orders", limit, "acct", t0 + 1200))
            .unwrap();
        assert!(
            store
                .write(|tx| spend(tx, "orders", limit, "acct", t0 + 1200))
                .is_err()
        );
        // After a quiet period the whole burst is back.
        for _ in 0..3 {
            store
                .write(|tx| spend(tx, "orders", limit, "acct", t0 + 10_000))
                .unwrap();
        }
    }
}
