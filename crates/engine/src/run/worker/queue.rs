//! Transitions that queue SQEs: sends, receives, connects and closes.

use super::*;

impl<B: Backend> Worker<'_, B> {
    /// Requests may still go out: new ones, or HTTP/2 requests to send
    /// again (which `-n` has counted already).
    pub(super) fn can_issue(&self) -> bool {
        self.stop.is_none() && (self.left() > 0 || !self.retries.is_empty())
    }

    /// Requests this worker may still send: its share of a request count
    /// less what is done and in flight; no bound during a warm-up, whose
    /// requests are not counted.
    pub(super) fn left(&self) -> u64 {
        // Requests waiting to be sent again are spoken for.
        let owed = self.stats.requests + self.in_flight + self.retries.len() as u64;
        match self.quota {
            Some(q) if !self.in_warmup => q.saturating_sub(owed),
            _ => u64::MAX,
        }
    }

    pub(super) fn try_send(&mut self, i: usize, now: u64) {
        if self.conns[i].h2.is_some() {
            return self.send_streams(i, now);
        }
        let c = &self.conns[i];
        if self.warming
            || c.phase != Phase::Open
            || c.life.outstanding > 0
            || c.life.send.is_some()
            || c.life.last
            || !self.can_issue()
        {
            return;
        }
        let mut limit = self.left();
        if let Some(n) = self.shared.requests_per_conn {
            // What this connection has left before it is replaced.
            limit = limit.min(u64::from(n.saturating_sub(c.life.responses)));
        }
        let Some(intended) = self.take_slot(i, now) else {
            return;
        };
        let c = &mut self.conns[i];
        let Some(batch) = self.source.batch(self.shared.pipeline, limit, &mut c.out) else {
            // The script failed: the worker stops at the next turn.
            return;
        };
        if batch.requests == 0 {
            return;
        }
        let l = &mut c.life;
        l.outstanding = batch.requests;
        l.batch = batch.requests;
        l.sent_at = now;
        l.intended_at = intended;
        self.in_flight += u64::from(batch.requests);
        self.stats.sent += u64::from(batch.requests);
        // The fixed request is a prefix of the worker's pipelined copies
        // (a short batch, the last requests of -n, sends fewer); any other
        // source wrote the batch into the connection's outbox.
        let plain: &[u8] = match (batch.fixed_len, self.source.fixed()) {
            (Some(len), Some(fixed)) => &fixed[..len],
            _ => &c.out.bytes,
        };
        let wire = match &mut c.tls {
            None => plain.len(),
            Some(t) => {
                // Encrypted into the connection's own buffer, after
                // whatever rustls still had to write (its Finished).
                if let Err(fault) = t.encrypt(plain) {
                    return self.fail(i, now, fault);
                }
                t.tx.len()
            }
        };
        c.life.batch_len = wire as u32;
        self.push_send_range(i, 0, wire);
    }

    /// Connection `i`'s next request may go now: when it was meant to
    /// (its slot, when paced; now otherwise), the slot taken. `None`: not
    /// yet (the connection waits in the due queue for its slot, or a
    /// script's `delay()`), or not in this step of a search.
    pub(super) fn take_slot(&mut self, i: usize, now: u64) -> Option<u64> {
        let c = &mut self.conns[i];
        let mut intended = now;
        // Paced: the connection's next slot, of the schedule (-R, ramps) or
        // of a search step (whose slots interleave at the step's rate from
        // its start; past its end they wait for the next step).
        let conn = self.conn_base + i;
        let poisson = self.shared.poisson;
        let slot_due = if let Some(s) = &self.shared.schedule {
            Some(
                self.schedule_start
                    + match poisson {
                        Some(_) => s.time_of_slot(c.arrival) as u64,
                        None => s.due_us(conn, c.k),
                    },
            )
        } else if let Some(st) = self.step {
            if c.step != self.step_version {
                c.step = self.step_version;
                c.k = 0;
                if let Some(p) = poisson {
                    c.arrival = p.gap(conn, 0);
                }
            }
            let slot = match poisson {
                Some(_) => c.arrival,
                None => (conn as u64 + c.k * self.shared.connections as u64) as f64,
            };
            let due = st.start_us + (slot * 1e6 / st.rate) as u64;
            if due >= st.end_us {
                return None;
            }
            Some(due)
        } else if self.shared.steps.is_some() {
            // Between steps: nothing goes out.
            return None;
        } else {
            None
        };
        if let Some(due) = slot_due {
            // An HTTP/1.1 connection the server kept busy past its slot goes
            // at once: holding it for the window would only add to its
            // lateness, and a whole gap late the schedule is slipping
            // (see `Pacer::kept_late`).
            let kept_late = !self.shared.http2 && self.conns[i].life.free_at > due;
            if due > now || (now < self.batch_at && !kept_late) {
                // Not yet, or not until the window's slots go out together.
                self.hold(i, due);
                return None;
            }
            if kept_late {
                self.pacer.kept_late(now - due, now);
            }
            let c = &mut self.conns[i];
            c.k += 1;
            if let Some(p) = poisson {
                c.arrival += p.gap(conn, c.k);
            }
            intended = due;
            crate::report::stats::record_growing(&mut self.stats.send_lag, now - due);
            // urk's own part: from when both the slot and the connection
            // were ready (a connection still waiting for the server's
            // last response is the server's delay, not urk's).
            let ready = due.max(self.conns[i].life.free_at);
            let own = now.saturating_sub(ready);
            crate::report::stats::record_growing(&mut self.stats.own_lag, own);
            if let Some(h) = &mut self.interval_own_lag {
                h.saturating_record(own.max(1));
            }
            self.stats.samples.send(now);
        }
        if !self.shared.paced() && self.source.hooks().delay {
            // A script's delay() holds the request back, on the ring's
            // timers (the worker's due queue), not by sleeping.
            let c = &mut self.conns[i];
            match c.life.held_until {
                Some(t) if t > now => return None,
                Some(_) => c.life.held_until = None,
                None => {
                    let wait = self.source.script().map_or(0, |s| s.delay_us());
                    if wait > 0 {
                        self.conns[i].life.held_until = Some(now + wait);
                        self.hold(i, now + wait);
                        return None;
                    }
                }
            }
        }
        Some(intended)
    }

    /// Holds connection `i`'s next request until `at`, in the worker's due
    /// queue (once: a queued connection is not queued again).
    fn hold(&mut self, i: usize, at: u64) {
        let c = &mut self.conns[i];
        if !c.queued {
            c.queued = true;
            self.due.push(at, i as u32);
        }
    }

    /// TLS: sends what rustls has queued (handshake flights, alerts), if
    /// no send is in flight. True if a send was queued.
    pub(super) fn flush_tls(&mut self, i: usize) -> bool {
        let c = &mut self.conns[i];
        let Some(t) = &mut c.tls else {
            return false;
        };
        if c.life.send.is_some() {
            return false;
        }
        t.fill_tx();
        if t.tx.is_empty() {
            return false;
        }
        let len = t.tx.len();
        c.life.batch_len = len as u32;
        self.push_send_range(i, 0, len);
        true
    }

    /// Queues a send of bytes `from..to` of the connection's batch: the
    /// worker's fixed request or the connection's outbox on the plain
    /// transport, the connection's ciphertext under TLS.
    pub(super) fn push_send_range(&mut self, i: usize, from: usize, to: usize) {
        let c = &mut self.conns[i];
        let bytes = match (&c.tls, &c.h2) {
            (Some(t), _) => &t.tx[from..to],
            (None, Some(h)) => &h.tx[from..to],
            (None, None) => match self.source.fixed() {
                Some(fixed) => &fixed[from..to],
                None => &c.out.bytes[from..to],
            },
        };
        let token = Token::new(Op::Send, i, c.gen).encode();
        // SAFETY: the bytes are the worker's fixed request (never changed
        // during the run), or the connection's outbox, TLS buffer or HTTP/2
        // send buffer, which are not written again until this send's completion is reaped
        // (`life.send` is set until then), and outlive it: the connection
        // is only released once nothing is in flight.
        unsafe { self.io.send(i, token, bytes.as_ptr(), bytes.len() as u32) };
        c.life.send = Some(from as u32);
        self.sending += 1;
    }

    /// A new connection starts in quick-ACK mode: its first 16 responses
    /// would each be acknowledged by a packet of its own, although the next
    /// request, sent at once, carries the acknowledgement anyway. Over a
    /// short run with thousands of connections those first responses are
    /// most of them; loopback runs the server's side of every ACK on this
    /// core too. Setting `TCP_QUICKACK` to 0 (pingpong mode) saves them.
    pub(super) fn delay_acks(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let token = Token::new(Op::SockOpt, i, c.gen).encode();
        if self.io.quickack_off(i, token) {
            c.life.ops.insert(Ops::SOCKOPT);
        }
    }

    pub(super) fn arm_recv(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let token = Token::new(Op::Recv, i, c.gen).encode();
        // With long bodies only the head is worth reading: a short one-shot
        // receive, then `skip` for the rest.
        let large = c.life.large;
        let multishot = self.io.multishot() && !large;
        let how = match (multishot, large) {
            (true, _) => RecvHow::Multishot,
            (false, true) => RecvHow::Once { cap: HEAD_PEEK },
            (false, false) => RecvHow::Once { cap: u32::MAX },
        };
        // SAFETY: the connection's buffer lives as long as the connection
        // (kept, or leaked at an unclean shutdown) and is read only after
        // the receive completes; `next_recv` arms one only when none is in
        // flight (`Recv::Idle`), and it stays armed until its last
        // completion.
        unsafe { self.io.recv(i, token, how, &mut c.buf) };
        c.life.recv = Recv::Armed { multishot };
        self.stats.recv_arms += 1;
    }

    /// Queues a receive that consumes up to `rest` body bytes without
    /// copying them anywhere: the load generator needs their count, not
    /// their content. It is the only read on the socket until it completes.
    pub(super) fn skip(&mut self, i: usize, rest: u64) {
        let c = &mut self.conns[i];
        let len = rest.min(SKIP_MAX) as u32;
        // SAFETY: `next_recv` asks for it only when the connection has no
        // receive in flight (`Recv::Idle`), and marks it discarding until
        // its completion.
        unsafe {
            self.io
                .skip(i, Token::new(Op::Skip, i, c.gen).encode(), len)
        };
        c.life.recv = Recv::Discarding;
        self.stats.skips += 1;
    }

    /// Opens a socket into the connection's fixed slot and queues the connect.
    pub(super) fn connect(&mut self, i: usize, now: u64) {
        // Round robin over the run's connections, not the worker's.
        let k = self.conn_base + i;
        let sources = &self.shared.sources;
        let peer = k % self.peers.len();
        let family = self.peers[peer].1;
        let how = crate::io::backend::Socket {
            family,
            tcp: family != AddressFamily::Unix,
            source: (!sources.is_empty()).then(|| &sources[k % sources.len()]),
            // A Unix socket's stream has no receive timestamps.
            timestamps: self.shared.io.rx_timestamps && family != AddressFamily::Unix,
        };
        let opened = self.io.open(i, &how);
        let c = &mut self.conns[i];
        if let Err(errno) = opened {
            if !c.tried {
                c.tried = true;
                self.untried -= 1;
            }
            self.stats.errors.connect += 1;
            self.stats.connect_causes.count(errno as i32);
            c.failures += 1;
            c.phase = Phase::Down {
                at: now + c.backoff_us(),
            };
            return;
        }
        let token = Token::new(Op::Connect, i, c.gen).encode();
        // SAFETY: the socket address is in the worker's boxed slice of
        // peers, unmoved and unchanged for the whole run.
        unsafe { self.io.connect(i, token, &self.peers[peer].0) };
        let c = &mut self.conns[i];
        c.phase = Phase::Connecting {
            since: now,
            throttled: true,
        };
        self.connecting += 1;
        c.life.ops.insert(Ops::CONNECT);
    }

    /// Ends the connection on `fault`: counts the fault in its error class
    /// and the outstanding requests as lost to it, then reconnects at once.
    pub(super) fn fail(&mut self, i: usize, now: u64, fault: Fault) {
        let c = &mut self.conns[i];
        // A refused handshake (or a TLS refusal before any response) is
        // retried with backoff, as a refused connect.
        let refused = matches!(c.phase, Phase::Handshaking { .. })
            || (matches!(fault, Fault::Tls(_)) && !c.life.answered);
        let at = if refused {
            c.failures += 1;
            now + c.backoff_us()
        } else {
            now
        };
        let n = u64::from(c.life.outstanding);
        let (e, l) = (&mut self.stats.errors, &mut self.stats.lost);
        let (class, lost) = match fault {
            Fault::ServerClosed => (None, &mut l.server_closed),
            Fault::Read => (Some(&mut e.read), &mut l.read),
            Fault::Write => (Some(&mut e.write), &mut l.write),
            Fault::Parse => (Some(&mut e.parse), &mut l.parse),
            Fault::Timeout => (Some(&mut e.timeout), &mut l.timeout),
            Fault::Tls(cause) => {
                self.stats.tls.causes.count(cause);
                (Some(&mut e.tls), &mut l.tls)
            }
        };
        *lost += n;
        if let Some(log) = &mut self.log {
            // Each lost request, with the fault that lost it: an HTTP/2
            // connection's open streams with their own times, an HTTP/1.1
            // one's outstanding batch with the batch's.
            let times: Vec<(u64, u64, Option<u32>)> = match &c.h2 {
                Some(h) => h
                    .streams
                    .iter()
                    .map(|s| (s.intended_at, s.sent_at, s.target))
                    .collect(),
                None => vec![(c.life.intended_at, c.life.sent_at, None); n as usize],
            };
            for (intended, sent, target) in times {
                log.push(crate::run::reqlog::Record {
                    intended_us: self.wall_start_us + intended,
                    sent_us: self.wall_start_us + sent,
                    latency_us: now.saturating_sub(intended),
                    status: 0,
                    body_bytes: None,
                    error: Some(fault.name()),
                    target,
                    worker: self.index as u16,
                    connection: (self.conn_base + i) as u32,
                });
            }
        }
        if let Some(class) = class {
            // A timeout counts each request, as wrk's do; the others count
            // the fault once.
            *class += if fault == Fault::Timeout { n } else { 1 };
        }
        self.in_flight -= n;
        c.life.outstanding = 0;
        self.close(i, at, now);
    }

    /// Starts closing: cancels whatever is in flight; the slot is released
    /// when the last operation completes, then reconnects at `at`.
    pub(super) fn close(&mut self, i: usize, at: u64, now: u64) {
        let c = &self.conns[i];
        match c.phase {
            Phase::Draining { .. } | Phase::Down { .. } => return,
            // Its connect stops counting against the limit now.
            Phase::Connecting {
                throttled: true, ..
            } => self.connecting -= 1,
            _ => {}
        }
        for op in self.conns[i].in_flight().into_iter().flatten() {
            self.cancel(i, op);
        }
        self.conns[i].phase = Phase::Draining { then: at };
        self.release_if_idle(i, now);
    }

    /// Queues a cancel of connection `i`'s operation `op`, in this
    /// incarnation only (the generation is part of the target).
    pub(super) fn cancel(&mut self, i: usize, op: Op) {
        let gen = self.conns[i].gen;
        let target = Token::new(op, i, gen).encode();
        self.io
            .cancel(target, Token::new(Op::Cancel, i, gen).encode());
    }

    pub(super) fn release_if_idle(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        let Phase::Draining { then } = c.phase else {
            return;
        };
        if !c.is_idle() {
            return;
        }
        if then != u64::MAX {
            // Close the socket now, not at the next connect into this
            // slot. At shutdown (`then` is MAX) one `unregister_files`
            // closes every slot instead of a syscall per connection.
            self.io.release(i);
        }
        c.gen = c.gen.wrapping_add(1) & 0x00ff_ffff;
        c.framer.reset();
        if let Some(h) = &mut c.h2 {
            h.reset();
        }
        c.life = Life::default();
        if let Some(t) = &mut c.tls {
            t.end();
        }
        c.phase = Phase::Down { at: then };
        if !self.can_issue() {
            // Stopped, or every request of -n is out: no new connection
            // (the scan reconnects it if a request comes back lost).
            return;
        }
        if then > now {
            self.next_scan = self.next_scan.min(then);
        } else if self.connecting < MAX_CONNECTING {
            self.connect(i, now);
        } else {
            self.deferred_connects = true;
        }
    }
}
