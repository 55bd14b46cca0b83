//! Test support: a fresh SoftHSM token per test, made by `softhsm-test/new-token.sh`.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a process initialises a module
//! once. So a test that uses the token in-process runs in a child process of its own
//! ([`isolated`]), with its own token directory; tests still run in parallel.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hsm_acme::hsm::{Pkcs11Profile, Pkcs11Token, TokenSelector, TokenSettings};

/// Label of every test token.
pub const TOKEN_LABEL: &str = "hsm-acme-test";
const CHILD_VAR: &str = "HSM_ACME_TEST_TOKEN_DIR";

/// A token store of its own, with its test-only PINs.
pub struct TestToken {
    pub dir: PathBuf,
    /// Keeps the directory alive in the parent; `None` in the child.
    _tmp: Option<tempfile::TempDir>,
}

impl TestToken {
    /// A new token in a new temporary directory.
    pub fn create() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("hsm-acme-token-")
            .tempdir()
            .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("softhsm-test/new-token.sh");
        let out = Command::new(script)
            .arg(tmp.path())
            .arg(TOKEN_LABEL)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "new-token.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dir: tmp.path().to_owned(),
            _tmp: Some(tmp),
        }
    }

    fn in_child(dir: PathBuf) -> Self {
        Self { dir, _tmp: None }
    }

    /// Moves the token's files out of SoftHSM's token directory, as an unplugged token or
    /// an unreachable network HSM looks to the module; the returned closure plugs it back.
    pub fn unplug(&self) -> impl FnOnce() + Send + 'static {
        let tokens = self.dir.join("tokens");
        let away = self.dir.join("unplugged");
        std::fs::rename(&tokens, &away).unwrap();
        std::fs::create_dir(&tokens).unwrap();
        move || {
            std::fs::remove_dir(&tokens).unwrap();
            std::fs::rename(away, tokens).unwrap();
        }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    pub fn pin_file(&self) -> PathBuf {
        self.dir.join("user-pin")
    }

    pub fn user_pin(&self) -> String {
        std::fs::read_to_string(self.pin_file())
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn module() -> PathBuf {
        let profile = Pkcs11Profile::load("softhsm2").unwrap();
        PathBuf::from(profile.default_library())
    }

    pub fn settings(&self, sessions: usize) -> TokenSettings {
        TokenSettings {
            profile: Pkcs11Profile::load("softhsm2").unwrap(),
            module: Self::module(),
            selector: TokenSelector {
                label: Some(TOKEN_LABEL.into()),
                ..TokenSelector::default()
            },
            pin_file: Some(self.pin_file().display().to_string()),
            sessions,
            wait_for_token: std::time::Duration::ZERO,
        }
    }

    /// Opens the token in this process (only inside [`isolated`]).
    pub fn open(&self, sessions: usize) -> Pkcs11Token {
        assert!(
            std::env::var_os(CHILD_VAR).is_some(),
            "open() outside isolated()"
        );
        Pkcs11Token::open(&self.settings(sessions)).unwrap()
    }

    /// Runs `pkcs11-tool` against this token, logged in.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Output {
        let pin = self.user_pin();
        let module = Self::module();
        let out = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", self.conf())
            .arg("--module")
            .arg(&module)
            .args(["--token-label", TOKEN_LABEL, "--login", "--pin", &pin])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs the `hsm-acme` binary with this token's SoftHSM configuration.
    pub fn hsm_acme(&self, config: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_hsm-acme"))
            .env("SOFTHSM2_CONF", self.conf())
            .env_remove("HSM_ACME_CONFIG")
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .unwrap()
    }
}

/// Runs `body` with a fresh token, in a child process of its own.
///
/// `name` is the test function's name: the child re-runs exactly that test.
pub fn isolated(name: &str, body: impl FnOnce(&TestToken)) {
    if let Some(dir) = std::env::var_os(CHILD_VAR) {
        body(&TestToken::in_child(PathBuf::from(dir)));
        return;
    }
    let token = TestToken::create();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env("SOFTHSM2_CONF", token.conf())
        .env(CHILD_VAR, &token.dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "test {name} failed in its child process"
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test named {name}"
    );
}

/// Text of a command's stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub mod acme;
pub mod net;
pub mod raw;
