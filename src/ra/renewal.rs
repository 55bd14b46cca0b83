//! ACME Renewal Information (RFC 9773): when a certificate should be renewed, and the
//! `replaces` link from a new order to the certificate it renews.

use super::Ra;
use super::finalize::hex;
use crate::acme::ari::{CertId, suggested_window};
use crate::error::{Error, ErrorKind};
use crate::store::{CertRecord, OrderRecord, StoreReader, Tx};

/// A suggested renewal window, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalWindow {
    /// Renew no earlier than this.
    pub start: u64,
    /// Renew before this.
    pub end: u64,
}

/// Candidate store keys for a CertID serial: our serials are stored as the hex of the DER
/// INTEGER content, which keeps a leading zero byte when the top bit is set.
fn serial_keys(serial: &[u8]) -> Vec<String> {
    let mut keys = vec![hex(serial)];
    if let Some(rest) = serial.strip_prefix(&[0]) {
        keys.push(hex(rest));
    } else {
        keys.push(format!("00{}", hex(serial)));
    }
    keys
}

/// Reads the certificate a CertID names, if this CA issued it.
trait CertSource {
    fn cert(&self, serial: &str) -> Result<Option<CertRecord>, Error>;
}

impl CertSource for StoreReader {
    fn cert(&self, serial: &str) -> Result<Option<CertRecord>, Error> {
        Ok(self.get(serial)?)
    }
}

impl CertSource for Tx<'_> {
    fn cert(&self, serial: &str) -> Result<Option<CertRecord>, Error> {
        Ok(self.get(serial)?)
    }
}

impl Ra {
    fn find_cert(&self, source: &dyn CertSource, id: &CertId) -> Result<CertRecord, Error> {
        // RFC 9773 §4.1: the CertID's keyIdentifier is our issuer's.
        if !self.inner.issuer.key_identifier_matches(&id.key_identifier) {
            return Err(Error::not_found(
                "the CertID names a certificate of another issuer",
            ));
        }
        for key in serial_keys(&id.serial) {
            if let Some(record) = source.cert(&key)? {
                return Ok(record);
            }
        }
        Err(Error::not_found("no certificate with this CertID"))
    }

    /// renewalInfo (RFC 9773 §4.2) for the certificate `cert_id` names.
    pub async fn renewal_info(&self, cert_id: &str) -> Result<RenewalWindow, Error> {
        let id = CertId::parse(cert_id)
            .map_err(|e| Error::malformed(format!("CertID {cert_id:?}: {e}")))?;
        let now = self.now();
        let ra = self.clone();
        let record = self.read(move |r| ra.find_cert(r, &id)).await?;
        let (start, end) = suggested_window(
            record.not_before,
            record.not_after,
            record.revocation.is_some(),
            now,
        );
        Ok(RenewalWindow { start, end })
    }

    /// RFC 9773 §5: checks `replaces` of a new order and marks the old certificate replaced,
    /// inside the transaction that creates the order.
    pub(crate) fn mark_replaced(
        &self,
        tx: &mut Tx<'_>,
        order: &OrderRecord,
        cert_id: &str,
    ) -> Result<(), Error> {
        let id = CertId::parse(cert_id)
            .map_err(|e| Error::malformed(format!("replaces {cert_id:?}: {e}")))?;
        let mut record = self.find_cert(tx, &id).map_err(|_| {
            Error::malformed(format!(
                "replaces {cert_id:?} names no certificate issued here"
            ))
        })?;
        if record.account_id != order.account_id {
            return Err(Error::unauthorized(
                "replaces names a certificate of another account",
            ));
        }
        if let Some(previous) = &record.replaced_by {
            // An abandoned or failed renewal does not count; one that issued or is issuing does.
            let still_live = tx.get::<OrderRecord>(previous)?.is_some_and(|o| {
                matches!(
                    o.status,
                    crate::acme::OrderStatus::Valid | crate::acme::OrderStatus::Processing
                )
            });
            if still_live {
                return Err(Error::new(
                    ErrorKind::AlreadyReplaced,
                    format!("certificate {} is already being replaced", record.serial),
                ));
            }
        }
        record.replaced_by = Some(order.id.clone());
        tx.put(&record)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_found_with_or_without_the_sign_byte() {
        assert_eq!(serial_keys(&[0x00, 0x87, 0x65]), ["008765", "8765"]);
        assert_eq!(serial_keys(&[0x12, 0x34]), ["1234", "001234"]);
    }
}
