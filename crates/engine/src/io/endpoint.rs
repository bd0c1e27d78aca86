//! Where connections go: a TCP address (IPv4 or IPv6) or a Unix socket,
//! found once before the run.
//!
//! A name that resolves to several addresses (`localhost`: `::1` and
//! `127.0.0.1`) is tried in order until one accepts a connection, as wrk and
//! curl do, so a server listening on only one of them is found. The URL
//! still gives `Host`, SNI and the certificate name when connections go
//! elsewhere (`connect_to`, a Unix socket).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
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
        let addrs = addresses(cfg)?;
        let first = addrs[0];
        if addrs.len() == 1 {
            return Ok(Endpoint::Tcp(first));
        }
        // None answering: the first, and the run counts what happens.
        let wait = cfg.timeout.min(Duration::from_secs(1));
        Ok(Endpoint::Tcp(pick(&addrs, wait).unwrap_or(first)))
    }

    /// Every address `cfg`'s host resolves to that accepts a connection
    /// now (all of them when none does, so that the run counts what
    /// happens), and those left out.
    pub(crate) fn spread(cfg: &Config) -> Result<(Vec<SocketAddr>, Vec<SocketAddr>), EngineError> {
        let addrs = addresses(cfg)?;
        let wait = cfg.timeout.min(Duration::from_secs(1));
        let (live, dead): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
            .iter()
            .partition(|a| TcpStream::connect_timeout(a, wait).is_ok());
        Ok(match live.is_empty() {
            true => (addrs, Vec::new()),
            false => (live, dead),
        })
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

/// The addresses `cfg`'s host (or `connect_to`'s) resolves to, each once
/// (a resolver may list one per socket type), in the resolver's order;
/// at least one.
fn addresses(cfg: &Config) -> Result<Vec<SocketAddr>, EngineError> {
    let t = &cfg.request.target;
    let (host, port) = match &cfg.connect_to {
        Some((h, p)) => (h.as_str(), *p),
        None => (t.host.as_str(), t.port),
    };
    let fail = |reason: String| EngineError::Resolve {
        host: host.to_string(),
        reason,
    };
    let mut addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .collect();
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    if addrs.is_empty() {
        return Err(fail("no addresses found".into()));
    }
    Ok(addrs)
}

/// Most source addresses a run takes (a CIDR block of more is refused).
const MAX_SOURCES: usize = 65_536;

/// Source addresses from a list such as `127.0.0.2,127.0.0.3` or CIDR
/// blocks such as `127.0.0.0/28` (its hosts: the network and broadcast
/// addresses of an IPv4 block are left out, as they are not hosts).
///
/// ```
/// let a = urk_engine::parse_sources("127.0.0.0/30,::1").unwrap();
/// assert_eq!(a.len(), 3);
/// assert_eq!(a[0].to_string(), "127.0.0.1");
/// assert!(urk_engine::parse_sources("127.0.0.1/33").is_err());
/// ```
pub fn parse_sources(spec: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("'{part}' is not an IP address or a CIDR block such as 127.0.0.0/28");
        match part.split_once('/') {
            None => out.push(part.parse::<IpAddr>().map_err(|_| bad())?),
            Some((ip, bits)) => {
                let ip: IpAddr = ip.parse().map_err(|_| bad())?;
                let bits: u32 = bits.parse().map_err(|_| bad())?;
                let width = if ip.is_ipv4() { 32 } else { 128 };
                if bits > width {
                    return Err(bad());
                }
                let host_bits = width - bits;
                if host_bits > 16 {
                    return Err(format!(
                        "'{part}' holds more than {MAX_SOURCES} addresses; give a smaller block"
                    ));
                }
                let base = match ip {
                    IpAddr::V4(v) => u128::from(u32::from(v)),
                    IpAddr::V6(v) => u128::from(v),
                } >> host_bits
                    << host_bits;
                let count = 1u128 << host_bits;
                // An IPv4 block's first and last are its network and
                // broadcast addresses, not hosts (but for /31 and /32).
                let hosts = match (ip.is_ipv4(), host_bits) {
                    (true, 2..) => 1..count - 1,
                    _ => 0..count,
                };
                for k in hosts {
                    let a = base + k;
                    out.push(match ip {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(a as u32)),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(a)),
                    });
                }
            }
        }
        if out.len() > MAX_SOURCES {
            return Err(format!("more than {MAX_SOURCES} source addresses"));
        }
    }
    if out.is_empty() {
        return Err("no source address given".into());
    }
    Ok(out)
}

impl Endpoint {
    /// The source addresses' socket addresses (port 0: the connect picks
    /// it), each checked to be of the target's family and an address of
    /// this machine, so that a typo stops the run before any load rather
    /// than failing every connect.
    pub(crate) fn sources(
        &self,
        bind: &[IpAddr],
        spread: &[SocketAddr],
    ) -> Result<Vec<SocketAddr>, EngineError> {
        if bind.is_empty() {
            return Ok(Vec::new());
        }
        let Endpoint::Tcp(target) = self else {
            return Err(EngineError::Config(
                "source addresses (bind) apply to TCP targets, not a Unix socket".into(),
            ));
        };
        bind.iter()
            .map(|ip| {
                // Every connection may go to any of the targets.
                let other = std::iter::once(target)
                    .chain(spread)
                    .find(|t| t.is_ipv4() != ip.is_ipv4());
                if let Some(t) = other {
                    return Err(EngineError::Config(format!(
                        "source address {ip} is not of the target's family ({t})"
                    )));
                }
                let src = SocketAddr::new(*ip, 0);
                let probe = crate::io::backend::Socket {
                    timestamps: false,
                    family: if ip.is_ipv4() {
                        AddressFamily::Inet
                    } else {
                        AddressFamily::Inet6
                    },
                    tcp: true,
                    source: Some(&SockaddrStorage::from(src)),
                };
                probe
                    .make(nix::sys::socket::SockFlag::SOCK_CLOEXEC)
                    .map_err(|e| {
                        EngineError::Config(match e {
                            nix::errno::Errno::EADDRNOTAVAIL => {
                                format!("source address {ip} is not an address of this machine")
                            }
                            e => format!("source address {ip} cannot be bound: {}", e.desc()),
                        })
                    })?;
                Ok(src)
            })
            .collect()
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
