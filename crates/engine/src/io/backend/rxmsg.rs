//! The `msghdr`s that receives with kernel timestamps need (see
//! [`crate::io::stamps`]): one template for every multishot `recvmsg`
//! (the kernel reads only its name and control lengths, at submission),
//! and one per connection, with its control bytes, for single-shot ones,
//! which the kernel writes back into at completion.

use crate::io::stamps::{self, CONTROL_LEN};

/// One connection's single-shot `recvmsg`: its header, the one buffer it
/// reads into, and where the kernel puts the control message.
struct Slot {
    hdr: libc::msghdr,
    iov: libc::iovec,
    control: [u8; CONTROL_LEN],
}

pub(super) struct RxMsgs {
    /// For multishot receives on the buffer ring: no name, `CONTROL_LEN`
    /// control bytes at the head of each buffer.
    multi: Box<libc::msghdr>,
    /// Single-shot receives, by connection; boxed so that the kernel's
    /// pointers into them stay valid while the worker's vectors move.
    slots: Box<[Slot]>,
    /// Whether each connection's receive in flight is a multishot one.
    multishot: Vec<bool>,
    /// Where the payload starts in each provided buffer a multishot
    /// `recvmsg` filled (after its header and control bytes), by buffer id.
    payload_at: Vec<u32>,
}

impl RxMsgs {
    pub(super) fn new(connections: usize, buffers: usize) -> RxMsgs {
        // SAFETY: msghdr and iovec are plain C structs; all-zero is a
        // valid value of each (null pointers, zero lengths).
        let zero_hdr = || unsafe { std::mem::zeroed::<libc::msghdr>() };
        let mut multi = Box::new(zero_hdr());
        multi.msg_controllen = CONTROL_LEN as _;
        let slots = (0..connections)
            .map(|_| Slot {
                hdr: zero_hdr(),
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
                control: [0; CONTROL_LEN],
            })
            .collect();
        RxMsgs {
            multi,
            slots,
            multishot: vec![false; connections],
            payload_at: vec![0; buffers],
        }
    }

    /// The header for a multishot receive on connection `i`.
    pub(super) fn arm_multi(&mut self, i: usize) -> *const libc::msghdr {
        self.multishot[i] = true;
        &*self.multi
    }

    /// Whether connection `i`'s receive is a multishot one.
    pub(super) fn multishot(&self, i: usize) -> bool {
        self.multishot.get(i).copied().unwrap_or(false)
    }

    /// Connection `i`'s header, set for a receive of up to `len` bytes at
    /// `base` (null with a provided buffer or a discarding read).
    pub(super) fn arm(&mut self, i: usize, base: *mut u8, len: usize) -> *mut libc::msghdr {
        self.multishot[i] = false;
        let s = &mut self.slots[i];
        s.iov = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        s.hdr.msg_iov = &mut s.iov;
        s.hdr.msg_iovlen = 1;
        s.hdr.msg_control = s.control.as_mut_ptr().cast();
        s.hdr.msg_controllen = CONTROL_LEN as _;
        &mut s.hdr
    }

    /// A single-shot receive on connection `i` completed: the time in
    /// the control bytes the kernel wrote back (0: none).
    pub(super) fn single(&self, i: usize) -> u64 {
        let s = &self.slots[i];
        // A usize with glibc, a u32 with musl.
        #[allow(clippy::unnecessary_cast)]
        let n = (s.hdr.msg_controllen as usize).min(CONTROL_LEN);
        stamps::parse(&s.control[..n]).unwrap_or(0)
    }

    /// A multishot receive filled `buf` (the bytes of provided buffer
    /// `bid` its completion counted): notes where the payload starts, and
    /// returns the payload's length (0: the peer closed) and the time
    /// (0: none).
    pub(super) fn multi_done(&mut self, bid: u16, buf: &[u8]) -> (i32, u64) {
        match io_uring::types::RecvMsgOut::parse(buf, &self.multi) {
            Ok(out) => {
                let stamp = stamps::parse(out.control_data()).unwrap_or(0);
                let payload = out.payload_data().len();
                if let Some(at) = self.payload_at.get_mut(usize::from(bid)) {
                    *at = (buf.len() - payload) as u32;
                }
                (payload as i32, stamp)
            }
            Err(()) => (-libc::EIO, 0),
        }
    }

    /// Where the payload of buffer `bid` starts (0: at its head).
    pub(super) fn payload_at(&self, bid: u16) -> usize {
        self.payload_at
            .get(usize::from(bid))
            .map_or(0, |&a| a as usize)
    }

    /// Buffer `bid` went back to the ring.
    pub(super) fn recycled(&mut self, bid: u16) {
        if let Some(at) = self.payload_at.get_mut(usize::from(bid)) {
            *at = 0;
        }
    }
}
