//! Orders and their derived status (RFC 8555 §7.1.3, §7.1.6, §7.4).

use super::quota::{self, Quota};
use super::{Ra, eab, limits, owned};
use crate::acme::problem::ProblemType;
use crate::acme::{
    AccountStatus, AuthorizationStatus, ChallengeStatus, Identifier, NewOrderRequest, OrderStatus,
    Problem,
};
use crate::clock::parse_rfc3339;
use crate::error::{Error, ErrorKind};
use crate::store::{AccountRecord, AuthzRecord, ChallengeRecord, OrderRecord, StoreReader, Tx};

/// An order as clients see it: the record plus its status derived from its authorizations.
#[derive(Debug, Clone)]
pub struct OrderView {
    /// The stored order.
    pub order: OrderRecord,
    /// Status at the time of reading.
    pub status: OrderStatus,
    /// Why it is invalid.
    pub error: Option<Problem>,
}

/// The status of an authorization at `now`: pending and valid ones expire.
pub(crate) fn authz_status(authz: &AuthzRecord, now: u64) -> AuthorizationStatus {
    match authz.status {
        AuthorizationStatus::Pending | AuthorizationStatus::Valid if now >= authz.expires => {
            AuthorizationStatus::Expired
        }
        other => other,
    }
}

/// RFC 8555 §7.1.6: an order is invalid once it expires or one of its authorizations
/// fails, ready once all are valid, pending before; later states are stored.
pub(crate) fn derive(order: OrderRecord, authzs: &[AuthzRecord], now: u64) -> OrderView {
    let (status, error) = match order.status {
        OrderStatus::Pending | OrderStatus::Ready => {
            let failed = authzs.iter().find(|a| {
                authz_status(a, now) != AuthorizationStatus::Valid
                    && authz_status(a, now) != AuthorizationStatus::Pending
            });
            if now >= order.expires {
                (
                    OrderStatus::Invalid,
                    Some(Problem::new(ProblemType::Malformed, "the order expired")),
                )
            } else if let Some(failed) = failed {
                let cause = failed
                    .challenges
                    .iter()
                    .find_map(|c| c.error.clone())
                    .unwrap_or_else(|| {
                        Problem::new(
                            ProblemType::Unauthorized,
                            format!(
                                "authorization for {} is {}",
                                failed.identifier.value,
                                authz_status(failed, now)
                            ),
                        )
                    });
                (OrderStatus::Invalid, Some(cause))
            } else if authzs
                .iter()
                .all(|a| authz_status(a, now) == AuthorizationStatus::Valid)
            {
                (OrderStatus::Ready, None)
            } else {
                (OrderStatus::Pending, None)
            }
        }
        stored => (stored, order.error.clone()),
    };
    OrderView {
        order,
        status,
        error,
    }
}

pub(crate) fn load_view(
    tx_or_reader: &dyn AuthzSource,
    order: OrderRecord,
    now: u64,
) -> Result<OrderView, Error> {
    // Final orders keep their stored status: their authorizations are not needed (and may
    // have been pruned long after).
    if !matches!(order.status, OrderStatus::Pending | OrderStatus::Ready) {
        return Ok(derive(order, &[], now));
    }
    let mut authzs = Vec::with_capacity(order.authz_ids.len());
    for id in &order.authz_ids {
        authzs.push(tx_or_reader.authz(id)?);
    }
    Ok(derive(order, &authzs, now))
}

/// Reads authorizations inside or outside a transaction.
pub(crate) trait AuthzSource {
    fn authz(&self, id: &str) -> Result<AuthzRecord, Error>;
}

impl AuthzSource for Tx<'_> {
    fn authz(&self, id: &str) -> Result<AuthzRecord, Error> {
        self.require(id)
    }
}

impl AuthzSource for StoreReader {
    fn authz(&self, id: &str) -> Result<AuthzRecord, Error> {
        self.get(id)?
            .ok_or_else(|| Error::internal(format!("order refers to missing authorization {id}")))
    }
}

/// RFC 8555 §7.1.2.1: the orders list SHOULD include pending orders and SHOULD NOT include
/// invalid ones; valid orders stay listed, as their certificates do.
fn listed(order: &OrderRecord, now: u64) -> bool {
    match order.status {
        OrderStatus::Valid | OrderStatus::Processing => true,
        OrderStatus::Invalid => false,
        OrderStatus::Pending | OrderStatus::Ready => order.expires > now,
    }
}

/// Makes `authz` valid without a challenge: the operator pre-validated its name for the
/// EAB key `kid`, and the authorization records that.
pub(crate) fn prevalidate(authz: &mut AuthzRecord, kid: &str) {
    authz.status = AuthorizationStatus::Valid;
    authz.challenges.clear();
    authz.prevalidated_by = Some(kid.to_owned());
}

/// How long an authorization must still be valid to be reused for a new order.
const REUSE_MARGIN: u64 = 86_400;

/// A valid authorization of the account for `identifier` that a new order may use instead
/// of a new one: a pre-authorization (RFC 8555 §7.4.1, that is its purpose) or, when
/// `reuse` is not zero, one validated within the last `reuse` seconds.
fn reusable_authz(
    tx: &Tx<'_>,
    account_id: &str,
    identifier: &Identifier,
    wildcard: bool,
    now: u64,
    reuse: u64,
) -> Result<Option<AuthzRecord>, Error> {
    for id in tx.authzs_for(account_id, identifier, wildcard)? {
        let Some(authz) = tx.get::<AuthzRecord>(&id)? else {
            continue;
        };
        let fresh_enough = authz.preauthorized
            || (reuse > 0
                && authz
                    .challenges
                    .iter()
                    .filter_map(|c| c.validated)
                    .any(|at| at + reuse > now));
        if fresh_enough
            && authz.status == AuthorizationStatus::Valid
            && authz.expires > now + REUSE_MARGIN
        {
            return Ok(Some(authz));
        }
    }
    Ok(None)
}

impl Ra {
    /// newOrder (RFC 8555 §7.4): one authorization per identifier, new or reused.
    pub async fn new_order(
        &self,
        account: &AccountRecord,
        request: NewOrderRequest,
    ) -> Result<OrderView, Error> {
        self.may_work(account)?;
        let identifiers = self.inner.policy.check_identifiers(&request.identifiers)?;
        let binding = self.binding_of(account).await?;
        if let Some(binding) = &binding {
            eab::check_allowed(binding, &identifiers)?;
        }
        let parse = |field: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    parse_rfc3339(v).ok_or_else(|| {
                        Error::malformed(format!("{field} {v:?} is not an RFC 3339 time"))
                    })
                })
                .transpose()
        };
        let not_before = parse("notBefore", &request.not_before)?;
        let not_after = parse("notAfter", &request.not_after)?;
        let now = self.now();
        let profile = self.certificate_profile(request.profile.as_deref())?;
        self.inner.policy.check_validity_within(
            not_before,
            not_after,
            now,
            profile.validity.as_secs(),
            profile.max_validity.as_secs(),
        )?;
        let profile_name = self
            .inner
            .settings
            .advertise_profiles
            .then(|| profile.name.clone());

        let mut authzs = Vec::with_capacity(identifiers.len());
        for identifier in &identifiers {
            // RFC 8555 §7.1.3: a wildcard's authorization is for its base name.
            let (authz_identifier, wildcard) = match identifier.wildcard_base() {
                Some(base) => (Identifier::dns(base), true),
                None => (identifier.clone(), false),
            };
            let mut authz = self.new_authz_record(account, authz_identifier, wildcard, now)?;
            if let Some(binding) = binding
                .as_ref()
                .filter(|b| eab::prevalidates(b, identifier))
            {
                prevalidate(&mut authz, &binding.kid);
            }
            authzs.push(authz);
        }
        let mut order = OrderRecord {
            id: self.random(16)?,
            account_id: account.id.clone(),
            status: OrderStatus::Pending,
            identifiers,
            authz_ids: Vec::new(),
            not_before,
            not_after,
            expires: now + self.inner.settings.order_lifetime.as_secs(),
            created: now,
            error: None,
            certificate: None,
            replaces: request.replaces.clone(),
            profile: profile_name,
        };
        let reuse = self.inner.settings.authz_reuse.as_secs();
        let limits = self.inner.settings.limits;
        let ra = self.clone();
        self.write(move |tx| {
            // The account may have been deactivated since its request was verified.
            let owner = tx.require::<AccountRecord>(&order.account_id)?;
            if owner.status != AccountStatus::Valid {
                return Err(Error::new(
                    ErrorKind::AccountNotValid,
                    format!("account is {}", owner.status),
                ));
            }
            limits::spend(tx, "new orders", limits.orders_per_account, &owner.id, now)?;
            if let Some(cert_id) = &order.replaces {
                ra.mark_replaced(tx, &order, cert_id)?;
            }
            let mut used = Vec::with_capacity(authzs.len());
            let mut opened = Vec::new();
            for fresh in authzs {
                let reusable = if fresh.prevalidated_by.is_some() {
                    None
                } else {
                    reusable_authz(
                        tx,
                        &order.account_id,
                        &fresh.identifier,
                        fresh.wildcard,
                        now,
                        reuse,
                    )?
                };
                match reusable {
                    Some(existing) => used.push(existing),
                    None => {
                        tx.put(&fresh)?;
                        tx.link_authz(&fresh)?;
                        if fresh.status == AuthorizationStatus::Pending {
                            opened.push((fresh.id.clone(), fresh.expires));
                        }
                        used.push(fresh);
                    }
                }
            }
            order.authz_ids = used.iter().map(|a| a.id.clone()).collect();
            // An order cannot outlive its authorizations.
            if let Some(first) = used.iter().map(|a| a.expires).min() {
                order.expires = order.expires.min(first);
            }
            quota::admit(
                tx,
                Quota::PendingAuthorizations,
                limits.pending_authorizations_per_account,
                &owner.id,
                opened,
                now,
            )?;
            quota::admit(
                tx,
                Quota::PendingOrders,
                limits.pending_orders_per_account,
                &owner.id,
                [(order.id.clone(), order.expires)],
                now,
            )?;
            tx.put(&order)?;
            tx.link_order(&order.account_id, &order.id)?;
            Ok(derive(order, &used, now))
        })
        .await
    }

    /// A new pending authorization with the challenges policy offers for `identifier`.
    pub(crate) fn new_authz_record(
        &self,
        account: &AccountRecord,
        identifier: Identifier,
        wildcard: bool,
        now: u64,
    ) -> Result<AuthzRecord, Error> {
        let mut challenges = Vec::new();
        for kind in self.inner.policy.challenges_for(&identifier, wildcard) {
            challenges.push(ChallengeRecord {
                kind: kind.to_owned(),
                // RFC 8555 §8.1: at least 128 bits of entropy.
                token: self.random(32)?,
                status: ChallengeStatus::Pending,
                validated: None,
                error: None,
            });
        }
        Ok(AuthzRecord {
            id: self.random(16)?,
            account_id: account.id.clone(),
            identifier,
            status: AuthorizationStatus::Pending,
            expires: now + self.inner.settings.authz_lifetime.as_secs(),
            wildcard,
            preauthorized: false,
            prevalidated_by: None,
            challenges,
        })
    }

    /// The EAB key that bound `account`, if any; refuses accounts whose key was revoked.
    pub(crate) async fn binding_of(
        &self,
        account: &AccountRecord,
    ) -> Result<Option<crate::store::EabKeyRecord>, Error> {
        if account.eab_kid.is_none() {
            return Ok(None);
        }
        let account = account.clone();
        self.read(move |r| eab::binding_of(r, &account)).await
    }

    /// POST-as-GET on an order.
    pub async fn order(&self, account: &AccountRecord, id: &str) -> Result<OrderView, Error> {
        let now = self.now();
        let id = id.to_owned();
        let account = account.clone();
        self.read(move |r| {
            let order: OrderRecord = r
                .get(&id)?
                .ok_or_else(|| Error::not_found("no such order"))?;
            owned(&account, &order.account_id)?;
            load_view(r, order, now)
        })
        .await
    }

    /// Page `page` of the account's orders (RFC 8555 §7.1.2.1): those still in progress and
    /// the valid ones among the `size` orders of that page, and the next page's number. Only
    /// the page's own orders are read, so a long history costs nothing; a page may list
    /// fewer than `size` (RFC 8555 allows it).
    pub async fn orders_page(
        &self,
        account: &AccountRecord,
        page: usize,
        size: usize,
    ) -> Result<(Vec<String>, Option<usize>), Error> {
        let id = account.id.clone();
        let now = self.now();
        self.read(move |r| {
            let ids = r.orders_of(&id)?;
            let (window, next) = paginate(&ids, page, size);
            let mut out = Vec::with_capacity(window.len());
            for order_id in window {
                if let Some(order) = r.get::<OrderRecord>(order_id)?
                    && listed(&order, now)
                {
                    out.push(order_id.clone());
                }
            }
            Ok((out, next))
        })
        .await
    }
}

/// Page `page` of `items`, `size` per page, and the next page's number if there is one.
fn paginate<T>(items: &[T], page: usize, size: usize) -> (&[T], Option<usize>) {
    let start = page.saturating_mul(size).min(items.len());
    let end = start.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| page.saturating_add(1));
    (&items[start..end], next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::Identifier;

    fn authz(status: AuthorizationStatus, expires: u64) -> AuthzRecord {
        AuthzRecord {
            id: "z".into(),
            account_id: "a".into(),
            identifier: Identifier::dns("a.test"),
            status,
            expires,
            wildcard: false,
            preauthorized: false,
            prevalidated_by: None,
            challenges: vec![],
        }
    }

    fn order(status: OrderStatus, expires: u64) -> OrderRecord {
        OrderRecord {
            id: "o".into(),
            account_id: "a".into(),
            status,
            identifiers: vec![Identifier::dns("a.test")],
            authz_ids: vec!["z".into()],
            not_before: None,
            not_after: None,
            expires,
            created: 0,
            error: None,
            certificate: None,
            replaces: None,
            profile: None,
        }
    }

    #[test]
    fn status_follows_the_authorizations() {
        use AuthorizationStatus as A;
        let now = 100;
        let cases = [
            (vec![authz(A::Pending, 200)], OrderStatus::Pending),
            (
                vec![authz(A::Valid, 200), authz(A::Pending, 200)],
                OrderStatus::Pending,
            ),
            (
                vec![authz(A::Valid, 200), authz(A::Valid, 200)],
                OrderStatus::Ready,
            ),
            (
                vec![authz(A::Valid, 200), authz(A::Invalid, 200)],
                OrderStatus::Invalid,
            ),
            (vec![authz(A::Deactivated, 200)], OrderStatus::Invalid),
            (vec![authz(A::Valid, 50)], OrderStatus::Invalid),
        ];
        for (authzs, expected) in cases {
            let view = derive(order(OrderStatus::Pending, 300), &authzs, now);
            assert_eq!(view.status, expected, "{authzs:?}");
            assert_eq!(view.error.is_some(), expected == OrderStatus::Invalid);
        }
    }

    #[test]
    fn expiry_and_stored_states_win() {
        let valid = vec![authz(AuthorizationStatus::Valid, 1000)];
        assert_eq!(
            derive(order(OrderStatus::Pending, 50), &valid, 100).status,
            OrderStatus::Invalid
        );
        assert_eq!(
            derive(order(OrderStatus::Processing, 50), &valid, 100).status,
            OrderStatus::Processing
        );
        assert_eq!(
            derive(order(OrderStatus::Valid, 50), &valid, 100).status,
            OrderStatus::Valid
        );
    }

    #[test]
    fn the_orders_list_leaves_out_invalid_and_expired_orders() {
        assert!(listed(&order(OrderStatus::Pending, 200), 100));
        assert!(!listed(&order(OrderStatus::Pending, 50), 100));
        assert!(listed(&order(OrderStatus::Processing, 50), 100));
        assert!(listed(&order(OrderStatus::Valid, 50), 100));
        assert!(!listed(&order(OrderStatus::Invalid, 200), 100));
    }

    #[test]
    fn a_failed_challenge_explains_the_invalid_order() {
        let mut failed = authz(AuthorizationStatus::Invalid, 200);
        failed.challenges.push(ChallengeRecord {
            kind: "http-01".into(),
            token: "t".into(),
            status: ChallengeStatus::Invalid,
            validated: None,
            error: Some(Problem::new(ProblemType::Connection, "refused")),
        });
        let view = derive(order(OrderStatus::Pending, 300), &[failed], 100);
        assert_eq!(view.error.unwrap().detail, "refused");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_account_deactivated_since_its_request_was_verified_cannot_order() {
        let t = super::super::testing::TestRa::new();
        t.store
            .write(|tx| super::super::deactivate_account_in(tx, "acct"))
            .unwrap();
        // `t.account` is the snapshot the request was verified with: still valid.
        let refused =
            t.ra.new_order(
                &t.account,
                NewOrderRequest {
                    identifiers: vec![Identifier::dns("late.test")],
                    not_before: None,
                    not_after: None,
                    replaces: None,
                    profile: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(refused.kind, ErrorKind::AccountNotValid);
        assert!(t.store.reader().orders_of("acct").unwrap().is_empty());
    }
    #[test]
    fn orders_are_paged_with_a_next_link_until_the_last_page() {
        let ids: Vec<u32> = (0..250).collect();
        let (first, next) = paginate(&ids, 0, 100);
        assert_eq!((first.len(), first[0], next), (100, 0, Some(1)));
        let (second, next) = paginate(&ids, 1, 100);
        assert_eq!((second[0], next), (100, Some(2)));
        let (last, next) = paginate(&ids, 2, 100);
        assert_eq!((last.len(), next), (50, None));
        assert!(paginate(&ids, 9, 100).0.is_empty());
        assert_eq!(paginate(&ids[..100], 0, 100).1, None);
        assert!(paginate(&ids, usize::MAX, 100).0.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_lists_the_valid_and_pending_orders_among_its_own() {
        let t = super::super::testing::TestRa::new();
        let mut ids = Vec::new();
        for n in 0..3 {
            let authz = t.order(&format!("p{n}.test")).await;
            ids.push(authz.id);
        }
        // The oldest-keyed order fails: its page lists one fewer, the paging goes on.
        let orders = t.store.reader().orders_of("acct").unwrap();
        let first = orders[0].clone();
        t.store
            .write(move |tx| {
                let mut order = tx.require::<OrderRecord>(&first)?;
                order.status = OrderStatus::Invalid;
                tx.put(&order)?;
                Ok(())
            })
            .unwrap();
        let (page0, next) = t.ra.orders_page(&t.account, 0, 2).await.unwrap();
        assert_eq!(page0, [orders[1].clone()]);
        assert_eq!(next, Some(1));
        let (page1, next) = t.ra.orders_page(&t.account, 1, 2).await.unwrap();
        assert_eq!(page1, [orders[2].clone()]);
        assert_eq!(next, None);
    }
}
