//! hsm-acme: an ACME (RFC 8555) certificate authority whose keys never leave a PKCS#11
//! token.
//!
//! Layering (DESIGN.md): `wfe → ra → {policy, va, ca, store}`, `ca → hsm`. This crate holds
//! all logic; `main.rs` only parses the command line.
#![forbid(unsafe_code)]

pub mod acme;
pub mod app;
pub mod ca;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hsm;
pub mod ops;
pub mod policy;
pub mod publish;
pub mod ra;
pub mod store;
pub mod va;
pub mod wfe;
