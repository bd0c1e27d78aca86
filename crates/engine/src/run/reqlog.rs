//! A record per request, to keep (`Config::log`): when it was meant to
//! go and went, how long it took, what came back, on which connection.
//!
//! Workers never wait for the disk: each fills a batch of its own and
//! hands it over a bounded queue to one writer thread; when the writer
//! falls behind, the batch is dropped and counted, never the load slowed.
//! Memory stays bounded however long the run: at most `QUEUED` batches of
//! `BATCH` records wait, whatever the rate.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use serde::{Deserialize, Serialize};

/// Records a worker gathers before handing them over.
const BATCH: usize = 4096;
/// Batches that may wait for the writer.
const QUEUED: usize = 32;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Comma-separated, with a header line.
    Csv,
    /// One JSON object per line.
    Json,
}

/// Where and how to keep a record per request.
///
/// ```
/// let spec = urk_engine::LogSpec {
///     path: "requests.csv".into(),
///     format: urk_engine::LogFormat::Csv,
///     sample: 0.1,
/// };
/// let cfg = urk_engine::Config::new("http://127.0.0.1:8080/").unwrap().log(spec);
/// assert!(cfg.log.is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogSpec {
    pub path: PathBuf,
    pub format: LogFormat,
    /// The share of requests kept (1: all), drawn at random.
    pub sample: f64,
}

/// What the log kept, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogReport {
    pub path: String,
    pub format: Option<LogFormat>,
    pub sample: f64,
    /// Records written.
    pub records: u64,
    /// Records dropped because the writer could not keep up.
    pub dropped: u64,
    /// Why the log stopped early (a full disk, a closed pipe): the run's
    /// figures stand, the log is short by what came after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One request's record. Times are Unix microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub intended_us: u64,
    pub sent_us: u64,
    /// From the intended send (the actual one in a closed loop).
    pub latency_us: u64,
    /// 0 for a request lost to a fault.
    pub status: u16,
    /// The body's length, when it was announced.
    pub body_bytes: Option<u64>,
    /// The fault that lost it.
    pub error: Option<&'static str>,
    /// The target's index in a targets file.
    pub target: Option<u32>,
    pub worker: u16,
    pub connection: u32,
}

/// The writer thread's end.
pub(crate) struct Writer {
    /// Records written, or those written and why it stopped.
    thread: std::thread::JoinHandle<Result<u64, (u64, std::io::Error)>>,
    spec: LogSpec,
}

/// A worker's end: its batch and the queue to the writer.
pub(crate) struct Batch {
    records: Vec<Record>,
    sink: SyncSender<Vec<Record>>,
    sample: f64,
    rng: fastrand::Rng,
    pub dropped: u64,
}

impl Writer {
    /// Creates the file and starts the writer; `workers` batches draw
    /// from the returned sender.
    /// Starts the writer on a new file, or (`append`) at the end of one
    /// an earlier run of the same search wrote (its CSV header once).
    pub(crate) fn start(
        spec: &LogSpec,
        append: bool,
    ) -> std::io::Result<(Writer, SyncSender<Vec<Record>>)> {
        let file = if append {
            std::fs::OpenOptions::new().append(true).open(&spec.path)?
        } else {
            std::fs::File::create(&spec.path)?
        };
        let (tx, rx) = sync_channel(QUEUED);
        let format = spec.format;
        let thread = std::thread::Builder::new()
            .name("urk-log".into())
            .spawn(move || {
                write_all(
                    std::io::BufWriter::with_capacity(1 << 20, file),
                    format,
                    !append,
                    rx,
                )
            })?;
        Ok((
            Writer {
                thread,
                spec: spec.clone(),
            },
            tx,
        ))
    }

    /// Waits for the writer to finish (every sender dropped) and says what
    /// it kept, and why it stopped if it failed.
    pub(crate) fn finish(self, dropped: u64) -> LogReport {
        let (records, error) = match self.thread.join() {
            Ok(Ok(n)) => (n, None),
            Ok(Err((n, e))) => (n, Some(e.to_string())),
            Err(_) => (0, Some("the log writer stopped".to_string())),
        };
        LogReport {
            path: self.spec.path.display().to_string(),
            format: Some(self.spec.format),
            sample: self.spec.sample,
            records,
            dropped,
            error,
        }
    }
}

/// Writes every batch until the workers are done; on a failure it stops
/// writing but drains the queue, so that no worker is kept waiting.
fn write_all(
    out: impl Write,
    format: LogFormat,
    header: bool,
    rx: Receiver<Vec<Record>>,
) -> Result<u64, (u64, std::io::Error)> {
    let mut n = 0u64;
    match write_batches(out, format, header, &rx, &mut n) {
        Ok(()) => Ok(n),
        Err(e) => {
            for _ in rx {}
            Err((n, e))
        }
    }
}

fn write_batches(
    mut out: impl Write,
    format: LogFormat,
    header: bool,
    rx: &Receiver<Vec<Record>>,
    n: &mut u64,
) -> std::io::Result<()> {
    if header && format == LogFormat::Csv {
        out.write_all(
            b"intended_us,sent_us,latency_us,status,body_bytes,error,target,worker,connection\n",
        )?;
    }
    for batch in rx {
        for r in &batch {
            let body = r.body_bytes.map(|b| b.to_string()).unwrap_or_default();
            let target = r.target.map(|t| t.to_string()).unwrap_or_default();
            match format {
                LogFormat::Csv => writeln!(
                    out,
                    "{},{},{},{},{body},{},{target},{},{}",
                    r.intended_us,
                    r.sent_us,
                    r.latency_us,
                    r.status,
                    r.error.unwrap_or(""),
                    r.worker,
                    r.connection
                )?,
                LogFormat::Json => {
                    let opt = |s: &str| {
                        if s.is_empty() {
                            "null".to_string()
                        } else {
                            s.to_string()
                        }
                    };
                    let error = r.error.map_or("null".to_string(), |e| format!("\"{e}\""));
                    writeln!(
                        out,
                        "{{\"intended_us\":{},\"sent_us\":{},\"latency_us\":{},\"status\":{},\"body_bytes\":{},\"error\":{error},\"target\":{},\"worker\":{},\"connection\":{}}}",
                        r.intended_us,
                        r.sent_us,
                        r.latency_us,
                        r.status,
                        opt(&body),
                        opt(&target),
                        r.worker,
                        r.connection
                    )?
                }
            }
        }
        *n += batch.len() as u64;
    }
    out.flush()
}

impl Batch {
    pub(crate) fn new(sink: SyncSender<Vec<Record>>, sample: f64, seed: u64) -> Batch {
        Batch {
            records: Vec::with_capacity(BATCH),
            sink,
            sample,
            rng: fastrand::Rng::with_seed(seed),
            dropped: 0,
        }
    }

    /// Keeps `r` if it is sampled; hands a full batch over.
    pub(crate) fn push(&mut self, r: Record) {
        if self.sample < 1.0 && self.rng.f64() >= self.sample {
            return;
        }
        self.records.push(r);
        if self.records.len() >= BATCH {
            self.hand_over();
        }
    }

    /// Hands the batch to the writer, or drops it if the writer's queue
    /// is full.
    pub(crate) fn hand_over(&mut self) {
        if self.records.is_empty() {
            return;
        }
        let full = std::mem::replace(&mut self.records, Vec::with_capacity(BATCH));
        match self.sink.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                self.dropped += b.len() as u64;
            }
        }
    }

    /// At the end: the last records wait for room rather than drop.
    pub(crate) fn finish(mut self) -> u64 {
        let last = std::mem::take(&mut self.records);
        if let Err(lost) = self.sink.send(last) {
            // The writer is gone: these are not kept.
            self.dropped += lost.0.len() as u64;
        }
        self.dropped
    }
}
