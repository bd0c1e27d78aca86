//! HPACK (RFC 7541): header blocks in and out, without I/O.
//!
//! The [`Decoder`] keeps the dynamic table a connection's responses build
//! (every block must be decoded, even a cancelled stream's, or the table
//! drifts) and hands each field to a callback, borrowed: nothing is kept
//! per response. The [`encode_field`] side is for request templates, made
//! once before a run: static-table indices where they exist and literals
//! never indexed otherwise, so that a block means the same whatever state
//! the server's table is in, and can be sent again and again unchanged.
//!
//! ```
//! use proto::h2::hpack::{encode_field, Decoder};
//! let mut block = Vec::new();
//! encode_field(b":method", b"GET", &mut block);
//! encode_field(b":path", b"/index.html?x=1", &mut block);
//! assert_eq!(block[0], 0x82); // :method GET, static entry 2
//! let mut fields = Vec::new();
//! Decoder::new(4096)
//!     .decode(&block, |n, v| fields.push((n.to_vec(), v.to_vec())))
//!     .unwrap();
//! assert_eq!(fields[1], (b":path".to_vec(), b"/index.html?x=1".to_vec()));
//! ```

mod decoder;
mod encoder;
pub mod huffman;
mod integer;
mod table;

pub use decoder::{Decoder, HpackError};
pub use encoder::{encode_field, encode_size_update};
pub use table::STATIC;
