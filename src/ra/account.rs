//! Accounts: creation, lookup by key, contact updates, key rollover and deactivation
//! (RFC 8555 §7.3).

use serde_json::Value;

use super::{Ra, eab, limits};
use crate::acme::{
    AccountStatus, AccountUpdateRequest, AuthorizationStatus, ExternalAccountBinding,
    KeyChangeRequest, NewAccountRequest,
};
use crate::error::{Error, ErrorKind};
use crate::store::{AccountRecord, AuthzRecord, EabKeyRecord, Tx};

/// The outcome of newAccount.
#[derive(Debug)]
pub struct NewAccountOutcome {
    /// The account.
    pub account: AccountRecord,
    /// Whether it was created now (201) or already existed (200).
    pub created: bool,
}

impl Ra {
    /// newAccount (RFC 8555 §7.3, §7.3.1), with its external account binding (§7.3.4)
    /// when the client sent one.
    pub async fn new_account(
        &self,
        jwk: Value,
        thumbprint: String,
        request: NewAccountRequest,
        binding: Option<ExternalAccountBinding>,
        tos_required: bool,
        client: std::net::IpAddr,
    ) -> Result<NewAccountOutcome, Error> {
        if request.only_return_existing == Some(true) {
            let found = self
                .read(move |r| {
                    let Some(id) = r.account_by_key(&thumbprint)? else {
                        return Ok(None);
                    };
                    Ok(r.get::<AccountRecord>(&id)?)
                })
                .await?;
            let profile = &self.inner.settings.profile;
            return match found.filter(|a| &a.profile == profile) {
                Some(account) if account.status == AccountStatus::Valid => Ok(NewAccountOutcome {
                    account,
                    created: false,
                }),
                Some(account) => Err(Error::new(
                    ErrorKind::AccountNotValid,
                    format!("account is {}", account.status),
                )),
                None => Err(Error::new(
                    ErrorKind::AccountDoesNotExist,
                    "no account exists for this key",
                )),
            };
        }
        let contact = check_contacts(request.contact.as_deref().unwrap_or(&[]))?;
        if tos_required && request.terms_of_service_agreed != Some(true) {
            return Err(Error::malformed(
                "this CA requires agreement to its terms of service (termsOfServiceAgreed: true)",
            ));
        }
        let now = self.now();
        let eab_kid = match binding {
            Some(binding) => Some(self.check_binding(binding, &thumbprint, now).await?),
            None if self.inner.settings.eab_required => {
                // §7.3.1: a key that has an account gets it back, binding or not.
                let lookup = thumbprint.clone();
                let existing = self
                    .read(move |r| match r.account_by_key(&lookup)? {
                        Some(id) => Ok(r.get::<AccountRecord>(&id)?),
                        None => Ok(None),
                    })
                    .await?;
                if let Some(account) = existing.filter(|a| a.status == AccountStatus::Valid) {
                    return Ok(NewAccountOutcome {
                        account: self.of_this_endpoint(account)?,
                        created: false,
                    });
                }
                return Err(Error::new(
                    ErrorKind::ExternalAccountRequired,
                    "this CA opens accounts only with an external account binding \
                     (externalAccountBinding, RFC 8555 §7.3.4): ask its operator for a key",
                ));
            }
            None => None,
        };
        let id = self.random(16)?;
        let account = AccountRecord {
            id,
            status: AccountStatus::Valid,
            contact,
            tos_agreed: request.terms_of_service_agreed,
            tos_version: if request.terms_of_service_agreed == Some(true) {
                self.terms_version()
            } else {
                None
            },
            approval_expires: self
                .inner
                .settings
                .account_approval
                .map(|within| now + within.as_secs()),
            jwk,
            thumbprint,
            created: now,
            eab_kid,
            profile: self.inner.settings.profile.clone(),
        };
        let accounts_per_ip = self.inner.settings.limits.accounts_per_ip;
        let ra = self.clone();
        self.write(move |tx| {
            // §7.3.1: a key that already has an account gets that account back.
            if let Some(existing) = tx.account_by_key(&account.thumbprint)? {
                let account = ra.of_this_endpoint(tx.require::<AccountRecord>(&existing)?)?;
                if account.status != AccountStatus::Valid {
                    return Err(Error::new(
                        ErrorKind::AccountNotValid,
                        format!("account is {}", account.status),
                    ));
                }
                return Ok(NewAccountOutcome {
                    account,
                    created: false,
                });
            }
            limits::spend(
                tx,
                "new accounts",
                accounts_per_ip,
                &client.to_string(),
                now,
            )?;
            if let Some(kid) = &account.eab_kid {
                eab::bind_in(tx, kid, &account.id, now)?;
            }
            tx.put(&account)?;
            tx.set_account_key(&account.thumbprint, &account.id)?;
            Ok(NewAccountOutcome {
                account,
                created: true,
            })
        })
        .await
    }

    /// `account`, if it was made at this ACME endpoint. A key holds one account on the
    /// whole server; another endpoint does not know that account, and does not open a
    /// second one for the same key.
    fn of_this_endpoint(&self, account: AccountRecord) -> Result<AccountRecord, Error> {
        if account.profile == self.inner.settings.profile {
            Ok(account)
        } else {
            Err(Error::malformed(
                "this key holds an account at another ACME endpoint of this server; \
                 use a new account key here",
            ))
        }
    }

    /// Checks an external account binding against the key it names; the MAC key is
    /// unsealed on the token for this check only. Returns the kid.
    async fn check_binding(
        &self,
        binding: ExternalAccountBinding,
        thumbprint: &str,
        now: u64,
    ) -> Result<String, Error> {
        let kid = binding.kid.clone();
        let lookup = kid.clone();
        let record = self
            .read(move |r| Ok(r.get::<EabKeyRecord>(&lookup)?))
            .await?
            .ok_or_else(|| {
                Error::unauthorized(format!("externalAccountBinding: unknown EAB key {kid:?}"))
            })?;
        let sealer = self.inner.sealer.clone();
        let settings = &self.inner.settings;
        let (url, profile, thumbprint) = (
            settings.new_account_url.clone(),
            settings.profile.clone(),
            thumbprint.to_owned(),
        );
        self.inner
            .runner
            .run(move || {
                Ok(eab::check_binding(
                    &binding,
                    &record,
                    sealer.as_deref(),
                    &url,
                    &profile,
                    &thumbprint,
                    now,
                ))
            })
            .await??;
        Ok(kid)
    }

    /// POST to an account URL: read it, update its contacts, or deactivate it (§7.3.2,
    /// §7.3.6).
    pub async fn update_account(
        &self,
        account: &AccountRecord,
        request: Option<AccountUpdateRequest>,
    ) -> Result<AccountRecord, Error> {
        let Some(request) = request else {
            return Ok(account.clone());
        };
        let deactivate = match request.status.as_deref() {
            // Clients that send the whole account object repeat its current status.
            None | Some("valid") => false,
            Some("deactivated") => true,
            Some(other) => {
                return Err(Error::malformed(format!(
                    "an account's status can only be set to \"deactivated\", not {other:?}"
                )));
            }
        };
        let contact = request.contact.as_deref().map(check_contacts).transpose()?;
        // RFC 8555 §7.3.3: agreeing again to terms that changed.
        let agreed = if request.terms_of_service_agreed == Some(true) {
            self.agree_again(account)?
        } else {
            None
        };
        let id = account.id.clone();
        self.write(move |tx| {
            let mut account = tx.require::<AccountRecord>(&id)?;
            if account.status != AccountStatus::Valid {
                return Err(Error::new(
                    ErrorKind::AccountNotValid,
                    format!("account is {}", account.status),
                ));
            }
            if let Some(contact) = contact {
                account.contact = contact;
            }
            if let Some(version) = agreed {
                account.tos_agreed = Some(true);
                account.tos_version = Some(version);
            }
            if deactivate {
                account.status = AccountStatus::Deactivated;
                deactivate_authorizations(tx, &account.id)?;
            }
            tx.put(&account)?;
            Ok(account)
        })
        .await
    }

    /// keyChange (RFC 8555 §7.3.5), after the outer JWS (signed by `account`'s key) and
    /// the inner JWS (signed by the new key) were verified. `account_url` is the URL the
    /// inner payload must name.
    pub async fn change_key(
        &self,
        account: &AccountRecord,
        account_url: &str,
        new_jwk: Value,
        new_thumbprint: String,
        request: KeyChangeRequest,
    ) -> Result<KeyChangeOutcome, Error> {
        if request.account != account_url {
            return Err(Error::unauthorized(format!(
                "the inner payload names account {:?}, but the request is signed by {account_url:?}",
                request.account
            )));
        }
        let old = crate::acme::jwk::thumbprint(&request.old_key)
            .map_err(|e| Error::malformed(format!("oldKey: {}", e.detail)))?;
        if old != account.thumbprint {
            return Err(Error::unauthorized(
                "oldKey is not the account's current key",
            ));
        }
        if new_thumbprint == account.thumbprint {
            return Err(Error::malformed("the new key is the account's current key"));
        }
        let id = account.id.clone();
        // A rolled-over key waits for the operator's approval before it may order.
        let approval = self
            .inner
            .settings
            .key_rollover_approval
            .map(|within| self.now() + within.as_secs());
        self.write(move |tx| {
            if let Some(holder) = tx.account_by_key(&new_thumbprint)? {
                return Ok(KeyChangeOutcome::KeyInUse(holder));
            }
            let mut account = tx.require::<AccountRecord>(&id)?;
            if account.status != AccountStatus::Valid {
                return Err(Error::new(
                    ErrorKind::AccountNotValid,
                    format!("account is {}", account.status),
                ));
            }
            // The key that signed the request, and the oldKey it names, must still be the
            // account's key now: a concurrent keyChange may have replaced it.
            if account.thumbprint != old {
                return Err(Error::unauthorized(
                    "oldKey is no longer the account's current key",
                ));
            }
            // The old key no longer finds the account (§7.3.5: it is replaced, not added).
            tx.remove_account_key(&account.thumbprint)?;
            tx.set_account_key(&new_thumbprint, &account.id)?;
            account.jwk = new_jwk;
            account.thumbprint = new_thumbprint;
            if approval.is_some() {
                account.approval_expires = approval;
            }
            tx.put(&account)?;
            Ok(KeyChangeOutcome::Changed(Box::new(account)))
        })
        .await
    }
}

/// The outcome of keyChange.
#[derive(Debug)]
pub enum KeyChangeOutcome {
    /// The account now uses the new key.
    Changed(Box<AccountRecord>),
    /// The new key already belongs to this account id (§7.3.5: 409 with its URL).
    KeyInUse(String),
}

/// Deactivates an account for its operator (RFC 8555 §7.1.6: the server may deactivate
/// accounts too); its key finds it still, but it can do nothing more.
pub fn deactivate_account_in(tx: &mut Tx<'_>, account_id: &str) -> Result<AccountRecord, Error> {
    let mut account = tx
        .get::<AccountRecord>(account_id)?
        .ok_or_else(|| Error::not_found(format!("no account {account_id:?}")))?;
    if account.status != AccountStatus::Valid {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("account {account_id:?} is already {}", account.status),
        ));
    }
    account.status = AccountStatus::Deactivated;
    deactivate_authorizations(tx, &account.id)?;
    tx.put(&account)?;
    Ok(account)
}

/// RFC 8555 §7.3.6: a deactivated account's pending and valid authorizations go with it,
/// so nothing it started can still be completed.
fn deactivate_authorizations(tx: &mut Tx<'_>, account_id: &str) -> Result<(), Error> {
    for authz_id in super::account_authz_ids(tx, account_id)? {
        let Some(mut authz) = tx.get::<AuthzRecord>(&authz_id)? else {
            continue;
        };
        if matches!(
            authz.status,
            AuthorizationStatus::Pending | AuthorizationStatus::Valid
        ) {
            authz.status = AuthorizationStatus::Deactivated;
            tx.put(&authz)?;
        }
    }
    Ok(())
}

/// Checks contact URLs (RFC 8555 §7.3): `mailto:` with exactly one address and no header
/// fields; anything else is unsupported.
fn check_contacts(contacts: &[String]) -> Result<Vec<String>, Error> {
    const MAX_CONTACTS: usize = 10;
    if contacts.len() > MAX_CONTACTS {
        return Err(Error::new(
            ErrorKind::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    contacts
        .iter()
        .map(|contact| {
            let Some(address) = contact.strip_prefix("mailto:") else {
                return Err(Error::new(
                    ErrorKind::UnsupportedContact,
                    format!("contact {contact:?}: only mailto: URLs are supported"),
                ));
            };
            let invalid = |why: &str| {
                Error::new(
                    ErrorKind::InvalidContact,
                    format!("contact {contact:?}: {why}"),
                )
            };
            if address.contains('?') {
                return Err(invalid("header fields (?…) are not allowed"));
            }
            if address.contains(',') {
                return Err(invalid("one address per contact"));
            }
            let (local, domain) = address.rsplit_once('@').ok_or_else(|| invalid("no '@'"))?;
            if local.is_empty()
                || local.len() > 64
                || local.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(invalid("invalid local part"));
            }
            let domain_ok = domain.len() <= 253
                && domain.contains('.')
                && domain.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !domain_ok {
                return Err(invalid("invalid domain"));
            }
            Ok(contact.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(contacts: &[&str]) -> Option<ErrorKind> {
        let owned: Vec<String> = contacts.iter().map(|s| (*s).to_owned()).collect();
        check_contacts(&owned).err().map(|e| e.kind)
    }

    #[test]
    fn mailto_contacts_are_checked() {
        assert_eq!(kind(&["mailto:certbot-1@example.org"]), None);
        assert_eq!(kind(&[]), None);
        assert_eq!(kind(&["tel:+1555"]), Some(ErrorKind::UnsupportedContact));
        assert_eq!(
            kind(&["mailto:a@b.example?subject=x"]),
            Some(ErrorKind::InvalidContact)
        );
        assert_eq!(
            kind(&["mailto:a@b.example,c@d.example"]),
            Some(ErrorKind::InvalidContact)
        );
        assert_eq!(kind(&["mailto:nobody"]), Some(ErrorKind::InvalidContact));
        assert_eq!(
            kind(&["mailto:a@localhost"]),
            Some(ErrorKind::InvalidContact)
        );
        assert_eq!(
            kind(&["mailto:a b@example.org"]),
            Some(ErrorKind::InvalidContact)
        );
    }

    fn key() -> (Value, String) {
        let pair = josekit::jws::ES256.generate_key_pair().unwrap();
        let jwk = Value::Object(pair.to_jwk_public_key().as_ref().clone());
        let thumbprint = crate::acme::jwk::thumbprint(&jwk).unwrap();
        (jwk, thumbprint)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_change_signed_by_a_replaced_key_is_refused() {
        let t = super::super::testing::TestRa::new();
        let (old_jwk, old_thumb) = key();
        let mut account = t.account.clone();
        account.jwk = old_jwk.clone();
        account.thumbprint = old_thumb.clone();
        let stored = account.clone();
        t.store
            .write(move |tx| {
                tx.put(&stored)?;
                tx.set_account_key(&stored.thumbprint, &stored.id)
                    .map_err(Error::from)
            })
            .unwrap();
        let url = "https://ca.test/acme/acct/acct";
        let change = |new: (Value, String)| {
            let ra = t.ra.clone();
            let (account, old_jwk) = (account.clone(), old_jwk.clone());
            async move {
                let request = KeyChangeRequest {
                    account: url.into(),
                    old_key: old_jwk,
                };
                ra.change_key(&account, url, new.0, new.1, request).await
            }
        };
        assert!(matches!(
            change(key()).await,
            Ok(KeyChangeOutcome::Changed(_))
        ));
        // The same old key (and the stale account it verified) once more: refused.
        let refused = change(key()).await.unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Unauthorized);
    }
}
