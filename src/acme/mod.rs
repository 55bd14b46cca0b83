//! The RFC 8555 wire model: resources, statuses, identifiers, request payloads and problem
//! documents. Pure data: nothing here does I/O or knows about storage or keys.

pub mod ari;
pub mod jwk;
pub mod problem;
pub mod types;

pub use problem::{Problem, ProblemType};
pub use types::*;
