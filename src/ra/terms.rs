//! Versioned terms of service (RFC 8555 §7.3.3): once they change, an account that agreed
//! to an older version is answered `userActionRequired`, with a `terms-of-service` link and
//! the terms as `instance`, until it agrees again; or, where the endpoint says so, it must
//! open a new account (EJBCA's two modes).

use super::Ra;
use crate::error::{Error, ErrorKind, UserAction};
use crate::store::AccountRecord;

/// An endpoint's versioned terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsOfService {
    /// Where they are.
    pub url: String,
    /// Their current version.
    pub version: String,
    /// What an account that agreed to an older version must do.
    pub on_change: TermsChange,
}

/// What follows a change of the terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermsChange {
    /// Agree again: POST `termsOfServiceAgreed: true` to the account URL.
    AgreeAgain,
    /// Open a new account (with a new key) that agrees to them.
    NewAccount,
}

impl TermsOfService {
    fn action_required(&self, detail: String) -> Error {
        let mut error = Error::new(ErrorKind::UserActionRequired, detail);
        error.action = Some(Box::new(UserAction {
            link: format!("<{}>;rel=\"terms-of-service\"", self.url),
            instance: self.url.clone(),
        }));
        error
    }
}

impl Ra {
    /// The version a newly agreeing account records.
    pub(super) fn terms_version(&self) -> Option<String> {
        self.inner
            .settings
            .terms
            .as_ref()
            .map(|t| t.version.clone())
    }

    /// Refuses work for an account that has not agreed to the current terms.
    pub(super) fn check_terms(&self, account: &AccountRecord) -> Result<(), Error> {
        let Some(terms) = &self.inner.settings.terms else {
            return Ok(());
        };
        if account.tos_version.as_deref() == Some(terms.version.as_str()) {
            return Ok(());
        }
        Err(terms.action_required(match terms.on_change {
            TermsChange::AgreeAgain => format!(
                "the terms of service changed (version {}): review them at {} and agree by \
                 POSTing {{\"termsOfServiceAgreed\": true}} to your account URL",
                terms.version, terms.url
            ),
            TermsChange::NewAccount => format!(
                "the terms of service changed (version {}): review them at {} and open a new \
                 account, with a new key, that agrees to them",
                terms.version, terms.url
            ),
        }))
    }

    /// The version an account update that says `termsOfServiceAgreed: true` records, or
    /// why it cannot agree this way.
    pub(super) fn agree_again(&self, account: &AccountRecord) -> Result<Option<String>, Error> {
        let Some(terms) = &self.inner.settings.terms else {
            return Ok(None);
        };
        if account.tos_version.as_deref() == Some(terms.version.as_str()) {
            return Ok(None);
        }
        match terms.on_change {
            TermsChange::AgreeAgain => Ok(Some(terms.version.clone())),
            TermsChange::NewAccount => Err(terms.action_required(format!(
                "this CA does not take a new agreement on an existing account: open a new \
                 account, with a new key, that agrees to the terms at {}",
                terms.url
            ))),
        }
    }
}
