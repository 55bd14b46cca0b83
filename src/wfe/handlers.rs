//! One handler per ACME resource (RFC 8555 §7), and the rendering of stored records as the
//! resources clients see.

use hyper::StatusCode;
use serde_json::json;

use super::jws::{self, Context, KeyRule, Verified, VerifiedKey};
use super::{Reply, Wfe};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::acme::{
    Account, AccountUpdateRequest, Authorization, AuthorizationUpdateRequest, Challenge,
    ChallengeStatus, Directory, FinalizeRequest, KeyChangeRequest, NewAccountRequest,
    NewAuthzRequest, NewOrderRequest, Order, OrderStatus, RevocationRequest,
};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::ra::{KeyChangeOutcome, OrderView, Revoker};
use crate::store::{AccountRecord, AuthzRecord};

/// Seconds a client should wait before polling a resource that is `processing`.
/// Orders per page of an account's orders list.
const ORDERS_PAGE: usize = 100;
/// RFC 9773 §4.3: how often clients should ask for renewal information (6 hours).
const RENEWAL_INFO_RETRY: u64 = 6 * 3600;

impl Wfe {
    /// RFC 8555 §7.1.1.
    pub(super) fn directory(&self) -> Result<Reply, Error> {
        let directory = Directory {
            new_nonce: self.urls.acme("new-nonce"),
            new_account: self.urls.acme("new-account"),
            new_order: self.urls.acme("new-order"),
            revoke_cert: self.urls.acme("revoke-cert"),
            key_change: self.urls.acme("key-change"),
            new_authz: self
                .ra
                .offers_pre_authorization()
                .then(|| self.urls.acme("new-authz")),
            renewal_info: self.urls.acme("renewal-info"),
            meta: crate::acme::DirectoryMeta {
                profiles: self.ra.offered_profiles(),
                ..self.meta.clone()
            },
        };
        Reply::json(StatusCode::OK, &directory)
    }

    /// Every POST: verify the JWS for the resource, then dispatch.
    pub(super) async fn post(
        &self,
        segments: &[&str],
        url: &str,
        query: Option<&str>,
        body: &[u8],
        client: std::net::IpAddr,
    ) -> Result<Reply, Error> {
        let rule = match segments {
            ["new-account"] => KeyRule::Jwk,
            ["revoke-cert"] => KeyRule::Either,
            _ => KeyRule::Kid,
        };
        if !is_posted_resource(segments) {
            return Err(Error::not_found(format!("no resource at {url}")));
        }
        let verified = self.verify(body, rule, url).await?;
        match segments {
            // RFC 8555 §6.3: POST-as-GET works on the directory and newNonce too.
            ["directory"] => {
                post_as_get(&verified)?;
                self.directory()
            }
            ["new-nonce"] => {
                post_as_get(&verified)?;
                Ok(Reply::empty(StatusCode::NO_CONTENT))
            }
            ["new-account"] => self.new_account(verified, client).await,
            ["acct", id] => self.account(verified, id).await,
            ["acct", id, "orders"] => self.account_orders(verified, id, query).await,
            ["new-order"] => self.new_order(verified).await,
            ["new-authz"] => self.new_authz(verified).await,
            ["key-change"] => self.key_change(verified, url).await,
            ["revoke-cert"] => self.revoke(verified).await,
            ["order", id] => self.order(verified, id).await,
            ["order", id, "finalize"] => self.finalize(verified, id).await,
            ["authz", id] => self.authz(verified, id).await,
            ["chall", authz, kind] => self.challenge(verified, authz, kind).await,
            ["cert", serial] => self.certificate(verified, serial, "0").await,
            ["cert", serial, index] => self.certificate(verified, serial, index).await,
            _ => Err(Error::not_found(format!("no resource at {url}"))),
        }
    }

    async fn verify(&self, body: &[u8], rule: KeyRule, url: &str) -> Result<Verified, Error> {
        // The account lookup reads redb; it is one short read, done inline.
        let reader = self.ra.reader().clone();
        let endpoint = self.ra.endpoint().to_owned();
        // An account of another endpoint is unknown here (`accountDoesNotExist`).
        let lookup = move |id: &str| -> Result<Option<AccountRecord>, Error> {
            Ok(reader
                .get::<AccountRecord>(id)?
                .filter(|a| a.profile == endpoint))
        };
        let prefix = self.urls.account_prefix();
        let ctx = Context {
            url,
            nonces: &self.nonces,
            account_url_prefix: &prefix,
            account: &lookup,
            verifiers: &self.verifiers,
        };
        jws::verify(body, rule, &ctx)
    }

    async fn new_account(
        &self,
        verified: Verified,
        client: std::net::IpAddr,
    ) -> Result<Reply, Error> {
        let request: NewAccountRequest = verified.parse()?;
        let VerifiedKey::Jwk { jwk, thumbprint } = verified.key else {
            return Err(Error::malformed("newAccount requires \"jwk\""));
        };
        let tos_required = self.meta.terms_of_service.is_some();
        // RFC 8555 §7.3.4: onlyReturnExisting needs no binding; a binding sent with it is
        // not looked at.
        let binding = match &request.external_account_binding {
            Some(value) if request.only_return_existing != Some(true) => {
                Some(jws::parse_external_account_binding(value)?)
            }
            _ => None,
        };
        let outcome = self
            .ra
            .new_account(jwk, thumbprint, request, binding, tos_required, client)
            .await?;
        let status = if outcome.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let url = self.urls.account(&outcome.account.id);
        Ok(Reply::json(status, &self.render_account(&outcome.account))?.location(url))
    }

    async fn account(&self, verified: Verified, id: &str) -> Result<Reply, Error> {
        let account = same_account(&verified, id)?;
        let request: Option<AccountUpdateRequest> = if verified.is_post_as_get() {
            None
        } else {
            Some(verified.parse()?)
        };
        let updated = self.ra.update_account(account, request).await?;
        Ok(Reply::json(StatusCode::OK, &self.render_account(&updated))?
            .location(self.urls.account(id)))
    }

    /// RFC 8555 §7.1.2.1: the account's orders, [`ORDERS_PAGE`] per page, with
    /// `Link: rel="next"` to the following page.
    async fn account_orders(
        &self,
        verified: Verified,
        id: &str,
        query: Option<&str>,
    ) -> Result<Reply, Error> {
        let account = same_account(&verified, id)?;
        post_as_get(&verified)?;
        let page = page_number(query)?;
        let (ids, next) = self.ra.orders_page(account, page, ORDERS_PAGE).await?;
        let orders: Vec<String> = ids.iter().map(|o| self.urls.order(o)).collect();
        let mut reply = Reply::json(StatusCode::OK, &json!({ "orders": orders }))?;
        if let Some(next) = next {
            let next = format!("{}/orders?page={next}", self.urls.account(id));
            reply = reply.link(&next, "next");
        }
        Ok(reply)
    }

    async fn new_authz(&self, verified: Verified) -> Result<Reply, Error> {
        let request: NewAuthzRequest = verified.parse()?;
        let authz = self
            .ra
            .new_authz(verified.account()?, &request.identifier)
            .await?;
        let url = self.urls.authz(&authz.id);
        Ok(Reply::json(StatusCode::CREATED, &self.render_authz(&authz))?.location(url))
    }

    /// RFC 8555 §7.3.5: the outer JWS is the account's, the inner one the new key's.
    async fn key_change(&self, verified: Verified, url: &str) -> Result<Reply, Error> {
        let account = verified.account()?;
        let inner = jws::verify_key_change_inner(&verified.payload, url)?;
        let request: KeyChangeRequest = serde_json::from_slice(&inner.payload)
            .map_err(|e| Error::malformed(format!("keyChange inner payload: {e}")))?;
        let account_url = self.urls.account(&account.id);
        match self
            .ra
            .change_key(account, &account_url, inner.jwk, inner.thumbprint, request)
            .await?
        {
            KeyChangeOutcome::Changed(updated) => {
                Ok(Reply::json(StatusCode::OK, &self.render_account(&updated))?
                    .location(account_url))
            }
            KeyChangeOutcome::KeyInUse(holder) => Err(Error::new(
                crate::error::ErrorKind::Conflict,
                "the new key already belongs to an account",
            )
            .with_location(self.urls.account(&holder))),
        }
    }

    /// RFC 8555 §7.6: signed by an account (`kid`) or by the certificate's key (`jwk`).
    async fn revoke(&self, verified: Verified) -> Result<Reply, Error> {
        let request: RevocationRequest = verified.parse()?;
        let der = URL_SAFE_NO_PAD
            .decode(request.certificate.trim_end_matches('='))
            .map_err(|_| Error::malformed("certificate is not base64url DER"))?;
        let revoker = match verified.key {
            VerifiedKey::Account(account) => Revoker::Account(Box::new(account)),
            VerifiedKey::Jwk { thumbprint, .. } => Revoker::CertificateKey(thumbprint),
        };
        self.ra.revoke(revoker, der, request.reason).await?;
        Ok(Reply::empty(StatusCode::OK))
    }

    /// RFC 9773 §4.2: the suggested renewal window, and when to ask again.
    pub(super) async fn renewal_info(&self, cert_id: &str) -> Result<Reply, Error> {
        let window = self.ra.renewal_info(cert_id).await?;
        let mut reply = Reply::json(
            StatusCode::OK,
            &json!({
                "suggestedWindow": {
                    "start": rfc3339(window.start),
                    "end": rfc3339(window.end),
                }
            }),
        )?;
        reply.retry_after = Some(RENEWAL_INFO_RETRY);
        Ok(reply)
    }

    async fn new_order(&self, verified: Verified) -> Result<Reply, Error> {
        let request: NewOrderRequest = verified.parse()?;
        let view = self.ra.new_order(verified.account()?, request).await?;
        let url = self.urls.order(&view.order.id);
        Ok(Reply::json(StatusCode::CREATED, &self.render_order(&view))?.location(url))
    }

    async fn order(&self, verified: Verified, id: &str) -> Result<Reply, Error> {
        post_as_get(&verified)?;
        let view = self.ra.order(verified.account()?, id).await?;
        self.order_reply(&view)
    }

    async fn finalize(&self, verified: Verified, id: &str) -> Result<Reply, Error> {
        let request: FinalizeRequest = verified.parse()?;
        let view = self.ra.finalize(verified.account()?, id, request).await?;
        self.order_reply(&view)
    }

    fn order_reply(&self, view: &OrderView) -> Result<Reply, Error> {
        let mut reply = Reply::json(StatusCode::OK, &self.render_order(view))?
            .location(self.urls.order(&view.order.id));
        if view.status == OrderStatus::Processing {
            reply.retry_after = Some(self.retry_after);
        }
        Ok(reply)
    }

    async fn authz(&self, verified: Verified, id: &str) -> Result<Reply, Error> {
        let account = verified.account()?;
        let authz = if verified.is_post_as_get() {
            self.ra.authz(account, id).await?
        } else {
            // RFC 8555 §7.5.2: {"status": "deactivated"}.
            let request: AuthorizationUpdateRequest = verified.parse()?;
            self.ra
                .deactivate_authz(account, id, &request.status)
                .await?
        };
        Reply::json(StatusCode::OK, &self.render_authz(&authz))
    }

    async fn challenge(
        &self,
        verified: Verified,
        authz_id: &str,
        kind: &str,
    ) -> Result<Reply, Error> {
        let account = verified.account()?;
        // RFC 8555 §7.5.1: a POST with a JSON object answers the challenge; POST-as-GET reads.
        let authz = if verified.is_post_as_get() {
            self.ra.authz(account, authz_id).await?
        } else {
            let _: serde_json::Map<String, serde_json::Value> = verified.parse()?;
            self.ra.answer_challenge(account, authz_id, kind).await?
        };
        let challenge = authz
            .challenges
            .iter()
            .find(|c| c.kind == kind)
            .ok_or_else(|| Error::not_found("no such challenge"))?;
        let rendered = self.render_challenge(&authz, challenge);
        let mut reply =
            Reply::json(StatusCode::OK, &rendered)?.link(&self.urls.authz(authz_id), "up");
        if challenge.status == ChallengeStatus::Processing {
            reply.retry_after = Some(self.retry_after);
        }
        Ok(reply)
    }

    /// RFC 8555 §7.4.2: the default chain at the certificate URL, each alternate at
    /// `/{n}`, and every response links the other chains with `rel="alternate"`.
    async fn certificate(
        &self,
        verified: Verified,
        serial: &str,
        index: &str,
    ) -> Result<Reply, Error> {
        post_as_get(&verified)?;
        let index: usize = index
            .parse()
            .map_err(|_| Error::not_found("no such alternate chain"))?;
        let pem = self
            .ra
            .certificate_chain(verified.account()?, serial, index)
            .await?;
        let mut reply = Reply::empty(StatusCode::OK);
        for other in (0..self.ra.issuer().chain_count()).filter(|n| *n != index) {
            let url = match other {
                0 => self.urls.certificate(serial),
                n => format!("{}/{n}", self.urls.certificate(serial)),
            };
            reply = reply.link(&url, "alternate");
        }
        reply.body = pem.into_bytes().into();
        reply.content_type = "application/pem-certificate-chain";
        Ok(reply)
    }

    fn render_account(&self, account: &AccountRecord) -> Account {
        Account {
            status: account.status,
            contact: account.contact.clone(),
            terms_of_service_agreed: account.tos_agreed,
            orders: format!("{}/orders", self.urls.account(&account.id)),
        }
    }

    fn render_order(&self, view: &OrderView) -> Order {
        let order = &view.order;
        Order {
            status: view.status,
            expires: rfc3339(order.expires),
            identifiers: order.identifiers.clone(),
            not_before: order.not_before.map(rfc3339),
            not_after: order.not_after.map(rfc3339),
            error: view.error.clone(),
            authorizations: order.authz_ids.iter().map(|a| self.urls.authz(a)).collect(),
            finalize: self.urls.finalize(&order.id),
            certificate: order
                .certificate
                .as_deref()
                .map(|s| self.urls.certificate(s)),
            replaces: order.replaces.clone(),
            profile: order.profile.clone(),
        }
    }

    fn render_authz(&self, authz: &AuthzRecord) -> Authorization {
        Authorization {
            identifier: authz.identifier.clone(),
            status: authz.status,
            expires: rfc3339(authz.expires),
            challenges: authz
                .challenges
                .iter()
                .map(|c| self.render_challenge(authz, c))
                .collect(),
            wildcard: authz.wildcard,
        }
    }

    fn render_challenge(
        &self,
        authz: &AuthzRecord,
        challenge: &crate::store::ChallengeRecord,
    ) -> Challenge {
        Challenge {
            kind: challenge.kind.clone(),
            url: self.urls.challenge(&authz.id, &challenge.kind),
            status: challenge.status,
            token: challenge.token.clone(),
            validated: challenge.validated.map(rfc3339),
            error: challenge.error.clone(),
        }
    }
}

/// The page an orders-list URL asks for: none is the first; `page=N` otherwise.
fn page_number(query: Option<&str>) -> Result<usize, Error> {
    match query {
        None => Ok(0),
        Some(q) => q
            .strip_prefix("page=")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| Error::malformed(format!("query {q:?}: the only parameter is page=N"))),
    }
}

/// The account in `kid` must be the one in the URL (RFC 8555 §7.3.2).
fn same_account<'a>(verified: &'a Verified, id: &str) -> Result<&'a AccountRecord, Error> {
    let account = verified.account()?;
    if account.id == id {
        Ok(account)
    } else {
        Err(Error::unauthorized(
            "the request is signed by another account",
        ))
    }
}

/// RFC 8555 §6.3: reads are POST-as-GET, with an empty payload.
/// Whether `segments` (below the endpoint) name a resource that takes POST.
pub(super) fn is_posted_resource(segments: &[&str]) -> bool {
    matches!(
        segments,
        ["directory" | "new-nonce"]
            | ["new-account" | "new-order" | "new-authz" | "key-change" | "revoke-cert"]
            | ["acct", _]
            | ["acct", _, "orders"]
            | ["order", _]
            | ["order", _, "finalize"]
            | ["authz", _]
            | ["chall", _, _]
            | ["cert", _]
            | ["cert", _, _]
    )
}

fn post_as_get(verified: &Verified) -> Result<(), Error> {
    if verified.is_post_as_get() {
        Ok(())
    } else {
        Err(Error::malformed(
            "this resource is read with POST-as-GET (an empty payload)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_page_n_is_a_valid_query() {
        assert_eq!(page_number(None).unwrap(), 0);
        assert_eq!(page_number(Some("page=3")).unwrap(), 3);
        for bad in ["page=x", "cursor=1", "page=-1", ""] {
            assert!(page_number(Some(bad)).is_err(), "{bad}");
        }
    }
}
