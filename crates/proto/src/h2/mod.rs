//! HTTP/2 without I/O: frames ([`frame`]) and header compression
//! ([`hpack`]); the session that drives them comes next (issue 25).

pub mod frame;
pub mod hpack;
