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
        self.write(move |tx| {
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
                let challenge = &mut authz.challenges[index];
                if status != AuthorizationStatus::Pending
                    || challenge.status != ChallengeStatus::Pending
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
                let Some(challenge) = authz.challenges.iter_mut().find(|c| c.kind == kind) else {
                    return Ok(());
                };
                if challenge.status != ChallengeStatus::Processing {
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
