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

use std::sync::atomic::{AtomicU64, Ordering};

use proto::template::{Fill, Template};
use proto::RequestSpec;

use crate::config::Order;
use crate::EngineError;

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
            Prepared::Fixed(_) => None,
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
            Prepared::Fixed(_) => None,
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

/// A worker's side of the source.
pub(crate) enum WorkerSource<'a> {
    /// The fixed request, `pipeline` copies of it (a short batch sends a
    /// prefix).
    Fixed { bytes: Box<[u8]>, per: usize },
    Targets {
        set: &'a TargetSet,
        fill: Filler<'a>,
        /// Round robin: the next target.
        cursor: usize,
    },
}

/// Values for placeholders: the run's shared sequence and this worker's
/// generator.
pub(crate) struct Filler<'a> {
    seq: &'a AtomicU64,
    rng: fastrand::Rng,
}

impl Fill for Filler<'_> {
    fn seq(&mut self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.rng.u64(..n)
    }
}

impl<'a> WorkerSource<'a> {
    /// Worker `index` of `workers`: round robin starts at its share of the
    /// targets, so that workers do not walk in step.
    pub(crate) fn new(
        p: &'a Prepared,
        pipeline: u32,
        seq: &'a AtomicU64,
        index: usize,
        workers: usize,
    ) -> WorkerSource<'a> {
        match p {
            Prepared::Fixed(one) => WorkerSource::Fixed {
                bytes: one.repeat(pipeline as usize).into(),
                per: one.len(),
            },
            Prepared::Targets(set) => WorkerSource::Targets {
                set,
                fill: Filler {
                    seq,
                    rng: fastrand::Rng::with_seed(
                        set.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    ),
                },
                cursor: index * set.templates.len() / workers.max(1),
            },
        }
    }

    /// Writes a batch of `n` requests. The fixed request is not copied:
    /// `Some(len)` says how much of [`WorkerSource::fixed`] to send.
    /// Otherwise the batch goes into `out`.
    pub(crate) fn batch(&mut self, n: u32, out: &mut Outbox) -> Option<usize> {
        match self {
            WorkerSource::Fixed { per, .. } => Some(*per * n as usize),
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
                None
            }
        }
    }

    /// The fixed request's bytes (empty for other sources).
    pub(crate) fn fixed(&self) -> &[u8] {
        match self {
            WorkerSource::Fixed { bytes, .. } => bytes,
            WorkerSource::Targets { .. } => &[],
        }
    }

    /// Whether target `id`'s request is a `HEAD`.
    pub(crate) fn is_head(&self, id: u32) -> bool {
        match self {
            WorkerSource::Fixed { .. } => false,
            WorkerSource::Targets { set, .. } => set.heads[id as usize],
        }
    }
}
