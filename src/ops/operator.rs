//! The operator's commands: revocation and CRLs, EAB keys, accounts. One implementation
//! serves both ways in: the admin socket of a running server, and the command line on the
//! state file while the server is stopped, so both give the same answers.
//!
//! Every command is a JSON request; every answer carries a message for a person and the
//! same facts as JSON (`--json`). A created HMAC key is in the answer once and nowhere else:
//! not in the state file (sealed there), not in a log.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroize;

use crate::clock::{Clock, rfc3339};
use crate::error::Error;
use crate::hsm::Sealer;
use crate::policy::pattern::IdentifierPattern;
use crate::ra::eab::{self, KeyState, NewCredential, NewEabKey};
use crate::ra::{Revoker, check_reason, deactivate_account_in, revoke_in};
use crate::store::{
    AccountRecord, CertRecord, CrlRecord, EabCredential, EabKeyRecord, OrderRecord, Store,
};

/// An operator command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Revoke the certificate with this serial (hex).
    Revoke {
        /// Serial number, hex.
        serial: String,
        /// RFC 5280 reason code.
        reason: i64,
    },
    /// Sign the next CRL of a CA now and return it.
    Crl {
        /// The CA's name.
        ca: String,
    },
    /// Create an EAB key.
    EabCreate(EabCreateRequest),
    /// List EAB keys.
    EabList,
    /// Show one EAB key (never its secret) and the accounts it bound.
    EabShow {
        /// The key id.
        kid: String,
    },
    /// Revoke an EAB key.
    EabRevoke {
        /// The key id.
        kid: String,
    },
    /// List accounts.
    AccountList,
    /// Show one account with its orders and certificates.
    AccountShow {
        /// The account id (the last segment of its URL).
        id: String,
    },
    /// Deactivate an account.
    AccountDeactivate {
        /// The account id.
        id: String,
    },
    /// The configuration text the server runs with.
    RunningConfig,
    /// Approve an account that awaits approval.
    AccountApprove {
        /// The account id.
        id: String,
    },
    /// Reject an account that awaits approval: it is deactivated.
    AccountReject {
        /// The account id.
        id: String,
    },
}

impl AdminRequest {
    /// Whether carrying it out on the state file needs the token (to seal or to sign).
    pub fn needs_token(&self) -> bool {
        match self {
            Self::Revoke { .. } | Self::Crl { .. } => true,
            Self::EabCreate(create) => create.public_key_pem.is_none(),
            _ => false,
        }
    }
}

/// `eab create`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EabCreateRequest {
    /// The ACME profile.
    pub profile: String,
    /// HS256 (default), HS384 or HS512; for HMAC keys.
    #[serde(default)]
    pub alg: Option<String>,
    /// A PEM public key or certificate: a public-key EAB key instead of an HMAC key.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Patterns bound accounts may order.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Patterns bound accounts get valid authorizations for without a challenge.
    #[serde(default)]
    pub prevalidated_domains: Vec<String>,
    /// Unix time after which it binds no account.
    #[serde(default)]
    pub expires: Option<u64>,
    /// Whether it binds more than one account.
    #[serde(default)]
    pub reusable: bool,
    /// The operator's note.
    #[serde(default)]
    pub label: Option<String>,
}

/// The answer to an [`AdminRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdminResponse {
    /// Whether the command was carried out.
    pub ok: bool,
    /// What happened, for a person.
    pub message: String,
    /// The same, for scripts (`--json`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// An answer may carry a new HMAC key: its text is wiped when the answer goes.
impl Drop for AdminResponse {
    fn drop(&mut self) {
        self.message.zeroize();
        wipe_strings(&mut self.data);
    }
}

/// Wipes every string in `value` (answers that may hold a new HMAC key).
pub fn wipe_strings(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        Value::Object(map) => map.values_mut().for_each(wipe_strings),
        _ => {}
    }
}

impl AdminResponse {
    /// The JSON data, taken out of the answer.
    pub fn take_data(&mut self) -> Value {
        std::mem::take(&mut self.data)
    }

    /// The message, taken out of the answer.
    pub fn take_message(&mut self) -> String {
        std::mem::take(&mut self.message)
    }

    /// A refusal.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
            data: Value::Null,
        }
    }

    fn done(message: String, data: Value) -> Self {
        Self {
            ok: true,
            message,
            data,
        }
    }
}

/// Signs a CA's next CRL right away (the running server's publisher, or the token directly
/// with the server stopped). Blocking.
pub trait CrlSigning: Send + Sync + std::fmt::Debug {
    /// Signs, stores and publishes the next CRL of `ca`.
    fn resign(&self, ca: &str) -> Result<CrlRecord, Error>;
}

/// Carries out operator commands on a state file. Blocking: the server calls it from a
/// blocking thread.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The state.
    pub store: Store,
    /// Names of the configured ACME profiles.
    pub profiles: Arc<std::sync::RwLock<Vec<String>>>,
    /// Account URLs are this prefix and the id (empty without a `[server]`).
    pub account_url_prefix: String,
    /// Seals new HMAC keys.
    pub sealer: Option<Arc<dyn Sealer>>,
    /// Signs CRLs after a revocation and on demand.
    pub crls: Option<Arc<dyn CrlSigning>>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The configuration text the server runs with (as last loaded at start or reload), for
    /// `check-config` to tell what a reload would change; `None` on the state file.
    pub running_config: Option<Arc<std::sync::RwLock<String>>>,
}

impl Operator {
    /// Carries out `request`; failures are answers too.
    pub fn execute(&self, request: AdminRequest) -> AdminResponse {
        let result = match request {
            AdminRequest::Revoke { serial, reason } => self.revoke(&serial, reason),
            AdminRequest::Crl { ca } => self.crl(&ca),
            AdminRequest::EabCreate(create) => self.eab_create(create),
            AdminRequest::EabList => self.eab_list(),
            AdminRequest::EabShow { kid } => self.eab_show(&kid),
            AdminRequest::EabRevoke { kid } => self.eab_revoke(&kid),
            AdminRequest::AccountList => self.account_list(),
            AdminRequest::AccountShow { id } => self.account_show(&id),
            AdminRequest::AccountDeactivate { id } => self.account_deactivate(&id),
            AdminRequest::RunningConfig => self.running_config(),
            AdminRequest::AccountApprove { id } => self.account_approve(&id, true),
            AdminRequest::AccountReject { id } => self.account_approve(&id, false),
        };
        result.unwrap_or_else(|e| AdminResponse::error(e.detail))
    }

    fn revoke(&self, serial: &str, reason: i64) -> Result<AdminResponse, Error> {
        let reason = check_reason(Some(reason), &Revoker::Operator)?;
        let serial = serial.trim().trim_start_matches("0x").replace(':', "");
        let now = self.clock.now();
        let record = self
            .store
            .write(|tx| revoke_in(tx, &Revoker::Operator, &serial, None, reason, now))?;
        tracing::info!(serial = %record.serial, reason, "certificate revoked by the operator");
        let mut message = format!("revoked certificate {} (reason {reason})", record.serial);
        let mut crl_number = Value::Null;
        if let Some(crls) = &self.crls {
            match crls.resign(&record.ca) {
                Ok(crl) => {
                    message.push_str(&format!(
                        "; signed CRL number {} of CA {:?}",
                        crl.number, record.ca
                    ));
                    crl_number = json!(crl.number);
                }
                // The revocation stands; the CRL follows at the next signing.
                Err(e) => message.push_str(&format!("; signing the CRL failed: {}", e.detail)),
            }
        }
        Ok(AdminResponse::done(
            message,
            json!({"serial": record.serial, "reason": reason, "ca": record.ca,
                   "crl_number": crl_number}),
        ))
    }

    fn crl(&self, ca: &str) -> Result<AdminResponse, Error> {
        let crls = self.crls.as_ref().ok_or_else(|| {
            Error::malformed("this server has no [publication]: it signs no CRLs")
        })?;
        let record = crls.resign(ca)?;
        Ok(AdminResponse::done(
            format!("signed CRL number {} of CA {ca:?}", record.number),
            json!({"ca": ca, "number": record.number, "crl": STANDARD.encode(&record.der)}),
        ))
    }

    fn eab_create(&self, create: EabCreateRequest) -> Result<AdminResponse, Error> {
        let profiles = self
            .profiles
            .read()
            .map_err(|_| Error::internal("endpoint list lock poisoned"))?
            .clone();
        if !profiles.contains(&create.profile) {
            return Err(Error::malformed(format!(
                "no ACME profile {:?}; configured: {}",
                create.profile,
                profiles.join(", ")
            )));
        }
        let patterns = |list: &[String]| -> Result<Vec<String>, Error> {
            list.iter()
                .map(|p| {
                    p.parse::<IdentifierPattern>()
                        .map(|p| p.to_string())
                        .map_err(Error::malformed)
                })
                .collect()
        };
        if create.label.as_ref().is_some_and(|l| l.len() > 200) {
            return Err(Error::malformed("labels are at most 200 bytes"));
        }
        let credential = match (&create.public_key_pem, &create.alg) {
            (Some(_), Some(_)) => {
                return Err(Error::malformed(
                    "--alg is for HMAC keys; a public key's algorithm follows from the key",
                ));
            }
            (Some(pem), None) => NewCredential::PublicKey(pem.clone()),
            (None, alg) => NewCredential::Hmac(alg.clone().unwrap_or_else(|| "HS256".into())),
        };
        let spec = NewEabKey {
            profile: create.profile,
            credential,
            allowed_domains: patterns(&create.allowed_domains)?,
            prevalidated_domains: patterns(&create.prevalidated_domains)?,
            expires: create.expires,
            reusable: create.reusable,
            label: create.label,
        };
        let created = eab::create_key(&self.store, self.sealer.as_deref(), spec, self.clock.now())?;
        let record = &created.record;
        tracing::info!(kid = %record.kid, profile = %record.profile,
            alg = %record.credential.alg(), "EAB key created");
        Ok(match &created.hmac_key {
            Some(key) => AdminResponse::done(
                format!(
                    "created EAB key for profile {:?} ({}{})\nkid:      {}\nhmac_key: {}\n\
                     The HMAC key is shown this once; hsm-acme keeps it only sealed by the token.",
                    record.profile,
                    record.credential.alg(),
                    if record.reusable {
                        ", reusable"
                    } else {
                        ", one account"
                    },
                    record.kid,
                    key.as_str()
                ),
                json!({"kid": record.kid, "hmac_key": key.as_str()}),
            ),
            None => AdminResponse::done(
                format!(
                    "registered public EAB key for profile {:?} ({}{})\nkid: {}",
                    record.profile,
                    record.credential.alg(),
                    if record.reusable {
                        ", reusable"
                    } else {
                        ", one account"
                    },
                    record.kid
                ),
                json!({"kid": record.kid, "alg": record.credential.alg()}),
            ),
        })
    }

    fn eab_list(&self) -> Result<AdminResponse, Error> {
        let keys = self.store.reader().all::<EabKeyRecord>()?;
        let now = self.clock.now();
        let mut lines = vec![format!(
            "{:<24} {:<10} {:<7} {:<8} {:>8}  {}",
            "KID", "PROFILE", "ALG", "STATE", "ACCOUNTS", "LABEL"
        )];
        for key in &keys {
            lines.push(format!(
                "{:<24} {:<10} {:<7} {:<8} {:>8}  {}",
                key.kid,
                key.profile,
                key.credential.alg(),
                KeyState::of(key, now).as_str(),
                key.bindings,
                key.label.as_deref().unwrap_or("")
            ));
        }
        let data: Vec<Value> = keys.iter().map(|k| key_json(k, now)).collect();
        Ok(AdminResponse::done(lines.join("\n"), Value::Array(data)))
    }

    fn eab_show(&self, kid: &str) -> Result<AdminResponse, Error> {
        let reader = self.store.reader();
        let key = reader
            .get::<EabKeyRecord>(kid)?
            .ok_or_else(|| Error::not_found(format!("no EAB key {kid:?}")))?;
        let accounts = reader.accounts_of_eab(kid)?;
        let now = self.clock.now();
        let list = |v: &[String]| {
            if v.is_empty() {
                "(any)".to_owned()
            } else {
                v.join(", ")
            }
        };
        let message = [
            format!("kid:                  {}", key.kid),
            format!("profile:              {}", key.profile),
            format!("kind:                 {}", key_kind(&key)),
            format!("state:                {}", KeyState::of(&key, now).as_str()),
            format!(
                "label:                {}",
                key.label.as_deref().unwrap_or("")
            ),
            format!("created:              {}", rfc3339(key.created)),
            format!(
                "expires:              {}",
                key.expires.map_or("never".into(), rfc3339)
            ),
            format!("reusable:             {}", key.reusable),
            format!("allowed domains:      {}", list(&key.allowed_domains)),
            format!(
                "prevalidated domains: {}",
                if key.prevalidated_domains.is_empty() {
                    "(none)".to_owned()
                } else {
                    key.prevalidated_domains.join(", ")
                }
            ),
            format!("accounts:             {}", accounts.join(", ")),
        ]
        .join("\n");
        let mut data = key_json(&key, now);
        data["accounts"] = json!(accounts);
        Ok(AdminResponse::done(message, data))
    }

    fn eab_revoke(&self, kid: &str) -> Result<AdminResponse, Error> {
        let now = self.clock.now();
        let key = self.store.write(|tx| eab::revoke_key_in(tx, kid, now))?;
        tracing::info!(kid = %key.kid, "EAB key revoked by the operator");
        Ok(AdminResponse::done(
            format!(
                "revoked EAB key {}: it binds no new account, and the {} account(s) it bound \
                 can order no more (their certificates stay valid; revoke them with \
                 `hsm-acme revoke` if they must go)",
                key.kid, key.bindings
            ),
            key_json(&key, now),
        ))
    }

    fn account_list(&self) -> Result<AdminResponse, Error> {
        let accounts = self.store.reader().all::<AccountRecord>()?;
        let mut lines = vec![format!(
            "{:<24} {:<11} {:<10} {:<24} {:<20} {}",
            "ID", "STATUS", "PROFILE", "EAB KID", "CREATED", "CONTACT"
        )];
        for a in &accounts {
            lines.push(format!(
                "{:<24} {:<11} {:<10} {:<24} {:<20} {}",
                a.id,
                if a.approval_expires.is_some() {
                    "awaiting"
                } else {
                    a.status.as_str()
                },
                a.profile,
                a.eab_kid.as_deref().unwrap_or("-"),
                rfc3339(a.created),
                a.contact.join(",")
            ));
        }
        let data: Vec<Value> = accounts.iter().map(|a| self.account_json(a)).collect();
        Ok(AdminResponse::done(lines.join("\n"), Value::Array(data)))
    }

    fn account_show(&self, id: &str) -> Result<AdminResponse, Error> {
        let reader = self.store.reader();
        let account = reader
            .get::<AccountRecord>(id)?
            .ok_or_else(|| Error::not_found(format!("no account {id:?}")))?;
        let mut orders = Vec::new();
        for order_id in reader.orders_of(id)? {
            if let Some(order) = reader.get::<OrderRecord>(&order_id)? {
                orders.push(json!({
                    "id": order.id,
                    "status": order.status,
                    "identifiers": order.identifiers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "created": rfc3339(order.created),
                    "certificate": order.certificate,
                }));
            }
        }
        let mut certificates = Vec::new();
        for serial in reader.certs_of(id)? {
            if let Some(cert) = reader.get::<CertRecord>(&serial)? {
                certificates.push(json!({
                    "serial": cert.serial,
                    "ca": cert.ca,
                    "not_after": rfc3339(cert.not_after),
                    "revoked": cert.revocation.map(|r| rfc3339(r.at)),
                }));
            }
        }
        let mut lines = vec![
            format!("id:       {}", account.id),
            format!("url:      {}{}", self.account_url_prefix, account.id),
            format!("status:   {}", account.status),
            format!("profile:  {}", account.profile),
            format!("eab kid:  {}", account.eab_kid.as_deref().unwrap_or("-")),
            format!("contact:  {}", account.contact.join(", ")),
            format!("created:  {}", rfc3339(account.created)),
            format!("orders:   {}", orders.len()),
        ];
        for o in &orders {
            lines.push(format!(
                "  {} {} {}",
                o["id"].as_str().unwrap_or(""),
                o["status"].as_str().unwrap_or(""),
                o["identifiers"]
                    .as_array()
                    .map(|ids| ids
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","))
                    .unwrap_or_default()
            ));
        }
        lines.push(format!("certificates: {}", certificates.len()));
        for c in &certificates {
            lines.push(format!(
                "  {} until {}{}",
                c["serial"].as_str().unwrap_or(""),
                c["not_after"].as_str().unwrap_or(""),
                c["revoked"]
                    .as_str()
                    .map(|at| format!(", revoked {at}"))
                    .unwrap_or_default()
            ));
        }
        let mut data = self.account_json(&account);
        data["orders"] = Value::Array(orders);
        data["certificates"] = Value::Array(certificates);
        Ok(AdminResponse::done(lines.join("\n"), data))
    }

    fn account_deactivate(&self, id: &str) -> Result<AdminResponse, Error> {
        let account = self.store.write(|tx| deactivate_account_in(tx, id))?;
        tracing::info!(account = %account.id, "account deactivated by the operator");
        Ok(AdminResponse::done(
            format!(
                "deactivated account {}; its pending and valid authorizations are deactivated",
                account.id
            ),
            self.account_json(&account),
        ))
    }

    fn running_config(&self) -> Result<AdminResponse, Error> {
        let text = self
            .running_config
            .as_ref()
            .ok_or_else(|| Error::not_found("only a running server knows its configuration"))?
            .read()
            .map_err(|_| Error::internal("configuration lock poisoned"))?
            .clone();
        Ok(AdminResponse::done(
            "the running configuration".into(),
            json!({ "text": text }),
        ))
    }

    /// Approves (or rejects) an account that awaits approval; a lapsed request may still be
    /// approved, as the operator decides.
    fn account_approve(&self, id: &str, approve: bool) -> Result<AdminResponse, Error> {
        let account = self.store.write(|tx| {
            let mut account = tx.require::<AccountRecord>(id)?;
            if account.approval_expires.is_none() {
                return Err(Error::malformed(format!(
                    "account {id} does not await approval"
                )));
            }
            account.approval_expires = None;
            tx.put(&account)?;
            if approve {
                Ok(account)
            } else {
                deactivate_account_in(tx, id)
            }
        })?;
        let verb = if approve { "approved" } else { "rejected" };
        tracing::info!(account = %account.id, "account {verb} by the operator");
        Ok(AdminResponse::done(
            format!(
                "{verb} account {}{}",
                account.id,
                if approve { "" } else { "; it is deactivated" }
            ),
            self.account_json(&account),
        ))
    }

    fn account_json(&self, a: &AccountRecord) -> Value {
        json!({
            "id": a.id,
            "url": format!("{}{}", self.account_url_prefix, a.id),
            "status": a.status,
            "profile": a.profile,
            "eab_kid": a.eab_kid,
            "awaits_approval_until": a.approval_expires.map(rfc3339),
            "contact": a.contact,
            "created": rfc3339(a.created),
        })
    }
}

fn key_kind(key: &EabKeyRecord) -> String {
    match &key.credential {
        EabCredential::Hmac { alg, .. } => format!("HMAC {alg} (sealed on the token)"),
        EabCredential::PublicKey { alg, .. } => format!("public key {alg}"),
    }
}

/// A key as scripts see it: everything but the secret.
fn key_json(key: &EabKeyRecord, now: u64) -> Value {
    let (kind, public_jwk) = match &key.credential {
        EabCredential::Hmac { .. } => ("hmac", Value::Null),
        EabCredential::PublicKey { jwk, .. } => ("public-key", jwk.clone()),
    };
    json!({
        "kid": key.kid,
        "profile": key.profile,
        "kind": kind,
        "alg": key.credential.alg(),
        "public_jwk": public_jwk,
        "state": KeyState::of(key, now).as_str(),
        "label": key.label,
        "reusable": key.reusable,
        "created": rfc3339(key.created),
        "expires": key.expires.map(rfc3339),
        "revoked": key.revoked.map(rfc3339),
        "allowed_domains": key.allowed_domains,
        "prevalidated_domains": key.prevalidated_domains,
        "accounts_bound": key.bindings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let request = AdminRequest::Revoke {
            serial: "0abc".into(),
            reason: 4,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"op":"revoke","serial":"0abc","reason":4}"#);
        assert_eq!(
            serde_json::from_str::<AdminRequest>(&json).unwrap(),
            request
        );
        assert!(serde_json::from_str::<AdminRequest>(r#"{"op":"drop-tables"}"#).is_err());
        let create: AdminRequest = serde_json::from_str(
            r#"{"op":"eab-create","profile":"default","alg":"HS512","reusable":true}"#,
        )
        .unwrap();
        assert_eq!(
            create,
            AdminRequest::EabCreate(EabCreateRequest {
                profile: "default".into(),
                alg: Some("HS512".into()),
                reusable: true,
                ..EabCreateRequest::default()
            })
        );
        assert!(create.needs_token());
        let list: AdminRequest = serde_json::from_str(r#"{"op":"account-list"}"#).unwrap();
        assert!(!list.needs_token());
    }

    #[test]
    fn an_operator_without_a_sealing_key_refuses_hmac_keys_and_accepts_public_keys() {
        let dir = tempfile::tempdir().unwrap();
        let operator = Operator {
            store: Store::open(&dir.path().join("s.redb")).unwrap(),
            profiles: Arc::new(std::sync::RwLock::new(vec!["default".into()])),
            account_url_prefix: "https://ca.test/acme/acct/".into(),
            sealer: None,
            crls: None,
            clock: Arc::new(crate::clock::SettableClock::new(1_000)),
            running_config: None,
        };
        let hmac = operator.execute(AdminRequest::EabCreate(EabCreateRequest {
            profile: "default".into(),
            ..EabCreateRequest::default()
        }));
        assert!(!hmac.ok);
        assert!(hmac.message.contains("[sealing]"), "{}", hmac.message);
        let unknown = operator.execute(AdminRequest::EabCreate(EabCreateRequest {
            profile: "other".into(),
            ..EabCreateRequest::default()
        }));
        assert!(!unknown.ok && unknown.message.contains("no ACME profile"));
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let created = operator.execute(AdminRequest::EabCreate(EabCreateRequest {
            profile: "default".into(),
            public_key_pem: Some(pair.public_key_pem()),
            allowed_domains: vec!["*.corp.example".into()],
            ..EabCreateRequest::default()
        }));
        assert!(created.ok, "{}", created.message);
        assert_eq!(created.data["alg"], "EdDSA");
        let kid = created.data["kid"].as_str().unwrap().to_owned();
        let shown = operator.execute(AdminRequest::EabShow { kid: kid.clone() });
        assert_eq!(shown.data["allowed_domains"], json!(["*.corp.example"]));
        assert_eq!(shown.data["state"], "usable");
        assert!(
            operator
                .execute(AdminRequest::EabRevoke { kid: kid.clone() })
                .ok
        );
        let again = operator.execute(AdminRequest::EabRevoke { kid: kid.clone() });
        assert!(!again.ok && again.message.contains("already revoked"));
        let bad = operator.execute(AdminRequest::EabCreate(EabCreateRequest {
            profile: "default".into(),
            public_key_pem: Some(pair.public_key_pem()),
            allowed_domains: vec!["bad name.example".into()],
            ..EabCreateRequest::default()
        }));
        assert!(!bad.ok);
        assert_eq!(
            operator
                .execute(AdminRequest::EabList)
                .data
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }
}
