//! `[hsm]`: which module, which token, how to log in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::hsm::uri::Pkcs11Uri;
use crate::hsm::{Pkcs11Profile, TokenSelector, TokenSettings};

/// Default number of worker sessions on the token.
pub(super) const DEFAULT_SESSIONS: usize = 4;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHsm {
    profile: String,
    module: Option<PathBuf>,
    token_label: Option<String>,
    token_serial: Option<String>,
    token_uri: Option<String>,
    pin_file: Option<String>,
    sessions: Option<usize>,
    wait_for_token_seconds: Option<u64>,
}

/// The token settings; `base` is the configuration file's directory, for relative paths.
pub(super) fn check_hsm(
    raw: RawHsm,
    base: &Path,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<TokenSettings, String> {
    let profile = Pkcs11Profile::load(&raw.profile).map_err(|e| e.to_string())?;
    let mut selector = TokenSelector {
        label: raw.token_label,
        serial: raw.token_serial,
        ..TokenSelector::default()
    };
    let mut module = raw.module.as_deref().map(resolve);
    let mut pin_file = raw.pin_file;
    if let Some(uri) = &raw.token_uri {
        if selector.label.is_some() || selector.serial.is_some() {
            return Err("[hsm] token_uri and token_label/token_serial exclude each other".into());
        }
        let uri = Pkcs11Uri::parse(uri).map_err(|e| format!("[hsm] token_uri: {e}"))?;
        selector = TokenSelector::from_uri(&uri);
        if module.is_none() {
            module = uri.module_path.as_deref().map(PathBuf::from);
        }
        if pin_file.is_none() {
            pin_file = uri.pin_source.clone();
        }
    }
    if selector.is_empty() {
        return Err("[hsm] needs token_label, token_serial or token_uri".into());
    }
    let pin_file = pin_file.map(|p| {
        if p.contains("${") || Path::new(&p).is_absolute() {
            p
        } else {
            base.join(p).display().to_string()
        }
    });
    let module = module.unwrap_or_else(|| PathBuf::from(profile.default_library()));
    let sessions = raw.sessions.unwrap_or(DEFAULT_SESSIONS);
    if sessions == 0 || sessions > 1024 {
        return Err(format!("[hsm] sessions = {sessions} is not 1..=1024"));
    }
    let wait_for_token = match raw.wait_for_token_seconds {
        None => 0,
        Some(n @ 0..=3600) => n,
        Some(n) => {
            return Err(format!(
                "[hsm] wait_for_token_seconds = {n} is not 0..=3600"
            ));
        }
    };
    Ok(TokenSettings {
        profile,
        module,
        selector,
        pin_file,
        sessions,
        wait_for_token: Duration::from_secs(wait_for_token),
    })
}
