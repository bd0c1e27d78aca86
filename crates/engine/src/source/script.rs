//! Requests made by code as the run goes: the seam a script engine (the
//! `urk-script` crate runs wrk's Lua scripts through it) or any Rust type
//! plugs into.
//!
//! The engine asks each worker's [`WorkerScript`] for requests, delays and
//! responses on that worker's own thread; nothing crosses threads per
//! request. What the hooks need is read once, at start ([`Hooks`]), so that
//! a run whose script never looks at responses frames them exactly as
//! without a script: no header tables, no copies of bodies.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// A run's script: makes each worker's side of it.
///
/// ```
/// use std::net::SocketAddr;
/// use urk_engine::{Hooks, RequestScript, ScriptError, WorkerScript};
///
/// /// Every request asks for the next page.
/// #[derive(Debug)]
/// struct Pages;
/// struct PagesOnThread(u64);
///
/// impl RequestScript for Pages {
///     fn hooks(&self) -> Hooks {
///         Hooks { dynamic: true, ..Hooks::default() }
///     }
///     fn for_worker(&self, _index: usize, _addr: Option<SocketAddr>) -> Result<Box<dyn WorkerScript>, ScriptError> {
///         Ok(Box::new(PagesOnThread(0)))
///     }
/// }
///
/// impl WorkerScript for PagesOnThread {
///     fn request(&mut self, out: &mut Vec<u8>) -> Result<(), ScriptError> {
///         self.0 += 1;
///         out.extend_from_slice(format!("GET /page/{} HTTP/1.1\r\nHost: h\r\n\r\n", self.0).as_bytes());
///         Ok(())
///     }
/// }
///
/// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/")?.script(std::sync::Arc::new(Pages));
/// # Ok::<(), urk_engine::EngineError>(())
/// ```
pub trait RequestScript: Send + Sync + fmt::Debug {
    /// Which hooks the script has; asked once, before the run.
    fn hooks(&self) -> Hooks;
    /// Makes worker `index`'s side, on that worker's thread, before its
    /// connections open; `addr` is where they would connect (`None`: a
    /// Unix socket). An error stops the run before any load.
    fn for_worker(
        &self,
        index: usize,
        addr: Option<SocketAddr>,
    ) -> Result<Box<dyn WorkerScript>, ScriptError>;
}

/// A script's side on one worker thread.
pub trait WorkerScript {
    /// Where this worker's connections go (wrk's `thread.addr`); `None`:
    /// the run's address.
    fn addr(&self) -> Option<SocketAddr> {
        None
    }
    /// Appends the next request, or several pipelined ones, to `out`. A
    /// static script ([`Hooks::dynamic`] false) is asked once per worker.
    fn request(&mut self, out: &mut Vec<u8>) -> Result<(), ScriptError>;
    /// Milliseconds to wait before the next request on a connection (only
    /// asked when [`Hooks::delay`]).
    fn delay_ms(&mut self) -> Result<f64, ScriptError> {
        Ok(0.0)
    }
    /// A complete response (only when [`Hooks::response`] is not `None`;
    /// headers and body only as much as it asked for).
    fn response(&mut self, _r: &ScriptResponse<'_>) -> Result<(), ScriptError> {
        Ok(())
    }
    /// The script asked this worker to stop (wrk's `thread:stop()`).
    fn stopped(&self) -> bool {
        false
    }
    /// The worker's load is over (on its thread, before its state goes).
    fn finish(&mut self) {}
}

/// Which hooks a script has, so that the engine does only what they need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Requests are made per request (`request()`); otherwise once per
    /// worker, and sent as a fixed request.
    pub dynamic: bool,
    /// A delay is asked for before each request.
    pub delay: bool,
    /// What the response hook takes.
    pub response: ResponseUse,
}

/// How much of each response a script takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResponseUse {
    /// No response hook.
    #[default]
    None,
    /// The status only.
    Status,
    /// Status and headers.
    Headers,
    /// Status, headers and body (responses are then read whole, never
    /// discarded unread).
    Body,
}

/// A response handed to [`WorkerScript::response`].
#[derive(Debug)]
pub struct ScriptResponse<'a> {
    /// Its status code.
    pub status: u16,
    /// Its headers, in order (empty unless [`ResponseUse::Headers`] or more).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Its body, de-chunked (empty unless [`ResponseUse::Body`]).
    pub body: &'a [u8],
}

/// A script's failure, with where it happened (file and line) as the
/// script engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError(pub String);

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

/// The script as the configuration holds it.
pub(crate) type SharedScript = Arc<dyn RequestScript>;
