//! Where requests come from: chosen once, at start, and asked for each
//! batch a connection sends.
//!
//! - **Fixed**: one request, encoded once; every worker sends its own copy
//!   of the same bytes, and a batch is a prefix of the pipelined copies.
//!   Nothing is done per request.
//! - **Targets**: several requests (a targets file) and any placeholders,
//!   each encoded once as a [`Template`]; a batch copies the chosen
//!   templates into the connection's [`Outbox`] and fills their slots.
//!   The order of targets (round robin, uniform, weighted) and every random
//!   value come from a per-worker generator seeded from one seed, so a run
//!   can be repeated.
//! - **Script**: a [`RequestScript`](script::RequestScript) makes requests
//!   per batch on each worker's thread (or once, for a static script,
//!   which is then sent as a fixed request), and may look at responses
//!   and delay requests.

pub(crate) mod script;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use proto::template::{Fill, Template};
use proto::RequestSpec;

use crate::config::Order;
use crate::EngineError;
use script::{Hooks, ResponseUse, ScriptError, ScriptResponse, SharedScript, WorkerScript};

/// Most targets whose responses are counted one by one: a report line per
/// target means nothing past this, and each keeps a histogram.
pub(crate) const MAX_TRACKED: usize = 1000;

/// What a targets report line names.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub method: String,
    pub url: String,
    pub line: usize,
}

/// The run's requests, checked and encoded before any load.
#[derive(Debug, Clone)]
pub(crate) enum Prepared {
    /// One request, the same bytes every time.
    Fixed(Vec<u8>),
    /// Requests to pick from, or one with placeholders.
    Targets(TargetSet),
    /// Requests made by a script.
    Script(SharedScript),
}

/// Several templates and how to choose among them.
#[derive(Debug, Clone)]
pub(crate) struct TargetSet {
    templates: Vec<Template>,
    /// Per target: a `HEAD`, whose response has no body.
    heads: Vec<bool>,
    /// Running sums of the weights, for a weighted pick.
    cumulative: Vec<u64>,
    order: Order,
    pub seed: u64,
    /// From a targets file (reported per target), not just a templated URL.
    pub labels: Option<Vec<Label>>,
}

impl Prepared {
    /// Encodes the configured requests. `entries` empty: the fixed request,
    /// templated if it has placeholders.
    pub(crate) fn new(
        fixed: &RequestSpec,
        entries: &[proto::targets::TargetEntry],
        order: Option<Order>,
        seed: Option<u64>,
    ) -> Result<Prepared, EngineError> {
        let env = |k: &str| std::env::var(k).ok();
        let seed = seed.unwrap_or_else(|| fastrand::u64(..));
        if entries.is_empty() {
            let bytes = fixed.encode()?;
            if !proto::template::has_placeholders(&bytes) {
                return Ok(Prepared::Fixed(bytes));
            }
            let t = Template::new(fixed, &env).map_err(|e| EngineError::Config(e.to_string()))?;
            return Ok(Prepared::Targets(TargetSet {
                templates: vec![t],
                heads: vec![fixed.is_head()],
                cumulative: vec![1],
                order: Order::RoundRobin,
                seed,
                labels: None,
            }));
        }
        let templates = entries
            .iter()
            .map(|e| {
                Template::new(&e.spec, &env)
                    .map_err(|err| EngineError::Config(format!("targets line {}: {err}", e.line)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cumulative = entries
            .iter()
            .scan(0u64, |sum, e| {
                *sum += u64::from(e.weight.max(1));
                Some(*sum)
            })
            .collect();
        let weighted = entries.iter().any(|e| e.weight != 1);
        Ok(Prepared::Targets(TargetSet {
            templates,
            heads: entries.iter().map(|e| e.spec.is_head()).collect(),
            cumulative,
            order: order.unwrap_or(if weighted {
                Order::Weighted
            } else {
                Order::RoundRobin
            }),
            seed,
            labels: Some(
                entries
                    .iter()
                    .map(|e| Label {
                        method: e.spec.method.clone(),
                        // Placeholders as written, not percent-encoded.
                        url: e
                            .spec
                            .target
                            .url
                            .replace("%7B%7B", "{{")
                            .replace("%7D%7D", "}}"),
                        line: e.line,
                    })
                    .collect(),
            ),
        }))
    }

    /// Whether every response of the run answers a `HEAD`; `None` when the
    /// methods are mixed (the framer is told per response).
    pub(crate) fn all_head(&self, fixed: &RequestSpec) -> Option<bool> {
        match self {
            Prepared::Fixed(_) => Some(fixed.is_head()),
            Prepared::Script(_) => None,
            Prepared::Targets(t) => {
                let first = t.heads[0];
                t.heads.iter().all(|&h| h == first).then_some(first)
            }
        }
    }

    /// What the report's per-target lines name.
    pub(crate) fn labels(&self) -> Option<Vec<Label>> {
        match self {
            Prepared::Targets(t) => t
                .labels
                .as_ref()
                .map(|l| l.iter().take(MAX_TRACKED).cloned().collect()),
            Prepared::Fixed(_) | Prepared::Script(_) => None,
        }
    }

    /// The seed, when anything is chosen at random: a random order or a
    /// random placeholder.
    pub(crate) fn seed(&self) -> Option<u64> {
        match self {
            Prepared::Targets(t) => {
                let random = t.order != Order::RoundRobin
                    || t.templates.iter().any(|t| {
                        t.slots()
                            .iter()
                            .any(|s| s.kind != proto::template::SlotKind::Seq)
                    });
                random.then_some(t.seed)
            }
            Prepared::Fixed(_) | Prepared::Script(_) => None,
        }
    }

    /// The targets counted one by one in the report (0: none).
    pub(crate) fn tracked(&self) -> usize {
        match self {
            Prepared::Targets(TargetSet {
                labels: Some(l), ..
            }) => l.len().min(MAX_TRACKED),
            _ => 0,
        }
    }
}

/// A connection's batch when it is not the fixed request: the plaintext
/// to send, and which target each of its requests is, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub bytes: Vec<u8>,
    pub ids: Vec<u32>,
}

/// What a batch holds: how many requests, and, for a fixed request, how
/// much of the worker's fixed bytes to send (otherwise the connection's
/// outbox holds it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch {
    pub requests: u32,
    pub fixed_len: Option<usize>,
}

/// A worker's side of the source.
pub(crate) enum WorkerSource<'a> {
    /// The fixed request, `pipeline` copies of it (a short batch sends a
    /// prefix).
    Fixed {
        bytes: Box<[u8]>,
        per: usize,
    },
    Targets {
        set: &'a TargetSet,
        fill: Filler<'a>,
        /// Round robin: the next target.
        cursor: usize,
    },
    Script(ScriptSide),
}

/// A worker's script: its hooks, the request it made once (a static
/// script), and the first failure of a hook, which stops the run.
pub(crate) struct ScriptSide {
    script: Box<dyn WorkerScript>,
    hooks: Hooks,
    /// A static script's one request, `pipeline` copies, and one's length.
    fixed: Option<(Box<[u8]>, usize)>,
    /// That request is a `HEAD`.
    fixed_head: bool,
    pub error: Option<ScriptError>,
}

/// Values for placeholders: the run's shared sequence and this worker's
/// generator.
pub(crate) struct Filler<'a> {
    seq: &'a AtomicU64,
    rng: fastrand::Rng,
    /// One instance of a fleet: its numbers interleave with the others'.
    shard: Option<crate::Shard>,
}

impl Fill for Filler<'_> {
    fn seq(&mut self) -> u64 {
        let k = self.seq.fetch_add(1, Ordering::Relaxed);
        self.shard.map_or(k, |s| s.seq(k))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.rng.u64(..n)
    }
}

/// What the worker needs to build its side of the source.
pub(crate) struct SourceArgs<'a> {
    pub pipeline: u32,
    pub seq: &'a AtomicU64,
    pub index: usize,
    pub workers: usize,
    pub addr: Option<SocketAddr>,
    pub shard: Option<crate::Shard>,
}

impl<'a> WorkerSource<'a> {
    /// Worker `index` of `workers`: round robin starts at its share of the
    /// targets, so that workers do not walk in step. A script's worker
    /// state is made here, on the worker's thread.
    pub(crate) fn new(p: &'a Prepared, a: SourceArgs<'a>) -> Result<WorkerSource<'a>, EngineError> {
        Ok(match p {
            Prepared::Fixed(one) => WorkerSource::Fixed {
                bytes: one.repeat(a.pipeline as usize).into(),
                per: one.len(),
            },
            Prepared::Targets(set) => WorkerSource::Targets {
                set,
                fill: Filler {
                    seq: a.seq,
                    rng: fastrand::Rng::with_seed(
                        a.shard.map_or(set.seed, |s| s.seed(set.seed))
                            ^ (a.index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    ),
                    shard: a.shard,
                },
                cursor: a.index * set.templates.len() / a.workers.max(1),
            },
            Prepared::Script(s) => {
                let hooks = s.hooks();
                let mut script = s.for_worker(a.index, a.addr).map_err(EngineError::Script)?;
                let mut fixed = None;
                let mut fixed_head = false;
                if !hooks.dynamic {
                    // Built once, after init, as wrk does: a static script
                    // costs nothing per request.
                    let mut one = Vec::new();
                    script.request(&mut one).map_err(EngineError::Script)?;
                    let ends = proto::parts::split_requests(&one).map_err(|e| {
                        EngineError::Script(ScriptError(format!("the script's request: {e}")))
                    })?;
                    if let [only] = ends.as_slice() {
                        fixed = Some((one.repeat(a.pipeline as usize).into(), one.len()));
                        fixed_head = only.head;
                    }
                }
                WorkerSource::Script(ScriptSide {
                    script,
                    hooks,
                    fixed,
                    fixed_head,
                    error: None,
                })
            }
        })
    }

    /// Writes a batch: `calls` requests (a script's `request()` may give
    /// several at a call; all of them go), at most `limit` in all (what is
    /// left of `-n`). The fixed request is not copied: the batch says how
    /// much of [`WorkerSource::fixed`] to send. `None` if a script failed
    /// (its error is kept; the worker stops).
    pub(crate) fn batch(&mut self, calls: u32, limit: u64, out: &mut Outbox) -> Option<Batch> {
        let n = u64::from(calls).min(limit) as u32;
        match self {
            WorkerSource::Fixed { per, .. } => Some(Batch {
                requests: n,
                fixed_len: Some(*per * n as usize),
            }),
            WorkerSource::Targets { set, fill, cursor } => {
                out.bytes.clear();
                out.ids.clear();
                for _ in 0..n {
                    let id = match set.order {
                        Order::RoundRobin => {
                            let id = *cursor;
                            *cursor = (*cursor + 1) % set.templates.len();
                            id
                        }
                        Order::Random => fill.rng.usize(..set.templates.len()),
                        Order::Weighted => {
                            let total = *set.cumulative.last().unwrap_or(&1);
                            let r = fill.rng.u64(..total);
                            set.cumulative.partition_point(|&c| c <= r)
                        }
                    };
                    set.templates[id].render_into(&mut out.bytes, fill);
                    out.ids.push(id as u32);
                }
                Some(Batch {
                    requests: n,
                    fixed_len: None,
                })
            }
            WorkerSource::Script(s) => s.batch(calls, limit, out),
        }
    }

    /// Writes target `id` again (an HTTP/2 request the server never
    /// processed); other sources write their next request.
    pub(crate) fn render(&mut self, id: u32, out: &mut Outbox) -> Option<Batch> {
        let WorkerSource::Targets { set, fill, .. } = self else {
            return self.batch(1, 1, out);
        };
        out.bytes.clear();
        out.ids.clear();
        set.templates[id as usize].render_into(&mut out.bytes, fill);
        out.ids.push(id);
        Some(Batch {
            requests: 1,
            fixed_len: None,
        })
    }

    /// The fixed request's bytes, when batches are prefixes of them.
    pub(crate) fn fixed(&self) -> Option<&[u8]> {
        match self {
            WorkerSource::Fixed { bytes, .. } => Some(bytes),
            WorkerSource::Script(ScriptSide {
                fixed: Some((b, _)),
                ..
            }) => Some(b),
            _ => None,
        }
    }

    /// Whether request `id` of an outbox is a `HEAD`.
    pub(crate) fn is_head(&self, id: u32) -> bool {
        match self {
            WorkerSource::Fixed { .. } => false,
            WorkerSource::Targets { set, .. } => set.heads[id as usize],
            // A script's outbox holds a HEAD flag per request.
            WorkerSource::Script(_) => id == 1,
        }
    }

    /// Whether a static script's request is a `HEAD` (`None` without one).
    pub(crate) fn fixed_head(&self) -> Option<bool> {
        match self {
            WorkerSource::Script(s) if s.fixed.is_some() => Some(s.fixed_head),
            _ => None,
        }
    }

    /// The script, if there is one.
    pub(crate) fn script(&mut self) -> Option<&mut ScriptSide> {
        match self {
            WorkerSource::Script(s) => Some(s),
            _ => None,
        }
    }

    /// The hooks to serve (none without a script).
    pub(crate) fn hooks(&self) -> Hooks {
        match self {
            WorkerSource::Script(s) => s.hooks,
            _ => Hooks::default(),
        }
    }
}

impl ScriptSide {
    fn batch(&mut self, calls: u32, limit: u64, out: &mut Outbox) -> Option<Batch> {
        if let Some((_, per)) = &self.fixed {
            let n = u64::from(calls).min(limit) as u32;
            return Some(Batch {
                requests: n,
                fixed_len: Some(per * n as usize),
            });
        }
        out.bytes.clear();
        out.ids.clear();
        for _ in 0..calls {
            if out.ids.len() as u64 >= limit {
                break;
            }
            let start = out.bytes.len();
            if let Err(e) = self.script.request(&mut out.bytes) {
                self.error = Some(e);
                return None;
            }
            let ends = match proto::parts::split_requests(&out.bytes[start..]) {
                Ok(ends) => ends,
                Err(e) => {
                    self.error = Some(ScriptError(format!("request() returned {e}")));
                    return None;
                }
            };
            // -n stays exact: requests past it are not sent.
            let mut kept = start;
            for e in ends {
                if out.ids.len() as u64 >= limit {
                    break;
                }
                out.ids.push(u32::from(e.head));
                kept = start + e.end;
            }
            out.bytes.truncate(kept);
        }
        Some(Batch {
            requests: out.ids.len() as u32,
            fixed_len: None,
        })
    }

    /// Asks `delay()` for the next request's wait, in µs.
    pub(crate) fn delay_us(&mut self) -> u64 {
        match self.script.delay_ms() {
            Ok(ms) if ms > 0.0 && ms.is_finite() => (ms * 1000.0) as u64,
            Ok(_) => 0,
            Err(e) => {
                self.error.get_or_insert(e);
                0
            }
        }
    }

    /// Hands a complete response to the script; `raw` is all of its bytes
    /// when the hook takes headers or the body.
    pub(crate) fn response(&mut self, status: u16, raw: Option<&[u8]>) {
        let parts = match (self.hooks.response, raw) {
            (ResponseUse::Headers | ResponseUse::Body, Some(raw)) => {
                proto::parts::response_parts(raw)
            }
            _ => None,
        };
        let (headers, body): (&[(&str, &[u8])], &[u8]) = match &parts {
            Some(p) if self.hooks.response == ResponseUse::Body => (&p.headers, &p.body),
            Some(p) => (&p.headers, &[]),
            None => (&[], &[]),
        };
        let r = ScriptResponse {
            status,
            headers,
            body,
        };
        if let Err(e) = self.script.response(&r) {
            self.error.get_or_insert(e);
        }
    }

    /// The script asked this worker to stop.
    pub(crate) fn stopped(&self) -> bool {
        self.script.stopped()
    }

    /// Where this worker's connections go, if the script says.
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        self.script.addr()
    }

    /// The load is over.
    pub(crate) fn finish(&mut self) {
        self.script.finish();
    }
}
