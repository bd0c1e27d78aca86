//! HTTP/2 connections: requests open streams while the in-flight depth
//! and the server's limit allow, the session's output goes out in one
//! send at a time, and what arrives is booked stream by stream. The
//! transitions are the HTTP/1.1 ones (connect, handshake, receive, close);
//! only what a request and a response are differs.

use proto::h2::session::Event;

use super::completions::Books;
use super::*;
use crate::io::session::{H2Session, Retry, Stream};

/// RST_STREAM's REFUSED_STREAM: the server did not process the stream.
const REFUSED_STREAM: u32 = 0x7;

/// The fixed request (or a static script's), translated once per worker:
/// every stream of it sends this header block and body.
pub(super) struct FixedH2 {
    block: Vec<u8>,
    body: Vec<u8>,
}

impl FixedH2 {
    /// Translates the first request of `fixed` for `scheme`.
    pub(super) fn new(fixed: &[u8], scheme: &str) -> Result<FixedH2, EngineError> {
        let mut block = Vec::new();
        let t = proto::h2::request::translate(fixed, scheme, &mut block)
            .map_err(|e| EngineError::Config(format!("the request as HTTP/2: {e}")))?;
        Ok(FixedH2 {
            block,
            body: fixed[t.body].to_vec(),
        })
    }
}

impl<B: Backend> Worker<'_, B> {
    /// Opens streams on connection `i` while it may (the depth, the
    /// server's limit, `-n`, the schedule), then sends whatever the session
    /// has to say, requests and protocol answers alike.
    pub(super) fn send_streams(&mut self, i: usize, now: u64) {
        while self.may_open(i) {
            // Requests the server never processed go first, keeping their
            // intended send times.
            let (intended, retry) = match self.retries.pop_front() {
                Some(r) => (r.intended_at, Some(r)),
                None => match self.take_slot(i, now) {
                    Some(at) => (at, None),
                    None => break,
                },
            };
            if !self.open_streams(i, now, intended, retry) {
                if let Some(r) = retry {
                    // Still owed: the next connection with room sends it.
                    self.retries.push_front(r);
                }
                break;
            }
        }
        let c = &self.conns[i];
        if let Some(h) = &c.h2 {
            let peak = h.streams.len() as u64;
            let h2 = &mut self.stats.h2;
            h2.streams_peak = h2.streams_peak.max(peak);
        }
        if let Err(fault) = self.flush_session(i) {
            self.fail(i, now, fault);
        }
    }

    /// Requests to send again wait for a connection with room: offered to
    /// every open one (rare: only after a refusal or a GOAWAY), so that
    /// they do not wait for the next response of a busy one, or forever
    /// when `-n` has left the others idle.
    pub(super) fn place_retries(&mut self, now: u64) {
        for k in 0..self.conns.len() {
            if self.retries.is_empty() {
                return;
            }
            if self.may_open(k) {
                self.send_streams(k, now);
            }
        }
    }

    /// Whether connection `i` may open another stream now.
    fn may_open(&self, i: usize) -> bool {
        let c = &self.conns[i];
        let Some(h) = &c.h2 else { return false };
        let has_room = h.streams.len() < self.shared.pipeline as usize && h.session.can_request();
        let issue = self.stop.is_none() && (!self.retries.is_empty() || self.left() > 0);
        let share_left = self
            .shared
            .requests_per_conn
            .is_none_or(|n| c.life.responses + c.life.outstanding < n);
        !self.warming && c.phase == Phase::Open && has_room && issue && share_left
    }

    /// Opens the streams of one request source call (a script's
    /// `request()` may give several) on connection `i`, all meant for
    /// `intended`. False if nothing could be opened.
    fn open_streams(&mut self, i: usize, now: u64, intended: u64, retry: Option<Retry>) -> bool {
        let scheme = if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        if let Some(f) = &self.h2_fixed {
            let Some(h) = self.conns[i].h2.as_mut() else {
                return false;
            };
            let Some(id) = h.session.request(&f.block, &f.body) else {
                return false;
            };
            let target = retry.and_then(|r| r.target);
            self.opened(i, now, intended, id, target, retry.is_some());
            return true;
        }
        let left = self.left().max(1);
        let c = &mut self.conns[i];
        let targets = matches!(self.source, WorkerSource::Targets { .. });
        let made = match retry.and_then(|r| r.target) {
            Some(id) if targets => self.source.render(id, &mut c.out),
            _ => self.source.batch(1, left, &mut c.out),
        };
        let Some(batch) = made else {
            // The script failed: the worker stops at the next turn.
            return false;
        };
        if batch.requests == 0 {
            return false;
        }
        let mut at = 0;
        for k in 0..batch.requests as usize {
            let c = &mut self.conns[i];
            self.h2_block.clear();
            let t =
                match proto::h2::request::translate(&c.out.bytes[at..], scheme, &mut self.h2_block)
                {
                    Ok(t) => t,
                    Err(e) => {
                        if let Some(s) = self.source.script() {
                            s.error = Some(crate::ScriptError(format!("request() as HTTP/2: {e}")));
                        }
                        return false;
                    }
                };
            let body = &c.out.bytes[at + t.body.start..at + t.body.end];
            at += t.used;
            let target = targets.then(|| c.out.ids[k]);
            let Some(h) = c.h2.as_mut() else {
                return false;
            };
            let Some(id) = h.session.request(&self.h2_block, body) else {
                // The server's limit fell meanwhile: the rest is not sent.
                return k > 0;
            };
            self.opened(i, now, intended, id, target, retry.is_some() && k == 0);
        }
        true
    }

    /// Books stream `id` as sent.
    fn opened(
        &mut self,
        i: usize,
        now: u64,
        intended: u64,
        id: u32,
        target: Option<u32>,
        retried: bool,
    ) {
        let c = &mut self.conns[i];
        let Some(h) = c.h2.as_mut() else { return };
        h.streams.push(Stream {
            id,
            sent_at: now,
            intended_at: intended,
            target,
            status: 0,
        });
        c.life.outstanding += 1;
        self.in_flight += 1;
        self.stats.sent += 1;
        self.stats.h2.retried += u64::from(retried);
    }

    /// Sends the session's output, if no send is in flight: swapped out
    /// whole on the plain transport, encrypted under TLS.
    pub(super) fn flush_session(&mut self, i: usize) -> Result<(), Fault> {
        let c = &mut self.conns[i];
        let Some(h) = &mut c.h2 else { return Ok(()) };
        // Before the session starts (connecting, in the TLS handshake) the
        // output is the last connection's.
        if c.phase != Phase::Open || c.life.send.is_some() || h.session.output().is_empty() {
            return Ok(());
        }
        let len = match &mut c.tls {
            None => {
                h.session.take_output(&mut h.tx);
                h.tx.len()
            }
            Some(t) => {
                let out = h.session.output();
                t.encrypt(out)?;
                let n = out.len();
                h.session.sent(n);
                t.tx.len()
            }
        };
        c.life.batch_len = len as u32;
        self.push_send_range(i, 0, len);
        Ok(())
    }

    /// Cancels connection `i`'s streams older than the timeout with
    /// RST_STREAM(CANCEL): each is a timeout and lost; their late frames
    /// are still read (the header table and the windows need them).
    pub(super) fn expire_streams(&mut self, i: usize, now: u64) {
        let timeout = self.shared.timeout_us;
        let c = &mut self.conns[i];
        let Some(h) = &mut c.h2 else { return };
        let mut k = 0;
        let mut expired = 0;
        while k < h.streams.len() {
            let s = h.streams[k];
            if now.saturating_sub(s.sent_at) > timeout {
                h.session.cancel(s.id);
                h.captures.drop_stream(s.id);
                h.streams.swap_remove(k);
                expired += 1;
                if let Some(log) = &mut self.log {
                    log.push(crate::run::reqlog::Record {
                        intended_us: self.wall_start_us + s.intended_at,
                        sent_us: self.wall_start_us + s.sent_at,
                        latency_us: now.saturating_sub(s.intended_at),
                        status: 0,
                        body_bytes: None,
                        error: Some("timeout"),
                        target: s.target,
                        worker: self.index as u16,
                        connection: (self.conn_base + i) as u32,
                    });
                }
            } else {
                k += 1;
            }
        }
        if expired == 0 {
            return;
        }
        c.life.outstanding -= expired;
        self.in_flight -= u64::from(expired);
        self.stats.errors.timeout += u64::from(expired);
        self.stats.lost.timeout += u64::from(expired);
        self.send_streams(i, now);
    }

    /// A new connection in slot `i` starts its session (made fresh when
    /// the slot was released): counted.
    pub(super) fn start_session(&mut self, i: usize) {
        if self.conns[i].h2.is_some() {
            self.stats.h2.sessions += 1;
        }
    }
}

/// What reading an HTTP/2 connection's bytes touches.
pub(super) struct H2Feed<'a, 'w> {
    pub h2: &'a mut H2Session,
    pub life: &'a mut Life,
    pub source: &'a mut WorkerSource<'w>,
    pub retries: &'a mut std::collections::VecDeque<Retry>,
    /// A script reads headers or bodies: responses are kept whole.
    pub keep: bool,
}

impl H2Feed<'_, '_> {
    /// Hands plaintext to the session and books what it says: first
    /// bytes, complete responses, resets, GOAWAY. A protocol error ends
    /// the connection as a parse fault.
    pub(super) fn feed(&mut self, data: &[u8], books: &mut Books) -> Result<(), Fault> {
        let H2Session {
            session,
            streams,
            captures,
            ..
        } = &mut *self.h2;
        let life = &mut *self.life;
        let source = &mut *self.source;
        let retries = &mut *self.retries;
        let limit = session.max_concurrent();
        // Both of the session's callbacks write kept responses.
        let captures = std::cell::RefCell::new(captures);
        let keep = self.keep;
        let taken = |streams: &mut Vec<Stream>, id: u32| {
            let k = streams.iter().position(|s| s.id == id)?;
            Some(streams.swap_remove(k))
        };
        let on = |ev| match ev {
            Event::FirstByte { stream } => {
                if let Some(s) = streams.iter().find(|s| s.id == stream) {
                    books.first_byte_at(s.intended_at);
                }
            }
            Event::Date { stream, unix_s } => {
                if let Some(s) = streams.iter().find(|s| s.id == stream) {
                    books.server_date(unix_s, s.sent_at);
                }
            }
            Event::Status { stream, status } => {
                if let Some(s) = streams.iter_mut().find(|s| s.id == stream) {
                    s.status = status;
                    if keep {
                        captures.borrow_mut().status(stream, status);
                    }
                }
            }
            Event::Body { .. } => {}
            Event::Done { stream } => {
                if let Some(s) = taken(streams, stream) {
                    books.book_stream(life, &s);
                    let raw = keep.then(|| captures.borrow_mut().take(stream)).flatten();
                    if let Some(sc) = source.script() {
                        sc.response(s.status, raw.as_deref());
                    }
                    if let Some(raw) = raw {
                        captures.borrow_mut().give_back(raw);
                    }
                }
            }
            Event::Reset { stream, code } => {
                if let Some(s) = taken(streams, stream) {
                    captures.borrow_mut().drop_stream(stream);
                    books.unbook_stream(life, &s, code, retries);
                }
            }
            Event::GoAway { last_stream, .. } => {
                books.stats.h2.goaways += 1;
                // Streams above its last one were never processed: sent
                // again elsewhere.
                let mut k = 0;
                while k < streams.len() {
                    if streams[k].id > last_stream {
                        let s = streams.swap_remove(k);
                        captures.borrow_mut().drop_stream(s.id);
                        books.unbook_stream(life, &s, REFUSED_STREAM, retries);
                    } else {
                        k += 1;
                    }
                }
            }
        };
        let result = match keep {
            false => session.receive(data, on),
            true => session.receive_pieces(data, on, |stream, piece| {
                captures.borrow_mut().piece(stream, piece)
            }),
        };
        let now_limit = session.max_concurrent();
        if now_limit != limit && now_limit != u32::MAX {
            let m = &mut books.stats.h2.server_max_streams;
            *m = Some(m.map_or(u64::from(now_limit), |v| v.min(u64::from(now_limit))));
        }
        result.map_err(|_| Fault::Parse)
    }
}

impl Books<'_> {
    /// The first byte of a stream's response: timed from its intended send.
    pub(super) fn first_byte_at(&mut self, intended_at: u64) {
        let ttfb = self.now.saturating_sub(intended_at);
        crate::report::stats::record_growing(&mut self.stats.ttfb_us, ttfb.max(1));
        if let Some(iv) = self.interval_ttfb {
            iv.saturating_record(ttfb.max(1));
        }
    }

    /// Books a stream's complete response.
    pub(super) fn book_stream(&mut self, l: &mut Life, s: &Stream) {
        l.outstanding -= 1;
        *self.in_flight -= 1;
        let now = self.now;
        // A stream's end frees room for the next.
        l.free_at = now;
        let corrected = now.saturating_sub(s.intended_at);
        self.kernel_time(corrected);
        if let Some(log) = &mut self.log {
            log.record(
                (s.intended_at, s.sent_at, corrected),
                s.status,
                None,
                None,
                s.target,
            );
        }
        if self.rate_mode {
            self.stats.samples.response(s.intended_at, corrected);
        }
        self.stats.response(
            s.status,
            corrected,
            self.rate_mode.then(|| now.saturating_sub(s.sent_at)),
        );
        if let Some(t) = s.target {
            self.stats.target_response(t, s.status, corrected);
        }
        if let Some(iv) = self.interval {
            iv.saturating_record(corrected.max(1));
        }
        if let Some(iv) = self.interval_uncorrected {
            iv.saturating_record(now.saturating_sub(s.sent_at).max(1));
        }
        l.answered = true;
        l.responses += 1;
    }

    /// A stream the server reset (or never processed, before a GOAWAY's
    /// last stream): a refused one goes back to be sent again, as if it
    /// had not been sent; any other code loses it.
    fn unbook_stream(
        &mut self,
        l: &mut Life,
        s: &Stream,
        code: u32,
        retries: &mut std::collections::VecDeque<Retry>,
    ) {
        l.outstanding -= 1;
        *self.in_flight -= 1;
        if code == REFUSED_STREAM {
            self.stats.sent -= 1;
            retries.push_back(Retry {
                intended_at: s.intended_at,
                target: s.target,
            });
        } else {
            self.stats.errors.reset += 1;
            self.stats.lost.reset += 1;
            self.stats.h2.resets.count(code);
            let now = self.now;
            if let Some(log) = &mut self.log {
                log.record(
                    (s.intended_at, s.sent_at, now.saturating_sub(s.intended_at)),
                    0,
                    None,
                    Some("reset"),
                    s.target,
                );
            }
        }
    }
}
