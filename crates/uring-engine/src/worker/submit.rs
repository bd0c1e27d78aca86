//! Submitting: the one `io_uring_enter` per loop, and the shutdown drain.

use super::*;

impl Worker<'_> {
    /// Moves queued SQEs into the submission queue, submitting early only if
    /// it fills up.
    pub(super) fn flush(&mut self, now: u64) -> Result<(), EngineError> {
        if !self.shared.use_ext_arg && !self.timer_armed {
            // Without EXT_ARG a timeout entry wakes us; it cannot be moved
            // once armed, so in constant-rate mode it ticks every ms.
            let budget = match self.shared.schedule {
                Some(_) => self.wait_budget(now).min(1000),
                None => TICK_US,
            };
            *self.timer = Timespec::new().nsec((budget * 1000) as u32);
            let e = opcode::Timeout::new(&*self.timer)
                .build()
                .user_data(Token::new(Op::Timer, 0, 0).encode());
            self.pending.push(e);
            self.timer_armed = true;
        }
        let (submitter, mut sq, _) = self.ring.split();
        let mut pushed = 0;
        for e in &self.pending {
            // SAFETY: every buffer an entry points to outlives its
            // operation: request bytes and the sockaddr are owned by this
            // worker, socket option values are static; recv buffers belong
            // to the connection or the buffer ring, both kept (or leaked)
            // until the kernel hands the operation back; the timespec is
            // copied by the kernel on submit.
            if unsafe { sq.push(e) }.is_err() {
                sq.sync();
                if submitter.submit().is_err() {
                    break;
                }
                sq.sync();
                // SAFETY: as above.
                if unsafe { sq.push(e) }.is_err() {
                    break;
                }
            }
            pushed += 1;
        }
        sq.sync();
        drop(sq);
        self.pending.drain(..pushed);
        Ok(())
    }

    /// Submits without waiting (the pacer spins to a slot instead).
    pub(super) fn submit_only(&mut self) -> Result<(), EngineError> {
        self.stats.enters += 1;
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(source) => Err(EngineError::Setup {
                what: "io_uring_enter",
                source,
            }),
        }
    }

    /// The one `io_uring_enter` per loop: submits and waits for at least one
    /// completion or `max_us`. True if the wait timed out.
    pub(super) fn wait(&mut self, max_us: u64) -> Result<bool, EngineError> {
        self.stats.enters += 1;
        let r = if self.shared.use_ext_arg {
            let ts = Timespec::new().nsec((max_us * 1000) as u32);
            let mut args = SubmitArgs::new().timespec(&ts);
            let mut want = 1;
            if let (Some(min_wait), None) = (self.shared.batch_wait_us, &self.shared.schedule) {
                // Wait for half the busy connections, but at most
                // `min_wait` before settling for one completion: fewer
                // wake-ups, bigger batches, bounded reaping delay.
                // With many requests queued at the server (pipelining,
                // thousands of connections) a longer nap cannot starve it:
                // stretch the wait and reap more per wake-up.
                let depth = (self.in_flight / DEEP_QUEUE).clamp(1, MAX_DEPTH);
                want = (self.in_flight.min(self.conns.len() as u64) / 2).clamp(1, MAX_BATCH * depth)
                    as usize;
                args = args.min_wait_usec(min_wait * depth as u32);
            }
            self.ring.submitter().submit_with_args(want, &args)
        } else {
            self.ring.submitter().submit_and_wait(1)
        };
        match r {
            Ok(_) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => Ok(true),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(EngineError::Setup {
                what: "io_uring_enter",
                source,
            }),
        }
    }

    /// Cancels everything and waits (bounded) until the kernel has handed
    /// back every operation. False if some never came back.
    pub(super) fn shutdown(&mut self) -> bool {
        let end = self.now() + DRAIN_US;
        for i in 0..self.conns.len() {
            self.close(i, u64::MAX, 0);
        }
        loop {
            let now = self.now();
            self.reap(now);
            if self.conns.iter().all(Conn::is_idle) {
                break;
            }
            if now >= end || self.flush(now).is_err() || self.wait(TICK_US).is_err() {
                return false;
            }
        }
        if let Some(b) = &self.bufs {
            b.unregister(&self.ring.submitter());
        }
        // Close every socket now, not when the ring's teardown gets to it
        // after the process is gone: the server sees the closes before the
        // report is printed (and before a next run starts connecting).
        let _ = self.ring.submitter().unregister_files();
        true
    }
}
