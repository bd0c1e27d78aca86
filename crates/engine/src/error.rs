use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::IoLevel;

/// Why a run could not start or go on. Every message says what to do about
/// it; the CLI prints it as one line and exits with status 2.
///
/// Faults of the *target* (refused connections, resets, garbage, timeouts)
/// are not errors here: they are counted in the [`Report`](crate::Report).
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// The URL, a header or the method is unusable.
    Request(proto::RequestError),
    /// A setting is out of range; the string names it and the valid range.
    Config(String),
    /// The host name could not be resolved.
    Resolve {
        /// The host as given.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The kernel or the environment refuses io_uring.
    IoUringUnavailable(Unavailable),
    /// `--io` asked for a level this kernel does not have.
    IoLevelUnsupported {
        /// What was asked for.
        level: IoLevel,
        /// This kernel's release string.
        kernel: String,
        /// What the level needs.
        needs: &'static str,
    },
    /// Too few file descriptors for the connections asked for, even after
    /// raising the soft limit to the hard one.
    TooFewFiles {
        /// Descriptors the run needs.
        needed: u64,
        /// The hard limit.
        limit: u64,
    },
    /// A TLS file (CA, client certificate or key) cannot be used.
    TlsFile {
        /// Which file it is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The handshake made before any load failed: nothing was sent.
    Tls(TlsFailure),
    /// The script failed before any load (making a worker's state, or
    /// its first request); the message names the file and line.
    Script(crate::ScriptError),
    /// A one-request exchange ([`Plan::exchange`](crate::Plan::exchange))
    /// got no complete response.
    Exchange {
        /// Where it went.
        server: String,
        /// What it was doing: "connect", "send the request", "read the
        /// response".
        step: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The probe connection found that the server does not speak HTTP/2
    /// (`Config::http2`): nothing else was sent.
    NotHttp2 {
        /// Where the probe went.
        server: String,
        /// What the server did instead, in a few words.
        got: String,
    },
    /// A capacity search over a fleet of shards could not meet or keep
    /// its shards together.
    Fleet(crate::run::search::fleet::FleetFault),
    /// An unexpected system call failure while setting up.
    Setup {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// A handshake that failed before the load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    /// The address and server name tried.
    pub server: String,
    /// What went wrong, in a class the caller can act on.
    pub problem: TlsProblem,
    /// More about it in a few plain words (the names a certificate is
    /// for, the socket's error); may be empty.
    pub detail: String,
}

/// The class of a failed handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsProblem {
    /// The certificate is not signed by a trusted CA (self-signed, or a
    /// private CA), or its signature does not verify: trust its CA, or
    /// turn verification off.
    Untrusted,
    /// The certificate is for another name: connect by the name it was
    /// issued for, or set the server name.
    NameMismatch,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet (a clock is wrong, or it was
    /// issued for later).
    NotValidYet,
    /// The server presents a CA certificate (`CA:TRUE`) as its own, and it
    /// is not itself one of the trusted certificates: trust that
    /// certificate itself, or serve one issued by it.
    CaAsServerCert,
    /// The certificate is signed with an algorithm the provider does not
    /// verify.
    UnsupportedSignature,
    /// The TCP connection could not be made.
    Connect,
    /// The handshake did not finish within the timeout.
    Timeout,
    /// Anything else (no common version or cipher, an alert, ...).
    Other,
}

/// Why io_uring cannot be used here, with the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// `kernel.io_uring_disabled` is set (value given).
    DisabledBySysctl(u8),
    /// `io_uring_setup` answered EPERM: a seccomp profile (containers) or an
    /// LSM forbids it.
    Forbidden,
    /// `io_uring_setup` does not exist (ENOSYS): kernel too old or built
    /// without io_uring.
    NotInKernel,
    /// The kernel has io_uring but lacks operations urk needs (before 5.10).
    TooOld,
    /// `io_uring_setup` answered ENOMEM: before 5.12 rings are charged to
    /// the locked-memory limit (`RLIMIT_MEMLOCK`).
    LockedMemory,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Request(e) => e.fmt(f),
            EngineError::Config(s) => f.write_str(s),
            EngineError::Fleet(x) => x.fmt(f),
            EngineError::Resolve { host, reason } => {
                write!(f, "cannot resolve host '{host}': {reason}")
            }
            EngineError::IoUringUnavailable(u) => u.fmt(f),
            EngineError::IoLevelUnsupported {
                level,
                kernel,
                needs,
            } => write!(
                f,
                "--io {level} needs {needs}, but this kernel is {kernel}; use --io auto"
            ),
            EngineError::TooFewFiles { needed, limit } => write!(
                f,
                "{needed} connections need {needed} file descriptors but the limit is {limit}; \
                 lower -c or raise the limit (ulimit -n, or LimitNOFILE= for a service)"
            ),
            EngineError::TlsFile { what, path, reason } => {
                write!(f, "cannot use the {what} '{}': {reason}", path.display())
            }
            EngineError::Tls(t) => t.fmt(f),
            EngineError::Script(e) => e.fmt(f),
            EngineError::Exchange {
                server,
                step,
                reason,
            } => write!(f, "could not {step} ({server}): {reason}"),
            EngineError::NotHttp2 { server, got } => {
                write!(f, "{server} does not speak HTTP/2: {got}")
            }
            EngineError::Setup { what, source } => write!(f, "{what} failed: {source}"),
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.problem {
            TlsProblem::Untrusted => {
                "the server's certificate is not trusted: no trusted CA issued it"
            }
            TlsProblem::NameMismatch => "the server's certificate is for another name",
            TlsProblem::Expired => "the server's certificate has expired",
            TlsProblem::NotValidYet => "the server's certificate is not valid yet",
            TlsProblem::CaAsServerCert => {
                "the server presents a CA certificate (CA:TRUE) as its own, and that certificate is not itself trusted"
            }
            TlsProblem::UnsupportedSignature => {
                "the server's certificate is signed with an algorithm urk cannot verify"
            }
            TlsProblem::Connect => "the connection failed",
            TlsProblem::Timeout => "the handshake did not finish in time",
            TlsProblem::Other => "the handshake failed",
        };
        write!(f, "TLS with {}: {what}", self.server)?;
        match self.detail.as_str() {
            "" => Ok(()),
            d => write!(f, " ({d})"),
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::DisabledBySysctl(v) => write!(
                f,
                "io_uring is disabled on this machine (kernel.io_uring_disabled = {v}); \
                 enable it with: sysctl -w kernel.io_uring_disabled=0"
            ),
            Unavailable::Forbidden => write!(
                f,
                "io_uring is blocked here (io_uring_setup: permission denied), usually by a \
                 container's seccomp profile; allow io_uring_setup, io_uring_enter and \
                 io_uring_register (e.g. docker run --security-opt seccomp=unconfined)"
            ),
            Unavailable::NotInKernel => write!(
                f,
                "this kernel has no io_uring (io_uring_setup: not implemented); urk needs Linux 5.10 or newer"
            ),
            Unavailable::LockedMemory => write!(
                f,
                "io_uring_setup ran out of locked memory (RLIMIT_MEMLOCK, charged for rings before Linux 5.12); \
                 raise it with ulimit -l (e.g. ulimit -l unlimited, or docker run --ulimit memlock=-1)"
            ),
            Unavailable::TooOld => write!(
                f,
                "this kernel's io_uring lacks send/recv/connect; urk needs Linux 5.10 or newer"
            ),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Request(e) => Some(e),
            EngineError::Setup { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<proto::RequestError> for EngineError {
    fn from(e: proto::RequestError) -> Self {
        EngineError::Request(e)
    }
}
