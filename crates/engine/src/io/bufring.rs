//! A ring-mapped provided buffer ring (5.19+): the kernel picks a buffer for
//! each receive at the moment data arrives, so idle connections pin no
//! memory and one worker's connections share one pool.
//!
//! Ownership: a buffer belongs to the kernel from the moment its entry is
//! published at the tail until a completion names its id; then it belongs to
//! us until [`BufRing::recycle`] puts it back. The engine settles every
//! completion's buffer in the same loop iteration it is reported, right
//! after the framer has read it.
//!
//! Incremental consumption (`IOU_PBUF_RING_INC`, 6.12+) changes the hand-off:
//! the kernel fills one large buffer across many receives, each completion
//! handing us only the bytes it wrote, and the buffer comes back to us only
//! when it is full. Small responses then pack into one buffer instead of
//! taking one each (so a few buffers serve thousands of connections), and a
//! large response lands in one piece instead of several buffer-sized ones:
//! the buffer size stops having to match the responses.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::cqueue;
use io_uring::types::{BufRingEntry, IOU_PBUF_RING_INC};
use io_uring::Submitter;

const PAGE: usize = 4096;

pub(crate) struct BufRing {
    entries: NonNull<BufRingEntry>,
    entries_layout: Layout,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    count: u16,
    buf_size: u32,
    tail: u16,
    bgid: u16,
    /// Registered with `IOU_PBUF_RING_INC`.
    incremental: bool,
    /// Incremental mode: where the unread part of each buffer starts (the
    /// kernel keeps this in its copy of the entry; completions do not say).
    offsets: Box<[u32]>,
}

impl BufRing {
    /// Allocates `count` (a power of two, at most 32768) buffers of
    /// `buf_size` bytes, registers them as group `bgid` (consumed
    /// incrementally if `incremental`; kernels before 6.12 refuse that with
    /// EINVAL) and hands them all to the kernel. Memory is zeroed lazily by
    /// the OS, so untouched buffers cost no resident memory.
    pub(crate) fn new(
        submitter: &Submitter<'_>,
        count: u16,
        buf_size: u32,
        bgid: u16,
        incremental: bool,
    ) -> io::Result<BufRing> {
        assert!(
            count.is_power_of_two(),
            "buffer count must be a power of two"
        );
        let entries_layout =
            Layout::from_size_align(count as usize * size_of::<BufRingEntry>(), PAGE)
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let bufs_layout = Layout::from_size_align(count as usize * buf_size as usize, PAGE)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: both layouts have non-zero size (count >= 1, buf_size >= 1).
        let (entries, bufs) = unsafe {
            (
                alloc::alloc_zeroed(entries_layout),
                alloc::alloc_zeroed(bufs_layout),
            )
        };
        let (Some(entries), Some(bufs)) = (
            NonNull::new(entries.cast::<BufRingEntry>()),
            NonNull::new(bufs),
        ) else {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        };
        let mut ring = BufRing {
            entries,
            entries_layout,
            bufs,
            bufs_layout,
            count,
            buf_size,
            tail: 0,
            bgid,
            incremental,
            offsets: vec![0; if incremental { count as usize } else { 0 }].into_boxed_slice(),
        };
        let flags = if incremental {
            IOU_PBUF_RING_INC as u16
        } else {
            0
        };
        // SAFETY: the entry array is page-aligned, `count` entries long and
        // owned by `ring`, which lives until after it is unregistered (the
        // worker unregisters before dropping it; Drop only frees memory).
        unsafe {
            submitter.register_buf_ring_with_flags(entries.as_ptr() as u64, count, bgid, flags)?
        };
        for bid in 0..count {
            ring.recycle(bid);
        }
        ring.publish();
        Ok(ring)
    }

    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    pub(crate) fn buf_size(&self) -> u32 {
        self.buf_size
    }

    pub(crate) fn bgid(&self) -> u16 {
        self.bgid
    }

    pub(crate) fn incremental(&self) -> bool {
        self.incremental
    }

    /// The `len` bytes a completion just delivered into buffer `bid`.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        let bid = (bid % self.count) as usize;
        let start = if self.incremental {
            self.offsets[bid].min(self.buf_size)
        } else {
            0
        };
        let len = len.min((self.buf_size - start) as usize);
        // SAFETY: the bytes lie inside buffer `bid`. The completion that
        // named `bid` gave us these bytes: the kernel will not write them
        // again until `recycle(bid)` publishes the buffer, which needs
        // `&mut self`, which this borrow prevents. In incremental mode the
        // kernel may meanwhile fill the rest of the buffer, past
        // `start + len`, which this slice does not cover.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .as_ptr()
                    .add(bid * self.buf_size as usize + start as usize),
                len,
            )
        }
    }

    /// Accounts for a completion of `res` with `flags` that named buffer
    /// `bid`, once its bytes have been read: recycles the buffer if the
    /// kernel is done with it.
    ///
    /// A failed receive consumed nothing, whatever its flags say. In
    /// incremental mode neither did a 0-byte one (EOF): its completion names
    /// the buffer the kernel is still filling, and recycling that would put
    /// it in the ring twice.
    pub(crate) fn settle(&mut self, bid: u16, res: i32, flags: u32) {
        let b = (bid % self.count) as usize;
        if self.incremental {
            if res <= 0 {
                return;
            }
            if cqueue::buffer_more(flags) {
                self.offsets[b] = self.offsets[b].saturating_add(res as u32);
                return;
            }
            self.offsets[b] = 0;
        } else if res < 0 {
            return;
        }
        self.recycle(bid);
    }

    /// Puts buffer `bid` back at the tail; the kernel sees it after [`publish`](Self::publish).
    fn recycle(&mut self, bid: u16) {
        let bid = bid % self.count;
        let idx = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `idx < count`, inside the entry array we own. The kernel
        // only reads entries between its head and the published tail, and
        // this slot is past the published tail until `publish`.
        unsafe {
            let e = &mut *self.entries.as_ptr().add(idx);
            e.set_addr(
                self.bufs
                    .as_ptr()
                    .add(bid as usize * self.buf_size as usize) as u64,
            );
            e.set_len(self.buf_size);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every recycled buffer visible to the kernel, with one release store.
    pub(crate) fn publish(&mut self) {
        // SAFETY: the tail field lives in the first entry of our page-aligned
        // array (a u16 at offset 14, so aligned for AtomicU16); the kernel
        // reads it concurrently, hence the atomic release store, which also
        // orders the entry writes before it.
        unsafe {
            let tail = BufRingEntry::tail(self.entries.as_ptr()) as *mut u16;
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }

    /// Takes the ring away from the kernel. Call before dropping, with no
    /// receive that selects from it still in flight.
    pub(crate) fn unregister(&self, submitter: &Submitter<'_>) {
        let _ = submitter.unregister_buf_ring(self.bgid);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the owner has
        // unregistered the ring (or closed the io_uring) and no receive is in
        // flight, so the kernel holds no reference to either allocation.
        unsafe {
            alloc::dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            alloc::dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}
