//! Reading the token PIN from a file or a systemd credential, never from argv or the config.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::TokenError;

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
    warn_if_readable_by_others(&file, path);
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

#[cfg(unix)]
fn warn_if_readable_by_others(file: &fs::File, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata()
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "PIN file is accessible to group or others; chmod 0600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_file: &fs::File, _path: &Path) {}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn strips_one_trailing_newline_and_keeps_inner_spaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        fs::write(&path, "12 34\r\n").unwrap();
        assert_eq!(read_pin(&path).unwrap().expose_secret(), "12 34");
    }

    #[test]
    fn refuses_empty_and_multi_line_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        fs::write(&path, "\n").unwrap();
        assert!(matches!(read_pin(&path), Err(TokenError::Pin(m)) if m.contains("empty")));
        fs::write(&path, "1234\n5678\n").unwrap();
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
