//! Reaping: each completion advances its connection's state machine.

use super::*;

impl<B: Backend> Worker<'_, B> {
    pub(super) fn reap(&mut self, now: u64) {
        let mut cqes = std::mem::take(&mut self.cqes);
        self.io.reap(&mut cqes);
        self.stats.completions += cqes.len() as u64;
        if self.shared.io.rx_timestamps {
            // The realtime clock at `now`, the moment every latency of
            // this batch ends, so that a receive lag and its latency end
            // together.
            let since_now = self.now().saturating_sub(now);
            self.reaped_wall_ns = crate::io::stamps::realtime_ns().saturating_sub(since_now * 1000);
        }
        for c in &cqes {
            let (data, res, flags) = (c.data, c.res, c.flags);
            let Some(t) = Token::decode(data) else {
                continue;
            };
            let i = t.conn as usize;
            if t.op == Op::Cancel || i >= self.conns.len() || self.conns[i].gen != t.gen {
                continue;
            }
            // Bytes stamped after `now` came in while the batch was being
            // reaped: they waited for urk not at all.
            self.rx_lag_us =
                (c.stamp != 0).then(|| self.reaped_wall_ns.saturating_sub(c.stamp) / 1000);
            if let (Some(lag), Some(h)) = (self.rx_lag_us, &mut self.interval_rx_lag) {
                h.saturating_record(lag.max(1));
            }
            match t.op {
                Op::Connect => self.on_connect(i, res, now),
                Op::Send => self.on_send(i, res, now),
                Op::Recv => self.on_recv(i, res, flags, now),
                Op::Skip => self.on_skip(i, res, now),
                Op::SockOpt => {
                    // A refused option costs only packets, never a request.
                    self.conns[i].life.ops.remove(Ops::SOCKOPT);
                    self.release_if_idle(i, now);
                }
                Op::Cancel | Op::Timer => {}
            }
        }
        self.rx_lag_us = None;
        cqes.clear();
        self.cqes = cqes;
        self.io.publish();
    }

    pub(super) fn on_connect(&mut self, i: usize, res: i32, now: u64) {
        let c = &mut self.conns[i];
        c.life.ops.remove(Ops::CONNECT);
        let began = match c.phase {
            Phase::Connecting { since, .. } => Some(since),
            _ => None,
        };
        if let Phase::Connecting {
            since,
            throttled: true,
        } = c.phase
        {
            // Its outcome frees its place among the connects in flight.
            self.connecting -= 1;
            c.phase = Phase::Connecting {
                since,
                throttled: false,
            };
        }
        if !c.tried {
            c.tried = true;
            self.untried -= 1;
            self.last_connect_outcome = now;
        }
        if matches!(c.phase, Phase::Draining { .. }) {
            return self.release_if_idle(i, now);
        }
        if res < 0 {
            self.stats.errors.connect += 1;
            self.stats.connect_causes.count(-res);
            c.failures += 1;
            let at = now + c.backoff_us();
            return self.close(i, at, now);
        }
        self.stats.connects += 1;
        if let Some(since) = began {
            let took = now.saturating_sub(since).max(1);
            crate::report::stats::record_growing(&mut self.stats.connect_us, took);
            if let Some(h) = &mut self.interval_connect {
                h.saturating_record(took);
            }
        }
        if self.shared.io.delay_acks {
            self.delay_acks(i);
        }
        let c = &mut self.conns[i];
        let Some(t) = &mut c.tls else {
            c.phase = Phase::Open;
            c.failures = 0;
            self.start_session(i);
            self.arm_recv(i);
            return self.try_send(i, now);
        };
        // The handshake first: the ClientHello goes out, the server's
        // flight comes back through the receive.
        c.phase = Phase::Handshaking { since: now };
        // A TLS session implies the worker's TLS client; were it missing,
        // the connection fails as a protocol fault rather than the worker.
        let started = match &self.tls {
            Some(client) => t.start(client),
            None => Err(Fault::Tls(TlsCause::Protocol)),
        };
        if let Err(fault) = started {
            return self.fail(i, now, fault);
        }
        self.arm_recv(i);
        self.flush_tls(i);
    }

    /// After TLS bytes were read: a finished handshake opens the
    /// connection; whatever rustls wants written goes out. False if the
    /// connection was failed.
    pub(super) fn after_tls_read(&mut self, i: usize, now: u64) -> bool {
        let c = &mut self.conns[i];
        let Some(t) = &c.tls else {
            return true;
        };
        if let Phase::Handshaking { since } = c.phase {
            let Some(h) = t.handshake() else {
                self.flush_tls(i);
                return true;
            };
            let agreed_h2 = h.negotiated.alpn == "h2";
            let tls = &mut self.stats.tls;
            tls.handshakes += 1;
            tls.resumed += u64::from(h.resumed);
            tls.handshake_us
                .saturating_record(now.saturating_sub(since).clamp(1, MAX_LATENCY_US));
            if tls.negotiated.is_none() {
                tls.negotiated = Some(h.negotiated);
            }
            // Failures are forgiven at the first response, not here: a
            // server may refuse the client (its certificate) only after
            // the handshake, and that refusal must back off too.
            c.phase = Phase::Open;
            if c.h2.is_some() {
                if !agreed_h2 {
                    // The probe saw h2 agreed; this server did not.
                    self.fail(i, now, Fault::Tls(TlsCause::Protocol));
                    return false;
                }
                self.start_session(i);
            }
            // The first batch rides with the client's last handshake
            // flight, in one send.
            self.try_send(i, now);
        }
        self.flush_tls(i);
        true
    }

    pub(super) fn on_send(&mut self, i: usize, res: i32, now: u64) {
        let c = &mut self.conns[i];
        let sent = c.life.send.take();
        self.sending -= u32::from(sent.is_some());
        let done = sent.unwrap_or(0);
        if matches!(c.phase, Phase::Draining { .. }) {
            return self.release_if_idle(i, now);
        }
        if res <= 0 {
            return self.fail(i, now, Fault::Write);
        }
        self.stats.bytes_written += res as u64;
        let done = done + res as u32;
        let batch_len = self.conns[i].life.batch_len;
        if done < batch_len {
            return self.push_send_range(i, done as usize, batch_len as usize);
        }
        let c = &mut self.conns[i];
        if let Some(t) = &mut c.tls {
            // All of `tx` is on the wire; whatever rustls queued meanwhile
            // (the client's Finished, an alert) goes next.
            t.tx.clear();
            if self.flush_tls(i) {
                return;
            }
        }
        let c = &self.conns[i];
        if c.life.outstanding == 0 || c.h2.is_some() {
            // The responses overtook the send's completion; on HTTP/2,
            // streams and protocol answers may have waited for the send.
            self.try_send(i, now);
        }
    }

    pub(super) fn on_recv(&mut self, i: usize, res: i32, flags: u32, now: u64) {
        let bid = cqueue::buffer_select(flags);
        let c = &mut self.conns[i];
        if !cqueue::more(flags) {
            c.life.recv = Recv::Idle;
        }
        let draining = matches!(c.phase, Phase::Draining { .. });
        // Frame before settling: settling may give the buffer back.
        let framed = if res <= 0 || draining {
            Ok(())
        } else {
            self.frame(i, bid, res as usize, now)
        };
        if let Some(bid) = bid {
            self.io.settle(bid, res, flags);
        }
        if draining {
            return self.release_if_idle(i, now);
        }
        match res {
            n if n > 0 => {
                self.stats.bytes_read += n as u64;
                if !self.carry_on(i, framed, now) {
                    return;
                }
                if !self.after_tls_read(i, now) {
                    return;
                }
                let c = &self.conns[i];
                if c.life.recv == (Recv::Armed { multishot: true })
                    && c.can_discard()
                    && (c.life.large || c.framer.sized_remaining() >= SKIP_MIN)
                {
                    // A multishot receive would copy the long bodies to
                    // come: stop it; once it has ended, `next_recv`
                    // discards them instead.
                    self.conns[i].life.recv = Recv::Stopping;
                    self.cancel(i, Op::Recv);
                }
            }
            0 => self.on_eof(i, now),
            e if e == -libc::ENOBUFS
                || e == -libc::ECANCELED
                || e == -libc::EINTR
                || e == -libc::EAGAIN => {}
            _ => return self.fail(i, now, Fault::Read),
        }
        self.next_recv(i);
    }

    /// A discarding receive completed: `res` body bytes are gone unread.
    pub(super) fn on_skip(&mut self, i: usize, res: i32, now: u64) {
        let c = &mut self.conns[i];
        c.life.recv = Recv::Idle;
        if matches!(c.phase, Phase::Draining { .. }) {
            return self.release_if_idle(i, now);
        }
        match res {
            n if n > 0 => {
                self.stats.bytes_read += n as u64;
                let booked = match c.framer.skip(n as u64) {
                    Some(r) => self.book_response(i, r, now),
                    None => Ok(()),
                };
                if !self.carry_on(i, booked, now) {
                    return;
                }
            }
            // The server closed inside a body: a truncated response.
            0 => return self.on_eof(i, now),
            e if e == -libc::EINTR || e == -libc::EAGAIN => {}
            _ => return self.fail(i, now, Fault::Read),
        }
        self.next_recv(i);
    }

    /// After received bytes were framed: a fault (a framing error, a
    /// response nobody asked for), the server's announced close and the
    /// last of `requests_per_conn` end the connection; a finished batch
    /// lets the next one go. False if the connection was ended.
    pub(super) fn carry_on(&mut self, i: usize, framed: Result<(), Fault>, now: u64) -> bool {
        if let Err(fault) = framed {
            self.fail(i, now, fault);
            return false;
        }
        let c = &mut self.conns[i];
        if c.failures != 0 && c.life.answered {
            c.failures = 0;
        }
        if let Some(h) = &c.h2 {
            let l = &c.life;
            let share_done = self
                .shared
                .requests_per_conn
                .is_some_and(|n| l.responses >= n);
            let ended = h.session.going_away() || h.session.exhausted() || share_done;
            if l.outstanding == 0 && ended {
                // A GOAWAY (or the connection's share, or its last stream
                // id) ends it once its last stream is done; a new one
                // takes its place.
                self.close(i, now, now);
                return false;
            }
            self.try_send(i, now);
            if !self.retries.is_empty() {
                self.place_retries(now);
            }
            return true;
        }
        let l = &c.life;
        if l.last && l.outstanding == 0 {
            // The server closes after this response: its close is waited
            // for (the receive stays armed, the scan bounds the wait), so
            // that it closes first and the TIME_WAIT is its own. A client
            // that closes first keeps a TIME_WAIT socket per connection,
            // and every new connect's port search then walks them (a
            // third of urk's CPU at 14,000 connections/s).
            return true;
        }
        if l.last {
            // Whatever is still outstanding (pipelined behind it) is lost,
            // and new requests go out on a new connection.
            self.fail(i, now, Fault::ServerClosed);
            return false;
        }
        if l.outstanding == 0 {
            if self
                .shared
                .requests_per_conn
                .is_some_and(|n| l.responses >= n)
            {
                // Its share is done: the client closes (the server may
                // not), and a new connection takes its place at once.
                self.close(i, now, now);
                return false;
            }
            self.try_send(i, now);
        }
        true
    }

    /// Books a response completed outside `frame` (by a discarding
    /// receive, or by the close), and hands it to the script.
    pub(super) fn book_response(&mut self, i: usize, r: Response, now: u64) -> Result<(), Fault> {
        let rate_mode = self.shared.paced();
        let Worker {
            conns,
            stats,
            interval,
            interval_uncorrected,
            interval_ttfb,
            in_flight,
            source,
            rx_lag_us,
            log,
            index,
            wall_start_us,
            conn_base,
            pacer,
            ..
        } = self;
        let c = &mut conns[i];
        let mut books = Books {
            stats,
            interval,
            interval_uncorrected,
            interval_ttfb,
            in_flight,
            rate_mode,
            now,
            rx_lag_us: *rx_lag_us,
            wall_us: *wall_start_us,
            log: LogCtx::of(log, *index, *conn_base + i, *wall_start_us),
            round_trip: &mut pacer.round_trip,
        };
        let can_discard = c.can_discard();
        let target = c.next_target();
        let status = r.status;
        books.book(&mut c.life, target, can_discard, r)?;
        if let Some(s) = source.script() {
            s.response(status, c.capture.as_deref());
        }
        if let Some(cap) = &mut c.capture {
            cap.clear();
        }
        Ok(())
    }

    /// Reads on: discards the rest of a long body unread, or arms a receive.
    pub(super) fn next_recv(&mut self, i: usize) {
        let c = &self.conns[i];
        if !matches!(c.phase, Phase::Open | Phase::Handshaking { .. }) || c.life.recv != Recv::Idle
        {
            return;
        }
        let rest = c.framer.sized_remaining();
        // After a short head receive on a long-body connection any rest is
        // discarded; elsewhere only a rest worth its own receive. Only the
        // plain transport can discard: TLS records must be decrypted whole.
        if c.can_discard() && (rest >= SKIP_MIN || (c.life.large && rest > 0)) {
            self.skip(i, rest);
        } else {
            self.arm_recv(i);
        }
    }

    /// Hands `len` received bytes to the connection's transport and frames
    /// the plaintext, booking every response it completes.
    pub(super) fn frame(
        &mut self,
        i: usize,
        bid: Option<u16>,
        len: usize,
        now: u64,
    ) -> Result<(), Fault> {
        let Worker {
            conns,
            io,
            stats,
            in_flight,
            interval,
            interval_uncorrected,
            interval_ttfb,
            shared,
            scratch,
            source,
            retries,
            rx_lag_us,
            log,
            index,
            wall_start_us,
            conn_base,
            pacer,
            ..
        } = self;
        let mut books = Books {
            stats,
            interval,
            interval_uncorrected,
            interval_ttfb,
            in_flight,
            rate_mode: shared.paced(),
            now,
            rx_lag_us: *rx_lag_us,
            wall_us: *wall_start_us,
            log: LogCtx::of(log, *index, *conn_base + i, *wall_start_us),
            round_trip: &mut pacer.round_trip,
        };
        let Conn {
            framer,
            h2,
            life,
            tls,
            buf,
            out,
            capture,
            ..
        } = &mut conns[i];
        let data: &[u8] = io.data(bid, len, buf);
        if let Some(h2) = h2 {
            let mut conn = super::h2::H2Feed {
                h2,
                life,
                source,
                retries,
                keep: capture.is_some(),
            };
            return match tls {
                None => conn.feed(data, &mut books),
                Some(t) => t.absorb(data, scratch, |plain| conn.feed(plain, &mut books)),
            };
        }
        let mut conn = Framing {
            framer,
            life,
            ids: &out.ids,
            // Methods mixed among the requests: the framer is told, for
            // each response, whether it answers a HEAD.
            mixed_head: shared.head_request.is_none(),
            source,
            capture: capture.as_mut(),
        };
        match tls {
            None => conn.feed(data, &mut books, true),
            Some(t) => t.absorb(data, scratch, |plain| conn.feed(plain, &mut books, false)),
        }
    }

    pub(super) fn on_eof(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        if matches!(c.phase, Phase::Handshaking { .. }) {
            // Closed during the handshake (an alert would have been
            // reported while reading): the server refused it.
            return self.fail(i, now, Fault::Tls(TlsCause::Protocol));
        }
        if let Some(h) = &c.h2 {
            // Open streams die with the connection: after a GOAWAY the
            // server's close is its right, before one a fault.
            return match (c.life.outstanding, h.session.going_away()) {
                (0, _) => self.close(i, now, now),
                (_, true) => self.fail(i, now, Fault::ServerClosed),
                (_, false) => self.fail(i, now, Fault::Read),
            };
        }
        match c.framer.finish() {
            // A response delimited by the close: complete, and the end of
            // the connection for whatever was pipelined behind it.
            Ok(Some(r)) if c.life.outstanding > 0 => {
                let _ = self.book_response(i, r, now);
                self.fail(i, now, Fault::ServerClosed);
            }
            Ok(None) if c.life.outstanding == 0 => self.close(i, now, now),
            Ok(Some(_)) => self.fail(i, now, Fault::Parse),
            Ok(None) | Err(_) => self.fail(i, now, Fault::Read),
        }
    }
}

/// What framing a connection's bytes touches: its framer, its life, the
/// requests of its outstanding batch, and the source (a script's response
/// hook sees each response, whole if it asked for headers or bodies).
struct Framing<'a, 'w> {
    framer: &'a mut proto::ResponseFramer,
    life: &'a mut Life,
    ids: &'a [u32],
    mixed_head: bool,
    source: &'a mut WorkerSource<'w>,
    capture: Option<&'a mut Vec<u8>>,
}

impl Framing<'_, '_> {
    /// Feeds plaintext to the framer, booking the first byte of each
    /// response and every complete one with its target. `can_discard`:
    /// the transport could skip the next long body unread.
    fn feed(&mut self, mut data: &[u8], books: &mut Books, can_discard: bool) -> Result<(), Fault> {
        while !data.is_empty() {
            if self.framer.is_idle() {
                books.first_byte(self.life);
            }
            let target = crate::run::conn::next_target(self.life, self.ids);
            if let (true, Some(id)) = (self.mixed_head, target) {
                self.framer.set_head_request(self.source.is_head(id));
            }
            let fresh = self.framer.is_idle();
            let (used, resp) = self.framer.feed(data).map_err(|_| {
                if fresh && proto::h2::frame::looks_like_server_preface(data) {
                    books.stats.http2_only = true;
                }
                Fault::Parse
            })?;
            if let Some(cap) = &mut self.capture {
                cap.extend_from_slice(&data[..used]);
            }
            data = &data[used..];
            if let Some(r) = resp {
                let status = r.status;
                books.book(self.life, target, can_discard, r)?;
                if let Some(s) = self.source.script() {
                    s.response(status, self.capture.as_deref().map(Vec::as_slice));
                }
                if let Some(cap) = &mut self.capture {
                    cap.clear();
                }
            }
        }
        Ok(())
    }
}

/// Where a completed response is booked: the worker's counters at the
/// time it was reaped.
pub(super) struct Books<'a> {
    pub(super) stats: &'a mut WorkerStats,
    pub(super) interval: &'a mut Option<Histogram<u64>>,
    /// Paced runs: this second's latencies from the actual send.
    pub(super) interval_uncorrected: &'a mut Option<Histogram<u64>>,
    /// A capacity search judges `ttfb.` objectives per second.
    pub(super) interval_ttfb: &'a mut Option<Histogram<u64>>,
    pub(super) in_flight: &'a mut u64,
    pub(super) rate_mode: bool,
    pub(super) now: u64,
    /// The receive lag of the read whose bytes are being framed, µs.
    pub(super) rx_lag_us: Option<u64>,
    /// The run's start on the wall clock, Unix µs.
    pub(super) wall_us: u64,
    /// The request log, when one is kept, and whose responses these are.
    pub(super) log: Option<LogCtx<'a>>,
    /// Paced runs: the round trips the pacer leaves room for.
    pub(super) round_trip: &'a mut super::pacing::RoundTrip,
}

/// Where a booked response's record goes.
pub(super) struct LogCtx<'a> {
    pub(super) batch: &'a mut crate::run::reqlog::Batch,
    pub(super) worker: u16,
    pub(super) connection: u32,
    /// The run's start on the wall clock, Unix µs.
    pub(super) wall_us: u64,
}

impl<'a> LogCtx<'a> {
    /// Where connection `connection` (of the run) of worker `worker`
    /// records, when a log is kept.
    pub(super) fn of(
        log: &'a mut Option<crate::run::reqlog::Batch>,
        worker: usize,
        connection: usize,
        wall_us: u64,
    ) -> Option<LogCtx<'a>> {
        log.as_mut().map(|batch| LogCtx {
            batch,
            worker: worker as u16,
            connection: connection as u32,
            wall_us,
        })
    }

    /// A record of a request meant at `intended` and sent at `sent` (µs
    /// since the start) that took `latency_us`.
    pub(super) fn record(
        &mut self,
        (intended, sent, latency_us): (u64, u64, u64),
        status: u16,
        body_bytes: Option<u64>,
        error: Option<&'static str>,
        target: Option<u32>,
    ) {
        self.batch.push(crate::run::reqlog::Record {
            intended_us: self.wall_us + intended,
            sent_us: self.wall_us + sent,
            latency_us,
            status,
            body_bytes,
            error,
            target,
            worker: self.worker,
            connection: self.connection,
        });
    }
}

impl Books<'_> {
    /// A response the server dated `unix_s` to a request sent at `sent_at`
    /// (µs since the start) has come now: a bound on its clock.
    pub(super) fn server_date(&mut self, unix_s: u64, sent_at: u64) {
        let wall = self.wall_us;
        self.stats
            .server_clock
            .observe(unix_s, wall + sent_at, wall + self.now);
    }

    /// With a kernel stamp on the read that completed a response of
    /// latency `corrected`: its receive lag, and its latency less that.
    pub(super) fn kernel_time(&mut self, corrected: u64) {
        if let Some(lag) = self.rx_lag_us {
            let lag = lag.min(corrected);
            crate::report::stats::record_growing(&mut self.stats.receive_lag, lag);
            crate::report::stats::record_growing(&mut self.stats.kernel_latency, corrected - lag);
        }
    }

    /// The first byte of the next response has come: its time to first
    /// byte counts from the send (the slot, when paced), as its latency
    /// does. Bytes nobody asked for are not a response's.
    fn first_byte(&mut self, l: &Life) {
        if l.outstanding > 0 && !l.last {
            self.first_byte_at(l.intended_at);
        }
    }

    /// Books one complete response on its connection. A response nobody
    /// asked for (nothing outstanding, or the server had said it would
    /// close) is a parse fault. `can_discard`: the transport could skip
    /// the next long body unread.
    fn book(
        &mut self,
        l: &mut Life,
        target: Option<u32>,
        can_discard: bool,
        r: Response,
    ) -> Result<(), Fault> {
        if l.outstanding == 0 || l.last {
            return Err(Fault::Parse);
        }
        if let Some(date) = r.date.filter(|_| l.outstanding == 1) {
            // Alone in flight, so sent at `sent_at`.
            self.server_date(date, l.sent_at);
        }
        l.outstanding -= 1;
        *self.in_flight -= 1;
        let now = self.now;
        if l.outstanding == 0 {
            l.free_at = now;
        }
        let corrected = now.saturating_sub(l.intended_at);
        self.kernel_time(corrected);
        if let Some(log) = &mut self.log {
            log.record(
                (l.intended_at, l.sent_at, corrected),
                r.status,
                r.body_len,
                None,
                target,
            );
        }
        if self.rate_mode {
            self.stats.samples.response(l.intended_at, corrected);
        }
        let uncorrected = self.rate_mode.then(|| now.saturating_sub(l.sent_at));
        if let Some(u) = uncorrected {
            self.round_trip.observe(u);
        }
        self.stats.response(r.status, corrected, uncorrected);
        if let Some(t) = target {
            self.stats.target_response(t, r.status, corrected);
        }
        if let Some(iv) = self.interval {
            iv.saturating_record(corrected.max(1));
        }
        if let Some(iv) = self.interval_uncorrected {
            iv.saturating_record(now.saturating_sub(l.sent_at).max(1));
        }
        l.last = !r.keep_alive;
        l.large = can_discard && r.body_len.is_some_and(|n| n >= SKIP_MIN);
        l.answered = true;
        l.responses += 1;
        Ok(())
    }
}
