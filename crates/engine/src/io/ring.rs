//! Creating a worker's ring: the best setup flags the kernel accepts,
//! falling back on EINVAL, with queues sized so nothing in flight can
//! overflow the completion queue.

use std::io;

use io_uring::IoUring;

use crate::io::probe::unavailable;
use crate::EngineError;

/// A ring and the setup flags it got.
pub(crate) struct Ring {
    pub ring: IoUring,
    pub flags: &'static [&'static str],
}

/// Tries SINGLE_ISSUER+DEFER_TASKRUN (6.1), then COOP_TASKRUN+TASKRUN_FLAG
/// (5.19), then no flags. Must be called on the thread that will use it.
pub(crate) fn build(sq_entries: u32, cq_entries: u32) -> Result<Ring, EngineError> {
    type Step = (&'static [&'static str], fn(&mut io_uring::Builder));
    let ladder: [Step; 3] = [
        (&["SINGLE_ISSUER", "DEFER_TASKRUN"], |b| {
            b.setup_single_issuer().setup_defer_taskrun();
        }),
        (&["COOP_TASKRUN", "TASKRUN_FLAG"], |b| {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }),
        (&[], |_| {}),
    ];
    let mut last = io::Error::from_raw_os_error(libc::EINVAL);
    for (flags, apply) in ladder {
        let mut b = IoUring::builder();
        b.setup_cqsize(cq_entries).setup_clamp();
        apply(&mut b);
        match b.build(sq_entries) {
            Ok(ring) => return Ok(Ring { ring, flags }),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
            Err(e) => return Err(unavailable(e)),
        }
    }
    Err(unavailable(last))
}
