//! The HTTP/1.1 load engine behind `urk`: a [`Config`] in, a [`Report`]
//! out. It runs on io_uring, and on epoll where io_uring is blocked
//! ([`IoLevel::Epoll`], chosen by `Auto` there), with the same report.
//!
//! Each worker thread owns one ring and a share of the connections. Per loop
//! it reaps every completion, advances the connections' state machines,
//! queues the SQEs that produced and submits them with a single
//! `io_uring_enter` that also waits. Receives use multishot recv on a
//! provided buffer ring where the kernel has it (6.0+), single-shot recv
//! with buffer selection on 5.19, and plain recv into per-connection
//! buffers on 5.10 (see [`IoLevel`]). Sockets live in registered file
//! slots. Nothing is allocated per request; counters and HdrHistograms are
//! per worker and merged after the workers join.
//!
//! ```no_run
//! use std::time::Duration;
//! use urk_engine::{run, Config};
//!
//! let cfg = Config::new("http://127.0.0.1:8080/")?
//!     .threads(1)
//!     .connections(50)
//!     .duration(Duration::from_secs(5));
//! let report = run(&cfg)?;
//! println!("{} requests, p99 {} us", report.requests, report.latency_us.p99);
//! # Ok::<(), urk_engine::EngineError>(())
//! ```

// What goes in: the configuration, and the errors that stop a run before
// or during its start.
mod config;
mod error;
// Where requests come from: one fixed request, a targets file, a script.
mod source;
// The run: plan, workers, connections' state machines, pacing, search.
mod run;
// The I/O beneath it: backends (io_uring, epoll), rings and buffer rings,
// the kernel probe, endpoints, transports (plain, TLS).
mod io;
// What comes out: per-worker counters, the report, its text, merges,
// thresholds.
mod report;
mod shard;

pub use config::{Config, IoLevel, Order, TlsOptions, TlsVersion};
pub use error::{EngineError, TlsFailure, TlsProblem, Unavailable};
pub use io::endpoint::{parse_sources, Endpoint};
pub use io::probe::KernelSupport;
pub use io::transport::Negotiated;
/// The request and response layer (no I/O): targets files and templates
/// for [`Config::targets`], the framer.
pub use proto;
pub use report::checks::{
    anderson_darling_exponential, lag1_rank_correlation, CorrelationCheck, GapCheck, SelfChecks,
};
pub use report::confidence::percentile_ranks;
pub use report::diff::{Diff, DiffRow, DiffUnit};
pub use report::fleet::{Fleet, FleetError, LATE_START_S};
pub use report::stats::{ConnectCauses, Errors, Http2Report, LostCauses, ResetCodes, TlsCauses};
pub use report::text::{banner, TextOptions};
pub use report::threshold::Threshold;
pub use report::units;
pub use report::{
    IoInfo, KernelTimestamps, LatencySummary, PercentileIntervals, PhaseTimings, RateReport,
    RateSummary, Report, ServerClock, StopCause, TargetReport, TimelineEntry, TlsReport,
    WarmupReport,
};
pub use run::arrivals::Arrivals;
pub use run::exchange::Exchange;
pub use run::reqlog::{LogFormat, LogReport, LogSpec};
pub use run::schedule::{RatePlan, Stage};
pub use run::search::fleet::FleetFault;
pub use run::search::{find_max, find_max_watched, Search, SearchReport, SearchStep};
pub use run::{run, run_until, Live, LiveSecond, Plan, SearchProgress};
pub use shard::{Shard, SHARD_ENV};
pub use source::script::{
    Hooks, RequestScript, ResponseUse, ScriptError, ScriptResponse, WorkerScript,
};
