//! HTTP/2 without I/O: header compression ([`hpack`]) so far; frames and
//! the session come next (issue 25).

pub mod hpack;
