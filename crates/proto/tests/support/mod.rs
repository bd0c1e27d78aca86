//! nghttp2's server session as the reference peer: fed our bytes, it
//! answers as its `Behaviour` says, in bytes we read back.

#![allow(dead_code)]

use std::collections::HashMap;
use std::os::raw::{c_int, c_void};

use libnghttp2_sys as ng;

/// How the server answers each request stream that ends.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// The response's status (default 200).
    pub status: Option<&'static str>,
    /// Body bytes for each response (0: none, END_STREAM on HEADERS).
    pub body: usize,
    /// Refuse every request with RST_STREAM(REFUSED_STREAM) instead.
    pub refuse: bool,
    /// Streams answered so far.
    pub answered: Vec<i32>,
    /// Body bytes still to send, by stream (the server's own).
    pub left: HashMap<i32, usize>,
}

pub struct Server {
    session: *mut ng::nghttp2_session,
    callbacks: *mut ng::nghttp2_session_callbacks,
    pub behaviour: Box<Behaviour>,
}

unsafe extern "C" fn read_body(
    _session: *mut ng::nghttp2_session,
    stream: i32,
    buf: *mut u8,
    length: usize,
    flags: *mut u32,
    _source: *mut ng::nghttp2_data_source,
    user: *mut c_void,
) -> isize {
    // SAFETY: `user` is the server's Behaviour, alive as long as it.
    let b = unsafe { &mut *(user as *mut Behaviour) };
    let left = b.left.entry(stream).or_insert(0);
    let n = (*left).min(length);
    // SAFETY: nghttp2 hands a buffer of `length` bytes.
    unsafe { std::ptr::write_bytes(buf, b'x', n) };
    *left -= n;
    if *left == 0 {
        // SAFETY: nghttp2's flags word.
        unsafe { *flags |= ng::NGHTTP2_DATA_FLAG_EOF };
    }
    n as isize
}

unsafe extern "C" fn on_frame(
    session: *mut ng::nghttp2_session,
    frame: *const ng::nghttp2_frame,
    user: *mut c_void,
) -> c_int {
    // SAFETY: nghttp2 hands a valid frame; `hd` is valid for every type.
    let hd = unsafe { (*frame).hd };
    // A request ends with END_STREAM on its HEADERS (no body) or its last DATA.
    if !(hd.type_ == 0 || hd.type_ == 1) || hd.flags & 0x1 == 0 {
        return 0;
    }
    // SAFETY: `user` is the server's Behaviour.
    let b = unsafe { &mut *(user as *mut Behaviour) };
    b.answered.push(hd.stream_id);
    if b.refuse {
        // SAFETY: a live session.
        unsafe {
            ng::nghttp2_submit_rst_stream(session, 0, hd.stream_id, ng::NGHTTP2_REFUSED_STREAM)
        };
        return 0;
    }
    let (name, value) = (b":status", b.status.unwrap_or("200").as_bytes());
    let nv = ng::nghttp2_nv {
        name: name.as_ptr() as *mut u8,
        value: value.as_ptr() as *mut u8,
        namelen: name.len(),
        valuelen: value.len(),
        flags: ng::NGHTTP2_NV_FLAG_NONE as u8,
    };
    let provider = ng::nghttp2_data_provider {
        source: ng::nghttp2_data_source {
            ptr: std::ptr::null_mut(),
        },
        read_callback: Some(read_body),
    };
    b.left.insert(hd.stream_id, b.body);
    let prd = if b.body > 0 {
        &provider as *const _
    } else {
        std::ptr::null()
    };
    // SAFETY: a live session; nghttp2 copies the field and the provider.
    unsafe { ng::nghttp2_submit_response(session, hd.stream_id, &nv, 1, prd) };
    0
}

impl Server {
    /// A server whose first frame is SETTINGS with these pairs.
    pub fn new(settings: &[(i32, u32)], behaviour: Behaviour) -> Server {
        let mut behaviour = Box::new(behaviour);
        let mut callbacks = std::ptr::null_mut();
        let mut session = std::ptr::null_mut();
        let iv: Vec<ng::nghttp2_settings_entry> = settings
            .iter()
            .map(|&(settings_id, value)| ng::nghttp2_settings_entry { settings_id, value })
            .collect();
        // SAFETY: nghttp2 fills both pointers; the callbacks have the
        // signatures nghttp2 calls; the Behaviour is boxed and outlives
        // the session.
        unsafe {
            assert_eq!(ng::nghttp2_session_callbacks_new(&mut callbacks), 0);
            ng::nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Some(on_frame));
            let user = &mut *behaviour as *mut Behaviour as *mut c_void;
            assert_eq!(
                ng::nghttp2_session_server_new(&mut session, callbacks, user),
                0
            );
            assert_eq!(
                ng::nghttp2_submit_settings(session, 0, iv.as_ptr(), iv.len()),
                0
            );
        }
        Server {
            session,
            callbacks,
            behaviour,
        }
    }

    /// Takes `bytes`; returns all it then has to send.
    pub fn exchange(&mut self, bytes: &[u8]) -> Vec<u8> {
        // SAFETY: `bytes` lives for the call; each chunk nghttp2 hands out
        // is copied before the next call.
        unsafe {
            let n = ng::nghttp2_session_mem_recv2(self.session, bytes.as_ptr(), bytes.len());
            assert_eq!(n, bytes.len() as isize, "nghttp2 refused our bytes: {n}");
            self.drain()
        }
    }

    /// What it has to send now.
    pub fn drain(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut p = std::ptr::null();
            // SAFETY: a live session; the chunk is copied at once.
            let n = unsafe { ng::nghttp2_session_mem_send2(self.session, &mut p) };
            assert!(n >= 0);
            if n == 0 {
                return out;
            }
            // SAFETY: nghttp2 hands `n` readable bytes at `p`.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(p, n as usize) });
        }
    }

    /// Sends GOAWAY with this last stream.
    pub fn goaway(&mut self, last_stream: i32) -> Vec<u8> {
        // SAFETY: a live session.
        unsafe { ng::nghttp2_submit_goaway(self.session, 0, last_stream, 0, std::ptr::null(), 0) };
        self.drain()
    }

    /// Sends a PING.
    pub fn ping(&mut self, data: [u8; 8]) -> Vec<u8> {
        // SAFETY: a live session; nghttp2 copies the 8 bytes.
        unsafe { ng::nghttp2_submit_ping(self.session, 0, data.as_ptr()) };
        self.drain()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: made by nghttp2 above, freed once.
        unsafe {
            ng::nghttp2_session_del(self.session);
            ng::nghttp2_session_callbacks_del(self.callbacks);
        }
    }
}
