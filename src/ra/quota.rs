//! Quotas on what one account holds open at once: pending orders and pending
//! authorizations. A rate limit bounds how fast an account makes state; a quota bounds how
//! much unfinished state it keeps (orders never finalized, challenges never answered), each
//! of which costs a record and may cost a validation.
//!
//! Each account has a ledger per quota: the ids of what it opened, with their expiry. Adding
//! is one record read and write in the transaction that opens the item, so two racing
//! requests cannot both take the last place. Expired entries fall out on every use; once the
//! ledger is half full, each entry is checked against its record and finished items (valid,
//! invalid, deactivated) are dropped, so the ledger stays small and the quota exact.

use std::time::Duration;

use super::order::load_view;
use crate::acme::{AuthorizationStatus, OrderStatus};
use crate::error::{Error, ErrorKind};
use crate::store::{AuthzRecord, OpenItem, OrderRecord, QuotaLedger, Tx};

/// Which quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Quota {
    /// Orders not yet finalized: `pending`, or `ready` and waiting for the CSR.
    PendingOrders,
    /// Authorizations still `pending`.
    PendingAuthorizations,
}

impl Quota {
    fn name(self) -> &'static str {
        match self {
            Self::PendingOrders => "pending orders",
            Self::PendingAuthorizations => "pending authorizations",
        }
    }

    /// Whether the item is still open, by its record.
    fn still_open(self, tx: &Tx<'_>, id: &str, now: u64) -> Result<bool, Error> {
        Ok(match self {
            // An order's stored status stays `pending` when an authorization fails or is
            // deactivated; its status is derived from them, as a client sees it.
            Self::PendingOrders => match tx.get::<OrderRecord>(id)? {
                Some(order) => matches!(
                    load_view(tx, order, now)?.status,
                    OrderStatus::Pending | OrderStatus::Ready
                ),
                None => false,
            },
            Self::PendingAuthorizations => tx
                .get::<AuthzRecord>(id)?
                .is_some_and(|a| a.status == AuthorizationStatus::Pending && a.expires > now),
        })
    }
}

/// Records that `account_id` opens `items` (id, expiry), or refuses with `rateLimited` and
/// when the first places free up by expiry, if that would hold more than `limit` open.
pub(super) fn admit(
    tx: &mut Tx<'_>,
    quota: Quota,
    limit: usize,
    account_id: &str,
    items: impl IntoIterator<Item = (String, u64)>,
    now: u64,
) -> Result<(), Error> {
    let items: Vec<OpenItem> = items
        .into_iter()
        .map(|(id, expires)| OpenItem { id, expires })
        .collect();
    if items.is_empty() {
        return Ok(());
    }
    let key = format!("{}\0{account_id}", quota.name());
    let mut ledger = tx.get::<QuotaLedger>(&key)?.unwrap_or(QuotaLedger {
        key,
        open: Vec::new(),
    });
    ledger.open.retain(|item| item.expires > now);
    if ledger.open.len() + items.len() > limit / 2 {
        let mut open = Vec::with_capacity(ledger.open.len());
        for item in std::mem::take(&mut ledger.open) {
            if quota.still_open(tx, &item.id, now)? {
                open.push(item);
            }
        }
        ledger.open = open;
    }
    let total = ledger.open.len() + items.len();
    if total > limit {
        let mut expiries: Vec<u64> = ledger.open.iter().map(|i| i.expires).collect();
        expiries.sort_unstable();
        // The soonest moment enough places free up by expiry alone.
        let freed_at = expiries
            .get((total - limit).saturating_sub(1))
            .copied()
            .unwrap_or(now);
        let wait = freed_at.saturating_sub(now).max(1);
        let mut error = Error::new(
            ErrorKind::RateLimited,
            format!(
                "too many {}: an account may hold {limit} at once and this request would make \
                 {total}; finish or deactivate some, or retry in {wait} s",
                quota.name()
            ),
        );
        error.retry_after = Some(Duration::from_secs(wait));
        return Err(error);
    }
    ledger.open.extend(items);
    tx.put(&ledger)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::Identifier;
    use crate::store::Store;

    fn authz(id: &str, status: AuthorizationStatus, expires: u64) -> AuthzRecord {
        AuthzRecord {
            id: id.into(),
            account_id: "acct".into(),
            identifier: Identifier::dns("q.test"),
            status,
            expires,
            wildcard: false,
            preauthorized: false,
            prevalidated_by: None,
            challenges: vec![],
        }
    }

    fn open(store: &Store, ids: &[&str], expires: u64, now: u64) -> Result<(), Error> {
        let items: Vec<(String, u64)> = ids.iter().map(|id| ((*id).into(), expires)).collect();
        store.write(|tx| {
            for (id, _) in &items {
                tx.put(&authz(id, AuthorizationStatus::Pending, expires))?;
            }
            admit(tx, Quota::PendingAuthorizations, 4, "acct", items, now)
        })
    }

    #[test]
    fn the_quota_counts_open_items_and_frees_finished_and_expired_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        open(&store, &["a", "b", "c"], 1_000, 100).unwrap();
        let refused = open(&store, &["d", "e"], 1_000, 100).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::RateLimited);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(900)));
        assert!(
            refused.detail.contains("would make 5"),
            "{}",
            refused.detail
        );
        // The refused request left nothing: one more still fits.
        open(&store, &["d"], 1_000, 100).unwrap();
        assert!(open(&store, &["e"], 1_000, 100).is_err());

        // A finished authorization frees its place.
        store
            .write(|tx| Ok(tx.put(&authz("a", AuthorizationStatus::Valid, 1_000))?))
            .unwrap();
        open(&store, &["e"], 2_000, 100).unwrap();
        assert!(open(&store, &["f"], 2_000, 100).is_err());

        // Expiry frees the rest.
        open(&store, &["f", "g", "h"], 3_000, 1_000).unwrap();
    }

    #[test]
    fn racing_requests_cannot_both_take_the_last_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        open(&store, &["a", "b", "c"], 1_000, 100).unwrap();
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = ["x", "y", "z"]
                .into_iter()
                .map(|id| {
                    let store = &store;
                    s.spawn(move || open(store, &[id], 1_000, 100))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    }
}
