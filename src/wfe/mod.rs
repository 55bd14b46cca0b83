//! Web front end: HTTP ↔ ACME only. Parses and verifies requests, calls the RA, renders
//! resources; holds no business rules.

pub mod jws;
pub mod nonce;
