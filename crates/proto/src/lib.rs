//! HTTP/1.1 on the wire for urk, without any I/O.
//!
//! A load generator sends the same request millions of times and must frame
//! every response exactly, however the kernel splits the bytes. So this crate
//! does two things only:
//!
//! - [`RequestSpec::encode`] turns a request into bytes **once**, before the
//!   run; the engine then sends the same bytes over and over.
//! - [`ResponseFramer`] finds where each response ends, incrementally, over
//!   arbitrary splits and pipelined responses, without allocating per
//!   response (the head is parsed in place with `httparse`; only a head that
//!   straddles two reads is copied, into a buffer reused for the connection's
//!   life).
//!
//! For HTTP/2, [`h2::hpack`] compresses request templates once and decodes
//! response header blocks; frames and the session follow.
//!
//! ```
//! use proto::{ResponseFramer, Target, RequestSpec};
//!
//! let target = Target::parse("http://127.0.0.1:8080/hello?x=1").unwrap();
//! let request = RequestSpec::get(target).encode().unwrap();
//! assert!(request.starts_with(b"GET /hello?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
//!
//! let mut framer = ResponseFramer::new(false);
//! let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\n";
//! let mut statuses = Vec::new();
//! framer.feed_all(wire, |r| statuses.push(r.status)).unwrap();
//! assert_eq!(statuses, [200, 204]);
//! ```

mod chunked;
mod date;
mod error;
mod framer;
pub mod h2;
pub mod parts;
mod request;
mod target;
pub mod targets;
pub mod template;

pub use date::http_date;
pub use error::{FrameError, RequestError};
pub use framer::{Response, ResponseFramer, MAX_HEADERS, MAX_HEAD_BYTES};
pub use request::RequestSpec;
pub use target::Target;

/// The version string sent in `User-Agent: urk/VERSION`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
