//! A capacity search over a fleet of shards: one search, judged on the
//! whole fleet's seconds.
//!
//! Each shard measures only its share, and shards judging their shares
//! apart would part ways at the first step near the answer (one passes,
//! another fails, and from then on they offer different rates). So the
//! first shard leads: every other one connects to it, they start the
//! probe together, each sends its probe's rate and, after each step, its
//! closed seconds; the lead adds them up, judges the step on all of
//! them, and orders the next step (or the end) to every shard at once.
//! Every shard's report then holds the same steps and answer, all
//! fleet totals.
//!
//! The wire is one TCP connection per follower carrying JSON lines, in
//! lockstep: hello, go; probe, probe total; then orders and seconds.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{SearchStep, Second};
use crate::{EngineError, Shard};

/// How long shards wait for a probe's figures or a step's seconds beyond
/// the step's own length: a shard that lags more is lost.
pub(crate) const PROBE_WAIT: Duration = Duration::from_secs(30);
pub(crate) const STEP_SLACK: Duration = Duration::from_secs(15);

/// Why a fleet's search cannot go on.
///
/// ```
/// let e = urk_engine::FleetFault::Missing { shards: vec![2], count: 3 };
/// assert!(e.to_string().starts_with("shard(s) 2/3 never joined the fleet's search"));
/// ```
#[derive(Debug)]
pub enum FleetFault {
    /// The lead cannot listen where the fleet was told to meet.
    Listen {
        addr: String,
        source: std::io::Error,
    },
    /// A follower could not reach the lead in time.
    Unreachable { addr: String, waited: Duration },
    /// These shards never joined.
    Missing { shards: Vec<u32>, count: u32 },
    /// A shard stopped answering (or said something else) mid-search.
    Lost { shard: u32, during: &'static str },
    /// A shard of another fleet, or one already there, joined.
    Stranger { said: String },
}

impl std::fmt::Display for FleetFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FleetFault::Listen { addr, source } => write!(
                f,
                "shard 0 leads the fleet's search but cannot listen on {addr}: {source}"
            ),
            FleetFault::Unreachable { addr, waited } => write!(
                f,
                "the fleet's lead (shard 0) at {addr} did not answer within {:.0} s: start shard 0 with the same coordinator address",
                waited.as_secs_f64()
            ),
            FleetFault::Missing { shards, count } => {
                let list: Vec<String> = shards.iter().map(|i| format!("{i}/{count}")).collect();
                write!(
                    f,
                    "shard(s) {} never joined the fleet's search: start every shard with the same coordinator",
                    list.join(", ")
                )
            }
            FleetFault::Lost { shard, during } => write!(
                f,
                "shard {shard} stopped answering the fleet's search ({during}): the search cannot judge a step without it"
            ),
            FleetFault::Stranger { said } => write!(
                f,
                "a shard that is not one of this fleet's joined the search ({said})"
            ),
        }
    }
}

/// The next step, as the lead orders it: the fleet's rate, and its
/// seconds on each shard's timeline.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct NextStep {
    pub rate: f64,
    pub begin_s: u64,
    pub end_s: u64,
    pub warm_s: u64,
}

/// What the lead says after each step (and before the first): the step
/// it judged, the bracket so far, and the next step or the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Order {
    pub judged: Option<SearchStep>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub hi_generator: bool,
    pub next: Option<NextStep>,
}

#[derive(Serialize, Deserialize)]
enum Message {
    Hello { index: u32, count: u32 },
    Go { in_ms: u64 },
    Probe { rps: f64 },
    ProbeTotal { rps: f64 },
    Order(Box<Order>),
    Seconds(Vec<Second>),
}

pub(crate) struct Peer {
    index: u32,
    read: BufReader<TcpStream>,
    write: TcpStream,
}

impl Peer {
    fn send(&mut self, m: &Message) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(m).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.write.write_all(&line)
    }

    /// The next message, waiting at most `wait`.
    fn receive(&mut self, wait: Duration) -> std::io::Result<Message> {
        self.write
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut line = String::new();
        if self.read.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&line).map_err(std::io::Error::other)
    }
}

/// This shard's place in the fleet's search.
pub(crate) enum Link {
    /// Shard 0: the other shards, by index.
    Lead { followers: Vec<Peer> },
    /// Any other: its connection to the lead.
    Follow { lead: Peer },
}

fn lost(shard: u32, during: &'static str) -> EngineError {
    EngineError::Fleet(FleetFault::Lost { shard, during })
}

impl Link {
    /// Meets the rest of the fleet at `addr` (shard 0 listens there, the
    /// others connect), waiting up to `wait` for them, and returns when
    /// every shard has joined, at the moment they all start together.
    pub(crate) fn join(shard: Shard, addr: &str, wait: Duration) -> Result<Link, EngineError> {
        let deadline = Instant::now() + wait;
        if shard.index == 0 {
            Link::lead(shard, addr, deadline)
        } else {
            Link::follow(shard, addr, deadline)
        }
    }

    fn lead(shard: Shard, addr: &str, deadline: Instant) -> Result<Link, EngineError> {
        let listener = TcpListener::bind(addr).map_err(|source| {
            EngineError::Fleet(FleetFault::Listen {
                addr: addr.to_string(),
                source,
            })
        })?;
        let _ = listener.set_nonblocking(true);
        let mut followers: Vec<Peer> = Vec::new();
        while followers.len() + 1 < shard.count as usize {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_nodelay(true);
                    let Ok(write) = stream.try_clone() else {
                        continue;
                    };
                    let mut p = Peer {
                        index: 0,
                        read: BufReader::new(stream),
                        write,
                    };
                    match p.receive(Duration::from_secs(5)) {
                        Ok(Message::Hello { index, count })
                            if count == shard.count
                                && index > 0
                                && index < count
                                && followers.iter().all(|f| f.index != index) =>
                        {
                            p.index = index;
                            followers.push(p);
                        }
                        Ok(Message::Hello { index, count }) => {
                            return Err(EngineError::Fleet(FleetFault::Stranger {
                                said: format!("shard {index}/{count}"),
                            }))
                        }
                        _ => {}
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        let shards = (1..shard.count)
                            .filter(|i| followers.iter().all(|f| f.index != *i))
                            .collect();
                        return Err(EngineError::Fleet(FleetFault::Missing {
                            shards,
                            count: shard.count,
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        followers.sort_by_key(|f| f.index);
        // Everyone starts 200 ms from now: time for the word to reach
        // them all.
        let in_ms = 200;
        for f in &mut followers {
            f.send(&Message::Go { in_ms })
                .map_err(|_| lost(f.index, "joining"))?;
        }
        std::thread::sleep(Duration::from_millis(in_ms));
        Ok(Link::Lead { followers })
    }

    fn follow(shard: Shard, addr: &str, deadline: Instant) -> Result<Link, EngineError> {
        let began = Instant::now();
        let unreachable = || {
            EngineError::Fleet(FleetFault::Unreachable {
                addr: addr.to_string(),
                waited: began.elapsed(),
            })
        };
        let stream = loop {
            let tried = addr.to_socket_addrs().ok().and_then(|mut a| {
                a.find_map(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
            });
            if let Some(s) = tried {
                break s;
            }
            if Instant::now() > deadline {
                return Err(unreachable());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = stream.set_nodelay(true);
        let write = stream.try_clone().map_err(|_| unreachable())?;
        let mut lead = Peer {
            index: 0,
            read: BufReader::new(stream),
            write,
        };
        lead.send(&Message::Hello {
            index: shard.index,
            count: shard.count,
        })
        .map_err(|_| lost(0, "joining"))?;
        // The lead may wait as long for the rest.
        match lead.receive(deadline.saturating_duration_since(Instant::now()) * 2) {
            Ok(Message::Go { in_ms }) => std::thread::sleep(Duration::from_millis(in_ms)),
            _ => return Err(lost(0, "joining")),
        }
        Ok(Link::Follow { lead })
    }

    /// Every shard's probe rate added up, on every shard.
    pub(crate) fn probe_total(&mut self, own: f64) -> Result<f64, EngineError> {
        let wait = PROBE_WAIT;
        match self {
            Link::Lead { followers } => {
                let mut total = own;
                for f in followers.iter_mut() {
                    match f.receive(wait) {
                        Ok(Message::Probe { rps }) => total += rps,
                        _ => return Err(lost(f.index, "the probe")),
                    }
                }
                for f in followers.iter_mut() {
                    f.send(&Message::ProbeTotal { rps: total })
                        .map_err(|_| lost(f.index, "the probe"))?;
                }
                Ok(total)
            }
            Link::Follow { lead } => {
                lead.send(&Message::Probe { rps: own })
                    .map_err(|_| lost(0, "the probe"))?;
                match lead.receive(wait) {
                    Ok(Message::ProbeTotal { rps }) => Ok(rps),
                    _ => Err(lost(0, "the probe")),
                }
            }
        }
    }

    /// The lead: tells every shard what was judged and what comes next.
    pub(crate) fn order(&mut self, o: &Order) -> Result<(), EngineError> {
        if let Link::Lead { followers } = self {
            for f in followers.iter_mut() {
                f.send(&Message::Order(Box::new(o.clone())))
                    .map_err(|_| lost(f.index, "ordering a step"))?;
            }
        }
        Ok(())
    }

    /// A follower: the lead's next order.
    pub(crate) fn next_order(&mut self, wait: Duration) -> Result<Order, EngineError> {
        match self {
            Link::Follow { lead } => match lead.receive(wait) {
                Ok(Message::Order(o)) => Ok(*o),
                _ => Err(lost(0, "waiting for the next step")),
            },
            Link::Lead { .. } => Err(lost(0, "waiting for the next step")),
        }
    }

    /// A step's seconds: a follower sends its own to the lead; the lead
    /// gets back its own and every follower's, each shard's workers
    /// numbered apart.
    pub(crate) fn step_seconds(
        &mut self,
        own: Vec<Second>,
        wait: Duration,
    ) -> Result<Vec<Second>, EngineError> {
        match self {
            Link::Follow { lead } => {
                lead.send(&Message::Seconds(own))
                    .map_err(|_| lost(0, "sending a step's seconds"))?;
                Ok(Vec::new())
            }
            Link::Lead { followers } => {
                let mut all = own;
                for f in followers.iter_mut() {
                    match f.receive(wait) {
                        Ok(Message::Seconds(secs)) => {
                            let base = f.index as usize * WORKERS_APART;
                            all.extend(secs.into_iter().map(|mut s| {
                                s.worker += base;
                                s
                            }));
                        }
                        _ => return Err(lost(f.index, "a step's seconds")),
                    }
                }
                Ok(all)
            }
        }
    }
}

/// Worker numbers of different shards kept apart when their seconds are
/// judged together (a shard has fewer threads than this).
const WORKERS_APART: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn second(worker: usize, requests: u64) -> Second {
        Second {
            worker,
            index: 3,
            requests,
            errors: 0,
            non_2xx_3xx: 0,
            cpu_s: 0.1,
            encoded: vec![1, 2, 3],
            ttfb_encoded: Vec::new(),
            own_lag_p99_us: 7,
        }
    }

    #[test]
    fn three_shards_meet_add_their_probes_and_follow_one_lead() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let wait = Duration::from_secs(10);
        let followers: Vec<_> = (1..3u32)
            .map(|i| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let mut l = Link::join(Shard::new(i, 3).unwrap(), &addr, wait).unwrap();
                    let total = l.probe_total(f64::from(i) * 100.0).unwrap();
                    let o = l.next_order(wait).unwrap();
                    l.step_seconds(vec![second(0, u64::from(i))], wait).unwrap();
                    let end = l.next_order(wait).unwrap();
                    (
                        total,
                        o.next.unwrap().rate,
                        end.judged.map(|s| s.rate),
                        end.next.is_none(),
                    )
                })
            })
            .collect();
        let mut lead = Link::join(Shard::new(0, 3).unwrap(), &addr, wait).unwrap();
        assert_eq!(lead.probe_total(50.0).unwrap(), 350.0);
        let step = NextStep {
            rate: 280.0,
            begin_s: 2,
            end_s: 4,
            warm_s: 1,
        };
        let order = |judged, next| Order {
            judged,
            lo: None,
            hi: None,
            hi_generator: false,
            next,
        };
        lead.order(&order(None, Some(step))).unwrap();
        let all = lead.step_seconds(vec![second(0, 9)], wait).unwrap();
        // Each shard's worker 0, numbered apart, with its own count.
        let mut seen: Vec<(usize, u64)> = all.iter().map(|s| (s.worker, s.requests)).collect();
        seen.sort_unstable();
        assert_eq!(seen, [(0, 9), (WORKERS_APART, 1), (2 * WORKERS_APART, 2)]);
        let judged = SearchStep {
            rate: 280.0,
            achieved: 279.0,
            latency_us: crate::report::LatencySummary::of(
                &crate::report::stats::new_latency_histogram(),
            ),
            requests: 12,
            errors: 0,
            non_2xx_3xx: 0,
            pass: true,
            failed: Vec::new(),
            generator_bound: false,
            good_rps: 279.0,
        };
        lead.order(&order(Some(judged), None)).unwrap();
        for f in followers {
            assert_eq!(f.join().unwrap(), (350.0, 280.0, Some(280.0), true));
        }
    }

    #[test]
    fn a_shard_that_never_comes_is_named() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let e = Link::join(Shard::new(0, 3).unwrap(), &addr, Duration::from_millis(300))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "shard(s) 1/3, 2/3 never joined the fleet's search: start every shard with the same coordinator"
        );
        let e = Link::join(Shard::new(2, 3).unwrap(), &addr, Duration::from_millis(300))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("the fleet's lead (shard 0) at 127.0.0.1:"),
            "{e}"
        );
    }
}
