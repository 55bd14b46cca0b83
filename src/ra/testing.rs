//! An RA over an in-memory-sized redb file, a software issuer and a gated, scripted
//! validator, for unit tests of the ACME state machines (DESIGN.md: pure rules may use the
//! test signer; anything that claims HSM behaviour runs on SoftHSM).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use super::{Ra, RaParts, RaSettings};
use crate::acme::{AccountStatus, Identifier, NewOrderRequest};
use crate::ca::distribution::Distribution;
use crate::ca::hierarchy::root_certificate;
use crate::ca::issuer::{Issuer, IssuerSettings};
use crate::ca::test_signer::SoftSigner;
use crate::clock::SettableClock;
use crate::hsm::HsmRunner;
use crate::policy::Policy;
use crate::store::{AccountRecord, AuthzRecord, Store};
use crate::va::{ValidationFailure, ValidationFuture, ValidationRequest, Validator};

/// Validations wait until the test releases them; each challenge type has a scripted
/// outcome (success unless told otherwise).
pub(crate) struct GatedValidator {
    gate: Semaphore,
    failing: Mutex<HashMap<String, String>>,
    started: AtomicUsize,
}

impl Default for GatedValidator {
    fn default() -> Self {
        Self {
            gate: Semaphore::new(0),
            failing: Mutex::default(),
            started: AtomicUsize::new(0),
        }
    }
}

impl GatedValidator {
    /// Lets `n` waiting (or future) validations finish.
    pub(crate) fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// Makes validations of `kind` fail.
    pub(crate) fn fail(&self, kind: &str) {
        self.failing
            .lock()
            .unwrap()
            .insert(kind.to_owned(), format!("{kind} said no"));
    }

    /// How many validations have started.
    pub(crate) fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }
}

impl Validator for GatedValidator {
    fn validate<'a>(&'a self, request: &'a ValidationRequest) -> ValidationFuture<'a> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.expect("gate open").forget();
            match self.failing.lock().unwrap().get(&request.challenge) {
                Some(why) => Err(ValidationFailure::IncorrectResponse(why.clone())),
                None => Ok(()),
            }
        })
    }

    fn check_caa<'a>(&'a self, _: &'a ValidationRequest) -> ValidationFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// An RA with one valid account.
pub(crate) struct TestRa {
    pub ra: Ra,
    pub store: Store,
    pub validator: Arc<GatedValidator>,
    pub account: AccountRecord,
    pub clock: Arc<SettableClock>,
    _dir: tempfile::TempDir,
}

impl TestRa {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.redb")).unwrap();
        let signer = Arc::new(SoftSigner::new());
        let name = "CN=Unit Issuing".parse().unwrap();
        let cert = root_certificate(&name, Duration::from_secs(86_400), signer.as_ref()).unwrap();
        let settings = IssuerSettings {
            client_auth: false,
            distribution: Distribution::default(),
        };
        let issuer = Issuer::new("unit".into(), signer, cert, &[], settings).unwrap();
        let validator = Arc::new(GatedValidator::default());
        let (revocations, _) = tokio::sync::mpsc::unbounded_channel();
        let clock = Arc::new(SettableClock::new(1_800_000_000));
        let ra = Ra::new(RaParts {
            store: store.clone(),
            policy: Policy::default(),
            validator: Arc::clone(&validator) as Arc<dyn Validator>,
            issuer: Arc::new(issuer),
            runner: HsmRunner::new(2),
            clock: Arc::clone(&clock) as Arc<dyn crate::clock::Clock>,
            settings: RaSettings {
                sync_wait: Duration::ZERO,
                account_url_prefix: "https://ca.test/acme/acct/".into(),
                ..RaSettings::default()
            },
            revocations,
            sealer: None,
        });
        let account = AccountRecord {
            id: "acct".into(),
            status: AccountStatus::Valid,
            contact: vec![],
            tos_agreed: Some(true),
            tos_version: None,
            approval_expires: None,
            jwk: json!({"kty": "EC"}),
            thumbprint: "thumb".into(),
            created: 0,
            eab_kid: None,
            profile: "default".into(),
        };
        let stored = account.clone();
        store
            .write(move |tx| {
                tx.put(&stored)?;
                tx.set_account_key("thumb", "acct")?;
                Ok(())
            })
            .unwrap();
        Self {
            ra,
            store,
            validator,
            account,
            clock,
            _dir: dir,
        }
    }

    /// A new order for one name; returns its authorization.
    pub(crate) async fn order(&self, name: &str) -> AuthzRecord {
        let view = self
            .ra
            .new_order(
                &self.account,
                NewOrderRequest {
                    identifiers: vec![Identifier::dns(name)],
                    not_before: None,
                    not_after: None,
                    replaces: None,
                    profile: None,
                },
            )
            .await
            .unwrap();
        self.authz(&view.order.authz_ids[0])
    }

    /// The stored authorization.
    pub(crate) fn authz(&self, id: &str) -> AuthzRecord {
        self.store.reader().get(id).unwrap().unwrap()
    }

    /// Waits until no challenge of `id` is processing.
    pub(crate) async fn settled(&self, id: &str) -> AuthzRecord {
        for _ in 0..500 {
            let authz = self.authz(id);
            if authz
                .challenges
                .iter()
                .all(|c| c.status != crate::acme::ChallengeStatus::Processing)
            {
                return authz;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("a validation of {id} never finished");
    }
}
