//! The byte stream between ring I/O and the framer.
//!
//! The plain transport is the ring's own bytes: responses are framed
//! straight from the provided buffers, every connection sends from the
//! worker's one copy of the request, and long bodies can be discarded
//! unread (`MSG_TRUNC`). The TLS transport ([`tls`]) decrypts what
//! arrives before the framer sees it and encrypts each batch into the
//! connection's own send buffer; it cannot discard, since every record
//! must be decrypted whole. A connection carries a [`TlsSession`] exactly
//! when its target is `https://`; a kernel-TLS transport would be a third
//! kind here, with the plain path's buffers and TLS's handshake.

mod blocking;
mod tls;

pub(crate) use blocking::BlockingStream;
pub use tls::Negotiated;
pub(crate) use tls::{TlsCause, TlsClient, TlsSession, TlsSetup};
