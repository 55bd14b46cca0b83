//! State in one embedded redb file. The only module that imports `redb`.
//!
//! Writes go through [`Store::write`]: one short transaction per state change, in which the
//! caller reads, checks (compare-and-set on status) and writes; the transaction commits with
//! immediate durability only if the closure succeeds. Reads go through [`StoreReader`], which
//! the front end holds. All calls block: run them on blocking threads.
//!
//! A storage fault (a full disk, an I/O error) fails the request that met it with
//! [`StoreError::Unavailable`] (503 with `Retry-After` at the edge); redb then refuses every
//! later operation until the file is reopened, so the store reopens it, and the state is the
//! last commit that succeeded.

mod codec;
pub mod record;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, ReadableDatabase, ReadableMultimapTable, ReadableTable, TableDefinition,
    WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use record::{
    AccountRecord, AuthzRecord, BlockedKey, CertRecord, ChallengeRecord, CrlRecord, EabCredential,
    EabKeyRecord, IssuanceIntent, OpenItem, OrderRecord, QuotaLedger, RateLimitRecord, Revocation,
    ValidationInFlight,
};
use tables::*;

use crate::error::Error;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (corruption, a bug, …).
    #[error("database: {0}")]
    Database(String),
    /// The state file cannot be read or written now (a full disk, an I/O error): retryable.
    #[error("state file unavailable: {0}")]
    Unavailable(String),
    /// A record could not be encoded or decoded.
    #[error("record encoding: {0}")]
    Codec(String),
    /// The file was written by a newer hsm-acme.
    #[error("state file has schema version {found}; this hsm-acme reads up to {supported}")]
    Schema {
        /// Version in the file.
        found: u64,
        /// Newest version this build reads.
        supported: u64,
    },
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::unavailable(format!("store: {e}")),
            other => Self::internal(format!("store: {other}")),
        }
    }
}

/// Sorts redb's failures: those of the storage under it are retryable, the rest are not.
fn db_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        e @ (redb::Error::Io(_)
        | redb::Error::PreviousIo
        | redb::Error::DatabaseClosed
        | redb::Error::Backend(_)
        | redb::Error::DatabaseAlreadyOpen) => StoreError::Unavailable(e.to_string()),
        e => StoreError::Database(e.to_string()),
    }
}

/// A record kept in its own table under a string key.
pub trait Keyed: Serialize + DeserializeOwned {
    /// Its table.
    #[doc(hidden)]
    const TABLE: TableDefinition<'static, &'static str, &'static [u8]>;
    /// Its key.
    fn key(&self) -> &str;
}

macro_rules! keyed {
    ($record:ty, $table:expr, $field:ident) => {
        impl Keyed for $record {
            const TABLE: TableDefinition<'static, &'static str, &'static [u8]> = $table;
            fn key(&self) -> &str {
                &self.$field
            }
        }
    };
}

keyed!(AccountRecord, ACCOUNTS, id);
keyed!(OrderRecord, ORDERS, id);
keyed!(AuthzRecord, AUTHZS, id);
keyed!(CertRecord, CERTS, serial);
keyed!(IssuanceIntent, ISSUANCE_INTENTS, serial);
keyed!(ValidationInFlight, VALIDATIONS_IN_FLIGHT, key);
keyed!(BlockedKey, BLOCKED_KEYS, spki_sha256);
keyed!(CrlRecord, CRLS, ca);
keyed!(EabKeyRecord, EAB_KEYS, kid);
keyed!(RateLimitRecord, RATE_LIMITS, key);
keyed!(QuotaLedger, QUOTAS, key);

/// Read-write access to the state file.
#[derive(Debug, Clone)]
pub struct Store {
    file: Arc<StateFile>,
}

/// Read-only access, for the front end.
#[derive(Debug, Clone)]
pub struct StoreReader {
    file: Arc<StateFile>,
}

/// The open database, shared by the writer and the readers, and reopened after a fault.
#[derive(Debug)]
struct StateFile {
    path: PathBuf,
    slot: RwLock<Slot>,
}

#[derive(Debug)]
struct Slot {
    /// `None` from a fault until a reopen succeeds.
    db: Option<Arc<Database>>,
    /// The last reopen attempt, so a disk that stays broken is not hammered.
    last_attempt: Option<Instant>,
}

/// How often a broken state file is tried again.
const REOPEN_INTERVAL: Duration = Duration::from_millis(200);

impl StateFile {
    /// The open database, reopening it if a fault closed it.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = &self.slot.read().unwrap_or_else(PoisonError::into_inner).db {
            return Ok(Arc::clone(db));
        }
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = &slot.db {
            return Ok(Arc::clone(db));
        }
        if slot
            .last_attempt
            .is_some_and(|at| at.elapsed() < REOPEN_INTERVAL)
        {
            return Err(StoreError::Unavailable(
                "the state file is being reopened after a storage fault".into(),
            ));
        }
        slot.last_attempt = Some(Instant::now());
        // Fails with `DatabaseAlreadyOpen` while a request still holds the faulted handle;
        // the next attempt, once it has let go, succeeds.
        let db = Arc::new(Database::create(&self.path).map_err(db_err)?);
        tracing::warn!(path = %self.path.display(), "state file reopened after a storage fault");
        slot.db = Some(Arc::clone(&db));
        Ok(db)
    }

    /// Takes a database that met a storage fault out of use: redb answers `PreviousIo` to
    /// everything after an I/O error until it is closed, which happens when the last request
    /// holding it lets go.
    fn retire(&self, failed: &Arc<Database>, cause: &StoreError) {
        let mut slot = self.slot.write().unwrap_or_else(PoisonError::into_inner);
        if slot.db.as_ref().is_some_and(|db| Arc::ptr_eq(db, failed)) {
            tracing::error!(path = %self.path.display(), error = %cause, "storage fault; reopening the state file");
            slot.db = None;
            slot.last_attempt = None;
        }
    }

    /// Runs a read on the database, retiring it if the read met a storage fault.
    fn read<R>(&self, f: impl FnOnce(&Database) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let db = self.db()?;
        let result = f(&db);
        if let Err(e @ StoreError::Unavailable(_)) = &result {
            self.retire(&db, e);
        }
        result
    }
}

impl Store {
    /// Opens (or creates) the state file and checks its schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Database(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(db_err)?;
        {
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let found = meta
                .get("schema_version")
                .map_err(db_err)?
                .map(|v| v.value());
            match found {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::Schema {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)
                        .map_err(db_err)?;
                }
            }
            for table in [
                ACCOUNTS,
                ORDERS,
                AUTHZS,
                CERTS,
                ISSUANCE_INTENTS,
                VALIDATIONS_IN_FLIGHT,
                BLOCKED_KEYS,
                CRLS,
                EAB_KEYS,
                RATE_LIMITS,
                QUOTAS,
            ] {
                txn.open_table(table).map_err(db_err)?;
            }
            txn.open_table(ACCOUNT_BY_KEY).map_err(db_err)?;
            txn.open_multimap_table(ORDERS_BY_ACCOUNT).map_err(db_err)?;
            txn.open_multimap_table(CERTS_BY_ACCOUNT).map_err(db_err)?;
            txn.open_multimap_table(REVOKED_BY_CA).map_err(db_err)?;
            txn.open_multimap_table(AUTHZS_BY_ACCOUNT).map_err(db_err)?;
            txn.open_multimap_table(AUTHZS_BY_IDENTIFIER)
                .map_err(db_err)?;
            txn.open_multimap_table(ACCOUNTS_BY_EAB).map_err(db_err)?;
        }
        index_old_authorizations(&txn)?;
        txn.commit().map_err(db_err)?;
        Ok(Self {
            file: Arc::new(StateFile {
                path: path.to_owned(),
                slot: RwLock::new(Slot {
                    db: Some(Arc::new(db)),
                    last_attempt: None,
                }),
            }),
        })
    }

    /// A read-only handle.
    pub fn reader(&self) -> StoreReader {
        StoreReader {
            file: Arc::clone(&self.file),
        }
    }

    /// Runs `f` in one write transaction; commits (durably) only when it returns `Ok`.
    ///
    /// A failed commit leaves the file as it was before the transaction (redb commits by
    /// switching a header slot); its error is `Unavailable`, and the database is reopened, as
    /// redb requires after a failed commit.
    pub fn write<R>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<R, Error>) -> Result<R, Error> {
        let db = self.file.db()?;
        let txn = match db.begin_write().map_err(db_err) {
            Ok(txn) => txn,
            Err(e) => return Err(self.fault(&db, e)),
        };
        let result = {
            let mut tx = Tx { txn: &txn };
            f(&mut tx)
        };
        match result {
            Ok(value) => match txn.commit() {
                Ok(()) => Ok(value),
                Err(e) => {
                    let e = match db_err(e) {
                        StoreError::Database(detail) => StoreError::Unavailable(detail),
                        other => other,
                    };
                    Err(self.fault(&db, e))
                }
            },
            // Abort checks redb's fault latch, so a closure that failed because the storage did
            // is told apart from one that refused the change.
            Err(e) => match txn.abort().map_err(db_err) {
                Ok(()) => Err(e),
                Err(fault) => Err(self.fault(&db, fault)),
            },
        }
    }

    fn fault(&self, db: &Arc<Database>, e: StoreError) -> Error {
        if matches!(e, StoreError::Unavailable(_)) {
            self.file.retire(db, &e);
        }
        e.into()
    }
}

/// An open write transaction.
pub struct Tx<'a> {
    txn: &'a WriteTransaction,
}

impl Tx<'_> {
    /// Reads a record.
    pub fn get<T: Keyed>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let table = self.txn.open_table(T::TABLE).map_err(db_err)?;
        let value = table.get(key).map_err(db_err)?;
        value.map(|v| codec::decode(v.value())).transpose()
    }

    /// Reads a record that must exist.
    pub fn require<T: Keyed>(&self, key: &str) -> Result<T, Error> {
        self.get(key)?
            .ok_or_else(|| Error::not_found(format!("no such resource {key:?}")))
    }

    /// Writes a record.
    pub fn put<T: Keyed>(&mut self, record: &T) -> Result<(), StoreError> {
        let bytes = codec::encode(record)?;
        let mut table = self.txn.open_table(T::TABLE).map_err(db_err)?;
        table
            .insert(record.key(), bytes.as_slice())
            .map_err(db_err)?;
        Ok(())
    }

    /// Deletes a record.
    pub fn delete<T: Keyed>(&mut self, key: &str) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(T::TABLE).map_err(db_err)?;
        table.remove(key).map_err(db_err)?;
        Ok(())
    }

    /// The account id registered for a key thumbprint.
    pub fn account_by_key(&self, thumbprint: &str) -> Result<Option<String>, StoreError> {
        let table = self.txn.open_table(ACCOUNT_BY_KEY).map_err(db_err)?;
        let value = table.get(thumbprint).map_err(db_err)?;
        Ok(value.map(|v| v.value().to_owned()))
    }

    /// Registers the account id for a key thumbprint.
    pub fn set_account_key(
        &mut self,
        thumbprint: &str,
        account_id: &str,
    ) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(ACCOUNT_BY_KEY).map_err(db_err)?;
        table.insert(thumbprint, account_id).map_err(db_err)?;
        Ok(())
    }

    /// Forgets a key thumbprint (after a key rollover).
    pub fn remove_account_key(&mut self, thumbprint: &str) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(ACCOUNT_BY_KEY).map_err(db_err)?;
        table.remove(thumbprint).map_err(db_err)?;
        Ok(())
    }

    /// Serials of an account's certificates.
    pub fn certs_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let table = self
            .txn
            .open_multimap_table(CERTS_BY_ACCOUNT)
            .map_err(db_err)?;
        collect_values(table.get(account_id).map_err(db_err)?)
    }

    /// Lists an order under its account.
    pub fn link_order(&mut self, account_id: &str, order_id: &str) -> Result<(), StoreError> {
        let mut table = self
            .txn
            .open_multimap_table(ORDERS_BY_ACCOUNT)
            .map_err(db_err)?;
        table.insert(account_id, order_id).map_err(db_err)?;
        Ok(())
    }

    /// Lists a certificate under its account.
    pub fn link_cert(&mut self, account_id: &str, serial: &str) -> Result<(), StoreError> {
        let mut table = self
            .txn
            .open_multimap_table(CERTS_BY_ACCOUNT)
            .map_err(db_err)?;
        table.insert(account_id, serial).map_err(db_err)?;
        Ok(())
    }

    /// Lists a revoked certificate under its CA, for the CRL.
    pub fn link_revoked(&mut self, ca: &str, serial: &str) -> Result<(), StoreError> {
        let mut table = self
            .txn
            .open_multimap_table(REVOKED_BY_CA)
            .map_err(db_err)?;
        table.insert(ca, serial).map_err(db_err)?;
        Ok(())
    }

    /// Lists an authorization under its account, and under its account and identifier.
    pub fn link_authz(&mut self, authz: &AuthzRecord) -> Result<(), StoreError> {
        self.index_authz(authz, true)
    }

    /// Adds (or removes) an authorization's entries in both authorization indexes.
    fn index_authz(&mut self, authz: &AuthzRecord, add: bool) -> Result<(), StoreError> {
        let by_identifier = identifier_key(&authz.account_id, &authz.identifier, authz.wildcard);
        for (index, key) in [
            (AUTHZS_BY_ACCOUNT, authz.account_id.as_str()),
            (AUTHZS_BY_IDENTIFIER, by_identifier.as_str()),
        ] {
            let mut table = self.txn.open_multimap_table(index).map_err(db_err)?;
            if add {
                table.insert(key, authz.id.as_str()).map_err(db_err)?;
            } else {
                table.remove(key, authz.id.as_str()).map_err(db_err)?;
            }
        }
        Ok(())
    }

    /// Ids of an account's authorizations for one identifier.
    pub fn authzs_for(
        &self,
        account_id: &str,
        identifier: &crate::acme::Identifier,
        wildcard: bool,
    ) -> Result<Vec<String>, StoreError> {
        let table = self
            .txn
            .open_multimap_table(AUTHZS_BY_IDENTIFIER)
            .map_err(db_err)?;
        let key = identifier_key(account_id, identifier, wildcard);
        collect_values(table.get(key.as_str()).map_err(db_err)?)
    }

    /// Ids of an account's authorizations.
    pub fn authzs_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let table = self
            .txn
            .open_multimap_table(AUTHZS_BY_ACCOUNT)
            .map_err(db_err)?;
        collect_values(table.get(account_id).map_err(db_err)?)
    }

    /// Ids of an account's orders.
    pub fn orders_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        let table = self
            .txn
            .open_multimap_table(ORDERS_BY_ACCOUNT)
            .map_err(db_err)?;
        collect_values(table.get(account_id).map_err(db_err)?)
    }

    /// Lists an account under the EAB key that bound it.
    pub fn link_eab_account(&mut self, kid: &str, account_id: &str) -> Result<(), StoreError> {
        let mut table = self
            .txn
            .open_multimap_table(ACCOUNTS_BY_EAB)
            .map_err(db_err)?;
        table.insert(kid, account_id).map_err(db_err)?;
        Ok(())
    }

    /// Up to `limit` records of a type whose keys follow `after` (all from the start when
    /// `after` is empty), in key order: a table is walked in small steps.
    pub fn page<T: Keyed>(&self, after: &str, limit: usize) -> Result<Vec<T>, StoreError> {
        use std::ops::Bound;
        let table = self.txn.open_table(T::TABLE).map_err(db_err)?;
        let start = if after.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(after)
        };
        let mut out = Vec::new();
        for entry in table
            .range::<&str>((start, Bound::Unbounded))
            .map_err(db_err)?
            .take(limit)
        {
            let (_, value) = entry.map_err(db_err)?;
            out.push(codec::decode(value.value())?);
        }
        Ok(out)
    }

    /// Removes an order and its place in its account's list.
    pub fn remove_order(&mut self, order: &OrderRecord) -> Result<(), StoreError> {
        self.delete::<OrderRecord>(&order.id)?;
        let mut table = self
            .txn
            .open_multimap_table(ORDERS_BY_ACCOUNT)
            .map_err(db_err)?;
        table
            .remove(order.account_id.as_str(), order.id.as_str())
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes an authorization and its places in both indexes.
    pub fn remove_authz(&mut self, authz: &AuthzRecord) -> Result<(), StoreError> {
        self.delete::<AuthzRecord>(&authz.id)?;
        self.index_authz(authz, false)
    }

    /// Every record of a type (for start-up recovery; tables of pending work are small).
    pub fn all<T: Keyed>(&self) -> Result<Vec<T>, StoreError> {
        decode_all(&self.txn.open_table(T::TABLE).map_err(db_err)?)
    }
}

impl StoreReader {
    /// Reads a record.
    pub fn get<T: Keyed>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(T::TABLE).map_err(db_err)?;
            let value = table.get(key).map_err(db_err)?;
            value.map(|v| codec::decode(v.value())).transpose()
        })
    }

    /// The account id registered for a key thumbprint.
    pub fn account_by_key(&self, thumbprint: &str) -> Result<Option<String>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_table(ACCOUNT_BY_KEY).map_err(db_err)?;
            let value = table.get(thumbprint).map_err(db_err)?;
            Ok(value.map(|v| v.value().to_owned()))
        })
    }

    /// Ids of an account's orders, in key order.
    pub fn orders_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_multimap_table(ORDERS_BY_ACCOUNT).map_err(db_err)?;
            collect_values(table.get(account_id).map_err(db_err)?)
        })
    }

    /// Every record of a type, in key order (operator listings).
    pub fn all<T: Keyed>(&self) -> Result<Vec<T>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            decode_all(&txn.open_table(T::TABLE).map_err(db_err)?)
        })
    }

    /// Serials of an account's certificates.
    pub fn certs_of(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_multimap_table(CERTS_BY_ACCOUNT).map_err(db_err)?;
            collect_values(table.get(account_id).map_err(db_err)?)
        })
    }

    /// Ids of the accounts an EAB key bound.
    pub fn accounts_of_eab(&self, kid: &str) -> Result<Vec<String>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let table = txn.open_multimap_table(ACCOUNTS_BY_EAB).map_err(db_err)?;
            collect_values(table.get(kid).map_err(db_err)?)
        })
    }

    /// Every revoked certificate of a CA, read in one snapshot.
    pub fn revoked_of(&self, ca: &str) -> Result<Vec<CertRecord>, StoreError> {
        self.file.read(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let index = txn.open_multimap_table(REVOKED_BY_CA).map_err(db_err)?;
            let certs = txn.open_table(CERTS).map_err(db_err)?;
            let mut out = Vec::new();
            for serial in collect_values(index.get(ca).map_err(db_err)?)? {
                if let Some(value) = certs.get(serial.as_str()).map_err(db_err)? {
                    out.push(codec::decode(value.value())?);
                }
            }
            Ok(out)
        })
    }
}

/// Authorizations written before the account+identifier index existed are indexed once,
/// when the file is first opened by a version that has it; a meta flag records it.
fn index_old_authorizations(txn: &WriteTransaction) -> Result<(), StoreError> {
    const FLAG: &str = "authz_identifier_index";
    if txn
        .open_table(META)
        .map_err(db_err)?
        .get(FLAG)
        .map_err(db_err)?
        .is_some()
    {
        return Ok(());
    }
    let mut tx = Tx { txn };
    for authz in tx.all::<AuthzRecord>()? {
        tx.link_authz(&authz)?;
    }
    txn.open_table(META)
        .map_err(db_err)?
        .insert(FLAG, 1)
        .map_err(db_err)?;
    Ok(())
}

/// Every record in `table`, decoded.
fn decode_all<T: Keyed>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter().map_err(db_err)? {
        let (_, value) = entry.map_err(db_err)?;
        out.push(codec::decode(value.value())?);
    }
    Ok(out)
}

fn identifier_key(
    account_id: &str,
    identifier: &crate::acme::Identifier,
    wildcard: bool,
) -> String {
    format!(
        "{account_id}\0{}:{}\0{}",
        identifier.kind,
        identifier.value,
        u8::from(wildcard)
    )
}

fn collect_values(
    values: redb::MultimapValue<'_, &'static str>,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for value in values {
        out.push(value.map_err(db_err)?.value().to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acme::AccountStatus;
    use crate::error::ErrorKind;

    fn account(id: &str) -> AccountRecord {
        AccountRecord {
            id: id.into(),
            status: AccountStatus::Valid,
            contact: vec![],
            tos_agreed: Some(true),
            tos_version: None,
            approval_expires: None,
            jwk: serde_json::json!({"kty": "EC"}),
            thumbprint: format!("thumb-{id}"),
            created: 1,
            eab_kid: None,
            profile: "default".into(),
        }
    }

    #[test]
    fn a_failed_closure_writes_nothing_and_reopening_keeps_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .write(|tx| {
                    tx.put(&account("a"))?;
                    tx.set_account_key("thumb-a", "a")?;
                    Ok(())
                })
                .unwrap();
            let err = store
                .write(|tx| {
                    tx.put(&account("b"))?;
                    Err::<(), _>(Error::malformed("changed my mind"))
                })
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Malformed);
        }
        let store = Store::open(&path).unwrap();
        let reader = store.reader();
        assert_eq!(
            reader.get::<AccountRecord>("a").unwrap(),
            Some(account("a"))
        );
        assert_eq!(reader.get::<AccountRecord>("b").unwrap(), None);
        assert_eq!(
            reader.account_by_key("thumb-a").unwrap().as_deref(),
            Some("a")
        );
    }

    #[test]
    fn orders_are_listed_per_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .write(|tx| {
                tx.link_order("acct", "o2")?;
                tx.link_order("acct", "o1")?;
                tx.link_order("other", "o3")?;
                Ok(())
            })
            .unwrap();
        assert_eq!(store.reader().orders_of("acct").unwrap(), ["o1", "o2"]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        drop(Store::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 99)
                .unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Schema { found: 99, .. })
        ));
    }

    #[test]
    fn authorizations_from_before_the_index_are_indexed_once_on_open() {
        use crate::acme::{AuthorizationStatus, Identifier};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let authz = AuthzRecord {
            id: "z1".into(),
            account_id: "acct".into(),
            identifier: Identifier::dns("old.test"),
            status: AuthorizationStatus::Valid,
            expires: 2_000_000_000,
            wildcard: false,
            preauthorized: false,
            prevalidated_by: None,
            challenges: vec![],
        };
        {
            // An older file: the authorization is stored but not indexed.
            let store = Store::open(&path).unwrap();
            let stored = authz.clone();
            store.write(move |tx| Ok(tx.put(&stored)?)).unwrap();
        }
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .remove("authz_identifier_index")
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let found = store
            .write(|tx| Ok(tx.authzs_for("acct", &Identifier::dns("old.test"), false)?))
            .unwrap();
        assert_eq!(found, ["z1"]);
    }
}
