//! Submitting: the one wait per loop (an `io_uring_enter` that submits
//! and waits, or an `epoll_wait`), and the shutdown drain.

use super::*;

impl<B: Backend> Worker<'_, B> {
    /// Hands queued operations to the backend, without waiting.
    pub(super) fn flush(&mut self, _now: u64) -> Result<(), EngineError> {
        self.io.flush()
    }

    /// Submits without waiting (the pacer spins to a slot instead).
    pub(super) fn submit_only(&mut self) -> Result<(), EngineError> {
        self.stats.enters += 1;
        self.io.wait(0, 1, None).map(drop)
    }

    /// The one wait per loop: submits and waits for completions or
    /// `max_us`. True if the wait timed out. `batched`: a paced run whose
    /// slots share wake-ups reaps its responses in batches too.
    pub(super) fn wait(&mut self, max_us: u64, batched: bool) -> Result<bool, EngineError> {
        self.stats.enters += 1;
        let mut want = 1;
        let mut min_wait = None;
        // A paced run that has fallen behind sends each slot as its
        // connection frees, as a closed loop does: it reaps as one too.
        let closed = !self.shared.paced() || (!batched && self.pacer.slipping(self.now()));
        match (self.shared.batch_wait_us, closed) {
            (Some(us), true) => {
                // Wait for half the busy connections, but at most `us`
                // before settling for one completion: fewer wake-ups,
                // bigger batches, bounded reaping delay. With many
                // requests queued at the server (pipelining, thousands of
                // connections) a longer nap cannot starve it: stretch the
                // wait and reap more per wake-up.
                let depth = (self.in_flight / DEEP_QUEUE).clamp(1, MAX_DEPTH);
                want = (self.in_flight.min(self.conns.len() as u64) / 2).clamp(1, MAX_BATCH * depth)
                    as usize;
                min_wait = Some(us * depth as u32);
            }
            (_, false) if batched => {
                // The window's slots went out together and their responses
                // come back together: one wake-up when all of them are in
                // (each send's completion and a receive per busy
                // connection), or when the next window's slots are due.
                // A response is then timed when the last of its batch
                // arrives, never before it arrived.
                let busy = self.in_flight.min(self.conns.len() as u64);
                want = (u64::from(self.sending) + busy).max(1) as usize;
            }
            _ => {}
        }
        self.io.wait(max_us.max(1), want, min_wait)
    }

    /// Cancels everything and waits (bounded) until the backend has handed
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
            if now >= end || self.flush(now).is_err() || self.wait(TICK_US, false).is_err() {
                return false;
            }
        }
        self.io.finish();
        true
    }
}
