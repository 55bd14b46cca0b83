//! Operating the running service: the operator's admin socket.

pub mod admin;
