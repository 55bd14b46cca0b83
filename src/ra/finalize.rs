//! Finalize and issuance (RFC 8555 §7.4): CSR checks, `ready → processing`, the issuance
//! intent committed before the token signs, then the certificate and `valid` together.
//! Any failure after `processing` leaves the order `invalid` with a problem, never stuck.

use std::collections::BTreeSet;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use der::pem::LineEnding;
use der::{Encode, EncodePem};

use super::order::load_view;
use super::{OrderView, Ra, owned};
use crate::acme::jwk::{spki_to_jwk, thumbprint};
use crate::acme::problem::{ProblemType, Subproblem};
use crate::acme::{FinalizeRequest, Identifier, OrderStatus, Problem};
use crate::ca::csr::{CsrError, parse_csr};
use crate::ca::leaf::{LeafContents, PreparedCertificate};
use crate::error::{Error, ErrorKind};
use crate::store::{
    AccountRecord, AuthzRecord, BlockedKey, CertRecord, IssuanceIntent, OrderRecord,
};

impl Ra {
    /// finalize: checks the CSR against the order and starts issuance.
    pub async fn finalize(
        &self,
        account: &AccountRecord,
        order_id: &str,
        request: FinalizeRequest,
    ) -> Result<OrderView, Error> {
        self.may_work(account)?;
        let der = URL_SAFE_NO_PAD
            .decode(request.csr.trim_end_matches('='))
            .map_err(|_| Error::new(ErrorKind::BadCsr, "csr is not base64url"))?;
        let current = self.order(account, order_id).await?;
        // draft-ietf-acme-profiles: the profile the order was made for decides what the
        // CSR may be and what the certificate says.
        let profile = self.certificate_profile(current.order.profile.as_deref())?;
        let csr = parse_csr(&der, &profile.key_policy).map_err(|e| match e {
            CsrError::BadCsr(m) => Error::new(ErrorKind::BadCsr, m),
            CsrError::BadPublicKey(m) => Error::new(ErrorKind::BadPublicKey, m),
        })?;
        // RFC 8555 §11.1: the certificate key must not be the account key.
        if let Some(jwk) = spki_to_jwk(&csr.public_key)
            && thumbprint(&jwk).ok().as_deref() == Some(account.thumbprint.as_str())
        {
            return Err(Error::new(
                ErrorKind::BadCsr,
                "the CSR key is the account key; use another key",
            ));
        }
        // RFC 8555 §7.6: a key revoked for keyCompromise is not certified again.
        let spki_hash = spki_sha256(&csr.public_key)?;
        let blocked = self
            .read(move |r| Ok(r.get::<BlockedKey>(&spki_hash)?))
            .await?;
        if let Some(blocked) = blocked {
            return Err(Error::new(
                ErrorKind::BadPublicKey,
                format!(
                    "this key was reported compromised (certificate {} was revoked for \
                     keyCompromise); use a new key",
                    blocked.serial
                ),
            ));
        }
        let now = self.now();
        if current.status != OrderStatus::Ready {
            return Err(not_ready(current.status));
        }
        // RFC 8555 §7.4: the CSR names exactly the order's identifiers, no more, no fewer.
        let identifiers = &current.order.identifiers;
        let wanted_names: BTreeSet<String> = identifiers
            .iter()
            .filter(|i| i.kind == "dns")
            .map(|i| i.value.clone())
            .collect();
        let wanted_ips: BTreeSet<IpAddr> = identifiers.iter().filter_map(|i| i.ip_addr()).collect();
        if csr.dns_names != wanted_names || csr.ip_addresses != wanted_ips {
            let asked: BTreeSet<String> = csr
                .dns_names
                .iter()
                .cloned()
                .chain(csr.ip_addresses.iter().map(ToString::to_string))
                .collect();
            let ordered: BTreeSet<String> = identifiers.iter().map(|i| i.value.clone()).collect();
            let mut subproblems = Vec::new();
            for extra in asked.difference(&ordered) {
                subproblems.push(Subproblem::new(
                    ProblemType::BadCsr,
                    format!("{extra} is not in the order"),
                    identifier_of(extra),
                ));
            }
            for missing in ordered.difference(&asked) {
                subproblems.push(Subproblem::new(
                    ProblemType::BadCsr,
                    format!("{missing} is in the order but not in the CSR"),
                    identifier_of(missing),
                ));
            }
            return Err(Error::new(
                ErrorKind::BadCsr,
                format!(
                    "the CSR names {} but the order is for {}",
                    list(&asked),
                    list(&ordered)
                ),
            )
            .with_subproblems(subproblems));
        }
        self.recheck_caa(account, &current.order.authz_ids, now)
            .await?;
        // The certificate is fully built before the order changes state, so the intent can
        // be committed in the same transaction as `ready → processing`.
        let subject = profile
            .subject
            .subject_for(&csr.subject)
            .map_err(|m| Error::new(ErrorKind::BadCsr, m))?;
        let validity = self.inner.policy.check_validity_within(
            current.order.not_before,
            current.order.not_after,
            now,
            profile.validity.as_secs(),
            profile.max_validity.as_secs(),
        )?;
        let issuer = std::sync::Arc::clone(&self.inner.issuer);
        let prepared = issuer.prepare_with(
            csr.dns_names.iter().cloned().collect(),
            csr.ip_addresses.iter().copied().collect(),
            csr.public_key.clone(),
            validity,
            LeafContents {
                subject,
                ..profile.contents.clone()
            },
        )?;
        let intent = IssuanceIntent {
            serial: hex(prepared.serial.as_bytes()),
            order_id: order_id.to_owned(),
            ca: issuer.name().to_owned(),
            tbs: prepared.tbs_der.clone(),
            created: now,
        };
        let account_owned = account.clone();
        let per_domain = self
            .inner
            .settings
            .limits
            .certificates_per_domain
            .filter(|_| current.order.replaces.is_none())
            .map(|limit| (limit, self.registered_domains(identifiers)));
        self.write(move |tx| {
            let order: OrderRecord = tx.require(&intent.order_id)?;
            owned(&account_owned, &order.account_id)?;
            let view = load_view(tx, order, now)?;
            if view.status != OrderStatus::Ready {
                return Err(not_ready(view.status));
            }
            if let Some((limit, domains)) = &per_domain {
                for domain in domains {
                    super::limits::spend(tx, "certificates", *limit, domain, now)?;
                }
            }
            let mut order = view.order;
            order.status = OrderStatus::Processing;
            tx.put(&order)?;
            // DESIGN principle 4: what will be signed is durable before the token signs it.
            tx.put(&intent)?;
            Ok(())
        })
        .await?;

        let ra = self.clone();
        let account_id = account.id.clone();
        let id = order_id.to_owned();
        let mut task = tokio::spawn(async move { ra.issue(account_id, id, prepared).await });
        // The task goes on if the wait ends first; the client then polls.
        let _ = tokio::time::timeout(self.inner.settings.sync_wait, &mut task).await;
        self.order(account, order_id).await
    }

    /// The registered domains an order's certificate counts against: one per domain
    /// (`policy::suffix`), and each IP address on its own.
    fn registered_domains(&self, identifiers: &[Identifier]) -> BTreeSet<String> {
        identifiers
            .iter()
            .map(|i| match i.ip_addr() {
                Some(ip) => ip.to_string(),
                None => self.inner.settings.suffixes.registered_domain(&i.value),
            })
            .collect()
    }

    /// RFC 8659 §3 and BR §3.2.2.8: CAA is checked again for authorizations validated
    /// longer ago than `caa_recheck_age` (reused or pre-authorized ones), so records
    /// published since then are honoured.
    async fn recheck_caa(
        &self,
        account: &AccountRecord,
        authz_ids: &[String],
        now: u64,
    ) -> Result<(), Error> {
        let ids = authz_ids.to_vec();
        let authzs: Vec<AuthzRecord> = self
            .read(move |r| {
                let mut out = Vec::new();
                for id in ids {
                    out.extend(r.get::<AuthzRecord>(&id)?);
                }
                Ok(out)
            })
            .await?;
        let max_age = self.inner.settings.caa_recheck_age.as_secs();
        let mut subproblems = Vec::new();
        for authz in &authzs {
            let Some(challenge) = authz
                .challenges
                .iter()
                .find(|c| c.validated.is_some_and(|at| at + max_age < now))
            else {
                continue;
            };
            let request =
                self.validation_request(authz, &challenge.kind, &challenge.token, account);
            if let Err(failure) = self.inner.validator.check_caa(&request).await {
                let kind = if failure.problem_type() == "dns" {
                    ProblemType::Dns
                } else {
                    ProblemType::Caa
                };
                subproblems.push(Subproblem::new(
                    kind,
                    failure.to_string(),
                    authz.identifier.clone(),
                ));
            }
        }
        if subproblems.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Caa,
            format!(
                "CAA no longer permits issuance for {} of the order's identifiers; see subproblems",
                subproblems.len()
            ),
        )
        .with_subproblems(subproblems))
    }

    async fn issue(&self, account_id: String, order_id: String, prepared: PreparedCertificate) {
        let serial = hex(prepared.serial.as_bytes());
        if let Err(e) = self
            .sign_and_store(account_id, order_id.clone(), prepared)
            .await
        {
            tracing::error!(order = %order_id, error = %e, "issuance failed");
            let problem = Problem::new(
                ProblemType::ServerInternal,
                "issuance failed; the order is invalid, create a new one",
            );
            let failed = self
                .write(move |tx| {
                    let mut order: OrderRecord = tx.require(&order_id)?;
                    if order.status == OrderStatus::Processing {
                        order.status = OrderStatus::Invalid;
                        order.error = Some(problem);
                        tx.put(&order)?;
                    }
                    tx.delete::<IssuanceIntent>(&serial)?;
                    Ok(())
                })
                .await;
            if let Err(e) = failed {
                tracing::error!(error = %e, "marking a failed order invalid failed too");
            }
        }
    }

    async fn sign_and_store(
        &self,
        account_id: String,
        order_id: String,
        prepared: PreparedCertificate,
    ) -> Result<(), Error> {
        let serial = hex(prepared.serial.as_bytes());
        let issuer = std::sync::Arc::clone(&self.inner.issuer);
        let signing_issuer = std::sync::Arc::clone(&issuer);
        let cert = self
            .inner
            .runner
            .run(move || {
                signing_issuer.sign(prepared).map_err(|e| match e {
                    crate::ca::CaError::Token(t) => t,
                    other => crate::hsm::TokenError::Malformed(other.to_string()),
                })
            })
            .await?;
        let der = cert.to_der().map_err(|e| Error::internal(e.to_string()))?;
        let validity = cert.tbs_certificate().validity();
        let record = CertRecord {
            serial,
            account_id,
            order_id,
            ca: issuer.name().to_owned(),
            der,
            issued: self.now(),
            not_after: validity.not_after.to_unix_duration().as_secs(),
            not_before: validity.not_before.to_unix_duration().as_secs(),
            revocation: None,
            replaced_by: None,
        };
        let single_active = self.inner.settings.single_active_certificate;
        let now = self.now();
        let superseded = self
            .write(move |tx| {
                let mut order: OrderRecord = tx.require(&record.order_id)?;
                if order.status != OrderStatus::Processing {
                    return Err(Error::internal("order left processing during issuance"));
                }
                order.status = OrderStatus::Valid;
                order.certificate = Some(record.serial.clone());
                tx.put(&order)?;
                tx.put(&record)?;
                tx.link_cert(&record.account_id, &record.serial)?;
                tx.delete::<IssuanceIntent>(&record.serial)?;
                if single_active {
                    supersede_earlier(tx, &record, &order, now)
                } else {
                    Ok(Vec::new())
                }
            })
            .await?;
        // The CRLs of the CAs concerned are signed again.
        for ca in superseded.into_iter().collect::<BTreeSet<_>>() {
            let _ = self.inner.revocations.send(ca);
        }
        Ok(())
    }

    /// The certificate chain for `serial` (RFC 8555 §7.4.2): leaf first, then its issuers;
    /// `index` 0 is the default chain, the others the configured alternates.
    pub async fn certificate_chain(
        &self,
        account: &AccountRecord,
        serial: &str,
        index: usize,
    ) -> Result<String, Error> {
        let serial = serial.to_owned();
        let account = account.clone();
        let record = self
            .read(move |r| {
                let record: CertRecord = r
                    .get(&serial)?
                    .ok_or_else(|| Error::not_found("no such certificate"))?;
                owned(&account, &record.account_id)?;
                Ok(record)
            })
            .await?;
        let cert = <x509_cert::Certificate as der::Decode>::from_der(&record.der)
            .map_err(|e| Error::internal(format!("stored certificate: {e}")))?;
        let mut pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|e| Error::internal(e.to_string()))?;
        let chain = self
            .inner
            .issuer
            .chain_pem_at(index)
            .ok_or_else(|| Error::not_found("no such alternate chain"))?;
        pem.push_str(chain);
        Ok(pem)
    }
}

/// RFC 8555 §7.4: finalize on an order that is not ready.
/// Single active certificate: revokes (superseded) every other unexpired, unrevoked
/// certificate of `record`'s account whose order named exactly `order`'s identifiers, in
/// the transaction that stores the new one; returns the CAs whose CRLs changed.
fn supersede_earlier(
    tx: &mut crate::store::Tx<'_>,
    record: &CertRecord,
    order: &OrderRecord,
    now: u64,
) -> Result<Vec<String>, Error> {
    let names: BTreeSet<&Identifier> = order.identifiers.iter().collect();
    let mut cas = Vec::new();
    for serial in tx.certs_of(&record.account_id)? {
        if serial == record.serial {
            continue;
        }
        let Some(earlier) = tx.get::<CertRecord>(&serial)? else {
            continue;
        };
        if earlier.revocation.is_some() || earlier.not_after <= now {
            continue;
        }
        let same_names = tx
            .get::<OrderRecord>(&earlier.order_id)?
            .is_some_and(|o| o.identifiers.iter().collect::<BTreeSet<_>>() == names);
        if same_names {
            let revoked = super::revoke::revoke_in(
                tx,
                &super::revoke::Revoker::Operator,
                &serial,
                None,
                super::revoke::SUPERSEDED,
                now,
            )?;
            tracing::info!(serial = %revoked.serial, by = %record.serial,
                "revoked as superseded (single active certificate)");
            cas.push(revoked.ca);
        }
    }
    Ok(cas)
}

fn not_ready(status: OrderStatus) -> Error {
    Error::new(
        ErrorKind::OrderNotReady,
        format!("the order is {status}, not ready"),
    )
}

fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "no names".into()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Lower-case hex, as serials appear in URLs and logs.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identifier a name or address in a CSR stands for, for subproblems (RFC 8555 §6.7.1).
fn identifier_of(value: &str) -> Identifier {
    match value.parse::<IpAddr>() {
        Ok(ip) => Identifier::ip(ip),
        Err(_) => Identifier::dns(value),
    }
}

/// The key under which a subscriber key is blocked: SHA-256 of its DER SPKI, hex.
pub(crate) fn spki_sha256(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<String, Error> {
    let der = spki.to_der().map_err(|e| Error::internal(e.to_string()))?;
    Ok(hex(
        ring::digest::digest(&ring::digest::SHA256, &der).as_ref()
    ))
}
