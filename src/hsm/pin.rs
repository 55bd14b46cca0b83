//! Reading the token PIN from a file or a systemd credential, never from argv or the config.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::TokenError;
use super::profile::PinFormat;

/// Where a PIN reference that names a systemd credential is looked up.
const CREDENTIALS_VAR: &str = "CREDENTIALS_DIRECTORY";

/// Expands `${CREDENTIALS_DIRECTORY}` in a configured PIN path, so one config file works both
/// under systemd (`LoadCredential=`) and by hand.
pub(crate) fn expand_pin_path(configured: &str) -> Result<PathBuf, TokenError> {
    const MARKER: &str = "${CREDENTIALS_DIRECTORY}";
    if !configured.contains(MARKER) {
        return Ok(PathBuf::from(configured));
    }
    let dir = std::env::var_os(CREDENTIALS_VAR).ok_or_else(|| {
        TokenError::Pin(format!(
            "pin_file {configured:?} names ${{CREDENTIALS_DIRECTORY}}, which is not set \
             (run under systemd with LoadCredential=, or give a plain path)"
        ))
    })?;
    let dir = dir.to_string_lossy();
    Ok(PathBuf::from(configured.replace(MARKER, &dir)))
}

/// Reads a PIN file: one line, the trailing newline stripped. The bytes are zeroized after
/// they are copied into the secret.
pub fn read_pin(path: &Path) -> Result<SecretString, TokenError> {
    let mut file = fs::File::open(path)
        .map_err(|e| TokenError::Pin(format!("cannot open {}: {e}", path.display())))?;
    refuse_if_open_to_others(&file, path)?;
    let mut raw = Zeroizing::new(Vec::with_capacity(64));
    file.read_to_end(&mut raw)
        .map_err(|e| TokenError::Pin(format!("cannot read {}: {e}", path.display())))?;
    while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        raw.pop();
    }
    if raw.is_empty() {
        return Err(TokenError::Pin(format!("{} is empty", path.display())));
    }
    if raw.contains(&b'\n') {
        return Err(TokenError::Pin(format!(
            "{} holds more than one line; it must hold only the PIN",
            path.display()
        )));
    }
    let text = std::str::from_utf8(&raw)
        .map_err(|_| TokenError::Pin(format!("{} is not UTF-8", path.display())))?;
    Ok(SecretString::from(text))
}

/// Checks that a PIN has the shape its module expects, before the first `C_Login`: a PIN in
/// the wrong format is refused by the token, and every refusal runs down its retry counter.
/// The message says what is wrong, never what the PIN is.
pub(crate) fn check_pin_format(pin: &SecretString, format: PinFormat) -> Result<(), TokenError> {
    let pin = pin.expose_secret();
    let problem = match format {
        PinFormat::Plain | PinFormat::Ignored => None,
        // CloudHSM: `<crypto user>:<password>`, both parts non-empty.
        PinFormat::UserColonPassword => match pin.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => None,
            _ => Some("must be <crypto user>:<password> (CloudHSM)"),
        },
        // YubiHSM 2: the authentication key id as four hex digits, then the password.
        PinFormat::AuthkeyHex4Password => {
            let id = pin.get(..4);
            if id.is_some_and(|id| id.bytes().all(|b| b.is_ascii_hexdigit())) && pin.len() > 4 {
                None
            } else {
                Some("must be the auth key id as four hex digits, then the password (YubiHSM 2)")
            }
        }
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(TokenError::Pin(format!(
            "the PIN file's content {problem} ([login] pin_format of the profile); no login was attempted"
        ))),
    }
}

/// A PIN others can read is a PIN others have: the file must be private to its owner
/// (systemd credentials are 0400; `chmod 0600` a plain file).
#[cfg(unix)]
fn refuse_if_open_to_others(file: &fs::File, path: &Path) -> Result<(), TokenError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = file
        .metadata()
        .map_err(|e| TokenError::Pin(format!("cannot stat {}: {e}", path.display())))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(TokenError::Pin(format!(
            "{} is open to group or others (mode {:o}); chmod 0600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_if_open_to_others(_file: &fs::File, _path: &Path) -> Result<(), TokenError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pins_are_checked_against_the_profiles_format_without_showing_them() {
        use super::super::profile::PinFormat as F;
        let ok = |pin: &str, format| check_pin_format(&SecretString::from(pin), format).is_ok();
        assert!(ok("1234", F::Plain));
        assert!(ok("", F::Ignored));
        assert!(ok("cu1:secret", F::UserColonPassword));
        assert!(!ok("secret", F::UserColonPassword));
        assert!(!ok(":secret", F::UserColonPassword));
        assert!(!ok("cu1:", F::UserColonPassword));
        assert!(ok("0001password", F::AuthkeyHex4Password));
        assert!(ok("00aFpassword", F::AuthkeyHex4Password));
        assert!(!ok("password", F::AuthkeyHex4Password));
        assert!(!ok("0001", F::AuthkeyHex4Password));
        assert!(!ok("é001password", F::AuthkeyHex4Password));
        let err = check_pin_format(&SecretString::from("hunter2"), F::UserColonPassword)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CloudHSM") && !err.contains("hunter2"),
            "{err}"
        );
    }

    use secrecy::ExposeSecret;

    use super::*;

    fn write_private(path: &Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn a_pin_file_open_to_group_or_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_private(&path, "1234\n");
        assert!(read_pin(&path).is_ok());
        for mode in [0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read_pin(&path).unwrap_err();
            assert!(err.to_string().contains("chmod 0600"), "{mode:o}: {err}");
        }
    }

    #[test]
    fn strips_one_trailing_newline_and_keeps_inner_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_private(&path, "12 34\r\n");
        assert_eq!(read_pin(&path).unwrap().expose_secret(), "12 34");
    }

    #[test]
    fn refuses_empty_and_multi_line_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        write_private(&path, "\n");
        assert!(matches!(read_pin(&path), Err(TokenError::Pin(m)) if m.contains("empty")));
        write_private(&path, "1234\n5678\n");
        assert!(matches!(read_pin(&path), Err(TokenError::Pin(m)) if m.contains("one line")));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = read_pin(Path::new("/nonexistent/pin")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/pin"));
    }

    #[test]
    fn plain_paths_are_not_expanded() {
        assert_eq!(
            expand_pin_path("/etc/pin").unwrap(),
            PathBuf::from("/etc/pin")
        );
    }
}
