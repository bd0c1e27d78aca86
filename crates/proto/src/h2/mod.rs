//! HTTP/2 without I/O: frames ([`frame`]), header compression
//! ([`hpack`]) and a client connection's protocol state ([`session`]);
//! the engine drives the session next (issue 25).

pub mod frame;
pub mod hpack;
pub mod session;
