//! One loaded and initialised PKCS#11 module per path per process.
//!
//! A second `C_Initialize` fails with `CKR_CRYPTOKI_ALREADY_INITIALIZED`, and concurrent
//! initialisation has crashed modules (research/hsm.md §3.5), so every part of the process
//! that needs a module gets the same context from here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};

use super::TokenError;
use super::error::describe;

static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// Returns the process's context for the module at `path`, loading and initialising it once.
///
/// `CKF_OS_LOCKING_OK` is always passed: without it SoftHSM disables its own locks and
/// crashes under concurrent use.
pub fn loaded_module(path: &Path) -> Result<Pkcs11, TokenError> {
    let fail = |reason: String| TokenError::Module {
        path: path.display().to_string(),
        reason,
    };
    let registry = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut modules = registry
        .lock()
        .map_err(|_| fail("module registry poisoned by an earlier panic".into()))?;
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    if !path.exists() {
        return Err(fail(
            "no such file (install the vendor's PKCS#11 library or set [hsm] module)".into(),
        ));
    }
    let ctx = Pkcs11::new(path).map_err(|e| fail(format!("cannot load: {e}")))?;
    initialize(&ctx).map_err(|e| fail(format!("C_Initialize: {}", describe(&e))))?;
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// `C_Finalize` then `C_Initialize`: the module drops every session and login of the
/// process and looks for its slots and tokens afresh.
pub(crate) fn reinitialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.clone().finalize() {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
        Err(e) => return Err(e),
    }
    initialize(ctx)
}

/// Initialises `ctx`; a module some other code already initialised in this process is fine.
pub(crate) fn initialize(ctx: &Pkcs11) -> Result<(), CkError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}
