//! What relying parties fetch without ACME: each CA's certificate (the AIA caIssuers target)
//! and its CRL (the CRL distribution point), kept in memory for the plain-HTTP listener.
//!
//! CRLs are signed on the token (RFC 5280 §5) after every revocation, debounced so a burst
//! of revocations costs one signature, and on a schedule: a CRL is re-signed once half of
//! its lifetime has passed, so a fresh one is always out well before nextUpdate. The newest
//! CRL of each CA is stored, so a restart serves it again and the CRL number only rises.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use der::pem::LineEnding;
use der::{Encode, EncodePem};
use x509_cert::Certificate;
use x509_cert::serial_number::SerialNumber;

use crate::ca::CaError;
use crate::ca::crl::{CrlRequest, RevocationReason, RevokedEntry, sign_crl};
use crate::ca::distribution::crl_path;
use crate::clock::Clock;
use crate::error::Error;
use crate::hsm::{HsmRunner, Signer};
use crate::store::{CertRecord, CrlRecord, Store};

/// How long after a revocation the CRL is re-signed: later revocations in this window
/// land on the same CRL.
const DEBOUNCE: Duration = Duration::from_secs(1);
/// How often the schedule is checked.
const TICK: Duration = Duration::from_secs(60);
/// How far thisUpdate is set back, for relying parties whose clocks run a little behind.
const BACKDATE: u64 = 300;

/// A CA whose CRL hsm-acme signs.
#[derive(Debug, Clone)]
pub struct CrlAuthority {
    /// Its name in the configuration and in URLs.
    pub name: String,
    /// Its certificate.
    pub certificate: Certificate,
    /// Its key on the token.
    pub signer: Arc<dyn Signer>,
}

/// One published file.
#[derive(Debug, Clone)]
pub struct Published {
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: Bytes,
}

/// The files the publication listener serves, and the CRL schedule.
#[derive(Debug)]
pub struct Publisher {
    files: RwLock<BTreeMap<String, Published>>,
    authorities: Vec<CrlAuthority>,
    store: Store,
    runner: HsmRunner,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
}

/// The CRL entries for the revoked certificates in `records`.
fn entries(records: &[CertRecord]) -> Result<Vec<RevokedEntry>, Error> {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let Some(revocation) = record.revocation else {
            continue;
        };
        let bytes = hex_bytes(&record.serial)
            .ok_or_else(|| Error::internal(format!("stored serial {:?}", record.serial)))?;
        let serial = SerialNumber::new(&bytes)
            .map_err(|e| Error::internal(format!("serial {}: {e}", record.serial)))?;
        out.push(RevokedEntry {
            serial,
            revoked_at: UNIX_EPOCH + Duration::from_secs(revocation.at),
            reason: RevocationReason::try_from(revocation.reason).ok(),
        });
    }
    Ok(out)
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Publisher {
    /// A publisher for `authorities`; their certificates are published at once, their CRLs
    /// once [`Publisher::refresh_all`] runs.
    pub fn new(
        authorities: Vec<CrlAuthority>,
        store: Store,
        runner: HsmRunner,
        clock: Arc<dyn Clock>,
        lifetime: Duration,
    ) -> Result<Arc<Self>, Error> {
        let mut files = BTreeMap::new();
        for ca in &authorities {
            let der = ca
                .certificate
                .to_der()
                .map_err(|e| Error::internal(e.to_string()))?;
            let pem = ca
                .certificate
                .to_pem(LineEnding::LF)
                .map_err(|e| Error::internal(e.to_string()))?;
            // RFC 5280 §4.2.2.1: caIssuers points at a DER certificate.
            files.insert(
                format!("/ca/{}.crt", ca.name),
                Published {
                    content_type: "application/pkix-cert",
                    body: Bytes::from(der),
                },
            );
            files.insert(
                format!("/ca/{}.pem", ca.name),
                Published {
                    content_type: "application/x-pem-file",
                    body: Bytes::from(pem),
                },
            );
        }
        Ok(Arc::new(Self {
            files: RwLock::new(files),
            authorities,
            store,
            runner,
            clock,
            lifetime,
        }))
    }

    /// The file at `path`, if there is one.
    pub fn get(&self, path: &str) -> Option<Published> {
        self.files.read().ok()?.get(path).cloned()
    }

    fn publish_crl(&self, ca: &str, der: Vec<u8>) {
        if let Ok(mut files) = self.files.write() {
            files.insert(
                crl_path(ca),
                Published {
                    content_type: "application/pkix-crl",
                    body: Bytes::from(der),
                },
            );
        }
    }

    /// Brings every CA's CRL up to date: the stored one is served while it is in the first
    /// half of its life; otherwise, or with `force`, a new one is signed.
    pub async fn refresh_all(&self, force: bool) -> Result<(), Error> {
        let mut first_error = None;
        for ca in &self.authorities {
            if let Err(e) = self.refresh(ca, force).await {
                tracing::error!(ca = %ca.name, error = %e.detail, "CRL not published");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Signs and publishes the next CRL of the CA called `name` now, and returns it.
    pub async fn resign(&self, name: &str) -> Result<CrlRecord, Error> {
        let ca = self
            .authorities
            .iter()
            .find(|ca| ca.name == name)
            .ok_or_else(|| {
                Error::not_found(format!("no CRL is signed for a CA called {name:?}"))
            })?;
        self.refresh(ca, true).await
    }

    /// Publishes `ca`'s current CRL, signing a new one first if it is due or `force`d;
    /// returns what is published.
    async fn refresh(&self, ca: &CrlAuthority, force: bool) -> Result<CrlRecord, Error> {
        let now = self.clock.now();
        let name = ca.name.clone();
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.reader().get::<CrlRecord>(&name))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        if let Some(record) = &stored {
            let half_life = (record.next_update.saturating_sub(record.this_update)) / 2;
            if !force && now < record.this_update + half_life {
                self.publish_crl(&ca.name, record.der.clone());
                return Ok(record.clone());
            }
        }
        let record = self
            .sign(ca, stored.map_or(1, |r| r.number + 1), now)
            .await?;
        tracing::info!(ca = %ca.name, number = record.number, "CRL signed");
        self.publish_crl(&ca.name, record.der.clone());
        Ok(record)
    }

    /// Signs CRL number `number` of `ca` at `now` and stores it.
    async fn sign(&self, ca: &CrlAuthority, number: u64, now: u64) -> Result<CrlRecord, Error> {
        let name = ca.name.clone();
        let store = self.store.clone();
        let revoked = tokio::task::spawn_blocking(move || store.reader().revoked_of(&name))
            .await
            .map_err(|e| Error::internal(e.to_string()))??;
        let (ca_owned, lifetime) = (ca.clone(), self.lifetime);
        let record = self
            .runner
            .run(move || {
                signed_record(&ca_owned, number, now, lifetime, &revoked).map_err(|e| match e {
                    CaError::Token(t) => t,
                    other => crate::hsm::TokenError::Malformed(other.to_string()),
                })
            })
            .await?;
        let stored = record.clone();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            store.write(|tx| {
                // Numbers only rise, even if another writer got here first.
                if let Some(existing) = tx.get::<CrlRecord>(&stored.ca)?
                    && existing.number >= stored.number
                {
                    return Err(Error::internal(format!(
                        "CRL number {} of {} is already taken",
                        stored.number, stored.ca
                    )));
                }
                tx.put(&stored)?;
                Ok(())
            })
        })
        .await
        .map_err(|e| Error::internal(e.to_string()))??;
        Ok(record)
    }

    /// Keeps CRLs current until `shutdown`: the CRL of a CA that revoked is re-signed
    /// after the debounce, and every CRL on schedule.
    pub async fn run(
        self: Arc<Self>,
        mut revoked_cas: tokio::sync::mpsc::UnboundedReceiver<String>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                Some(first) = revoked_cas.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    let mut cas = std::collections::BTreeSet::from([first]);
                    while let Ok(more) = revoked_cas.try_recv() {
                        cas.insert(more);
                    }
                    for name in cas {
                        if let Err(e) = self.resign(&name).await {
                            tracing::error!(ca = %name, error = %e.detail, "CRL not published");
                        }
                    }
                }
                // Failures are logged per CA; the next tick tries again.
                () = tokio::time::sleep(TICK) => {
                    let _ = self.refresh_all(false).await;
                }
                () = &mut shutdown => return,
            }
        }
    }
}

/// CRL number `number` of `ca` at `now` (Unix seconds) listing the revoked ones among
/// `records`, signed on the token. Blocking.
fn signed_record(
    ca: &CrlAuthority,
    number: u64,
    now: u64,
    lifetime: Duration,
    records: &[CertRecord],
) -> Result<CrlRecord, CaError> {
    let entries = entries(records).map_err(|e| CaError::Invalid(e.detail))?;
    let (this_update, next_update) = (now.saturating_sub(BACKDATE), now + lifetime.as_secs());
    let request = CrlRequest {
        number,
        this_update: UNIX_EPOCH + Duration::from_secs(this_update),
        next_update: UNIX_EPOCH + Duration::from_secs(next_update),
        entries: &entries,
    };
    Ok(CrlRecord {
        ca: ca.name.clone(),
        number,
        this_update,
        next_update,
        der: sign_crl(&ca.certificate, ca.signer.as_ref(), &request)?,
    })
}

/// Signs and stores the next CRL of `ca`, for `hsm-acme revoke` and `hsm-acme crl` while
/// the server is stopped (blocking).
pub fn sign_offline(
    ca: &CrlAuthority,
    store: &Store,
    lifetime: Duration,
    now: SystemTime,
) -> Result<CrlRecord, Error> {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Error::internal(e.to_string()))?
        .as_secs();
    let reader = store.reader();
    let number = reader
        .get::<CrlRecord>(&ca.name)?
        .map_or(1, |r| r.number + 1);
    let record = signed_record(ca, number, now, lifetime, &reader.revoked_of(&ca.name)?)
        .map_err(|e| Error::internal(e.to_string()))?;
    let stored = record.clone();
    store.write(move |tx| {
        tx.put(&stored)?;
        Ok(())
    })?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Revocation;

    fn record(serial: &str, revocation: Option<Revocation>) -> CertRecord {
        CertRecord {
            serial: serial.into(),
            account_id: "a".into(),
            order_id: "o".into(),
            ca: "issuing".into(),
            der: Vec::new(),
            issued: 0,
            not_after: 0,
            not_before: 0,
            revocation,
            replaced_by: None,
        }
    }

    #[test]
    fn only_revoked_certificates_become_entries() {
        let records = [
            record("00ff01", Some(Revocation { at: 10, reason: 1 })),
            record("1234", None),
            record("7f", Some(Revocation { at: 20, reason: 0 })),
        ];
        let out = entries(&records).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].serial.as_bytes(), [0x00, 0xff, 0x01]);
        assert_eq!(out[0].reason, Some(RevocationReason::KeyCompromise));
        assert_eq!(out[1].revoked_at, UNIX_EPOCH + Duration::from_secs(20));
        assert!(entries(&[record("abc", Some(Revocation { at: 1, reason: 1 }))]).is_err());
    }

    #[test]
    fn hex_is_decoded_strictly() {
        assert_eq!(hex_bytes("00ff"), Some(vec![0, 255]));
        assert_eq!(hex_bytes("0g"), None);
        assert_eq!(hex_bytes("f"), None);
    }
}
