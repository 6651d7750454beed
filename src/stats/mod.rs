//! Run statistics: counts, token sums and HdrHistograms, folded record by record, and the summary.

pub mod bootstrap;
pub mod gate;
mod slo;
mod stopped;
mod summary;
mod timeseries;

pub use slo::{Objectives, PercentileSlo, Slo, SloSummary, SloTally, SloTime};
pub use stopped::{Saturation, StoppedEarly};
pub use summary::{
    ClientCheck, ConversationSummary, CostSummary, Distribution, LoadSummary,
    SUMMARY_SCHEMA_VERSION, ServerPacing, Summary, TokenLengths, ToolCallSummary, ToolRow,
    TopError, TurnRow, ViaBatch,
};
pub use timeseries::TimeSeries;

use crate::record::{Record, Status, TokenSource, ToolCallFault};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Highest value a histogram tracks (in thousandths): one day of milliseconds; larger values are clamped.
const MAX_MICROS: u64 = 86_400_000_000;

/// When the measured phase of a timed load (`--duration`) ends, in µs from the run's epoch (0:
/// not known, or no end): set by the dispatcher once the plan knows it, read by the collector for
/// each record, so completions after it stay out of the window's rates.
#[derive(Clone, Default, Debug)]
pub struct WindowEnd(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl WindowEnd {
    pub fn set(&self, micros: u64) {
        self.0
            .store(micros.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The end in ms from the epoch, once known.
    pub fn get_ms(&self) -> Option<f64> {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            us => Some(us as f64 / 1000.0),
        }
    }
}

/// One HdrHistogram of values kept to three decimals (milliseconds at microsecond resolution,
/// rates at 0.001/s), with 3 significant digits. Serialized as its HdrHistogram V2 deflate bytes.
///
/// Its counts grow with the largest value recorded (HdrHistogram's auto-resize) up to
/// `MAX_MICROS`, instead of being laid out for a day from the start: a run keeps thirteen of them,
/// most empty or holding values of seconds, and a day's layout costs 229 kB each where an empty
/// one takes 16 kB and one up to a second 90 kB (heaptrack, issue 31's bulk run: 3 MB of a 40 MB
/// client). Equal when they hold the same values, whatever their layouts.
#[derive(Clone)]
pub struct ScaledHistogram(Histogram<u64>);

impl PartialEq for ScaledHistogram {
    fn eq(&self, other: &Self) -> bool {
        // hdrhistogram's own `eq` also compares layouts (and is not symmetric across them).
        let values = |h: &Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        self.0.len() == other.0.len() && values(&self.0) == values(&other.0)
    }
}

impl std::fmt::Debug for ScaledHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScaledHistogram({} values)", self.0.len())
    }
}

impl serde::Serialize for ScaledHistogram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("{e:?}")))?;
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de> serde::Deserialize<'de> for ScaledHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::deserialize(deserializer)?;
        hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map(ScaledHistogram::from)
            .map_err(|e| serde::de::Error::custom(format!("{e:?}")))
    }
}

/// Records `value`, growing the histogram's layout to it (`saturating_record` would clamp to the
/// current layout instead of growing it). Callers clamp to a day or an hour first, so growing
/// cannot fail; were it to, the value would be clamped to the current layout, not lost.
pub(crate) fn grow_and_record(histogram: &mut Histogram<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
}

/// A histogram read from a `.hdr` file this tool wrote (thousandths of a unit).
impl From<Histogram<u64>> for ScaledHistogram {
    fn from(mut h: Histogram<u64>) -> Self {
        // A file's histogram is laid out for the values it held: it grows when merged with more.
        h.auto(true);
        ScaledHistogram(h)
    }
}

impl Default for ScaledHistogram {
    fn default() -> Self {
        ScaledHistogram(Histogram::new(3).expect("3 significant digits are valid"))
    }
}

impl ScaledHistogram {
    pub fn record(&mut self, value: f64) {
        let thousandths = (value * 1000.0).round().clamp(1.0, MAX_MICROS as f64) as u64;
        grow_and_record(&mut self.0, thousandths);
    }

    pub fn record_micros(&mut self, micros: u32) {
        grow_and_record(&mut self.0, u64::from(micros).clamp(1, MAX_MICROS));
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Adds every value of `other`, exactly, growing to hold them; fails (changing nothing) when
    /// `other` holds a value beyond a day (one read from a foreign file).
    pub fn merge(&mut self, other: &ScaledHistogram) -> Result<(), String> {
        if other.0.max() > other.0.highest_equivalent(MAX_MICROS) {
            return Err(format!(
                "a value of {} is beyond the largest tracked, {MAX_MICROS}",
                other.0.max()
            ));
        }
        self.0.add(&other.0).map_err(|e| format!("{e:?}"))
    }

    /// Writes the histogram in the HdrHistogram V2 compressed format, mergeable by any HdrHistogram library.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut out = BufWriter::new(File::create(path)?);
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut out)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        out.flush()
    }
}

/// Everything the summary needs, accumulated one record at a time. Serializable, and mergeable:
/// `merge` of the stats of two parts of a run equals the stats of the whole (oha's
/// `ResultData::merge`); percentiles are never averaged, histograms are added.
/// Ok answers and their tokens (output, total), counted apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowCounts {
    pub ok: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// Fractional completions and tokens inside a timed load's window (see `RunStats::steady`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Steady {
    pub completions: f64,
    pub output_tokens: f64,
    pub total_tokens: f64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    pub by_status: [u64; Status::ALL.len()],
    /// Ok embeddings and moderations answers (`Record::items`), the inputs they held, and the
    /// moderation categories flagged (answers flagging each).
    #[serde(default)]
    pub item_requests: u64,
    #[serde(default)]
    pub items: u64,
    #[serde(default)]
    pub flagged: BTreeMap<String, u64>,
    /// Checked structured answers by model (`output_check`).
    #[serde(default)]
    pub structured: BTreeMap<String, StructuredCounts>,
    pub by_http_status: BTreeMap<u16, u64>,
    /// Failed records by `error.kind` (lines not sent are apart, in `not_sent_by_reason`).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Records of lines not sent (`Status::not_sent`) by `error.kind`: `limit`, `interrupted`,
    /// `gave_up`, `budget`.
    #[serde(default)]
    pub not_sent_by_reason: BTreeMap<String, u64>,
    /// The first message seen of each error kind, for the summary's top errors.
    #[serde(default)]
    pub error_examples: BTreeMap<String, String>,
    pub latency: ScaledHistogram,
    /// Completion − scheduled send of ok requests (includes time waiting to be sent).
    pub latency_from_schedule: ScaledHistogram,
    pub failed_latency: ScaledHistogram,
    pub queue: ScaledHistogram,
    pub ttft: ScaledHistogram,
    pub ttfo: ScaledHistogram,
    pub tpot: ScaledHistogram,
    /// Inter-token latency: each gap between text chunks divided by the tokens a chunk of its
    /// request carried (output tokens / chunks, server-counted or local), pooled over ok streamed
    /// requests. Equal to the chunk gap for servers that send one token per event.
    pub itl: ScaledHistogram,
    /// The gaps between text chunks (SSE events) as they arrived, pooled over ok streamed
    /// requests: per event, not per token (speculative decoding and batching servers send
    /// several tokens an event).
    #[serde(default)]
    pub chunk_gap: ScaledHistogram,
    /// Set-up times of the connections requests opened (DNS, TCP, TLS), ok or not.
    #[serde(default)]
    pub connect: ScaledHistogram,
    /// Output tokens per second of each ok request's latency.
    pub output_tps: ScaledHistogram,
    /// Input and output tokens of each ok request: what the workload really was, as the server
    /// counted it.
    #[serde(default)]
    pub input_length: LengthCounts,
    #[serde(default)]
    pub output_length: LengthCounts,
    /// Chunks and server-counted output tokens of ok streamed requests: tokens per chunk.
    pub stream_chunks: u64,
    pub stream_output_tokens: u64,
    /// Token sums over ok requests only, each with the number of ok requests that reported it
    /// (a figure no ok request reported is unknown, not zero).
    pub input_tokens: Known,
    pub cached_tokens: Known,
    pub output_tokens: Known,
    pub reasoning_tokens: Known,
    pub total_tokens: Known,
    /// ok requests whose output tokens were counted locally, those tokens, and the counters used.
    pub estimated_output_requests: u64,
    pub estimated_output_tokens: u64,
    pub tokenizers: BTreeSet<String>,
    /// ok requests whose server usage said zero input and zero output tokens.
    pub zero_usage_ok: u64,
    /// Output tokens that failed requests received (server usage, else counted locally), and how
    /// many such requests: kept apart from every throughput figure.
    pub failed_output_tokens: u64,
    pub failed_with_output: u64,
    /// Time between attempts of retried requests.
    pub retry_wait: ScaledHistogram,
    /// Sends repeated on a new connection after a pooled one was found closed.
    pub reconnects: u64,
    /// Answers by `Flag` name: figures that mean something else for them (buffered streams,
    /// whole bodies although streamed, ...).
    #[serde(default)]
    pub flags: BTreeMap<String, u64>,
    /// Ok answers cut short, by reason (`max_output_tokens`, `content_filter`, Chat `length`).
    #[serde(default)]
    pub incomplete: BTreeMap<String, u64>,
    /// The end of a timed load's measured phase (ms from the run start): ok answers after it are
    /// in the totals, not in the window's rates.
    #[serde(default)]
    pub window_end_ms: Option<f64>,
    /// Ok answers that completed after `window_end_ms`, and their output and total tokens.
    #[serde(default)]
    pub after_window: WindowCounts,
    /// The steady state of a timed load: every ok request counted for the share of its own
    /// lifetime (send to answer) inside [first send, window end], with its tokens likewise.
    #[serde(default)]
    pub steady: Steady,
    /// Earliest first send and latest completion, ms from the run start: the throughput window.
    pub first_sent_ms: Option<f64>,
    pub last_done_ms: Option<f64>,
    pub cost_usd: f64,
    pub priced_requests: u64,
    /// Requests, tokens and dollars per model the answers (or requests) named.
    pub by_model: BTreeMap<String, ModelTotals>,
    /// Attempts after the first, and the error kinds of the attempts that were retried.
    pub retries: u64,
    pub retried_errors_by_kind: BTreeMap<String, u64>,
    /// `bench --warmup` records: counted here only, left out of everything else.
    pub warmup: u64,
    /// Measured requests that were sent, and the last send: the achieved send rate.
    pub sent: u64,
    pub last_sent_ms: Option<f64>,
    /// `--slo`: requests meeting each objective.
    pub slo: Option<SloTally>,
    /// Function calls of ok answers by model and tool, with their faults (`tool_check`).
    #[serde(default)]
    pub tool_calls: BTreeMap<String, BTreeMap<String, ToolTally>>,
    /// Ok answers by how many function calls each made (parallel calls per answer).
    #[serde(default)]
    pub calls_per_answer: BTreeMap<u32, u64>,
    /// Conversation requests by turn (1-based; turns from `LAST_TURN_ROW` on share its row).
    #[serde(default)]
    pub by_turn: BTreeMap<u32, TurnTally>,
    /// Conversations that ended, with their totals.
    #[serde(default)]
    pub conversations: ConversationTally,
    /// Conversations under way (their records so far), by id and schedule place.
    #[serde(skip)]
    open_conversations: std::collections::HashMap<(String, Option<u64>), OpenConversation>,
}

/// The row of the by-turn table that turns beyond it share.
pub const LAST_TURN_ROW: u32 = 10;

/// One turn index's requests: latency and TTFT of the ok ones, and the input they carried.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TurnTally {
    pub requests: u64,
    pub ok: u64,
    pub latency: ScaledHistogram,
    pub ttft: ScaledHistogram,
    pub input_tokens: Known,
}

/// Conversations that ended: how many, how many with every turn ok, and per conversation its
/// turns, wall time (first send to last answer), tokens and dollars.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConversationTally {
    pub count: u64,
    pub ok: u64,
    pub turns: LengthCounts,
    pub wall_ms: ScaledHistogram,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct OpenConversation {
    turns: u32,
    all_ok: bool,
    first_sent_ms: Option<f64>,
    last_done_ms: Option<f64>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

/// One tool's calls and their faults, by fault (`ToolCallFault::ALL` order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolTally {
    pub calls: u64,
    pub faults: [u64; ToolCallFault::ALL.len()],
}

/// Whole-token lengths (a prompt's or an answer's tokens per request), counted exactly: token
/// counts are integers with few distinct values, so every figure of them is exact (unlike an
/// HdrHistogram's, within 0.1% above 2,048), and parts add exactly.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LengthCounts(pub BTreeMap<u64, u64>);

impl LengthCounts {
    pub fn add(&mut self, tokens: u64) {
        *self.0.entry(tokens).or_default() += 1;
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// The nearest-rank quantile: the smallest length at least a share `q` of the requests have
    /// at most (q in (0, 1]); None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n.max(1));
        let mut seen = 0;
        self.0.iter().find_map(|(tokens, k)| {
            seen += k;
            (seen >= rank).then_some(*tokens)
        })
    }

    pub fn mean(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| {
            self.0
                .iter()
                .map(|(t, k)| *t as f64 * *k as f64)
                .sum::<f64>()
                / n as f64
        })
    }

    /// The population standard deviation.
    pub fn stdev(&self) -> Option<f64> {
        let mean = self.mean()?;
        let n = self.count() as f64;
        let var = self
            .0
            .iter()
            .map(|(t, k)| (*t as f64 - mean).powi(2) * *k as f64)
            .sum::<f64>()
            / n;
        Some(var.sqrt())
    }
}

/// A token sum and how many requests contributed a known value to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Known {
    pub sum: u64,
    pub requests: u64,
}

impl Known {
    fn add(&mut self, value: Option<u64>) {
        if let Some(value) = value {
            self.sum += value;
            self.requests += 1;
        }
    }

    /// The sum, or `None` when no request reported the figure.
    pub fn value(&self) -> Option<u64> {
        (self.requests > 0).then_some(self.sum)
    }

    fn merge(&mut self, other: Known) {
        self.sum += other.sum;
        self.requests += other.requests;
    }
}

fn add_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

fn min_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Checked structured answers: how many, how many valid, and the answers with each problem.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct StructuredCounts {
    pub checked: u64,
    pub valid: u64,
    pub by_problem: BTreeMap<String, u64>,
}

impl StructuredCounts {
    fn add(&mut self, other: &StructuredCounts) {
        self.checked += other.checked;
        self.valid += other.valid;
        add_counts(&mut self.by_problem, &other.by_problem);
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ModelTotals {
    /// Priced requests (the cost's denominator).
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    /// Null when the model has no price.
    pub cost_usd: Option<f64>,
}

impl RunStats {
    pub fn with_slo(slo: Option<Slo>) -> Self {
        RunStats {
            slo: slo.map(SloTally::new),
            ..RunStats::default()
        }
    }

    /// A timed load's ok answer against its window's end: after it, counted apart; and its share
    /// of the steady state, the part of its lifetime (first send to answer) before the end.
    fn add_to_window(&mut self, r: &Record, first_sent: f64, done: f64, end: f64) {
        let (output, total) = (r.output_tokens.unwrap_or(0), r.total_tokens.unwrap_or(0));
        if done > end {
            self.after_window.ok += 1;
            self.after_window.output_tokens += output;
            self.after_window.total_tokens += total;
        }
        let lifetime = done - first_sent;
        let share = if lifetime <= 0.0 {
            f64::from(u8::from(done <= end))
        } else {
            ((end.min(done) - first_sent) / lifetime).clamp(0.0, 1.0)
        };
        self.steady.completions += share;
        self.steady.output_tokens += share * output as f64;
        self.steady.total_tokens += share * total as f64;
    }

    pub fn add(&mut self, r: &Record) {
        if r.warmup {
            self.warmup += 1;
            return;
        }
        if let Some(slo) = &mut self.slo {
            // An answer after a timed load's deadline meets its SLOs outside the window: in the
            // shares, not in goodput, which is over the window.
            let after_window = match (self.window_end_ms, r.sent_at, r.latency_ms) {
                (Some(end), Some(sent), Some(latency)) => sent + latency > end,
                _ => false,
            };
            slo.add(r, after_window);
        }
        // Rates count arrivals: the first attempt's send, whatever retries followed.
        let first_sent = r.first_sent_at.or(r.sent_at);
        if let Some(sent) = first_sent {
            self.sent += 1;
            self.last_sent_ms = Some(self.last_sent_ms.map_or(sent, |l| l.max(sent)));
        }
        if let Some(wait) = r.retry_wait_ms {
            self.retry_wait.record(wait);
        }
        self.reconnects += u64::from(r.reconnects);
        if let Some(connect) = r.connect_ms {
            self.connect.record(connect);
        }
        for flag in &r.flags {
            match self.flags.get_mut(flag.name()) {
                Some(n) => *n += 1,
                None => {
                    self.flags.insert(flag.name().to_string(), 1);
                }
            }
        }
        self.by_status[r.status.index()] += 1;
        if let Some(code) = r.http_status {
            *self.by_http_status.entry(code).or_default() += 1;
        }
        if let Some(error) = &r.error
            && r.status.not_sent()
        {
            *self
                .not_sent_by_reason
                .entry(error.kind.clone())
                .or_default() += 1;
        } else if let Some(error) = &r.error {
            match self.errors_by_kind.get_mut(&error.kind) {
                Some(n) => *n += 1,
                None => {
                    self.errors_by_kind.insert(error.kind.clone(), 1);
                    self.error_examples
                        .insert(error.kind.clone(), error.message.clone());
                }
            }
        }
        if let Some(queue) = r.queue_ms {
            self.queue.record(queue);
        }
        if let (Some(first), Some(sent), Some(latency)) = (first_sent, r.sent_at, r.latency_ms) {
            self.first_sent_ms = Some(self.first_sent_ms.map_or(first, |f| f.min(first)));
            let done = sent + latency;
            if r.status == Status::Ok
                && let Some(end) = self.window_end_ms
            {
                self.add_to_window(r, first, done, end);
            }
            self.last_done_ms = Some(self.last_done_ms.map_or(done, |l| l.max(done)));
            if r.status == Status::Ok {
                self.latency.record(latency);
                if let Some(from_schedule) = r.latency_from_schedule_ms {
                    self.latency_from_schedule.record(from_schedule);
                }
                if let Some(output) = r.output_tokens.filter(|_| latency > 0.0) {
                    self.output_tps.record(output as f64 * 1000.0 / latency);
                }
            } else {
                self.failed_latency.record(latency);
            }
        }
        if r.status == Status::Ok && !r.tool_calls.is_empty() {
            let model = r.model.as_deref().unwrap_or("unknown");
            if !self.tool_calls.contains_key(model) {
                self.tool_calls.insert(model.to_string(), BTreeMap::new());
            }
            if let Some(tools) = self.tool_calls.get_mut(model) {
                for call in &r.tool_calls {
                    if !tools.contains_key(&call.name) {
                        tools.insert(call.name.clone(), ToolTally::default());
                    }
                    if let Some(tally) = tools.get_mut(&call.name) {
                        tally.calls += 1;
                    }
                }
                for problem in &r.tool_call_problems {
                    if let Some(tally) = tools.get_mut(&problem.name) {
                        tally.faults[problem.fault as usize] += 1;
                    }
                }
            }
            *self
                .calls_per_answer
                .entry(u32::try_from(r.tool_calls.len()).unwrap_or(u32::MAX))
                .or_default() += 1;
        }
        if r.status == Status::Ok && r.structured_output.is_some() {
            let model = r.model.clone().unwrap_or_else(|| "(no model)".to_string());
            let counts = self.structured.entry(model).or_default();
            counts.checked += 1;
            counts.valid += u64::from(r.output_problems.is_empty());
            let mut faults: Vec<&str> = r.output_problems.iter().map(|p| p.fault.name()).collect();
            faults.dedup();
            for fault in faults {
                *counts.by_problem.entry(fault.to_string()).or_default() += 1;
            }
        }
        if r.status == Status::Ok
            && let Some(items) = r.items
        {
            self.item_requests += 1;
            self.items += items;
            for category in &r.flagged_categories {
                *self.flagged.entry(category.clone()).or_default() += 1;
            }
        }
        if r.status == Status::Ok {
            if let Some(reason) = r.cut_short() {
                *self.incomplete.entry(reason.to_string()).or_default() += 1;
            }
            for (histogram, value) in [
                (&mut self.ttft, r.ttft_ms),
                (&mut self.ttfo, r.ttfo_ms),
                (&mut self.tpot, r.tpot_ms),
            ] {
                if let Some(value) = value {
                    histogram.record(value);
                }
            }
            // Tokens an event carried, on average over the request's chunks; unknown without
            // an output count, and then no per-token figure is made up.
            // Reasoning tokens no chunk carried (a model that streams no reasoning: its first
            // chunk is visible) are not in the basis.
            let unstreamed_reasoning = match (r.reasoning_tokens, r.ttft_ms, r.ttfo_ms) {
                (Some(reasoning), Some(ttft), Some(ttfo)) if ttft == ttfo => reasoning,
                _ => 0,
            };
            let per_chunk = match (r.output_tokens, r.chunks) {
                (Some(tokens), Some(chunks)) if tokens > unstreamed_reasoning && chunks > 0 => {
                    Some((tokens - unstreamed_reasoning) as f64 / f64::from(chunks))
                }
                _ => None,
            };
            for gap in &r.itl_us {
                self.chunk_gap.record_micros(*gap);
                if let Some(per_chunk) = per_chunk {
                    self.itl.record(f64::from(*gap) / 1000.0 / per_chunk);
                }
            }
            // Tokens per chunk from server counts only: a local estimate says little about chunking.
            if let (Some(chunks), Some(output), Some(TokenSource::Server)) =
                (r.chunks.filter(|c| *c > 0), r.output_tokens, r.token_source)
            {
                self.stream_chunks += u64::from(chunks);
                self.stream_output_tokens += output;
            }
            for (histogram, value) in [
                (&mut self.input_length, r.input_tokens),
                (&mut self.output_length, r.output_tokens),
            ] {
                if let Some(tokens) = value {
                    histogram.add(tokens);
                }
            }
            self.input_tokens.add(r.input_tokens);
            self.cached_tokens.add(r.cached_tokens);
            self.output_tokens.add(r.output_tokens);
            self.reasoning_tokens.add(r.reasoning_tokens);
            self.total_tokens.add(r.total_tokens);
            match r.token_source {
                Some(TokenSource::Estimated) => {
                    if let Some(output) = r.output_tokens {
                        self.estimated_output_requests += 1;
                        self.estimated_output_tokens += output;
                    }
                    if let Some(tokenizer) = &r.tokenizer
                        && !self.tokenizers.contains(tokenizer)
                    {
                        self.tokenizers.insert(tokenizer.clone());
                    }
                }
                Some(TokenSource::Server)
                    if r.input_tokens.unwrap_or(0) == 0 && r.output_tokens.unwrap_or(0) == 0 =>
                {
                    self.zero_usage_ok += 1;
                }
                _ => {}
            }
        } else if let Some(output) = r.output_tokens.or(r.partial_output_tokens) {
            self.failed_output_tokens += output;
            self.failed_with_output += 1;
        }
        if let Some(turn) = r.turn {
            self.add_turn(r, turn);
        }
        self.retries += u64::from(r.attempts.saturating_sub(1));
        for kind in &r.attempt_errors {
            *self.retried_errors_by_kind.entry(kind.clone()).or_default() += 1;
        }
        if let Some(cost) = r.cost_usd {
            self.cost_usd += cost;
            self.priced_requests += 1;
        }
        // Per model: answers that reported tokens; `requests` counts the priced ones.
        if let Some(model) = &r.model
            && (r.input_tokens.is_some() || r.output_tokens.is_some() || r.cost_usd.is_some())
        {
            if !self.by_model.contains_key(model) {
                self.by_model.insert(model.clone(), ModelTotals::default());
            }
            if let Some(totals) = self.by_model.get_mut(model) {
                totals.requests += u64::from(r.cost_usd.is_some());
                totals.input_tokens += r.input_tokens.unwrap_or(0);
                totals.cached_tokens += r.cached_tokens.unwrap_or(0);
                totals.output_tokens += r.output_tokens.unwrap_or(0);
                if let Some(cost) = r.cost_usd {
                    *totals.cost_usd.get_or_insert(0.0) += cost;
                }
            }
        }
    }

    /// Folds in the statistics of another part of the same run (another shard, another session):
    /// counters and sums add, histograms add value for value, windows widen. Offsets must count
    /// from the same epoch. Fails before changing anything when the parts judged different SLOs,
    /// and midway when a histogram cannot be added (one read from a file with foreign bounds).
    pub fn merge(&mut self, other: &RunStats) -> Result<(), String> {
        if self.slo.as_ref().map(|t| t.slo) != other.slo.as_ref().map(|t| t.slo)
            && (self.total() > 0 && other.total() > 0)
        {
            return Err("the parts were judged against different SLOs".to_string());
        }
        for (mine, theirs) in self.by_status.iter_mut().zip(other.by_status) {
            *mine += theirs;
        }
        add_counts(&mut self.by_http_status, &other.by_http_status);
        add_counts(&mut self.errors_by_kind, &other.errors_by_kind);
        add_counts(&mut self.not_sent_by_reason, &other.not_sent_by_reason);
        self.item_requests += other.item_requests;
        self.items += other.items;
        add_counts(&mut self.flagged, &other.flagged);
        for (model, counts) in &other.structured {
            self.structured
                .entry(model.clone())
                .or_default()
                .add(counts);
        }
        for (kind, message) in &other.error_examples {
            self.error_examples
                .entry(kind.clone())
                .or_insert_with(|| message.clone());
        }
        add_counts(
            &mut self.retried_errors_by_kind,
            &other.retried_errors_by_kind,
        );
        for (mine, theirs) in [
            (&mut self.latency, &other.latency),
            (
                &mut self.latency_from_schedule,
                &other.latency_from_schedule,
            ),
            (&mut self.failed_latency, &other.failed_latency),
            (&mut self.queue, &other.queue),
            (&mut self.ttft, &other.ttft),
            (&mut self.ttfo, &other.ttfo),
            (&mut self.tpot, &other.tpot),
            (&mut self.itl, &other.itl),
            (&mut self.chunk_gap, &other.chunk_gap),
            (&mut self.connect, &other.connect),
            (&mut self.output_tps, &other.output_tps),
            (&mut self.retry_wait, &other.retry_wait),
        ] {
            mine.merge(theirs)?;
        }
        for (mine, theirs) in [
            (&mut self.input_tokens, other.input_tokens),
            (&mut self.cached_tokens, other.cached_tokens),
            (&mut self.output_tokens, other.output_tokens),
            (&mut self.reasoning_tokens, other.reasoning_tokens),
            (&mut self.total_tokens, other.total_tokens),
        ] {
            mine.merge(theirs);
        }
        for (mine, theirs) in [
            (&mut self.stream_chunks, other.stream_chunks),
            (&mut self.stream_output_tokens, other.stream_output_tokens),
            (
                &mut self.estimated_output_requests,
                other.estimated_output_requests,
            ),
            (
                &mut self.estimated_output_tokens,
                other.estimated_output_tokens,
            ),
            (&mut self.zero_usage_ok, other.zero_usage_ok),
            (&mut self.failed_output_tokens, other.failed_output_tokens),
            (&mut self.failed_with_output, other.failed_with_output),
            (&mut self.reconnects, other.reconnects),
            (&mut self.priced_requests, other.priced_requests),
            (&mut self.retries, other.retries),
            (&mut self.warmup, other.warmup),
            (&mut self.sent, other.sent),
        ] {
            *mine += theirs;
        }
        self.tokenizers.extend(other.tokenizers.iter().cloned());
        for (flag, n) in &other.flags {
            *self.flags.entry(flag.clone()).or_default() += n;
        }
        for (reason, n) in &other.incomplete {
            *self.incomplete.entry(reason.clone()).or_default() += n;
        }
        self.cost_usd += other.cost_usd;
        self.first_sent_ms = min_of(self.first_sent_ms, other.first_sent_ms);
        self.window_end_ms = max_of(self.window_end_ms, other.window_end_ms);
        self.after_window.ok += other.after_window.ok;
        self.after_window.output_tokens += other.after_window.output_tokens;
        self.after_window.total_tokens += other.after_window.total_tokens;
        self.steady.completions += other.steady.completions;
        self.steady.output_tokens += other.steady.output_tokens;
        self.steady.total_tokens += other.steady.total_tokens;
        self.last_done_ms = max_of(self.last_done_ms, other.last_done_ms);
        self.last_sent_ms = max_of(self.last_sent_ms, other.last_sent_ms);
        for (model, theirs) in &other.by_model {
            let mine = self.by_model.entry(model.clone()).or_default();
            mine.requests += theirs.requests;
            mine.input_tokens += theirs.input_tokens;
            mine.cached_tokens += theirs.cached_tokens;
            mine.output_tokens += theirs.output_tokens;
            if let Some(cost) = theirs.cost_usd {
                *mine.cost_usd.get_or_insert(0.0) += cost;
            }
        }
        for (model, tools) in &other.tool_calls {
            let mine = self.tool_calls.entry(model.clone()).or_default();
            for (tool, theirs) in tools {
                let tally = mine.entry(tool.clone()).or_default();
                tally.calls += theirs.calls;
                for (a, b) in tally.faults.iter_mut().zip(theirs.faults) {
                    *a += b;
                }
            }
        }
        add_counts(&mut self.calls_per_answer, &other.calls_per_answer);
        add_counts(&mut self.input_length.0, &other.input_length.0);
        add_counts(&mut self.output_length.0, &other.output_length.0);
        for (turn, theirs) in &other.by_turn {
            let mine = self.by_turn.entry(*turn).or_default();
            mine.requests += theirs.requests;
            mine.ok += theirs.ok;
            mine.latency.merge(&theirs.latency)?;
            mine.ttft.merge(&theirs.ttft)?;
            mine.input_tokens.merge(theirs.input_tokens);
        }
        let (mine, theirs) = (&mut self.conversations, &other.conversations);
        mine.count += theirs.count;
        mine.ok += theirs.ok;
        add_counts(&mut mine.turns.0, &theirs.turns.0);
        mine.wall_ms.merge(&theirs.wall_ms)?;
        mine.input_tokens += theirs.input_tokens;
        mine.output_tokens += theirs.output_tokens;
        mine.cost_usd += theirs.cost_usd;
        match (&mut self.slo, &other.slo) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => self.slo = Some(theirs.clone()),
            _ => {}
        }
        Ok(())
    }

    /// Sends per second over the measured sends: (sent − 1) / (last send − first send).
    pub fn achieved_send_rate(&self) -> Option<f64> {
        let (first, last) = (self.first_sent_ms?, self.last_sent_ms?);
        (self.sent > 1 && last > first).then(|| (self.sent - 1) as f64 * 1000.0 / (last - first))
    }

    pub fn count(&self, status: Status) -> u64 {
        self.by_status[status.index()]
    }

    pub fn total(&self) -> u64 {
        self.by_status.iter().sum()
    }

    /// A conversation's request: its turn's row, and its conversation's totals (folded in when its
    /// last turn's record comes).
    fn add_turn(&mut self, r: &Record, turn: u32) {
        // A turn an interrupt or a limit left unsent is the conversation's end, not a request.
        let sent = r.sent_at.is_some() || r.first_sent_at.is_some();
        let row = self.by_turn.entry(turn.min(LAST_TURN_ROW)).or_default();
        row.requests += u64::from(sent);
        if r.status == Status::Ok {
            row.ok += 1;
            if let Some(latency) = r.latency_ms {
                row.latency.record(latency);
            }
            if let Some(ttft) = r.ttft_ms {
                row.ttft.record(ttft);
            }
            row.input_tokens.add(r.input_tokens);
        }
        let key = (r.conversation_id.clone().unwrap_or_default(), r.seq);
        let open = self
            .open_conversations
            .entry(key.clone())
            .or_insert_with(|| OpenConversation {
                all_ok: true,
                ..OpenConversation::default()
            });
        open.turns += u32::from(sent);
        open.all_ok &= r.status == Status::Ok;
        let sent = r.first_sent_at.or(r.sent_at);
        open.first_sent_ms = min_of(open.first_sent_ms, sent);
        open.last_done_ms = max_of(
            open.last_done_ms,
            r.sent_at.zip(r.latency_ms).map(|(s, l)| s + l),
        );
        open.input_tokens += r.input_tokens.unwrap_or(0);
        open.output_tokens += r.output_tokens.unwrap_or(0);
        open.cost_usd += r.cost_usd.unwrap_or(0.0);
        if !r.conversation_end {
            return;
        }
        let Some(done) = self.open_conversations.remove(&key) else {
            return;
        };
        let c = &mut self.conversations;
        c.count += 1;
        c.ok += u64::from(done.all_ok);
        c.turns.add(u64::from(done.turns));
        if let (Some(first), Some(last)) = (done.first_sent_ms, done.last_done_ms) {
            c.wall_ms.record(last - first);
        }
        c.input_tokens += done.input_tokens;
        c.output_tokens += done.output_tokens;
        c.cost_usd += done.cost_usd;
    }

    /// Saves each histogram as `<dir>/<name>.hdr` (empty ones too, so runs always merge file by file).
    pub fn save_histograms(&self, dir: &Path) -> io::Result<()> {
        for (name, histo) in Histo::NAMED {
            histo.of(self).save(&dir.join(format!("{name}.hdr")))?;
        }
        Ok(())
    }
}

/// A histogram of the run, by the name users write (`ttft`), and its field in `RunStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Histo {
    Latency,
    LatencyFromSchedule,
    FailedLatency,
    Queue,
    Ttft,
    Ttfo,
    Tpot,
    Itl,
    ChunkGap,
    Connect,
    OutputTps,
    RetryWait,
}

impl Histo {
    /// Every histogram with its name: the file stem in `histograms/` and the `--fail-on` name.
    pub const NAMED: [(&'static str, Histo); 12] = [
        ("latency", Histo::Latency),
        ("latency_from_schedule", Histo::LatencyFromSchedule),
        ("failed_latency", Histo::FailedLatency),
        ("queue", Histo::Queue),
        ("ttft", Histo::Ttft),
        ("ttfo", Histo::Ttfo),
        ("tpot", Histo::Tpot),
        ("itl", Histo::Itl),
        ("chunk_gap", Histo::ChunkGap),
        ("connect", Histo::Connect),
        ("output_tps", Histo::OutputTps),
        ("retry_wait", Histo::RetryWait),
    ];

    pub fn named(name: &str) -> Option<Histo> {
        // The summary.json names (`ttft_ms`, `latency_ms`) are accepted too.
        let name = name.strip_suffix("_ms").unwrap_or(name);
        let name = if name == "e2e" { "latency" } else { name };
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, h)| *h)
    }

    pub fn of(self, stats: &RunStats) -> &ScaledHistogram {
        match self {
            Histo::Latency => &stats.latency,
            Histo::LatencyFromSchedule => &stats.latency_from_schedule,
            Histo::FailedLatency => &stats.failed_latency,
            Histo::Queue => &stats.queue,
            Histo::Ttft => &stats.ttft,
            Histo::Ttfo => &stats.ttfo,
            Histo::Tpot => &stats.tpot,
            Histo::Itl => &stats.itl,
            Histo::ChunkGap => &stats.chunk_gap,
            Histo::Connect => &stats.connect,
            Histo::OutputTps => &stats.output_tps,
            Histo::RetryWait => &stats.retry_wait,
        }
    }

    pub fn of_mut(self, stats: &mut RunStats) -> &mut ScaledHistogram {
        match self {
            Histo::Latency => &mut stats.latency,
            Histo::LatencyFromSchedule => &mut stats.latency_from_schedule,
            Histo::FailedLatency => &mut stats.failed_latency,
            Histo::Queue => &mut stats.queue,
            Histo::Ttft => &mut stats.ttft,
            Histo::Ttfo => &mut stats.ttfo,
            Histo::Tpot => &mut stats.tpot,
            Histo::Itl => &mut stats.itl,
            Histo::ChunkGap => &mut stats.chunk_gap,
            Histo::Connect => &mut stats.connect,
            Histo::OutputTps => &mut stats.output_tps,
            Histo::RetryWait => &mut stats.retry_wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TokenSource;
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn warmup_records_are_counted_apart_and_left_out_of_every_statistic() {
        let mut stats = RunStats::with_slo(Some(Slo::parse("e2e=1s").unwrap()));
        let record = |warmup: bool, sent: f64, latency: f64| {
            let mut r = Record::empty("1".into(), 1, Status::Ok);
            r.warmup = warmup;
            r.sent_at = Some(sent);
            r.queue_ms = Some(0.5);
            r.latency_ms = Some(latency);
            r.latency_from_schedule_ms = Some(latency + 0.5);
            r.output_tokens = Some(10);
            r
        };
        stats.add(&record(true, 0.0, 5000.0));
        stats.add(&record(true, 10.0, 5000.0));
        stats.add(&record(false, 1000.0, 100.0));
        stats.add(&record(false, 1500.0, 100.0));
        assert_eq!((stats.warmup, stats.total(), stats.sent), (2, 2, 2));
        assert_eq!(stats.latency.len(), 2);
        assert!(
            stats.latency.inner().max() < 101_000,
            "warm-up latencies are not in"
        );
        assert_eq!(stats.latency_from_schedule.len(), 2);
        assert_eq!(stats.output_tokens.value(), Some(20));
        assert_eq!(
            (stats.first_sent_ms, stats.last_done_ms),
            (Some(1000.0), Some(1600.0))
        );
        assert_eq!(stats.achieved_send_rate(), Some(2.0));
        let summary = Summary::from_stats(&stats, 2.0, Vec::new());
        assert_eq!(summary.warmup_requests, 2);
        assert_eq!(summary.slo.unwrap().requests, 2);
    }

    /// Records of every kind the statistics treat differently, from a seeded generator.
    fn varied_records(n: u64) -> Vec<Record> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        (0..n)
            .map(|i| {
                let status = [
                    Status::Ok,
                    Status::Ok,
                    Status::Ok,
                    Status::HttpError,
                    Status::Truncated,
                ][next(5) as usize];
                let mut r = Record::empty(i.to_string(), i + 1, status);
                r.warmup = next(20) == 0;
                r.model = Some(["gpt-4.1", "gpt-4o-mini", "llama"][next(3) as usize].to_string());
                r.http_status = Some(if status == Status::HttpError {
                    429
                } else {
                    200
                });
                if status != Status::Ok {
                    r.fail(
                        status,
                        ["rate_limit_exceeded", "stream_truncated"][next(2) as usize],
                        "x",
                    );
                }
                r.sent_at = Some(next(100_000) as f64 / 7.0);
                r.first_sent_at = r.sent_at.map(|s| s - next(3) as f64);
                r.queue_ms = Some(next(5_000) as f64 / 1000.0);
                r.latency_ms = Some(1.0 + next(900_000) as f64 / 1000.0);
                r.latency_from_schedule_ms = r.latency_ms.map(|l| l + 1.0);
                r.attempts = 1 + next(3) as u32;
                if r.attempts > 1 {
                    r.attempt_errors = vec!["http_503".into(); r.attempts as usize - 1];
                    r.retry_wait_ms = Some(next(2_000) as f64);
                }
                r.reconnects = u32::from(next(10) == 0);
                if next(2) == 0 {
                    r.ttft_ms = Some(next(500) as f64 / 3.0);
                    r.ttfo_ms = r.ttft_ms;
                    r.chunks = Some(next(50) as u32);
                    r.itl_us = (0..next(30)).map(|_| next(40_000) as u32).collect();
                }
                if next(3) == 0 {
                    r.token_source = Some(TokenSource::Estimated);
                    r.tokenizer = Some("o200k_base".into());
                    r.output_tokens = Some(next(300));
                    if status != Status::Ok {
                        r.output_tokens = None;
                        r.partial_output_tokens = Some(next(50));
                    }
                } else {
                    r.token_source = Some(TokenSource::Server);
                    r.input_tokens = Some(next(1_000));
                    r.cached_tokens = Some(next(10));
                    r.output_tokens = Some(next(300));
                    r.total_tokens = Some(r.input_tokens.unwrap() + r.output_tokens.unwrap());
                    // Binary fractions: sums of costs are exact whatever the order.
                    r.cost_usd = (next(4) > 0).then(|| next(1_000) as f64 / 1024.0);
                }
                r.tpot_ms = r.ttft_ms.map(|t| t / 10.0);
                r
            })
            .collect()
    }

    #[test]
    fn token_lengths_are_exact_at_any_size() {
        let mut counts = LengthCounts::default();
        for tokens in [8192, 8192, 8192, 200_000, 1537, 0] {
            counts.add(tokens);
        }
        let l = TokenLengths::of(&counts).unwrap();
        assert_eq!(
            (l.count, l.min, l.p50, l.p90, l.max),
            (6, 0, 8192, 200_000, 200_000)
        );
        assert_eq!(counts.quantile(0.2), Some(1537));
        assert_eq!(l.mean, (3.0 * 8192.0 + 200_000.0 + 1537.0) / 6.0);
        assert!(TokenLengths::of(&LengthCounts::default()).is_none());
    }

    #[test]
    fn merged_stats_of_two_parts_equal_the_stats_of_the_whole() {
        let records = varied_records(2_000);
        let slo = Some(Slo::parse("ttft=100ms,e2e=500ms").unwrap());
        let mut whole = RunStats::with_slo(slo);
        for r in &records {
            whole.add(r);
        }
        for cut in [0, 1, 777, 1_999, 2_000] {
            let (mut first, mut second) = (RunStats::with_slo(slo), RunStats::with_slo(slo));
            for r in &records[..cut] {
                first.add(r);
            }
            for r in &records[cut..] {
                second.add(r);
            }
            first.merge(&second).unwrap();
            assert_eq!(first, whole, "split at {cut}");
        }
        assert!(whole.itl.len() > 1_000 && whole.warmup > 0 && whole.reconnects > 0);
        let mut other_slo = RunStats::with_slo(Some(Slo::parse("e2e=1s").unwrap()));
        other_slo.add(&records[0]);
        assert!(
            whole.clone().merge(&other_slo).is_err(),
            "different SLOs do not merge"
        );
    }

    #[test]
    fn stats_survive_a_json_round_trip_exactly() {
        let mut stats = RunStats::with_slo(Some(Slo::parse("e2e=1s").unwrap()));
        for r in &varied_records(300) {
            stats.add(r);
        }
        let text = serde_json::to_string(&stats).unwrap();
        let back: RunStats = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stats);
    }

    #[test]
    fn histograms_keep_microseconds_and_round_trip() {
        let mut h = ScaledHistogram::default();
        for ms in [0.25, 1.5, 1000.0] {
            h.record(ms);
        }
        assert_eq!(h.inner().min(), 250);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.hdr");
        h.save(&path).unwrap();
        let back: Histogram<u64> = Deserializer::new()
            .deserialize(&mut File::open(&path).unwrap())
            .unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back.max(), h.inner().max());
    }

    #[test]
    fn histograms_grow_to_their_values_and_merge_across_ranges() {
        let mut short = ScaledHistogram::default();
        short.record(2.0);
        let mut long = ScaledHistogram::default();
        long.record(3_600_000.0);
        // Laid out only as far as their largest value: a 2 ms one in 16 kB, an hour's in 188.
        assert!(short.inner().distinct_values() * 4 < long.inner().distinct_values());
        // Equal to the same values in a day's layout (a file of an earlier version), both ways.
        let mut day = Histogram::<u64>::new_with_bounds(1, MAX_MICROS, 3).unwrap();
        day.record(2000).unwrap();
        let day = ScaledHistogram::from(day);
        assert_eq!(day, short);
        assert_eq!(short, day);
        // A part read back from its file merges with one holding larger values, both ways.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.hdr");
        short.save(&path).unwrap();
        let mut read: ScaledHistogram = Deserializer::new()
            .deserialize::<u64, _>(&mut File::open(&path).unwrap())
            .unwrap()
            .into();
        read.merge(&long).unwrap();
        long.merge(&short).unwrap();
        assert_eq!(read, long);
        assert_eq!(read.inner().max(), long.inner().max());
        assert_eq!(read.len(), 2);
        // Values beyond a day are clamped when recorded, and refused from a foreign file.
        let mut huge = ScaledHistogram::default();
        huge.record(1e12);
        assert!(huge.inner().equivalent(huge.inner().max(), MAX_MICROS));
        read.merge(&huge).unwrap();
        let mut foreign = Histogram::<u64>::new(3).unwrap();
        foreign.record(MAX_MICROS * 4).unwrap();
        let err = read.merge(&foreign.into()).unwrap_err();
        assert!(err.contains("beyond the largest tracked"), "{err}");
    }
}
