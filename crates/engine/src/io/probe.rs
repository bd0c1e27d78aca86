//! What this kernel's io_uring can do, found out by asking it rather than
//! trusting version numbers alone. Opcode support is not enough: multishot
//! recv reuses the RECV opcode that 5.10 already reports, so it is judged by
//! the kernel version together with a working buffer ring.

use std::io;

use io_uring::{opcode, IoUring};
use serde::Serialize;

use crate::error::Unavailable;
use crate::io::bufring::BufRing;
use crate::{EngineError, IoLevel};

/// The kernel's io_uring, as probed.
#[derive(Debug, Clone, Serialize)]
pub struct KernelSupport {
    /// `uname -r`.
    pub release: String,
    /// Major, minor and patch parsed from the release.
    pub version: (u32, u32, u32),
    /// Ring-mapped provided buffers (5.19+), tried for real.
    pub buf_ring: bool,
    /// Provided buffers consumed incrementally (`IOU_PBUF_RING_INC`,
    /// 6.12+), tried for real.
    pub buf_ring_inc: bool,
    /// Multishot recv (6.0+).
    pub recv_multishot: bool,
    /// The wait can carry a timeout (`IORING_FEAT_EXT_ARG`, 5.11+).
    pub ext_arg: bool,
    /// The wait can settle for one completion after a minimum time
    /// (`IORING_FEAT_MIN_TIMEOUT`, 6.12+).
    pub min_timeout: bool,
    /// Socket options can be set through the ring (`URING_CMD` on
    /// sockets, 6.7+): a connection's options go with its other SQEs
    /// instead of costing a syscall each.
    pub ring_sockopt: bool,
    /// The best level this kernel supports.
    pub best: IoLevel,
}

impl KernelSupport {
    /// Probes the running kernel with a small throwaway ring.
    pub fn probe() -> Result<KernelSupport, EngineError> {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let version = parse_release(&release);
        let ring = IoUring::new(8).map_err(unavailable)?;
        let mut probe = io_uring::Probe::new();
        if ring.submitter().register_probe(&mut probe).is_err() {
            return Err(EngineError::IoUringUnavailable(Unavailable::TooOld));
        }
        let needed = [
            opcode::Send::CODE,
            opcode::Recv::CODE,
            opcode::Connect::CODE,
            opcode::AsyncCancel::CODE,
            opcode::Timeout::CODE,
        ];
        if !needed.iter().all(|&op| probe.is_supported(op)) {
            return Err(EngineError::IoUringUnavailable(Unavailable::TooOld));
        }
        let try_ring = |incremental| match BufRing::new(&ring.submitter(), 1, 4096, 0, incremental)
        {
            Ok(b) => {
                b.unregister(&ring.submitter());
                true
            }
            Err(_) => false,
        };
        let buf_ring = try_ring(false);
        let buf_ring_inc = buf_ring && try_ring(true);
        let recv_multishot = buf_ring && version >= (6, 0, 0);
        let best = if recv_multishot {
            IoLevel::Full
        } else if buf_ring {
            IoLevel::Basic
        } else {
            IoLevel::Legacy
        };
        Ok(KernelSupport {
            release,
            version,
            buf_ring,
            buf_ring_inc,
            recv_multishot,
            ext_arg: ring.params().is_feature_ext_arg(),
            min_timeout: ring.params().is_feature_min_timeout(),
            ring_sockopt: probe.is_supported(opcode::SetSockOpt::CODE) && version >= (6, 7, 0),
            best,
        })
    }

    /// Turns `auto` into a concrete level, or refuses a level the kernel lacks.
    /// What is known without io_uring: the kernel release, no feature.
    pub fn without_uring() -> KernelSupport {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        KernelSupport {
            version: parse_release(&release),
            release,
            buf_ring: false,
            buf_ring_inc: false,
            recv_multishot: false,
            ext_arg: false,
            min_timeout: false,
            ring_sockopt: false,
            best: IoLevel::Epoll,
        }
    }

    pub fn resolve(&self, asked: IoLevel) -> Result<IoLevel, EngineError> {
        let refuse = |needs| {
            Err(EngineError::IoLevelUnsupported {
                level: asked,
                kernel: self.release.clone(),
                needs,
            })
        };
        match asked {
            IoLevel::Auto => Ok(self.best),
            IoLevel::Full if !self.recv_multishot => {
                refuse("Linux 6.0+ (multishot recv with a provided buffer ring)")
            }
            IoLevel::Basic if !self.buf_ring => {
                refuse("Linux 5.19+ (ring-mapped provided buffers)")
            }
            level => Ok(level),
        }
    }
}

/// Maps a failed `io_uring_setup` to what the user can do about it.
pub(crate) fn unavailable(e: io::Error) -> EngineError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .ok()
                .and_then(|s| s.trim().parse::<u8>().ok())
                .unwrap_or(0);
            EngineError::IoUringUnavailable(if sysctl > 0 {
                Unavailable::DisabledBySysctl(sysctl)
            } else {
                Unavailable::Forbidden
            })
        }
        Some(libc::ENOSYS) => EngineError::IoUringUnavailable(Unavailable::NotInKernel),
        Some(libc::ENOMEM) => EngineError::IoUringUnavailable(Unavailable::LockedMemory),
        _ => EngineError::Setup {
            what: "io_uring_setup",
            source: e,
        },
    }
}

fn parse_release(r: &str) -> (u32, u32, u32) {
    let mut it = r
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_releases() {
        assert_eq!(super::parse_release("6.18.44-fc-v657"), (6, 18, 44));
        assert_eq!(super::parse_release("5.10.0-30-cloud-amd64"), (5, 10, 0));
        assert_eq!(super::parse_release("6.1"), (6, 1, 0));
    }
}
