//! PKCS#11 profiles: how one family of modules behaves (`pkcs11-profiles/*.toml`).
//!
//! A profile says which mechanism signs each algorithm, how AES-GCM IVs are chosen, how
//! sessions and logins behave, and which key attributes the module accepts. Code asks the
//! profile instead of testing vendor names. The shipped profiles are compiled in, so the
//! binary and its profiles never drift apart; an operator may point at a file of their own.

use std::path::Path;

use serde::Deserialize;

use super::KeyType;

/// The profiles shipped in `pkcs11-profiles/`, by name.
const BUILTIN: &[(&str, &str)] = &[
    (
        "softhsm2",
        include_str!("../../pkcs11-profiles/softhsm2.toml"),
    ),
    ("luna7", include_str!("../../pkcs11-profiles/luna7.toml")),
    (
        "nshield",
        include_str!("../../pkcs11-profiles/nshield.toml"),
    ),
    (
        "utimaco",
        include_str!("../../pkcs11-profiles/utimaco.toml"),
    ),
    (
        "yubihsm2",
        include_str!("../../pkcs11-profiles/yubihsm2.toml"),
    ),
    (
        "cloudhsm",
        include_str!("../../pkcs11-profiles/cloudhsm.toml"),
    ),
    ("kmsp11", include_str!("../../pkcs11-profiles/kmsp11.toml")),
    ("tpm2", include_str!("../../pkcs11-profiles/tpm2.toml")),
];

/// One module family's behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Profile {
    /// Identity and location of the module.
    pub module: ModuleSection,
    /// How to log in.
    pub login: LoginSection,
    /// Session limits and recovery.
    pub sessions: SessionSection,
    /// Which mechanism signs each algorithm.
    pub sign: SignSection,
    /// AES-GCM sealing.
    pub aead: AeadSection,
    /// Key generation templates.
    pub keygen: KeygenSection,
}

/// `[module]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSection {
    /// Profile name; equals the file stem.
    pub name: String,
    /// One line for reports.
    pub description: String,
    /// Default module path.
    pub library: String,
    /// Other places the module is commonly installed.
    #[serde(default)]
    pub library_alternatives: Vec<String>,
    /// Whether CI exercises this profile against a real module.
    pub status: ProfileStatus,
    /// Environment variables the module reads.
    pub env: Vec<String>,
    /// Oldest library version known to work, "major.minor".
    #[serde(default)]
    pub min_library_version: Option<String>,
}

/// Whether a profile is exercised by the test suite or written from vendor documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    /// Tested against the real module in CI.
    Tested,
    /// Written from the vendor's public documentation; verify with `hsm check`.
    Documented,
}

/// `[login]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSection {
    /// Which PKCS#11 user logs in.
    pub user_type: LoginUser,
    /// How the PIN is composed; a PIN file not in this shape is refused before any login.
    pub pin_format: PinFormat,
}

/// The PKCS#11 user type used for `C_Login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginUser {
    /// `CKU_USER`.
    User,
    /// Luna's Crypto User (`CKU_CRYPTO_USER`, 0x80000001): may use keys, not manage them.
    CryptoUser,
    /// The module needs no login.
    None,
}

/// How a module expects the PIN to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinFormat {
    /// The PIN as is.
    Plain,
    /// CloudHSM: `<crypto user>:<password>`.
    UserColonPassword,
    /// YubiHSM 2: four hex digits of the auth key ID, then the password.
    AuthkeyHex4Password,
    /// The module ignores the PIN.
    Ignored,
}

/// `[sessions]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    /// Upper bound on sessions this process opens; 0 defers to the token.
    pub max: u64,
    /// Seconds between keep-alive calls on idle sessions; 0 for none.
    pub keepalive_secs: u64,
    /// How long object handles stay valid.
    pub handles: HandleScope,
    /// What to do when the device or every session is lost.
    pub recovery: Recovery,
}

/// How long object handles stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandleScope {
    /// Valid while the application is logged in (SoftHSM, most modules).
    PerLogin,
    /// Valid only in the session that found them (CloudHSM SDK 5).
    PerSession,
}

/// Recovery after the device or every session is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Open new sessions and log in again.
    Reopen,
    /// `C_Finalize` and `C_Initialize` first (Luna HA total loss, YubiHSM YHAuth).
    Reinitialize,
}

/// `[sign]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignSection {
    /// ECDSA mechanism choice.
    pub ecdsa: HashPlacement,
    /// RSA PKCS#1 v1.5 mechanism choice.
    pub rsa_pkcs1: RsaPkcs1Mode,
    /// RSA-PSS mechanism choice.
    pub rsa_pss: PssMode,
    /// Ed25519 support.
    pub eddsa: EddsaMode,
    /// How CKA_EC_PARAMS names Ed25519 at key generation.
    pub ed25519_params: Ed25519Params,
}

/// Where the message is hashed for ECDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashPlacement {
    /// `CKM_ECDSA` over a host digest: works on every module.
    HostHash,
    /// `CKM_ECDSA_SHA256`/`CKM_ECDSA_SHA384`.
    TokenHash,
}

/// RSA PKCS#1 v1.5 mechanism choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RsaPkcs1Mode {
    /// `CKM_RSA_PKCS` over a host-built DigestInfo.
    HostDigestInfo,
    /// `CKM_SHA256_RSA_PKCS`.
    TokenHash,
}

/// RSA-PSS mechanism choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PssMode {
    /// `CKM_RSA_PKCS_PSS` over a host digest.
    HostHash,
    /// `CKM_SHA256_RSA_PKCS_PSS`.
    TokenHash,
    /// The module has no PSS.
    Unsupported,
}

/// Ed25519 support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EddsaMode {
    /// `CKM_EDDSA` without parameters (pure Ed25519).
    Pure,
    /// No Ed25519.
    Unsupported,
}

/// How `CKA_EC_PARAMS` names the Ed25519 curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ed25519Params {
    /// The OID 1.3.101.112.
    Oid,
    /// The PrintableString "edwards25519".
    PrintableString,
}

/// `[aead]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeadSection {
    /// Who chooses the GCM IV.
    pub gcm: GcmMode,
    /// IV length in bytes.
    pub iv_len: usize,
    /// Tag length in bits; hsm-acme requires 128.
    pub tag_bits: u64,
}

/// Who chooses the AES-GCM IV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GcmMode {
    /// We draw a random IV and pass it in.
    HostIv,
    /// The token generates the IV and writes it into a zeroed buffer.
    TokenIv,
    /// No AES-GCM on this module.
    Unsupported,
}

/// `[keygen]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeygenSection {
    /// Whether generated keys get `CKA_MODIFIABLE=false`.
    pub modifiable: bool,
    /// Length of the random CKA_ID of generated keys.
    pub id_len: usize,
    /// Longest CKA_LABEL the module accepts.
    pub label_max: usize,
    /// Key types the module generates and signs with.
    pub key_types: Vec<KeyType>,
}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
#[error("PKCS#11 profile {source_name}: {reason}")]
pub struct ProfileError {
    source_name: String,
    reason: String,
}

impl Pkcs11Profile {
    /// Names of the shipped profiles.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(name, _)| *name)
    }

    /// Loads a profile: a shipped one by name, or a TOML file when `spec` is a path.
    pub fn load(spec: &str) -> Result<Self, ProfileError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == spec) {
            return Self::parse(name, text);
        }
        if spec.contains('/') || spec.ends_with(".toml") {
            let path = Path::new(spec);
            let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
                source_name: spec.to_owned(),
                reason: format!("cannot read: {e}"),
            })?;
            return Self::parse(spec, &text);
        }
        let known: Vec<_> = Self::builtin_names().collect();
        Err(ProfileError {
            source_name: spec.to_owned(),
            reason: format!(
                "no such shipped profile (shipped: {}); give a path to use your own",
                known.join(", ")
            ),
        })
    }

    /// Parses and validates a profile's TOML text.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, ProfileError> {
        let err = |reason: String| ProfileError {
            source_name: source_name.to_owned(),
            reason,
        };
        let profile: Self = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        profile.validate().map_err(err)?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), String> {
        if self.aead.gcm != GcmMode::Unsupported {
            // NIST SP 800-38D: 96-bit IVs; longer ones are hashed, and Luna returns 16 bytes.
            if !(12..=16).contains(&self.aead.iv_len) {
                return Err(format!("aead.iv_len {} is not 12..=16", self.aead.iv_len));
            }
            if self.aead.tag_bits != 128 {
                return Err(format!(
                    "aead.tag_bits {} unsupported: sealing needs a 128-bit tag",
                    self.aead.tag_bits
                ));
            }
        }
        if !(1..=64).contains(&self.keygen.id_len) {
            return Err(format!(
                "keygen.id_len {} is not 1..=64",
                self.keygen.id_len
            ));
        }
        if self.keygen.label_max == 0 {
            return Err("keygen.label_max must be positive".into());
        }
        if self.keygen.key_types.is_empty() {
            return Err("keygen.key_types is empty".into());
        }
        if self.keygen.key_types.contains(&KeyType::Ed25519)
            && self.sign.eddsa == EddsaMode::Unsupported
        {
            return Err("keygen.key_types lists ed25519 but sign.eddsa is unsupported".into());
        }
        if !self.module.library.starts_with('/') {
            return Err(format!(
                "module.library {:?} is not an absolute path",
                self.module.library
            ));
        }
        Ok(())
    }

    /// Whether this module can generate and sign with `key_type`.
    pub fn supports(&self, key_type: KeyType) -> bool {
        self.keygen.key_types.contains(&key_type)
    }

    /// The module path to load: the configured one, else the first default that exists.
    pub fn default_library(&self) -> &str {
        std::iter::once(&self.module.library)
            .chain(&self.module.library_alternatives)
            .find(|p| Path::new(p).exists())
            .unwrap_or(&self.module.library)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_parses_and_is_named_after_its_file() {
        for (name, text) in BUILTIN {
            let profile = Pkcs11Profile::parse(name, text).unwrap();
            assert_eq!(&profile.module.name, name);
            let tested = profile.module.status == ProfileStatus::Tested;
            assert_eq!(
                tested,
                *name == "softhsm2",
                "{name}: only softhsm2 is tested in CI"
            );
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_the_reason() {
        let text = BUILTIN[0]
            .1
            .replace("[keygen]", "[keygen]\nmodifyable = false");
        let err = Pkcs11Profile::parse("x", &text).unwrap_err().to_string();
        assert!(err.contains("modifyable"), "{err}");

        let text = BUILTIN[0].1.replace("tag_bits = 128", "tag_bits = 96");
        let err = Pkcs11Profile::parse("x", &text).unwrap_err().to_string();
        assert!(err.contains("128-bit tag"), "{err}");
    }

    #[test]
    fn unknown_profile_names_list_the_shipped_ones() {
        let err = Pkcs11Profile::load("acme-hsm-9000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("softhsm2") && err.contains("luna7"), "{err}");
    }
}
