//! A pool of sessions on one token, with one logged-in anchor session.
//!
//! The anchor is never used for cryptography: it keeps the application's login and its
//! object handles alive (closing the last session logs out and drops every handle). Worker
//! sessions are lent to one thread at a time (`Session` is `Send`, not `Sync`). When a call
//! fails, [`classify`] decides between reopening the session, logging in again, looking keys
//! up again, rebuilding everything, or giving up; a refused PIN is never tried twice.
//!
//! Sessions are opened without close-on-drop and closed explicitly, only while their handle
//! is known to be valid: after the device was lost, a dead handle's number may already name
//! a session opened since, and closing it would close that one. A dead session is dropped
//! without a call to the module.

use std::mem;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use super::TokenError;
use super::error::{Failure, classify, describe};
use super::module;
use super::profile::Recovery;

/// Attempts per operation, the first included. Each retry follows a recovery step.
const ATTEMPTS: usize = 3;
/// How long a caller waits for a free session before the token counts as unavailable.
const CHECKOUT_WAIT: Duration = Duration::from_secs(30);
/// Pause before rebuilding after the device was lost; doubled per attempt.
const DEVICE_BACKOFF: Duration = Duration::from_millis(100);

/// Who logs in, with which PIN.
pub(crate) struct Login {
    pub(crate) user: Option<UserType>,
    pub(crate) pin: SecretString,
}

/// An error from inside a pooled operation.
pub(crate) enum OpError {
    /// A PKCS#11 call failed; the pool classifies it.
    Ck(CkError),
    /// A failure the pool must pass through unchanged.
    Token(TokenError),
    /// A key was not found in a session without a login: if the pool is meant to be logged
    /// in, the login was lost (a `C_Logout` elsewhere); otherwise the error stands.
    MaybeLoggedOut(TokenError),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        Self::Ck(e)
    }
}

impl From<TokenError> for OpError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

/// What an operation learns about the session it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    /// Bumped whenever object handles may have become invalid (new login, rebuild).
    pub(crate) handle_epoch: u64,
    /// The session's handle, for modules whose object handles are per session.
    pub(crate) session_id: u64,
}

pub(crate) struct SessionPool {
    ctx: Pkcs11,
    slot: Slot,
    token_label: String,
    login: Login,
    capacity: usize,
    recovery: Recovery,
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    /// Worker sessions of the current generation, idle or lent out.
    open: usize,
    /// Bumped when every session was lost; older sessions are forgotten, not closed.
    generation: u64,
    handle_epoch: u64,
    anchor: Option<Session>,
    /// Set once the token refused the PIN; every later call fails at once.
    refused: Option<String>,
}

impl SessionPool {
    /// Opens the anchor session and logs in.
    pub(crate) fn new(
        ctx: Pkcs11,
        slot: Slot,
        token_label: String,
        login: Login,
        capacity: usize,
        recovery: Recovery,
    ) -> Result<Self, TokenError> {
        let pool = Self {
            ctx,
            slot,
            token_label,
            login,
            capacity: capacity.max(1),
            recovery,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                generation: 0,
                handle_epoch: 0,
                anchor: None,
                refused: None,
            }),
            returned: Condvar::new(),
        };
        {
            let mut state = pool.lock()?;
            pool.open_anchor(&mut state)?;
        }
        Ok(pool)
    }

    /// Sessions this pool opens at most, besides the anchor.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The module context, for calls that need no session.
    pub(crate) fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// The slot the token sits in.
    pub(crate) fn slot(&self) -> Slot {
        self.slot
    }

    /// Runs `op` in a pooled session, recovering from lost sessions, logins and handles.
    pub(crate) fn run<T>(
        &self,
        what: &'static str,
        mut op: impl FnMut(&Session, Lease) -> Result<T, OpError>,
    ) -> Result<T, TokenError> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let (session, generation, lease) = self.checkout()?;
            let err = match op(&session, lease) {
                Ok(value) => {
                    self.checkin(session, generation);
                    return Ok(value);
                }
                Err(OpError::Token(e)) => {
                    self.checkin(session, generation);
                    return Err(e);
                }
                Err(OpError::MaybeLoggedOut(e)) if self.login.user.is_none() => {
                    self.checkin(session, generation);
                    return Err(e);
                }
                Err(OpError::MaybeLoggedOut(_)) => CkError::Pkcs11(
                    RvError::UserNotLoggedIn,
                    cryptoki::context::Function::FindObjects,
                ),
                Err(OpError::Ck(e)) => e,
            };
            last = describe(&err);
            match classify(&err) {
                Failure::Permanent => {
                    self.checkin(session, generation);
                    return Err(TokenError::pkcs11(what, &err));
                }
                Failure::PinRefused => {
                    self.checkin(session, generation);
                    return Err(self.refuse(&last));
                }
                Failure::StaleHandle => {
                    self.checkin(session, generation);
                    self.bump_handle_epoch()?;
                }
                Failure::NotLoggedIn => {
                    self.checkin(session, generation);
                    self.relogin()?;
                }
                Failure::OperationActive => {
                    // The handle is valid, so closing it is safe.
                    self.discard(session, generation, true);
                }
                Failure::SessionLost => {
                    self.discard(session, generation, false);
                    self.rebuild_if_anchor_lost()?;
                }
                Failure::DeviceLost => {
                    self.discard(session, generation, false);
                    let pause = DEVICE_BACKOFF * (1 << attempt);
                    tracing::warn!(token = %self.token_label, error = %last, ?pause,
                        "token lost; rebuilding sessions");
                    std::thread::sleep(pause);
                    let uninitialized =
                        matches!(err, CkError::Pkcs11(RvError::CryptokiNotInitialized, _));
                    if let Err(e) = self.recover_device(generation, uninitialized) {
                        last = e.to_string();
                    }
                }
            }
            tracing::info!(token = %self.token_label, what, error = %last, attempt,
                "retrying PKCS#11 operation after recovery");
        }
        Err(TokenError::Unavailable(format!(
            "{what} on token {:?} still failing after {ATTEMPTS} attempts: {last}",
            self.token_label
        )))
    }

    fn lock(&self) -> Result<MutexGuard<'_, PoolState>, TokenError> {
        self.state
            .lock()
            .map_err(|_| TokenError::Unavailable("session pool poisoned by a panic".into()))
    }

    fn checkout(&self) -> Result<(Session, u64, Lease), TokenError> {
        let mut state = self.lock()?;
        loop {
            if let Some(reason) = &state.refused {
                return Err(TokenError::PinRefused {
                    token: self.token_label.clone(),
                    rv: reason.clone(),
                });
            }
            if let Some(session) = state.idle.pop() {
                let lease = Lease {
                    handle_epoch: state.handle_epoch,
                    session_id: session.handle(),
                };
                return Ok((session, state.generation, lease));
            }
            if state.open < self.capacity {
                state.open += 1;
                let (generation, handle_epoch) = (state.generation, state.handle_epoch);
                drop(state);
                return match self.ctx.open_rw_session_no_drop(self.slot) {
                    Ok(session) => {
                        let lease = Lease {
                            handle_epoch,
                            session_id: session.handle(),
                        };
                        Ok((session, generation, lease))
                    }
                    Err(e) => {
                        let mut state = self.lock()?;
                        if state.generation == generation {
                            state.open -= 1;
                        }
                        self.returned.notify_one();
                        Err(TokenError::Unavailable(format!(
                            "C_OpenSession: {}",
                            describe(&e)
                        )))
                    }
                };
            }
            let (next, timeout) = self
                .returned
                .wait_timeout(state, CHECKOUT_WAIT)
                .map_err(|_| TokenError::Unavailable("session pool poisoned by a panic".into()))?;
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.capacity {
                return Err(TokenError::Unavailable(format!(
                    "all {} sessions on token {:?} stayed busy for {CHECKOUT_WAIT:?}",
                    self.capacity, self.token_label
                )));
            }
        }
    }

    fn checkin(&self, session: Session, generation: u64) {
        let Ok(mut state) = self.lock() else {
            close(session);
            return;
        };
        if state.generation == generation {
            state.idle.push(session);
        } else {
            // Opened before a rebuild: its handle is dead and may already name a new session,
            // so it is dropped, not closed.
            drop(session);
        }
        self.returned.notify_one();
    }

    /// Touches every idle session (C_GetSessionInfo), so that network HSMs that drop quiet
    /// sessions keep them, and drops the ones that are gone; returns how many were dropped.
    /// Sessions in use are busy enough.
    pub(crate) fn keepalive(&self) -> Result<usize, TokenError> {
        let (idle, generation) = {
            let mut state = self.lock()?;
            if let Some(anchor) = state.anchor.as_ref()
                && anchor.get_session_info().is_err()
            {
                tracing::warn!(token = %self.token_label,
                    "keep-alive: the anchor session is gone; logging in again");
                self.rebuild_locked(&mut state)?;
                return Ok(0);
            }
            (mem::take(&mut state.idle), state.generation)
        };
        let mut dropped = 0;
        for session in idle {
            match session.get_session_info() {
                Ok(_) => self.checkin(session, generation),
                Err(e) => {
                    tracing::info!(token = %self.token_label, error = %describe(&e),
                        "keep-alive: dropping a session the token no longer knows");
                    self.discard(session, generation, false);
                    dropped += 1;
                }
            }
        }
        Ok(dropped)
    }

    /// Takes a broken session out of the pool. `close` only when its handle is still valid:
    /// a dead handle number may have been reused for a session we opened since.
    fn discard(&self, session: Session, generation: u64, valid: bool) {
        if valid {
            close(session);
        }
        if let Ok(mut state) = self.lock()
            && state.generation == generation
        {
            state.open = state.open.saturating_sub(1);
        }
        self.returned.notify_one();
    }

    fn refuse(&self, reason: &str) -> TokenError {
        if let Ok(mut state) = self.lock() {
            state.refused = Some(reason.to_owned());
        }
        self.returned.notify_all();
        tracing::error!(token = %self.token_label, error = %reason,
            "the token refused the PIN; no further login attempts will be made");
        TokenError::PinRefused {
            token: self.token_label.clone(),
            rv: reason.to_owned(),
        }
    }

    fn bump_handle_epoch(&self) -> Result<(), TokenError> {
        self.lock()?.handle_epoch += 1;
        Ok(())
    }

    /// Logs in again on the anchor, or rebuilds when the anchor itself is gone.
    fn relogin(&self) -> Result<(), TokenError> {
        let mut state = self.lock()?;
        state.handle_epoch += 1;
        let anchor_alive = state
            .anchor
            .as_ref()
            .is_some_and(|a| a.get_session_info().is_ok());
        if !anchor_alive {
            return self.rebuild_locked(&mut state);
        }
        if let Some(anchor) = state.anchor.as_ref()
            && let Err(e) = self.log_in(anchor)
        {
            // A refused PIN is never tried again: each attempt runs down the token's PIN
            // retry counter, and a locked PIN takes the CA down until an officer unlocks it.
            if let TokenError::PinRefused { rv, .. } = &e {
                state.refused = Some(rv.clone());
                tracing::error!(token = %self.token_label, error = %rv,
                    "the token refused the PIN on a new login; no further login attempts will be made");
                drop(state);
                self.returned.notify_all();
            }
            return Err(e);
        }
        Ok(())
    }

    fn rebuild_if_anchor_lost(&self) -> Result<(), TokenError> {
        let mut state = self.lock()?;
        let anchor_alive = state
            .anchor
            .as_ref()
            .is_some_and(|a| a.get_session_info().is_ok());
        if anchor_alive {
            Ok(())
        } else {
            tracing::warn!(token = %self.token_label,
                "every session on the token was closed; reopening and logging in again");
            self.rebuild_locked(&mut state)
        }
    }

    /// After the device was lost in `generation`: initialises the module again if it must
    /// be (it was finalized, or the profile says `recovery = "reinitialize"`), then
    /// rebuilds; once per generation, however many callers saw the loss.
    fn recover_device(&self, generation: u64, uninitialized: bool) -> Result<(), TokenError> {
        let mut state = self.lock()?;
        if state.generation != generation {
            return Ok(());
        }
        let result = match module_step(self.recovery, uninitialized) {
            ModuleStep::Reinitialize => {
                tracing::warn!(token = %self.token_label,
                    "reinitialising the PKCS#11 module (recovery = \"reinitialize\")");
                // Every session of this generation dies with the finalize: forget them first.
                Self::forget_sessions(&mut state);
                module::reinitialize(&self.ctx)
            }
            ModuleStep::Initialize => module::initialize(&self.ctx),
            ModuleStep::None => Ok(()),
        };
        result.map_err(|e| TokenError::Unavailable(describe(&e)))?;
        self.rebuild_locked(&mut state)
    }

    /// Drops every idle session and the anchor without closing them (their handles are dead).
    fn forget_sessions(state: &mut PoolState) {
        state.idle.clear();
        state.anchor = None;
    }

    /// Forgets every session of this generation and starts a new one with a fresh login.
    fn rebuild_locked(&self, state: &mut PoolState) -> Result<(), TokenError> {
        Self::forget_sessions(state);
        state.open = 0;
        state.generation += 1;
        state.handle_epoch += 1;
        self.returned.notify_all();
        self.open_anchor(state)
    }

    fn open_anchor(&self, state: &mut PoolState) -> Result<(), TokenError> {
        let anchor = self
            .ctx
            .open_rw_session_no_drop(self.slot)
            .map_err(|e| TokenError::Unavailable(format!("C_OpenSession: {}", describe(&e))))?;
        match self.log_in(&anchor) {
            Ok(()) => {
                state.anchor = Some(anchor);
                Ok(())
            }
            Err(e) => {
                if let TokenError::PinRefused { rv, .. } = &e {
                    state.refused = Some(rv.clone());
                }
                Err(e)
            }
        }
    }

    fn log_in(&self, session: &Session) -> Result<(), TokenError> {
        let Some(user) = self.login.user else {
            return Ok(());
        };
        match session.login(user, Some(&self.login.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) if classify(&e) == Failure::PinRefused => Err(TokenError::PinRefused {
                token: self.token_label.clone(),
                rv: describe(&e),
            }),
            Err(e) => Err(TokenError::Unavailable(format!(
                "C_Login: {}",
                describe(&e)
            ))),
        }
    }
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        // Close workers before the anchor, so the login outlives them.
        if let Ok(state) = self.state.get_mut() {
            state.idle.drain(..).for_each(close);
            if let Some(anchor) = state.anchor.take() {
                close(anchor);
            }
        }
    }
}

/// What the module needs before sessions are opened again after a device loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModuleStep {
    /// Nothing: new sessions suffice.
    None,
    /// `C_Initialize`: the module was finalized.
    Initialize,
    /// `C_Finalize` and `C_Initialize`: the profile says the module keeps no usable state
    /// after a loss (Luna HA after losing every member, YubiHSM connector restarts).
    Reinitialize,
}

fn module_step(recovery: Recovery, uninitialized: bool) -> ModuleStep {
    match (recovery, uninitialized) {
        (Recovery::Reinitialize, _) => ModuleStep::Reinitialize,
        (Recovery::Reopen, true) => ModuleStep::Initialize,
        (Recovery::Reopen, false) => ModuleStep::None,
    }
}

/// Closes a session whose handle is valid; a module that already forgot it is no concern.
fn close(session: Session) {
    if let Err(e) = session.close() {
        tracing::debug!(error = %describe(&e), "C_CloseSession");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_decides_whether_a_device_loss_reinitialises_the_module() {
        // CKR_DEVICE_ERROR on a module whose profile says "reinitialize": a full restart.
        assert_eq!(
            module_step(Recovery::Reinitialize, false),
            ModuleStep::Reinitialize
        );
        assert_eq!(
            module_step(Recovery::Reinitialize, true),
            ModuleStep::Reinitialize
        );
        // "reopen": only a finalized module is initialised again.
        assert_eq!(module_step(Recovery::Reopen, false), ModuleStep::None);
        assert_eq!(module_step(Recovery::Reopen, true), ModuleStep::Initialize);
    }
}
