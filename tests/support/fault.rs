//! A deliberately broken HTTP server for urk's fault tests: every Nth
//! request (counted over all connections) gets the chosen fault, the others
//! a normal `200 ok`. It counts what it received and what it did, so tests
//! can check urk's accounting against the server's.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// How a faulty response goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Part of a response, then a TCP reset.
    ResetMidResponse,
    /// Close without answering.
    CloseWithoutResponse,
    /// A complete keep-alive response, then close (no `Connection: close`).
    CloseAfterResponse,
    /// Bytes that are not HTTP.
    Garbage,
    /// A chunked body cut off, then close.
    TruncatedChunked,
    /// A chunk size line that never ends.
    EndlessChunkLine,
    /// A head over 64 KiB.
    HugeHead,
    /// More than 100 header fields.
    TooManyHeaders,
    /// `Content-Length: 100`, 10 bytes, then close.
    LyingLength,
    /// A body that never ends (a byte now and then).
    EndlessBody,
    /// `Content-Length: 200000` (long enough to be discarded unread),
    /// 40000 bytes, then close.
    LongBodyCut,
    /// `Content-Length: 200000`, 40000 bytes, then a TCP reset.
    LongBodyReset,
    /// Read the request, never answer.
    NeverAnswer,
}

pub struct FaultServer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

#[derive(Default)]
pub struct Counts {
    /// Requests read in full.
    pub received: AtomicU64,
    /// Normal responses written in full.
    pub ok: AtomicU64,
    /// Faults delivered.
    pub faulted: AtomicU64,
}

impl Counts {
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.received.load(Ordering::SeqCst),
            self.ok.load(Ordering::SeqCst),
            self.faulted.load(Ordering::SeqCst),
        )
    }
}

impl FaultServer {
    /// Serves on 127.0.0.1; every `every`th request gets `fault`.
    pub fn start(fault: Fault, every: u64) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let seq = Arc::new(AtomicU64::new(0));
        {
            let counts = counts.clone();
            thread::spawn(move || {
                for s in listener.incoming().flatten() {
                    let (counts, seq) = (counts.clone(), seq.clone());
                    thread::spawn(move || serve(s, fault, every, &counts, &seq));
                }
            });
        }
        FaultServer { addr, counts }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The counts once they stop moving.
    pub fn settled(&self) -> (u64, u64, u64) {
        let mut last = self.counts.get();
        loop {
            thread::sleep(Duration::from_millis(100));
            let now = self.counts.get();
            if now == last {
                return now;
            }
            last = now;
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Reads until the peer closes, discarding: the connection is left to the client.
fn hold(mut s: TcpStream) {
    let mut b = [0u8; 4096];
    while matches!(s.read(&mut b), Ok(n) if n > 0) {}
}

fn reset(s: TcpStream) {
    let linger = nix::libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(&s.as_fd(), nix::sys::socket::sockopt::Linger, &linger);
    drop(s);
}

fn serve(mut s: TcpStream, fault: Fault, every: u64, counts: &Counts, seq: &AtomicU64) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    let mut have = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..have]) {
            Ok(httparse::Status::Complete(n)) => {
                buf.copy_within(n..have, 0);
                have -= n;
            }
            Ok(httparse::Status::Partial) => {
                match s.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => have += n,
                }
                continue;
            }
            Err(_) => return,
        }
        counts.received.fetch_add(1, Ordering::SeqCst);
        if seq.fetch_add(1, Ordering::SeqCst) % every != every - 1 {
            if s.write_all(OK).is_err() {
                return;
            }
            counts.ok.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        counts.faulted.fetch_add(1, Ordering::SeqCst);
        let _ = match fault {
            Fault::ResetMidResponse => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
                thread::sleep(Duration::from_millis(5));
                return reset(s);
            }
            Fault::CloseWithoutResponse => {
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
            Fault::CloseAfterResponse => {
                if s.write_all(OK).is_ok() {
                    counts.ok.fetch_add(1, Ordering::SeqCst);
                }
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
            Fault::Garbage => s.write_all(b"GARBAGE GARBAGE\r\n\r\n"),
            Fault::TruncatedChunked => {
                let _ =
                    s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc");
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
            Fault::EndlessChunkLine => {
                let mut w = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
                w.extend(std::iter::repeat_n(b'e', 16 * 1024));
                s.write_all(&w)
            }
            Fault::HugeHead => {
                let mut w = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
                w.extend(std::iter::repeat_n(b'a', 70 * 1024));
                s.write_all(&w)
            }
            Fault::TooManyHeaders => {
                let mut w = b"HTTP/1.1 200 OK\r\n".to_vec();
                for i in 0..101 {
                    w.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
                }
                w.extend_from_slice(b"Content-Length: 0\r\n\r\n");
                s.write_all(&w)
            }
            Fault::LyingLength => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
            Fault::EndlessBody => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n");
                while s.write_all(b"x").is_ok() {
                    thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Fault::LongBodyCut | Fault::LongBodyReset => {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n");
                let _ = s.write_all(&[b'l'; 40_000]);
                thread::sleep(Duration::from_millis(5));
                if fault == Fault::LongBodyReset {
                    return reset(s);
                }
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
            Fault::NeverAnswer => Ok(()),
        };
        return hold(s);
    }
}
