//! A ring-mapped provided buffer ring (5.19+): the kernel picks a buffer for
//! each receive at the moment data arrives, so idle connections pin no
//! memory and one worker's connections share one pool.
//!
//! Ownership: a buffer belongs to the kernel from the moment its entry is
//! published at the tail until a completion names its id; then it belongs to
//! us until [`BufRing::recycle`] puts it back. The engine recycles every
//! buffer in the same loop iteration it is reported, right after the framer
//! has read it.

use std::alloc::{self, Layout};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
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
}

impl BufRing {
    /// Allocates `count` (a power of two, at most 32768) buffers of
    /// `buf_size` bytes, registers them as group `bgid` and hands them all to
    /// the kernel. Memory is zeroed lazily by the OS, so untouched buffers
    /// cost no resident memory.
    pub(crate) fn new(
        submitter: &Submitter<'_>,
        count: u16,
        buf_size: u32,
        bgid: u16,
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
        };
        // SAFETY: the entry array is page-aligned, `count` entries long and
        // owned by `ring`, which lives until after it is unregistered (the
        // worker unregisters before dropping it; Drop only frees memory).
        unsafe { submitter.register_buf_ring_with_flags(entries.as_ptr() as u64, count, bgid, 0)? };
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

    /// The first `len` bytes of buffer `bid`, which a completion just handed
    /// to us.
    pub(crate) fn get(&self, bid: u16, len: usize) -> &[u8] {
        let len = len.min(self.buf_size as usize);
        let bid = bid % self.count;
        // SAFETY: the completion that named `bid` gave the buffer to us; the
        // kernel will not write it again until `recycle(bid)` publishes it,
        // and that needs `&mut self`, which this borrow prevents.
        unsafe {
            std::slice::from_raw_parts(
                self.bufs
                    .as_ptr()
                    .add(bid as usize * self.buf_size as usize),
                len,
            )
        }
    }

    /// Puts buffer `bid` back at the tail; the kernel sees it after [`publish`](Self::publish).
    pub(crate) fn recycle(&mut self, bid: u16) {
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
