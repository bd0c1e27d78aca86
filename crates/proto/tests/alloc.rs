//! The client session allocates nothing per request once it is warm:
//! opening streams (with bodies), taking its output and reading responses
//! (against nghttp2's server session) are counted by a counting allocator,
//! and after the first rounds the count must stay at zero.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use proto::h2::hpack::encode_field;
use proto::h2::session::{ClientSession, Event};
use support::{Behaviour, Server};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the test's own thread is counted (the harness allocates on
    /// others meanwhile).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTED.with(|c| c.get()) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counter is the only addition.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's layout, handed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc`, and the caller's new size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[test]
fn a_warm_session_allocates_nothing_per_request() {
    let mut block = Vec::new();
    for (n, v) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/upload"),
        (":authority", "a"),
    ] {
        encode_field(n.as_bytes(), v.as_bytes(), &mut block);
    }
    let body = vec![b'b'; 300];
    let mut server = Server::new(
        &[],
        Behaviour {
            body: 100,
            ..Behaviour::default()
        },
    );
    let mut c = ClientSession::new();
    let mut tx = Vec::new();
    let mut from_server = Vec::new();
    let (mut counted, mut done) = (0, 0);
    COUNTED.with(|c| c.set(true));
    for round in 0..600 {
        let before = allocations();
        c.receive(&from_server, |e| {
            done += u64::from(matches!(e, Event::Done { .. }))
        })
        .unwrap();
        for _ in 0..4 {
            c.request(&block, &body).unwrap();
        }
        c.take_output(&mut tx);
        if round >= 100 {
            counted += allocations() - before;
        }
        // The server's own allocations are not counted.
        from_server = server.exchange(&tx);
    }
    assert!(done >= 4 * 590, "{done} responses");
    assert_eq!(counted, 0, "allocations in 500 warm rounds of 4 requests");
}
