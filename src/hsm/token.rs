//! `Pkcs11Token`: one token in one module, opened and logged in once, shared by all keys.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use cryptoki::slot::{Limit, Slot, TokenInfo};

use super::keys::{self, KeyReport};
use super::pin::{check_pin_format, expand_pin_path, read_pin};
use super::pool::{Login, SessionPool};
use super::profile::{LoginUser, Pkcs11Profile};
use super::signer::TokenSigner;
use super::uri::Pkcs11Uri;
use super::{KeyType, RsaPadding, TokenError, TokenSealer, loaded_module};

/// Luna's `CKU_CRYPTO_USER`.
const CKU_CRYPTO_USER: u32 = 0x8000_0001;

/// Which token to use: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSelector {
    /// Token label.
    pub label: Option<String>,
    /// Token serial number.
    pub serial: Option<String>,
    /// Token manufacturer ID.
    pub manufacturer: Option<String>,
    /// Token model.
    pub model: Option<String>,
    /// Slot ID (discouraged: some modules renumber slots).
    pub slot_id: Option<u64>,
}

impl TokenSelector {
    /// A selector from an RFC 7512 URI.
    pub fn from_uri(uri: &Pkcs11Uri) -> Self {
        Self {
            label: uri.token.clone(),
            serial: uri.serial.clone(),
            manufacturer: uri.manufacturer.clone(),
            model: uri.model.clone(),
            slot_id: uri.slot_id,
        }
    }

    /// Whether nothing is selected (which would pick an arbitrary token).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn matches(&self, slot: Slot, info: &TokenInfo) -> bool {
        let field = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w == have.trim_end())
        };
        field(&self.label, info.label())
            && field(&self.serial, info.serial_number())
            && field(&self.manufacturer, info.manufacturer_id())
            && field(&self.model, info.model())
            && self.slot_id.is_none_or(|id| id == slot.id())
    }
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = &self.label {
            parts.push(format!("label={v:?}"));
        }
        if let Some(v) = &self.serial {
            parts.push(format!("serial={v:?}"));
        }
        if let Some(v) = &self.manufacturer {
            parts.push(format!("manufacturer={v:?}"));
        }
        if let Some(v) = &self.model {
            parts.push(format!("model={v:?}"));
        }
        if let Some(v) = self.slot_id {
            parts.push(format!("slot-id={v}"));
        }
        f.write_str(&parts.join(" "))
    }
}

/// Everything needed to open a token.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// The module family's behaviour.
    pub profile: Pkcs11Profile,
    /// The module to load.
    pub module: PathBuf,
    /// The token to use.
    pub selector: TokenSelector,
    /// Where the PIN is read from; `${CREDENTIALS_DIRECTORY}` is expanded.
    pub pin_file: Option<String>,
    /// Worker sessions to open at most.
    pub sessions: usize,
    /// How long start-up waits for a token that is not (yet) present: a network HSM still
    /// connecting, a USB token not yet plugged in. Zero: fail at once.
    pub wait_for_token: std::time::Duration,
}

/// A mechanism the token offers.
#[derive(Debug, Clone)]
pub struct MechanismReport {
    /// `CKM_*` name.
    pub name: String,
    /// Smallest and largest key size, as the module reports them.
    pub key_sizes: (u64, u64),
    /// Whether it signs, encrypts, generates keys.
    pub usage: String,
}

/// What `hsm info` shows.
#[derive(Debug, Clone)]
pub struct TokenReport {
    /// Module manufacturer, description and version.
    pub library: String,
    /// Cryptoki version the module implements.
    pub cryptoki_version: String,
    /// Token label, serial, model, manufacturer.
    pub token: String,
    /// Session limits.
    pub sessions: String,
    /// Flags worth knowing (PIN state, login required).
    pub flags: Vec<String>,
    /// Every mechanism offered.
    pub mechanisms: Vec<MechanismReport>,
    /// Mechanisms the profile relies on that the token lacks.
    pub missing: Vec<String>,
}

pub(crate) struct TokenShared {
    pub(crate) profile: Pkcs11Profile,
    pub(crate) label: String,
    pub(crate) pool: SessionPool,
}

/// A logged-in token. Cheap to clone; all clones share one session pool.
#[derive(Clone)]
pub struct Pkcs11Token {
    shared: Arc<TokenShared>,
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("token", &self.shared.label)
            .field("profile", &self.shared.profile.module.name)
            .finish_non_exhaustive()
    }
}

/// Finds the one slot whose token matches `selector`.
fn find_slot(ctx: &Pkcs11, selector: &TokenSelector) -> Result<(Slot, TokenInfo), TokenError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| TokenError::pkcs11("C_GetSlotList", &e))?;
    let mut present = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| TokenError::pkcs11("C_GetTokenInfo", &e))?;
        present.push(format!("{:?}", info.label().trim_end()));
        if selector.matches(slot, &info) {
            matching.push((slot, info));
        }
    }
    if selector.is_empty() {
        return Err(TokenError::TokenNotFound {
            selector: "an empty selector (set token_label, token_serial or token_uri)".into(),
            present: present.join(", "),
        });
    }
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(TokenError::TokenNotFound {
            selector: selector.to_string(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        }),
        n => Err(TokenError::TokenNotFound {
            selector: format!("{selector} (ambiguous: {n} tokens match; add token_serial)"),
            present: present.join(", "),
        }),
    }
}

/// Finds the token, waiting up to `settings.wait_for_token` for it to appear. Modules list
/// the tokens they found when initialised, so each new look starts with `C_Finalize` and
/// `C_Initialize`; nothing else of the process uses the module yet.
fn wait_for_slot(ctx: &Pkcs11, settings: &TokenSettings) -> Result<(Slot, TokenInfo), TokenError> {
    const PAUSE: std::time::Duration = std::time::Duration::from_secs(2);
    let deadline = std::time::Instant::now() + settings.wait_for_token;
    loop {
        match find_slot(ctx, &settings.selector) {
            Err(e @ (TokenError::TokenNotFound { .. } | TokenError::Unavailable(_)))
                if std::time::Instant::now() + PAUSE <= deadline =>
            {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                tracing::warn!(error = %e, seconds_left = left.as_secs(),
                    "the token is not present; waiting for it ([hsm] wait_for_token_seconds)");
                std::thread::sleep(PAUSE);
                super::module::reinitialize(ctx).map_err(|e| TokenError::Module {
                    path: settings.module.display().to_string(),
                    reason: format!("C_Finalize/C_Initialize: {}", super::error::describe(&e)),
                })?;
            }
            other => return other,
        }
    }
}

fn session_capacity(configured: usize, profile: &Pkcs11Profile, info: &TokenInfo) -> usize {
    let mut capacity = configured.max(1);
    if profile.sessions.max > 0 {
        capacity = capacity.min(usize::try_from(profile.sessions.max).unwrap_or(usize::MAX));
    }
    if let Limit::Max(max) = info.max_session_count() {
        // One session is the anchor.
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        capacity = capacity.min(max.saturating_sub(1).max(1));
    }
    capacity
}

impl Pkcs11Token {
    /// Loads the module, finds the token, reads the PIN and logs in.
    pub fn open(settings: &TokenSettings) -> Result<Self, TokenError> {
        let ctx = loaded_module(&settings.module)?;
        let (slot, info) = wait_for_slot(&ctx, settings)?;
        let label = info.label().trim_end().to_owned();
        let user = match settings.profile.login.user_type {
            LoginUser::User => Some(UserType::User),
            LoginUser::CryptoUser => Some(UserType::VendorExtension(CKU_CRYPTO_USER)),
            LoginUser::None => None,
        };
        let pin = match (user, &settings.pin_file) {
            (None, _) => secrecy::SecretString::from(""),
            (Some(_), Some(path)) => {
                let pin = read_pin(&expand_pin_path(path)?)?;
                check_pin_format(&pin, settings.profile.login.pin_format)?;
                pin
            }
            (Some(_), None) => {
                return Err(TokenError::Pin(
                    "no pin_file configured, and this profile logs in".into(),
                ));
            }
        };
        let capacity = session_capacity(settings.sessions, &settings.profile, &info);
        let pool = SessionPool::new(
            ctx,
            slot,
            label.clone(),
            Login { user, pin },
            capacity,
            settings.profile.sessions.recovery,
        )?;
        tracing::info!(token = %label, slot = slot.id(), sessions = capacity, "token opened");
        Ok(Self {
            shared: Arc::new(TokenShared {
                profile: settings.profile.clone(),
                label,
                pool,
            }),
        })
    }

    /// Describes module and token without logging in.
    pub fn report(settings: &TokenSettings) -> Result<TokenReport, TokenError> {
        let ctx = loaded_module(&settings.module)?;
        let lib = ctx
            .get_library_info()
            .map_err(|e| TokenError::pkcs11("C_GetInfo", &e))?;
        let (slot, info) = find_slot(&ctx, &settings.selector)?;
        let mechanisms = ctx
            .get_mechanism_list(slot)
            .map_err(|e| TokenError::pkcs11("C_GetMechanismList", &e))?;
        let mut report = Vec::new();
        for mechanism in &mechanisms {
            let Ok(mi) = ctx.get_mechanism_info(slot, *mechanism) else {
                continue;
            };
            let mut usage = Vec::new();
            for (flag, name) in [
                (mi.sign(), "sign"),
                (mi.verify(), "verify"),
                (mi.encrypt(), "encrypt"),
                (mi.decrypt(), "decrypt"),
                (mi.generate(), "generate"),
                (mi.generate_key_pair(), "generate_key_pair"),
                (mi.digest(), "digest"),
            ] {
                if flag {
                    usage.push(name);
                }
            }
            report.push(MechanismReport {
                name: mechanism.to_string(),
                key_sizes: (mi.min_key_size() as u64, mi.max_key_size() as u64),
                usage: usage.join(","),
            });
        }
        let missing = required_mechanisms(&settings.profile)
            .into_iter()
            .filter(|m| !mechanisms.contains(m))
            .map(|m| m.to_string())
            .collect();
        let mut flags = Vec::new();
        for (set, name) in [
            (info.login_required(), "login required"),
            (info.user_pin_initialized(), "user PIN initialised"),
            (info.user_pin_count_low(), "USER PIN COUNT LOW"),
            (info.user_pin_final_try(), "USER PIN FINAL TRY"),
            (info.user_pin_locked(), "USER PIN LOCKED"),
            (info.user_pin_to_be_changed(), "user PIN must be changed"),
            (info.write_protected(), "write protected"),
        ] {
            if set {
                flags.push(name.to_owned());
            }
        }
        let limit = |l: Limit| match l {
            Limit::Max(n) => n.to_string(),
            Limit::Infinite => "unlimited".into(),
            Limit::Unavailable => "unknown".into(),
        };
        Ok(TokenReport {
            library: format!(
                "{} {} ({}), {}",
                lib.manufacturer_id().trim_end(),
                lib.library_description().trim_end(),
                lib.library_version(),
                settings.module.display()
            ),
            cryptoki_version: lib.cryptoki_version().to_string(),
            token: format!(
                "label {:?}, serial {:?}, model {:?}, manufacturer {:?}, slot {}",
                info.label().trim_end(),
                info.serial_number().trim_end(),
                info.model().trim_end(),
                info.manufacturer_id().trim_end(),
                slot.id()
            ),
            sessions: format!(
                "max {}, max read-write {}",
                limit(info.max_session_count()),
                limit(info.max_rw_session_count())
            ),
            flags,
            mechanisms: report,
            missing,
        })
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The module family's profile.
    pub fn profile(&self) -> &Pkcs11Profile {
        &self.shared.profile
    }

    /// Worker sessions the pool opens at most; size async concurrency to this.
    pub fn session_capacity(&self) -> usize {
        self.shared.pool.capacity()
    }

    /// Loads the signing key labelled `label`, refusing it unless it is sensitive and never
    /// extractable.
    pub fn signer(&self, label: &str, padding: RsaPadding) -> Result<TokenSigner, TokenError> {
        let (id, key_type, _report) = self.inspect_private(label, true)?;
        let key_type = key_type.ok_or_else(|| TokenError::KeyRefused {
            label: label.to_owned(),
            reason: "not a key type hsm-acme signs with".into(),
        })?;
        if !self.shared.profile.supports(key_type) {
            return Err(TokenError::Unsupported(format!(
                "key {label:?} is {key_type}, which profile {} does not list in keygen.key_types",
                self.shared.profile.module.name
            )));
        }
        let (_, spki) = self.public_key(&id, label)?;
        TokenSigner::new(
            Arc::clone(&self.shared),
            label.to_owned(),
            id,
            key_type,
            padding,
            spki,
        )
    }

    /// Loads the AES key labelled `label` for sealing.
    pub fn sealer(&self, label: &str) -> Result<TokenSealer, TokenError> {
        let id = self.shared.pool.run("find sealing key", |session, _| {
            let handle = keys::find_by_label(session, ObjectClass::SECRET_KEY, label)?;
            let (id, _, report) = keys::inspect(session, handle, label)?;
            if let Some(reason) = report.refusals.first() {
                return Err(TokenError::KeyRefused {
                    label: label.to_owned(),
                    reason: reason.clone(),
                }
                .into());
            }
            Ok(id)
        })?;
        TokenSealer::new(Arc::clone(&self.shared), label.to_owned(), id)
    }

    /// Inspects the private or secret key labelled `label` for `hsm check`.
    pub fn inspect(&self, label: &str, secret: bool) -> Result<KeyReport, TokenError> {
        let class = if secret {
            ObjectClass::SECRET_KEY
        } else {
            ObjectClass::PRIVATE_KEY
        };
        self.shared.pool.run("inspect key", |session, _| {
            let handle = keys::find_by_label(session, class, label)?;
            let (id, _, mut report) = keys::inspect(session, handle, label)?;
            if !secret && !id.is_empty() {
                match keys::public_key_info(session, &id, label) {
                    Ok((key_type, _)) => report.key_type = Some(key_type),
                    Err(super::pool::OpError::Token(e)) => report.refusals.push(e.to_string()),
                    Err(e) => return Err(e),
                }
            }
            Ok(report)
        })
    }

    fn inspect_private(
        &self,
        label: &str,
        enforce: bool,
    ) -> Result<(Vec<u8>, Option<KeyType>, KeyReport), TokenError> {
        self.shared.pool.run("load key", |session, _| {
            let handle = keys::find_by_label(session, ObjectClass::PRIVATE_KEY, label)?;
            let (id, _, report) = keys::inspect(session, handle, label)?;
            if enforce && let Some(reason) = report.refusals.first() {
                return Err(TokenError::KeyRefused {
                    label: label.to_owned(),
                    reason: reason.clone(),
                }
                .into());
            }
            let key_type = keys::public_key_info(session, &id, label)
                .ok()
                .map(|(key_type, _)| key_type);
            Ok((id, key_type, report))
        })
    }

    fn public_key(
        &self,
        id: &[u8],
        label: &str,
    ) -> Result<(KeyType, spki::SubjectPublicKeyInfoOwned), TokenError> {
        self.shared.pool.run("read public key", |session, _| {
            keys::public_key_info(session, id, label)
        })
    }

    /// Whether a key or other object labelled `label` exists.
    pub fn has_label(&self, label: &str) -> Result<bool, TokenError> {
        self.shared.pool.run("find objects", |session, _| {
            keys::label_taken(session, label)
        })
    }

    /// Generates a non-extractable signing key pair labelled `label`.
    pub fn generate_key_pair(&self, label: &str, key_type: KeyType) -> Result<(), TokenError> {
        self.check_new_label(label)?;
        if !self.shared.profile.supports(key_type) {
            return Err(TokenError::Unsupported(format!(
                "profile {} cannot generate {key_type} keys (keygen.key_types)",
                self.shared.profile.module.name
            )));
        }
        let id = keys::random_id(self.shared.profile.keygen.id_len)?;
        self.shared.pool.run("generate key pair", |session, _| {
            keys::generate_key_pair(session, &self.shared.profile, label, key_type, &id)
        })
    }

    /// Generates a non-extractable AES-256 sealing key labelled `label`.
    pub fn generate_sealing_key(&self, label: &str) -> Result<(), TokenError> {
        self.check_new_label(label)?;
        let id = keys::random_id(self.shared.profile.keygen.id_len)?;
        self.shared.pool.run("generate AES key", |session, _| {
            keys::generate_sealing_key(session, &self.shared.profile, label, &id)
        })
    }

    fn check_new_label(&self, label: &str) -> Result<(), TokenError> {
        let max = self.shared.profile.keygen.label_max;
        if label.is_empty() || label.len() > max {
            return Err(TokenError::KeyRefused {
                label: label.to_owned(),
                reason: format!("labels must be 1 to {max} bytes on this module"),
            });
        }
        if self.has_label(label)? {
            return Err(TokenError::KeyRefused {
                label: label.to_owned(),
                reason: "an object with this label already exists on the token".into(),
            });
        }
        Ok(())
    }

    /// How often idle sessions should be touched, if the profile says they must be
    /// (`[sessions] keepalive_secs`, for network HSMs that drop quiet sessions).
    pub fn keepalive_interval(&self) -> Option<std::time::Duration> {
        let secs = self.shared.profile.sessions.keepalive_secs;
        (secs > 0).then(|| std::time::Duration::from_secs(secs))
    }

    /// Touches every idle session and drops those the token no longer knows; returns how
    /// many were dropped. Blocking.
    pub fn keepalive(&self) -> Result<usize, TokenError> {
        self.shared.pool.keepalive()
    }

    /// The module context; for tests that disturb the token behind the pool's back.
    pub fn module_context(&self) -> Pkcs11 {
        self.shared.pool.context().clone()
    }

    /// The slot the token sits in.
    pub fn slot(&self) -> Slot {
        self.shared.pool.slot()
    }
}

/// Mechanisms the profile's choices rely on.
fn required_mechanisms(profile: &Pkcs11Profile) -> Vec<MechanismType> {
    use super::profile::{GcmMode, HashPlacement, PssMode, RsaPkcs1Mode};
    let mut out = Vec::new();
    let has = |k: KeyType| profile.supports(k);
    if has(KeyType::EcdsaP256) || has(KeyType::EcdsaP384) {
        out.push(MechanismType::ECC_KEY_PAIR_GEN);
        out.push(match profile.sign.ecdsa {
            HashPlacement::HostHash => MechanismType::ECDSA,
            HashPlacement::TokenHash => MechanismType::ECDSA_SHA256,
        });
    }
    if has(KeyType::Rsa2048) || has(KeyType::Rsa3072) || has(KeyType::Rsa4096) {
        out.push(MechanismType::RSA_PKCS_KEY_PAIR_GEN);
        out.push(match profile.sign.rsa_pkcs1 {
            RsaPkcs1Mode::HostDigestInfo => MechanismType::RSA_PKCS,
            RsaPkcs1Mode::TokenHash => MechanismType::SHA256_RSA_PKCS,
        });
        match profile.sign.rsa_pss {
            PssMode::HostHash => out.push(MechanismType::RSA_PKCS_PSS),
            PssMode::TokenHash => out.push(MechanismType::SHA256_RSA_PKCS_PSS),
            PssMode::Unsupported => {}
        }
    }
    if has(KeyType::Ed25519) {
        out.push(MechanismType::ECC_EDWARDS_KEY_PAIR_GEN);
        out.push(MechanismType::EDDSA);
    }
    if profile.aead.gcm != GcmMode::Unsupported {
        out.push(MechanismType::AES_KEY_GEN);
        out.push(MechanismType::AES_GCM);
    }
    out
}
