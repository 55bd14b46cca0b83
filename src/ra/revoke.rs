//! Revocation (RFC 8555 §7.6): who may revoke, with which reasons, and what a revocation
//! changes: the certificate record, the CA's revoked list (and so its next CRL), and for
//! keyCompromise a block on the key.

use std::collections::BTreeSet;

use der::Decode;
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::Ra;
use super::finalize::{hex, spki_sha256};
use super::order::authz_status;
use crate::acme::jwk::{spki_to_jwk, thumbprint};
use crate::acme::{AuthorizationStatus, Identifier};
use crate::error::{Error, ErrorKind};
use crate::store::{AccountRecord, AuthzRecord, BlockedKey, CertRecord, Revocation, Tx};

/// RFC 5280 §5.3.1 keyCompromise.
pub const KEY_COMPROMISE: u8 = 1;
/// RFC 5280 §5.3.1 superseded.
pub const SUPERSEDED: u8 = 4;

/// Who asks for the revocation (RFC 8555 §7.6).
#[derive(Debug, Clone)]
pub enum Revoker {
    /// An account (`kid`): it ordered the certificate, or holds valid authorizations for
    /// every identifier in it.
    Account(Box<AccountRecord>),
    /// The certificate's own key (`jwk`), by its RFC 7638 thumbprint.
    CertificateKey(String),
    /// The operator, through the command line.
    Operator,
}

/// RFC 8555 §7.6 and CA/B Forum BR §7.2.2: the reasons a subscriber may give —
/// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation.
/// The operator may also use cACompromise(2) and privilegeWithdrawn(9).
pub fn check_reason(reason: Option<i64>, revoker: &Revoker) -> Result<u8, Error> {
    let code = reason.unwrap_or(0);
    let allowed: &[i64] = match revoker {
        Revoker::Operator => &[0, 1, 2, 3, 4, 5, 9],
        _ => &[0, 1, 3, 4, 5],
    };
    if !allowed.contains(&code) {
        return Err(Error::new(
            ErrorKind::BadRevocationReason,
            format!(
                "reason code {code} is not accepted; use one of {}",
                allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    u8::try_from(code).map_err(|_| Error::new(ErrorKind::BadRevocationReason, "bad reason"))
}

/// The identifiers a certificate names (dNSName and iPAddress SANs).
fn identifiers_of(cert: &Certificate) -> Vec<Identifier> {
    let Ok(Some((_, san))) = cert.tbs_certificate().get_extension::<SubjectAltName>() else {
        return Vec::new();
    };
    san.0
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(Identifier::dns(dns.to_string())),
            GeneralName::IpAddress(octets) => {
                crate::ca::ip_address(octets.as_bytes()).map(Identifier::ip)
            }
            _ => None,
        })
        .collect()
}

/// Whether `authzs` (valid at `now`) cover every identifier; `*.x` needs a wildcard
/// authorization for `x`.
fn covered(identifiers: &[Identifier], authzs: &[AuthzRecord], now: u64) -> bool {
    let valid: BTreeSet<(String, String, bool)> = authzs
        .iter()
        .filter(|a| authz_status(a, now) == AuthorizationStatus::Valid)
        .map(|a| {
            (
                a.identifier.kind.clone(),
                a.identifier.value.clone(),
                a.wildcard,
            )
        })
        .collect();
    !identifiers.is_empty()
        && identifiers.iter().all(|id| match id.wildcard_base() {
            Some(base) => valid.contains(&("dns".into(), base.to_owned(), true)),
            None => {
                valid.contains(&(id.kind.clone(), id.value.clone(), false))
                    || valid.contains(&(id.kind.clone(), id.value.clone(), true))
            }
        })
}

/// The revocation itself, inside a store transaction: checks who asks, marks the
/// certificate, lists it for its CA's CRL and blocks a compromised key. Shared by the RA
/// and `hsm-acme revoke`.
pub fn revoke_in(
    tx: &mut Tx<'_>,
    revoker: &Revoker,
    serial: &str,
    der: Option<&[u8]>,
    reason: u8,
    now: u64,
) -> Result<CertRecord, Error> {
    // Serials are stored as lower-case hex; operators paste them as openssl prints them.
    let serial = &serial.to_ascii_lowercase();
    let mut record: CertRecord = tx
        .get(serial)?
        .ok_or_else(|| Error::not_found(format!("certificate {serial} was not issued here")))?;
    if der.is_some_and(|d| d != record.der.as_slice()) {
        return Err(Error::not_found(
            "this certificate was not issued here (its serial belongs to another)",
        ));
    }
    let cert = Certificate::from_der(&record.der)
        .map_err(|e| Error::internal(format!("stored certificate: {e}")))?;
    match revoker {
        Revoker::Operator => {}
        Revoker::Account(account) if account.id == record.account_id => {}
        Revoker::Account(account) => {
            // Only the authorizations for the certificate's own names are read, through the
            // account+identifier index: the account's history may be long.
            let identifiers = identifiers_of(&cert);
            let mut authzs = Vec::new();
            for identifier in &identifiers {
                let (name, wildcard_only) = match identifier.wildcard_base() {
                    Some(base) => (Identifier::dns(base), true),
                    None => (identifier.clone(), false),
                };
                let mut ids = tx.authzs_for(&account.id, &name, true)?;
                if !wildcard_only {
                    ids.extend(tx.authzs_for(&account.id, &name, false)?);
                }
                for id in ids {
                    authzs.extend(tx.get::<AuthzRecord>(&id)?);
                }
            }
            if !covered(&identifiers, &authzs, now) {
                return Err(Error::unauthorized(
                    "this account neither ordered the certificate nor holds \
                         valid authorizations for all its identifiers",
                ));
            }
        }
        Revoker::CertificateKey(signer) => {
            let spki = cert.tbs_certificate().subject_public_key_info();
            let matches = spki_to_jwk(spki)
                .and_then(|jwk| thumbprint(&jwk).ok())
                .is_some_and(|t| t == *signer);
            if !matches {
                return Err(Error::unauthorized(
                    "the request is not signed by the certificate's key",
                ));
            }
        }
    }
    if record.revocation.is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyRevoked,
            format!("certificate {serial} is already revoked"),
        ));
    }
    record.revocation = Some(Revocation { at: now, reason });
    tx.put(&record)?;
    tx.link_revoked(&record.ca, &record.serial)?;
    if reason == KEY_COMPROMISE {
        let spki = cert.tbs_certificate().subject_public_key_info();
        tx.put(&BlockedKey {
            spki_sha256: spki_sha256(spki)?,
            serial: record.serial.clone(),
            at: now,
        })?;
    }
    Ok(record)
}

impl Ra {
    /// revokeCert (RFC 8555 §7.6) for the DER certificate `der`.
    pub async fn revoke(
        &self,
        revoker: Revoker,
        der: Vec<u8>,
        reason: Option<i64>,
    ) -> Result<CertRecord, Error> {
        let reason = check_reason(reason, &revoker)?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| Error::malformed(format!("certificate: {e}")))?;
        let serial = hex(cert.tbs_certificate().serial_number().as_bytes());
        self.revoke_serial(revoker, &serial, Some(der), reason)
            .await
    }

    /// Revokes the certificate with `serial` (hex); `der`, when given, must be it.
    pub async fn revoke_serial(
        &self,
        revoker: Revoker,
        serial: &str,
        der: Option<Vec<u8>>,
        reason: u8,
    ) -> Result<CertRecord, Error> {
        let now = self.now();
        let serial = serial.to_owned();
        let revoked = self
            .write(move |tx| revoke_in(tx, &revoker, &serial, der.as_deref(), reason, now))
            .await?;
        tracing::info!(serial = %revoked.serial, reason, "certificate revoked");
        // Nobody listens without [publication]; the revocation stands regardless.
        let _ = self.inner.revocations.send(revoked.ca.clone());
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::AuthorizationStatus;

    fn authz(value: &str, wildcard: bool, status: AuthorizationStatus) -> AuthzRecord {
        AuthzRecord {
            id: value.into(),
            account_id: "a".into(),
            identifier: Identifier::dns(value),
            status,
            expires: 2_000,
            wildcard,
            preauthorized: false,
            prevalidated_by: None,
            challenges: Vec::new(),
        }
    }

    #[test]
    fn subscriber_reasons_are_limited() {
        let subscriber = Revoker::CertificateKey("t".into());
        for ok in [None, Some(0), Some(1), Some(3), Some(4), Some(5)] {
            assert!(check_reason(ok, &subscriber).is_ok(), "{ok:?}");
        }
        for bad in [2, 6, 7, 8, 9, 10, 11, -1, 256] {
            let err = check_reason(Some(bad), &subscriber).unwrap_err();
            assert_eq!(err.kind, ErrorKind::BadRevocationReason, "{bad}");
        }
        assert_eq!(check_reason(Some(9), &Revoker::Operator).unwrap(), 9);
        assert!(check_reason(Some(6), &Revoker::Operator).is_err());
    }

    #[test]
    fn authorizations_must_cover_every_identifier() {
        use AuthorizationStatus::{Pending, Valid};
        let names = [Identifier::dns("a.test"), Identifier::dns("*.b.test")];
        let both = [authz("a.test", false, Valid), authz("b.test", true, Valid)];
        assert!(covered(&names, &both, 1_000));
        // Expired at 2 000.
        assert!(!covered(&names, &both, 2_000));
        let not_wild = [authz("a.test", false, Valid), authz("b.test", false, Valid)];
        assert!(!covered(&names, &not_wild, 1_000));
        let pending = [
            authz("a.test", false, Valid),
            authz("b.test", true, Pending),
        ];
        assert!(!covered(&names, &pending, 1_000));
        assert!(!covered(&[], &both, 1_000));
    }
}
