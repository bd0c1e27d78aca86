//! Where connections go: a TCP address (IPv4 or IPv6) or a Unix socket,
//! found once before the run.
//!
//! A name that resolves to several addresses (`localhost`: `::1` and
//! `127.0.0.1`) is tried in order until one accepts a connection, as wrk and
//! curl do, so a server listening on only one of them is found. The URL
//! still gives `Host`, SNI and the certificate name when connections go
//! elsewhere (`connect_to`, a Unix socket).

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, UnixAddr};

use crate::{Config, EngineError};

/// Where a run's connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket (stream).
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => a.fmt(f),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Endpoint {
    /// Finds the endpoint of `cfg`: its Unix socket, or the addresses of
    /// `connect_to` (else the URL's host), the first that accepts a
    /// connection when there are several.
    pub(crate) fn find(cfg: &Config) -> Result<Endpoint, EngineError> {
        if let Some(p) = &cfg.unix_socket {
            return Ok(Endpoint::Unix(p.clone()));
        }
        let t = &cfg.request.target;
        let (host, port) = match &cfg.connect_to {
            Some((h, p)) => (h.as_str(), *p),
            None => (t.host.as_str(), t.port),
        };
        let fail = |reason: String| EngineError::Resolve {
            host: host.to_string(),
            reason,
        };
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| fail(e.to_string()))?
            .collect();
        let first = *addrs
            .first()
            .ok_or_else(|| fail("no addresses found".into()))?;
        if addrs.len() == 1 {
            return Ok(Endpoint::Tcp(first));
        }
        // None answering: the first, and the run counts what happens.
        let wait = cfg.timeout.min(Duration::from_secs(1));
        Ok(Endpoint::Tcp(pick(&addrs, wait).unwrap_or(first)))
    }

    /// The TCP address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Tcp(a) => Some(*a),
            Endpoint::Unix(_) => None,
        }
    }

    /// The socket address connects go to, and its family.
    pub(crate) fn sockaddr(&self) -> Result<(SockaddrStorage, AddressFamily), EngineError> {
        match self {
            Endpoint::Tcp(a) => Ok((
                SockaddrStorage::from(*a),
                match a {
                    SocketAddr::V4(_) => AddressFamily::Inet,
                    SocketAddr::V6(_) => AddressFamily::Inet6,
                },
            )),
            Endpoint::Unix(p) => {
                let u = UnixAddr::new(p.as_path()).map_err(|e| {
                    EngineError::Config(format!(
                        "unix socket path '{}' is unusable: {e}",
                        p.display()
                    ))
                })?;
                // SAFETY: `u` is a valid sockaddr_un of `u.len()` bytes; the
                // storage copies it.
                let s = unsafe { SockaddrStorage::from_raw(u.as_ptr().cast(), Some(u.len())) }
                    .ok_or_else(|| EngineError::Config("unix socket path too long".into()))?;
                Ok((s, AddressFamily::Unix))
            }
        }
    }
}

/// The first of `addrs` that accepts a connection within `wait`.
fn pick(addrs: &[SocketAddr], wait: Duration) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| TcpStream::connect_timeout(a, wait).is_ok())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_address_that_answers_is_taken() {
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (live_addr, dead_addr) = (live.local_addr().unwrap(), dead.local_addr().unwrap());
        drop(dead);
        let wait = Duration::from_millis(500);
        assert_eq!(pick(&[dead_addr, live_addr], wait), Some(live_addr));
        assert_eq!(pick(&[dead_addr], wait), None);
    }
}
