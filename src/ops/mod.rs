//! Operating the running service: the operator's commands and the admin socket they come
//! through.

pub mod admin;
pub mod operator;
