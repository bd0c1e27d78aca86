//! HTTP/2 without I/O: frames ([`frame`]), header compression
//! ([`hpack`]) and a client connection's protocol state ([`session`]);
//! and the translation of the HTTP/1.1 requests every source writes
//! ([`request`]). The engine drives one session per connection.

pub mod frame;
pub mod hpack;
pub mod request;
pub mod session;
