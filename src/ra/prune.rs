//! Clean-up: orders and authorizations long past their expiry are removed in the
//! background, a few hundred per transaction, so the state file does not grow without end
//! and no lookup walks dead records. Valid orders and their certificates stay.

use super::Ra;
use crate::acme::OrderStatus;
use crate::error::Error;
use crate::store::{AuthzRecord, OrderRecord};

/// How long past its expiry a record is kept, for clients and operators who look back.
pub const RETENTION_SECS: u64 = 30 * 86_400;
/// Records examined per transaction.
const BATCH: usize = 256;

/// Whether `order` may go at `now`: it never led to a certificate and expired long ago.
fn prunable_order(order: &OrderRecord, now: u64) -> bool {
    !matches!(order.status, OrderStatus::Valid | OrderStatus::Processing)
        && order.expires.saturating_add(RETENTION_SECS) < now
}

/// Whether `authz` may go at `now`. Orders that still need it expire no later than it
/// does (an order never outlives its authorizations), so they go in the same pass; valid
/// orders keep their status without it.
fn prunable_authz(authz: &AuthzRecord, now: u64) -> bool {
    authz.expires.saturating_add(RETENTION_SECS) < now
}

impl Ra {
    /// One pass over orders and authorizations; how many of each were removed.
    pub async fn prune(&self) -> Result<(usize, usize), Error> {
        let now = self.now();
        let mut totals = (0, 0);
        let mut cursor = String::new();
        loop {
            let after = std::mem::take(&mut cursor);
            let (removed, last) = self
                .write(move |tx| {
                    let page = tx.page::<OrderRecord>(&after, BATCH)?;
                    let mut removed = 0;
                    for order in page.iter().filter(|o| prunable_order(o, now)) {
                        tx.remove_order(order)?;
                        removed += 1;
                    }
                    let last = (page.len() == BATCH).then(|| page.last().map(|o| o.id.clone()));
                    Ok((removed, last.flatten()))
                })
                .await?;
            totals.0 += removed;
            match last {
                Some(id) => cursor = id,
                None => break,
            }
        }
        loop {
            let after = std::mem::take(&mut cursor);
            let (removed, last) = self
                .write(move |tx| {
                    let page = tx.page::<AuthzRecord>(&after, BATCH)?;
                    let mut removed = 0;
                    for authz in page.iter().filter(|a| prunable_authz(a, now)) {
                        tx.remove_authz(authz)?;
                        removed += 1;
                    }
                    let last = (page.len() == BATCH).then(|| page.last().map(|a| a.id.clone()));
                    Ok((removed, last.flatten()))
                })
                .await?;
            totals.1 += removed;
            match last {
                Some(id) => cursor = id,
                None => break,
            }
        }
        Ok(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestRa;
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_expired_orders_and_authorizations_go_and_valid_orders_stay() {
        let t = TestRa::new();
        let stale = t.order("stale.test").await;
        let kept = t.order("kept.test").await;
        // `kept` ends valid: its order is final and keeps its status without the authz.
        let kept_order = t.store.reader().orders_of("acct").unwrap();
        let kept_authz = kept.id.clone();
        let valid_order = t
            .store
            .write(move |tx| {
                for id in &kept_order {
                    let mut order = tx.require::<OrderRecord>(id)?;
                    if order.authz_ids == [kept_authz.clone()] {
                        order.status = OrderStatus::Valid;
                        tx.put(&order)?;
                        return Ok(order.id);
                    }
                }
                Err(Error::internal("no order"))
            })
            .unwrap();
        assert_eq!(t.ra.prune().await.unwrap(), (0, 0), "nothing is old yet");

        t.clock.advance(7 * 86_400 + RETENTION_SECS + 1);
        assert_eq!(t.ra.prune().await.unwrap(), (1, 2));
        let reader = t.store.reader();
        assert!(reader.get::<AuthzRecord>(&stale.id).unwrap().is_none());
        assert_eq!(
            reader.orders_of("acct").unwrap(),
            std::slice::from_ref(&valid_order)
        );
        let view = t.ra.order(&t.account, &valid_order).await.unwrap();
        assert_eq!(view.status, OrderStatus::Valid);
        // Gone from the indexes too: nothing finds them any more.
        let found = t.store.write(|tx| Ok(tx.authzs_of("acct")?)).unwrap();
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(t.ra.prune().await.unwrap(), (0, 0));
    }
}
