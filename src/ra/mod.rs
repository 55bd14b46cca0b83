//! Registration authority: the ACME rules and state machines (RFC 8555 §7).
//!
//! The RA decides; `policy` says what is allowed, `va` validates, `ca` signs, `store`
//! remembers. Every state change is one short store transaction that re-reads the record
//! and checks its status first (compare-and-set), so concurrent requests cannot both win.
//! Store and token calls block and run on blocking threads.

mod account;
mod authz;
pub mod eab;
mod finalize;
pub mod limits;
mod order;
pub mod prune;
mod quota;
mod recover;
mod renewal;
mod revoke;
pub mod terms;
#[cfg(test)]
mod testing;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

pub use account::{KeyChangeOutcome, deactivate_account_in};
pub use order::OrderView;
pub use renewal::RenewalWindow;
pub use revoke::{Revoker, check_reason, revoke_in};

use crate::ca::issuer::Issuer;
use crate::clock::Clock;
use crate::error::{Error, ErrorKind};
use crate::hsm::{HsmRunner, Sealer};
use crate::policy::Policy;
use crate::policy::certificate::CertificateProfile;
use crate::policy::suffix::SuffixList;
use crate::store::{AccountRecord, Store, StoreReader};
use crate::va::Validator;

/// Tunables of the RA.
#[derive(Debug, Clone)]
pub struct RaSettings {
    /// How long a new order stays usable.
    pub order_lifetime: Duration,
    /// How long a pending authorization stays usable.
    pub authz_lifetime: Duration,
    /// Account URLs are this prefix and the account id (for CAA `accounturi`).
    pub account_url_prefix: String,
    /// CAA is checked again at finalize for authorizations validated longer ago than this
    /// (reused authorizations; CA/B Forum BR §3.2.2.8 allows 8 hours).
    pub caa_recheck_age: Duration,
    /// Whether newAuthz (RFC 8555 §7.4.1 pre-authorization) is offered.
    pub pre_authorization: bool,
    /// How long a valid authorization is reused for new orders of the same account
    /// (zero: never; every order is validated afresh).
    pub authz_reuse: Duration,
    /// How long a challenge or finalize request waits for its result before answering
    /// `processing`: clients that would otherwise poll (lego waits 5 s) get the final state.
    pub sync_wait: Duration,
    /// The ACME profile this RA serves; accounts and EAB keys belong to one.
    pub profile: String,
    /// Whether newAccount needs an external account binding (RFC 8555 §7.3.4).
    pub eab_required: bool,
    /// The newAccount URL, which an external account binding must name.
    pub new_account_url: String,
    /// Rate limits.
    pub limits: limits::RateLimits,
    /// Registered domains, for the certificates-per-domain limit.
    pub suffixes: Arc<SuffixList>,
    /// Certificate profiles offered; the first is used when an order names none.
    pub certificate_profiles: Vec<CertificateProfile>,
    /// Whether the directory lists them and orders carry their profile
    /// (draft-ietf-acme-profiles): the endpoint configured them.
    pub advertise_profiles: bool,
    /// A new certificate revokes the account's earlier ones for the same identifiers
    /// (reason superseded), as EJBCA's "single active certificate" does.
    pub single_active_certificate: bool,
    /// Versioned terms of service (RFC 8555 §7.3.3), if the endpoint versions them.
    pub terms: Option<terms::TermsOfService>,
    /// New accounts wait for operator approval, at most this long (EJBCA's approvals).
    pub account_approval: Option<Duration>,
    /// After a key rollover, the account waits for operator approval again, at most this
    /// long, before it may order with the new key.
    pub key_rollover_approval: Option<Duration>,
}

impl Default for RaSettings {
    fn default() -> Self {
        Self {
            order_lifetime: Duration::from_secs(7 * 86_400),
            authz_lifetime: Duration::from_secs(7 * 86_400),
            sync_wait: Duration::from_secs(2),
            account_url_prefix: String::new(),
            caa_recheck_age: Duration::from_secs(8 * 3600),
            pre_authorization: true,
            authz_reuse: Duration::ZERO,
            profile: "default".into(),
            eab_required: false,
            new_account_url: String::new(),
            limits: limits::RateLimits::default(),
            suffixes: Arc::new(SuffixList::default()),
            certificate_profiles: vec![CertificateProfile::built_in(
                Duration::from_secs(90 * 86_400),
                false,
            )],
            advertise_profiles: false,
            single_active_certificate: false,
            terms: None,
            account_approval: None,
            key_rollover_approval: None,
        }
    }
}

/// The registration authority. Cheap to clone.
#[derive(Clone)]
pub struct Ra {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    reader: StoreReader,
    policy: Policy,
    validator: Arc<dyn Validator>,
    issuer: Arc<Issuer>,
    runner: HsmRunner,
    clock: Arc<dyn Clock>,
    settings: RaSettings,
    revocations: tokio::sync::mpsc::UnboundedSender<String>,
    sealer: Option<Arc<dyn Sealer>>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Ra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ra").finish_non_exhaustive()
    }
}

/// Everything the RA works with.
pub struct RaParts {
    /// The state store.
    pub store: Store,
    /// Identifier and validity policy.
    pub policy: Policy,
    /// Challenge validation.
    pub validator: Arc<dyn Validator>,
    /// The issuing CA.
    pub issuer: Arc<Issuer>,
    /// Bounds concurrent token work.
    pub runner: HsmRunner,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub settings: RaSettings,
    /// Told the issuing CA of every revocation, so that CA's CRL is published again.
    pub revocations: tokio::sync::mpsc::UnboundedSender<String>,
    /// Unseals HMAC EAB keys; `None` without a `[sealing]` key (public-key EAB only).
    pub sealer: Option<Arc<dyn Sealer>>,
}

impl Ra {
    /// An RA over `parts`.
    pub fn new(parts: RaParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                reader: parts.store.reader(),
                store: parts.store,
                policy: parts.policy,
                validator: parts.validator,
                issuer: parts.issuer,
                runner: parts.runner,
                clock: parts.clock,
                settings: parts.settings,
                revocations: parts.revocations,
                sealer: parts.sealer,
                rng: SystemRandom::new(),
            }),
        }
    }

    /// Read access for the front end.
    pub fn reader(&self) -> &StoreReader {
        &self.inner.reader
    }

    /// The ACME endpoint this RA serves; its accounts carry the name.
    pub fn endpoint(&self) -> &str {
        &self.inner.settings.profile
    }

    /// Whether `account` may order, validate and finalize now: it agreed to the current
    /// terms, and it is not waiting for the operator's approval.
    pub(crate) fn may_work(&self, account: &AccountRecord) -> Result<(), Error> {
        self.check_terms(account)?;
        match account.approval_expires {
            None => Ok(()),
            Some(expires) if expires <= self.now() => Err(Error::unauthorized(format!(
                "account {} was not approved in time; ask the CA's operator to approve it \
                 (hsm-acme account approve {})",
                account.id, account.id
            ))),
            Some(_) => Err(Error::unauthorized(format!(
                "account {} awaits approval by the CA's operator (hsm-acme account approve {}); \
                 retry once it is approved",
                account.id, account.id
            ))),
        }
    }

    /// The certificate profiles the directory lists, name → description (none when the
    /// endpoint issues with the built-in profile alone).
    pub fn offered_profiles(&self) -> std::collections::BTreeMap<String, String> {
        let settings = &self.inner.settings;
        if !settings.advertise_profiles {
            return std::collections::BTreeMap::new();
        }
        settings
            .certificate_profiles
            .iter()
            .map(|p| (p.name.clone(), p.description.clone()))
            .collect()
    }

    /// The certificate profile called `name`, or the endpoint's first for `None`.
    pub(crate) fn certificate_profile(
        &self,
        name: Option<&str>,
    ) -> Result<&CertificateProfile, Error> {
        let profiles = &self.inner.settings.certificate_profiles;
        let found = match name {
            None => profiles.first(),
            Some(name) => profiles.iter().find(|p| p.name == name),
        };
        found.ok_or_else(|| {
            let offered: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
            Error::new(
                ErrorKind::InvalidProfile,
                format!(
                    "this endpoint has no certificate profile {:?}; it offers {}",
                    name.unwrap_or_default(),
                    offered.join(", ")
                ),
            )
        })
    }

    /// Whether newAccount needs an external account binding (for the directory).
    pub fn requires_eab(&self) -> bool {
        self.inner.settings.eab_required
    }

    /// Whether newAuthz is offered (for the directory).
    pub fn offers_pre_authorization(&self) -> bool {
        self.inner.settings.pre_authorization
    }

    /// The issuing CA.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// What the VA needs to validate `kind` of `authz` for `account`.
    fn validation_request(
        &self,
        authz: &crate::store::AuthzRecord,
        kind: &str,
        token: &str,
        account: &AccountRecord,
    ) -> crate::va::ValidationRequest {
        crate::va::ValidationRequest {
            identifier: authz.identifier.clone(),
            challenge: kind.to_owned(),
            token: token.to_owned(),
            key_authorization: format!("{token}.{}", account.thumbprint),
            wildcard: authz.wildcard,
            account_uri: format!("{}{}", self.inner.settings.account_url_prefix, account.id),
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// A random base64url value of `bytes` bytes (ids: 16, tokens: 32).
    fn random(&self, bytes: usize) -> Result<String, Error> {
        let mut buf = vec![0u8; bytes];
        self.inner
            .rng
            .fill(&mut buf)
            .map_err(|_| Error::internal("the system RNG failed"))?;
        Ok(URL_SAFE_NO_PAD.encode(buf))
    }

    /// Runs a store transaction on a blocking thread.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut crate::store::Tx<'_>) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.write(f))
            .await
            .map_err(|e| Error::internal(format!("store task: {e}")))?
    }

    /// Runs store reads on a blocking thread.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&StoreReader) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let reader = self.inner.reader.clone();
        tokio::task::spawn_blocking(move || f(&reader))
            .await
            .map_err(|e| Error::internal(format!("store task: {e}")))?
    }
}

/// Refuses access to another account's resource (RFC 8555 §7.5: the server checks that the
/// requester owns it).
fn owned(account: &AccountRecord, owner: &str) -> Result<(), Error> {
    if account.id == owner {
        Ok(())
    } else {
        Err(Error::unauthorized(
            "this resource belongs to another account",
        ))
    }
}

/// Every authorization of an account: those listed under it and those of its orders
/// (records written before the account index existed are found through their orders).
fn account_authz_ids(
    tx: &crate::store::Tx<'_>,
    account_id: &str,
) -> Result<std::collections::BTreeSet<String>, Error> {
    let mut ids: std::collections::BTreeSet<String> =
        tx.authzs_of(account_id)?.into_iter().collect();
    for order_id in tx.orders_of(account_id)? {
        if let Some(order) = tx.get::<crate::store::OrderRecord>(&order_id)? {
            ids.extend(order.authz_ids);
        }
    }
    Ok(ids)
}
