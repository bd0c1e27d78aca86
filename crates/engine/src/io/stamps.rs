//! Kernel receive timestamps: when the kernel took in the bytes that a
//! receive hands over, so that the time a response then waited for urk
//! (its thread asleep, busy, or batching completions) can be told apart
//! from the time the server and the network took.
//!
//! A socket asks with `SO_TIMESTAMPING` for software receive timestamps;
//! each `recvmsg` on it then carries a control message with the time the
//! last segment it read was received (TCP reports the newest of the
//! segments a read consumed). Plain `recv` has no control messages, so
//! receives become `recvmsg`: multishot on the buffer ring (the timestamp
//! rides in each buffer ahead of the payload), single-shot with a control
//! buffer of the connection's own elsewhere, and `recvmsg(2)` under epoll.
//!
//! The timestamps are on the realtime clock (`CLOCK_REALTIME`), not the
//! monotonic one the worker times requests with: the worker reads the
//! realtime clock beside its monotonic one and takes differences on one
//! clock only.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, TimestampingFlag};

/// Control bytes a receive reserves: one `SCM_TIMESTAMPING` message
/// (a 16-byte header and three 16-byte timespecs).
pub(crate) const CONTROL_LEN: usize = 64;

/// Asks the kernel to timestamp what `fd` receives, in software.
pub(crate) fn enable<F: AsFd>(fd: &F) -> Result<(), Errno> {
    socket::setsockopt(
        fd,
        sockopt::Timestamping,
        &(TimestampingFlag::SOF_TIMESTAMPING_RX_SOFTWARE
            | TimestampingFlag::SOF_TIMESTAMPING_SOFTWARE),
    )
}

/// Holds the kernel's receive timestamping switched on while it lives.
pub(crate) struct StampsOn {
    _socket: std::net::UdpSocket,
}

/// Switches the kernel's software receive timestamping on and waits until
/// it is: the kernel turns it on lazily, from a work queue, after the
/// first socket asks, and segments received before then carry no time
/// (a run's first responses would go unstamped). A datagram sent to
/// itself on loopback comes back stamped once it is on; this tries for
/// up to 50 ms. The socket it returns keeps timestamping on for the run,
/// so that nothing turns it off between one connection and the next.
/// `None`: no loopback here to try on; connections still ask on their own.
pub(crate) fn switch_on() -> Option<StampsOn> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags};
    use std::os::fd::AsRawFd;
    let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket.connect(socket.local_addr().ok()?).ok()?;
    enable(&socket).ok()?;
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(5)))
        .ok()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    while std::time::Instant::now() < deadline {
        if socket.send(b"urk").is_err() {
            break;
        }
        let mut buf = [0u8; 8];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(nix::sys::socket::Timestamps);
        let stamped = socket::recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .is_ok_and(|m| {
            m.cmsgs().is_ok_and(|mut c| {
                c.any(|c| matches!(c, ControlMessageOwned::ScmTimestampsns(t) if t.system.tv_sec() > 0))
            })
        });
        if stamped {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Some(StampsOn { _socket: socket })
}

/// The software receive time in a receive's control bytes, in
/// nanoseconds since the epoch (realtime clock), if they carry one.
pub(crate) fn parse(control: &[u8]) -> Option<u64> {
    const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
    let word = |b: &[u8]| -> Option<i64> { Some(i64::from_ne_bytes(b.get(..8)?.try_into().ok()?)) };
    let mut at = 0;
    while at + HDR <= control.len() {
        let len = usize::from_ne_bytes(control[at..at + 8].try_into().ok()?);
        let level = i32::from_ne_bytes(control[at + 8..at + 12].try_into().ok()?);
        let kind = i32::from_ne_bytes(control[at + 12..at + 16].try_into().ok()?);
        if len < HDR || at + len > control.len() {
            return None;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPING {
            // ts[0] is the software timestamp (ts[2] the hardware one).
            let data = &control[at + HDR..at + len];
            let (sec, nsec) = (word(data)?, word(data.get(8..)?)?);
            if sec <= 0 {
                return None;
            }
            return Some(sec as u64 * 1_000_000_000 + nsec as u64);
        }
        at += len.next_multiple_of(std::mem::size_of::<usize>());
    }
    None
}

/// Now on the realtime clock, in nanoseconds since the epoch: the clock
/// the kernel's timestamps are on.
pub(crate) fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(level: i32, kind: i32, sec: i64, nsec: i64) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(16usize + 48).to_ne_bytes());
        m.extend_from_slice(&level.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        for (s, n) in [(sec, nsec), (0, 0), (0, 0)] {
            m.extend_from_slice(&s.to_ne_bytes());
            m.extend_from_slice(&n.to_ne_bytes());
        }
        m
    }

    #[test]
    fn finds_the_software_timestamp_among_control_messages() {
        let ts = message(
            libc::SOL_SOCKET,
            libc::SCM_TIMESTAMPING,
            1_800_000_000,
            123_456_789,
        );
        assert_eq!(parse(&ts), Some(1_800_000_000_123_456_789));
        // Behind another message.
        let mut two = message(libc::IPPROTO_TCP, 1, 5, 5);
        two.extend_from_slice(&ts);
        assert_eq!(parse(&two), Some(1_800_000_000_123_456_789));
        // None, a cut-off message, or an empty timestamp: nothing.
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&ts[..40]), None);
        assert_eq!(
            parse(&message(libc::SOL_SOCKET, libc::SCM_TIMESTAMPING, 0, 0)),
            None
        );
    }

    #[test]
    fn switching_on_makes_the_next_datagram_stamped() {
        let _on = switch_on().unwrap();
        // Another socket's datagrams are stamped at once now.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(socket.local_addr().unwrap()).unwrap();
        enable(&socket).unwrap();
        socket.send(b"x").unwrap();
        let mut buf = [0u8; 8];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(nix::sys::socket::Timestamps);
        let m = socket::recvmsg::<()>(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            &mut iov,
            Some(&mut space),
            socket::MsgFlags::empty(),
        )
        .unwrap();
        assert!(m.cmsgs().unwrap().any(|c| matches!(
            c,
            socket::ControlMessageOwned::ScmTimestampsns(t) if t.system.tv_sec() > 0
        )));
    }

    #[test]
    fn a_socket_takes_the_option() {
        let fd = socket::socket(
            socket::AddressFamily::Inet,
            socket::SockType::Stream,
            socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        enable(&fd).unwrap();
        let got = socket::getsockopt(&fd, sockopt::Timestamping).unwrap();
        assert!(got.contains(TimestampingFlag::SOF_TIMESTAMPING_RX_SOFTWARE));
    }
}
