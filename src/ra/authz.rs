//! Authorizations and challenges (RFC 8555 §7.5, §7.5.1, §8): answering a challenge starts
//! validation in the background; the answer waits briefly for the result.

use super::order::authz_status;
use super::{Ra, owned};
use crate::acme::problem::ProblemType;
use crate::acme::{AuthorizationStatus, ChallengeStatus, Identifier, Problem};
use crate::error::{Error, ErrorKind};
use crate::store::{AccountRecord, AuthzRecord, ValidationInFlight};
use crate::va::ValidationRequest;

impl Ra {
    /// POST-as-GET on an authorization, with expiry applied.
    pub async fn authz(&self, account: &AccountRecord, id: &str) -> Result<AuthzRecord, Error> {
        let now = self.now();
        let id = id.to_owned();
        let account = account.clone();
        self.read(move |r| {
            let mut authz: AuthzRecord = r
                .get(&id)?
                .ok_or_else(|| Error::not_found("no such authorization"))?;
            owned(&account, &authz.account_id)?;
            authz.status = authz_status(&authz, now);
            Ok(authz)
        })
        .await
    }

    /// Deactivation by the client (RFC 8555 §7.5.2): a pending or valid authorization
    /// becomes `deactivated` and can no longer be used.
    pub async fn deactivate_authz(
        &self,
        account: &AccountRecord,
        id: &str,
        status: &str,
    ) -> Result<AuthzRecord, Error> {
        if status != "deactivated" {
            return Err(Error::malformed(format!(
                "an authorization's status can only be set to \"deactivated\", not {status:?}"
            )));
        }
        let now = self.now();
        let (id, account) = (id.to_owned(), account.clone());
        self.write(move |tx| {
            let mut authz: AuthzRecord = tx
                .get(&id)?
                .ok_or_else(|| Error::not_found("no such authorization"))?;
            owned(&account, &authz.account_id)?;
            match authz_status(&authz, now) {
                AuthorizationStatus::Pending | AuthorizationStatus::Valid => {
                    authz.status = AuthorizationStatus::Deactivated;
                    tx.put(&authz)?;
                    Ok(authz)
                }
                AuthorizationStatus::Deactivated => Ok(authz),
                other => Err(Error::malformed(format!(
                    "the authorization is {other} and cannot be deactivated"
                ))),
            }
        })
        .await
    }

    /// newAuthz (RFC 8555 §7.4.1): a pre-authorization for one identifier, reused by the
    /// account's later orders while valid. Wildcards cannot be pre-authorized.
    pub async fn new_authz(
        &self,
        account: &AccountRecord,
        identifier: &Identifier,
    ) -> Result<AuthzRecord, Error> {
        if !self.inner.settings.pre_authorization {
            return Err(Error::not_found("this CA does not offer pre-authorization"));
        }
        self.may_work(account)?;
        let mut checked = self
            .inner
            .policy
            .check_identifiers(std::slice::from_ref(identifier))?;
        let Some(identifier) = checked.pop() else {
            return Err(Error::malformed("no identifier"));
        };
        if identifier.wildcard_base().is_some() {
            return Err(Error::new(
                ErrorKind::RejectedIdentifier,
                "wildcard names cannot be pre-authorized (RFC 8555 §7.4.1); order them",
            ));
        }
        let binding = self.binding_of(account).await?;
        if let Some(binding) = &binding {
            super::eab::check_allowed(binding, std::slice::from_ref(&identifier))?;
        }
        let now = self.now();
        let prevalidated = binding
            .as_ref()
            .filter(|b| super::eab::prevalidates(b, &identifier))
            .map(|b| b.kid.clone());
        let mut authz = self.new_authz_record(account, identifier, false, now)?;
        authz.preauthorized = true;
        if let Some(kid) = prevalidated {
            super::order::prevalidate(&mut authz, &kid);
        }
        let quota = self
            .inner
            .settings
            .limits
            .pending_authorizations_per_account;
        self.write(move |tx| {
            if authz.status == AuthorizationStatus::Pending {
                super::quota::admit(
                    tx,
                    super::quota::Quota::PendingAuthorizations,
                    quota,
                    &authz.account_id,
                    [(authz.id.clone(), authz.expires)],
                    now,
                )?;
            }
            tx.put(&authz)?;
            tx.link_authz(&authz)?;
            Ok(authz)
        })
        .await
    }

    /// POST to a challenge (RFC 8555 §7.5.1): the client is ready. Starts validation once;
    /// later posts just report. Waits up to `sync_wait` for the outcome.
    pub async fn answer_challenge(
        &self,
        account: &AccountRecord,
        authz_id: &str,
        kind: &str,
    ) -> Result<AuthzRecord, Error> {
        self.may_work(account)?;
        let now = self.now();
        let (id, kind_owned, account_owned) =
            (authz_id.to_owned(), kind.to_owned(), account.clone());
        let ra = self.clone();
        let started = self
            .write(move |tx| {
                let mut authz: AuthzRecord = tx.require(&id)?;
                owned(&account_owned, &authz.account_id)?;
                let index = authz
                    .challenges
                    .iter()
                    .position(|c| c.kind == kind_owned)
                    .ok_or_else(|| Error::not_found("no such challenge"))?;
                let status = authz_status(&authz, now);
                // One validation per authorization at a time: a second challenge answered
                // meanwhile would race the first to decide the authorization's status.
                let busy = authz
                    .challenges
                    .iter()
                    .any(|c| c.status == ChallengeStatus::Processing);
                let challenge = &mut authz.challenges[index];
                if status != AuthorizationStatus::Pending
                    || challenge.status != ChallengeStatus::Pending
                    || busy
                {
                    return Ok(None);
                }
                challenge.status = ChallengeStatus::Processing;
                let (kind, token) = (challenge.kind.clone(), challenge.token.clone());
                let request = ra.validation_request(&authz, &kind, &token, &account_owned);
                tx.put(&authz)?;
                tx.put(&ValidationInFlight::new(&authz.id, &request.challenge))?;
                Ok(Some(request))
            })
            .await?;
        if let Some(request) = started {
            let ra = self.clone();
            let authz_id = authz_id.to_owned();
            let mut task = tokio::spawn(async move { ra.validate(authz_id, request).await });
            // The task goes on if the wait ends first; the client then polls.
            let _ = tokio::time::timeout(self.inner.settings.sync_wait, &mut task).await;
        }
        self.authz(account, authz_id).await
    }

    /// Validates one challenge and records the outcome (RFC 8555 §7.1.6: the challenge and
    /// its authorization become valid or invalid together).
    pub(crate) async fn validate(&self, authz_id: String, request: ValidationRequest) {
        let outcome = self.inner.validator.validate(&request).await;
        let now = self.now();
        let kind = request.challenge.clone();
        let result = self
            .write(move |tx| {
                tx.delete::<ValidationInFlight>(&ValidationInFlight::new(&authz_id, &kind).key)?;
                let mut authz: AuthzRecord = tx.require(&authz_id)?;
                let status = authz_status(&authz, now);
                let stored = authz.status;
                let Some(challenge) = authz.challenges.iter_mut().find(|c| c.kind == kind) else {
                    return Ok(());
                };
                if challenge.status != ChallengeStatus::Processing {
                    return Ok(());
                }
                // RFC 8555 §7.1.6: final states stay final. The authorization changed while
                // it was validated (deactivated, expired): the outcome is not applied, and the
                // challenge ends invalid rather than staying `processing`.
                if stored != AuthorizationStatus::Pending || status != AuthorizationStatus::Pending
                {
                    challenge.status = ChallengeStatus::Invalid;
                    challenge.error = Some(Problem::new(
                        ProblemType::Unauthorized,
                        format!("the authorization became {status} while it was validated"),
                    ));
                    tx.put(&authz)?;
                    return Ok(());
                }
                match outcome {
                    Ok(()) => {
                        challenge.status = ChallengeStatus::Valid;
                        challenge.validated = Some(now);
                        authz.status = AuthorizationStatus::Valid;
                    }
                    Err(failure) => {
                        let kind = ProblemType::from_urn(&format!(
                            "urn:ietf:params:acme:error:{}",
                            failure.problem_type()
                        ))
                        .unwrap_or(ProblemType::ServerInternal);
                        challenge.status = ChallengeStatus::Invalid;
                        challenge.error = Some(Problem::new(kind, failure.to_string()));
                        authz.status = AuthorizationStatus::Invalid;
                    }
                }
                tx.put(&authz)?;
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "recording a validation result failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestRa;
    use crate::acme::{AuthorizationStatus, ChallengeStatus};
    use crate::store::ValidationInFlight;

    fn challenge(authz: &crate::store::AuthzRecord, kind: &str) -> ChallengeStatus {
        authz
            .challenges
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.status)
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deactivation_during_validation_is_not_undone() {
        let t = TestRa::new();
        let authz = t.order("deactivated.test").await;
        t.ra.answer_challenge(&t.account, &authz.id, "http-01")
            .await
            .unwrap();
        t.ra.deactivate_authz(&t.account, &authz.id, "deactivated")
            .await
            .unwrap();
        t.validator.release(1);
        let after = t.settled(&authz.id).await;
        assert_eq!(after.status, AuthorizationStatus::Deactivated);
        assert_eq!(challenge(&after, "http-01"), ChallengeStatus::Invalid);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_challenge_cannot_overturn_the_first() {
        let t = TestRa::new();
        t.validator.fail("dns-01");
        let authz = t.order("two.test").await;
        t.ra.answer_challenge(&t.account, &authz.id, "http-01")
            .await
            .unwrap();
        // While http-01 is being validated, dns-01 is answered too: it does not start.
        let seen =
            t.ra.answer_challenge(&t.account, &authz.id, "dns-01")
                .await
                .unwrap();
        assert_eq!(challenge(&seen, "dns-01"), ChallengeStatus::Pending);
        t.validator.release(2);
        let after = t.settled(&authz.id).await;
        assert_eq!(t.validator.started(), 1);
        assert_eq!(after.status, AuthorizationStatus::Valid);
        assert_eq!(challenge(&after, "http-01"), ChallengeStatus::Valid);
        // And once valid, final: another answer changes nothing.
        let again =
            t.ra.answer_challenge(&t.account, &authz.id, "dns-01")
                .await
                .unwrap();
        assert_eq!(again.status, AuthorizationStatus::Valid);
        assert_eq!(t.validator.started(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recovery_validates_again_only_what_is_still_pending() {
        let t = TestRa::new();
        let pending = t.order("pending.test").await;
        let deactivated = t.order("gone.test").await;
        for authz in [&pending, &deactivated] {
            t.ra.answer_challenge(&t.account, &authz.id, "http-01")
                .await
                .unwrap();
        }
        t.ra.deactivate_authz(&t.account, &deactivated.id, "deactivated")
            .await
            .unwrap();
        assert_eq!(t.validator.started(), 2);
        // As after a crash: both markers are there; only the pending one runs again.
        t.ra.recover().await.unwrap();
        for _ in 0..100 {
            if t.validator.started() >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(t.validator.started(), 3);
        let gone = t.authz(&deactivated.id);
        assert_eq!(gone.status, AuthorizationStatus::Deactivated);
        assert_eq!(challenge(&gone, "http-01"), ChallengeStatus::Invalid);
        let marker = ValidationInFlight::new(&deactivated.id, "http-01").key;
        assert!(
            t.store
                .reader()
                .get::<ValidationInFlight>(&marker)
                .unwrap()
                .is_none()
        );
        t.validator.release(3);
        assert_eq!(
            t.settled(&pending.id).await.status,
            AuthorizationStatus::Valid
        );
        assert_eq!(
            t.authz(&deactivated.id).status,
            AuthorizationStatus::Deactivated
        );
    }
}
