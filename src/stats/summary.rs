//! `summary.json` and the printed table: what a run did, from `RunStats`.

use super::{RunStats, ScaledHistogram};
use crate::record::Status;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever a field of `summary.json` changes meaning or goes away.
pub const SUMMARY_SCHEMA_VERSION: u32 = 2;

/// A run through the Batch API (`llmvolley batch`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViaBatch {
    pub parts: usize,
    /// Parts by their batch's status (`completed`, `expired`, ...).
    pub by_status: BTreeMap<String, u64>,
    /// At the batch tier, as billed.
    pub cost_usd: Option<f64>,
    /// The same answers' cost at the standard (live) tier.
    pub live_cost_usd: Option<f64>,
    /// custom_ids with more than one output or error line; lines naming no workload line; lines
    /// that are not JSON objects with a custom_id.
    pub lines_twice: u64,
    pub lines_unknown: u64,
    pub unreadable_lines: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub schema_version: u32,
    pub tool_version: String,
    pub requests: RequestCounts,
    /// Failed requests by `error.kind`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Embeddings and moderations: the inputs their ok answers held, per second of the window,
    /// and the moderation categories flagged. Absent when no answer held items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<ItemTotals>,
    /// Answers to bodies that asked for `json_schema` or `json_object`, checked: `valid` is the
    /// share without a problem (gate: `--fail-on 'structured_output.valid<99%'`). Absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<StructuredSummary>,
    /// Lines not sent by why (`limit`, `interrupted`, `gave_up`, `budget`): not failures.
    #[serde(default)]
    pub not_sent_by_reason: BTreeMap<String, u64>,
    /// The most frequent error kinds (at most five, most frequent first), each with one message.
    #[serde(default)]
    pub top_errors: Vec<TopError>,
    /// Attempts after the first, and the errors of the attempts that were retried, by kind.
    pub retries: u64,
    pub retried_errors_by_kind: BTreeMap<String, u64>,
    /// From the first request dispatched to the last record written.
    pub wall_time_s: f64,
    /// From the first send to the last completion: the denominator of every rate.
    pub window_s: f64,
    /// A timed load (`--duration`): its measured phase's steady state.
    #[serde(default)]
    pub steady_state: Option<SteadyState>,
    /// ok requests per second of `window_s`.
    pub requests_per_s: f64,
    pub tokens: TokenTotals,
    /// End-to-end latency of ok requests; failed ones are in `failed_latency_ms`.
    pub latency_ms: Option<Distribution>,
    /// Completion − scheduled send of ok requests: latency as seen by a caller arriving on schedule.
    pub latency_from_schedule_ms: Option<Distribution>,
    pub failed_latency_ms: Option<Distribution>,
    pub queue_ms: Option<Distribution>,
    /// Streamed ok requests only: time to first token, to first visible output, per output token.
    pub ttft_ms: Option<Distribution>,
    pub ttfo_ms: Option<Distribution>,
    pub tpot_ms: Option<Distribution>,
    /// Inter-token latency: gaps between consecutive text chunks, each divided by the tokens its
    /// request's chunks carried, pooled over streamed ok requests.
    pub itl_ms: Option<Distribution>,
    /// The gaps between consecutive text chunks (SSE events) as they arrived: per event.
    #[serde(default)]
    pub chunk_gap_ms: Option<Distribution>,
    /// Set-up times of the connections requests opened (DNS, TCP, proxy tunnel, TLS): apart
    /// from TTFT, which counts from the send and so holds them for those requests.
    #[serde(default)]
    pub connect_ms: Option<Distribution>,
    /// Per ok request: output tokens / latency.
    pub output_tokens_per_s: Option<Distribution>,
    /// Output tokens per text chunk over streamed ok requests.
    pub tokens_per_chunk: Option<f64>,
    /// Input and output tokens per ok request, as the server reported them (or counted locally
    /// when it did not): the lengths the workload really had.
    #[serde(default)]
    pub input_length: Option<TokenLengths>,
    #[serde(default)]
    pub output_length: Option<TokenLengths>,
    pub cost: CostSummary,
    /// `--resume`: lines whose earlier record stood (not sent again). Counts, tokens, cost and
    /// percentiles cover the whole workload; rates and ITL cover this session.
    pub resumed_kept: Option<u64>,
    /// SIGINT or SIGTERM stopped the run: unsent lines and abandoned requests are `cancelled`.
    pub interrupted: bool,
    /// The run stopped because its first attempts all failed the same way (`--give-up-after`):
    /// what to check. Unsent lines are `cancelled` (`error.kind` `gave_up`).
    #[serde(default)]
    pub gave_up: Option<String>,
    /// Why the step ended before its planned end (over-saturated, or a search probe decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<super::StoppedEarly>,
    /// An open loop offered more than the server completed, with the evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<super::Saturation>,
    /// `llmvolley batch`: its parts, their batches' endings, and the cost against live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<ViaBatch>,
    /// `--scrape`: the server's own figures over the run, beside the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::scrape::ServerSummary>,
    /// `run`: the command line that sends the lines not sent (this one, with `--out DIR --resume`;
    /// secret header values redacted). Null when every line was sent.
    #[serde(default)]
    pub resume_command: Option<String>,
    /// `bench --warmup`: requests sent before the measurement, left out of every figure above.
    #[serde(default)]
    pub warmup_requests: u64,
    /// `bench --slo`: share of measured requests meeting each objective, and goodput.
    #[serde(default)]
    pub slo: Option<super::SloSummary>,
    /// Function calls of ok answers and their validity (zeros when no answer made a call, so
    /// `--fail-on tool_calls.faults.schema>0` judges every run).
    #[serde(default)]
    pub tool_calls: Option<ToolCallSummary>,
    /// Conversations: requests by turn index (turn 1 against later turns shows what a prefix
    /// cache does), and per-conversation totals. Empty and null without conversations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<TurnRow>,
    #[serde(default)]
    pub conversations: Option<ConversationSummary>,
    /// `--fail-on`: each threshold's verdict; any failed one makes the exit code 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<super::gate::Verdict>,
    /// `bench`: the load profile, the rate it achieved and the client's self-check.
    #[serde(default)]
    pub load: Option<LoadSummary>,
    /// Time between attempts of retried requests (retry back-off and server-requested waits).
    #[serde(default)]
    pub retry_wait_ms: Option<Distribution>,
    /// Sends repeated at once on a new connection after a pooled one was found closed.
    #[serde(default)]
    pub reconnects: u64,
    /// Answers by flag (`buffered`, `not_streamed`, `compressed`, `non_finite_numbers`,
    /// `empty_completed`): every flag is present, 0 when none, so a gate on one judges any run.
    #[serde(default)]
    pub flags: BTreeMap<String, u64>,
    /// Ok answers cut short: `total`, and by reason (`max_output_tokens`, `content_filter`,
    /// Chat's `length`, any other the server named); these keys are always present, so a gate
    /// such as `--fail-on incomplete.total>0` judges any run.
    #[serde(default)]
    pub incomplete: BTreeMap<String, u64>,
    /// How the server slowed the client down (pauses, an announced limit, lowered concurrency).
    #[serde(default)]
    pub server_pacing: Option<ServerPacing>,
    /// What makes a figure above doubtful (e.g. a server reporting zero tokens).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Unix time (µs) of the instant the records' offsets (`scheduled_at`, `sent_at`, …) count from.
    #[serde(default)]
    pub epoch_unix_us: Option<u64>,
}

/// The steady state of a timed load's measured phase (first send to its `--duration` deadline):
/// every ok request counts for the share of its own lifetime (send to answer) inside the window,
/// so the ramp-up (nothing done yet) and the drain (answers after the deadline) bias nothing. A
/// closed loop of 5 slots on a server answering in 2 s shows 2.5 req/s whatever the duration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SteadyState {
    pub window_s: f64,
    pub requests_per_s: f64,
    pub output_tokens_per_s: f64,
    pub total_tokens_per_s: f64,
    /// Ok answers that came after the deadline: in the totals, in no rate of the window.
    pub answers_after_window: u64,
}

/// How the server made the client slow down: every wait it asked for went through one policy,
/// capped at `--max-server-wait`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerPacing {
    /// Run-wide pauses (after a 429, or an exhausted `x-ratelimit-remaining-*`) and their length.
    pub pauses: u64,
    pub paused_s: f64,
    /// The longest server-requested wait obeyed (a pause or a retry wait), and where it came from.
    pub longest_wait_s: Option<f64>,
    pub longest_wait_source: Option<String>,
    /// Waits the server asked for beyond `--max-server-wait`, shortened to it.
    pub capped_waits: u64,
    pub max_server_wait_s: f64,
    /// `x-ratelimit-limit-requests` (per minute) and the rate the run then paced itself to.
    pub announced_requests_per_min: Option<u64>,
    pub paced_to_requests_per_min: Option<f64>,
    /// The lowest concurrency 429s brought the run to (AIMD), and `-c`.
    pub lowest_concurrency: Option<usize>,
    pub concurrency: usize,
}

/// How `bench` drove the server, and whether the client kept up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadSummary {
    pub profile: crate::modes::Profile,
    /// Target arrival rate (constant and Poisson profiles, sweep rate steps).
    pub rate_per_s: Option<f64>,
    /// Requests in flight at most: `-c`, or `--max-inflight` for open-loop and throughput profiles.
    pub max_in_flight: usize,
    pub drop_when_full: bool,
    /// Measured requests sent, and their rate: (sent − 1) / (last send − first send).
    pub sent: u64,
    pub achieved_rate_per_s: Option<f64>,
    /// Arrivals recorded as `dropped` (`--drop-when-full`).
    pub dropped: u64,
    /// Open loop: how late the dispatcher handled each arrival after it was due (its timer's lag).
    pub scheduler_lag_ms: Option<Distribution>,
    pub client: ClientCheck,
}

/// An error kind, how often it ended a record, and the first message seen of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopError {
    pub kind: String,
    pub count: u64,
    pub example: String,
}

impl TopError {
    const SHOWN: usize = 5;

    fn of(stats: &RunStats) -> Vec<TopError> {
        let mut top: Vec<TopError> = stats
            .errors_by_kind
            .iter()
            .map(|(kind, count)| TopError {
                kind: kind.clone(),
                count: *count,
                example: stats.error_examples.get(kind).cloned().unwrap_or_default(),
            })
            .collect();
        // Most frequent first; the kind's name breaks ties, so the order is stable.
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
        top.truncate(Self::SHOWN);
        top
    }
}

/// The client's own load: if it was the bottleneck, the figures describe it, not the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientCheck {
    /// CPU time of llmvolley (without the in-process mock's thread) / wall time: 1.0 = one core busy.
    pub cpu_cores_used: Option<f64>,
    pub cores_available: usize,
    /// Share of the machine's CPU time the hypervisor took during the run (Linux VMs): stalls that
    /// neither the client nor the server caused.
    #[serde(default)]
    pub steal_share: Option<f64>,
    /// Why the client may have been the bottleneck; empty when it was not.
    pub warnings: Vec<String>,
}
/// Dollars from the answers' usage: null totals when no record could be priced, never a silent zero.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CostSummary {
    pub total_usd: Option<f64>,
    pub per_1k_requests_usd: Option<f64>,
    pub priced_requests: u64,
    /// Requests with usage whose model has no price.
    pub unpriced_models: Vec<String>,
    pub by_model: BTreeMap<String, super::ModelTotals>,
    /// `--max-cost`, and whether it stopped the run (unsent lines are `skipped_budget`).
    pub budget_usd: Option<f64>,
    pub budget_stopped: bool,
    /// A resumed run: what this session spent (`total_usd` covers the records kept for the whole
    /// workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_usd: Option<f64>,
    /// A resumed run: what every session of the job spent, records that compaction dropped
    /// (earlier attempts of lines sent again) included: what `--max-cost` is held to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_spent_usd: Option<f64>,
}

/// Checked structured answers, in all and per model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StructuredSummary {
    pub checked: u64,
    pub valid_answers: u64,
    /// valid_answers / checked (0–1).
    pub valid: f64,
    /// Answers with each problem (`invalid_json`, `schema`, `refusal`, `truncated`).
    pub by_problem: BTreeMap<String, u64>,
    pub by_model: BTreeMap<String, crate::stats::StructuredCounts>,
}

impl StructuredSummary {
    fn of(stats: &RunStats) -> Option<StructuredSummary> {
        let mut all = crate::stats::StructuredCounts::default();
        for counts in stats.structured.values() {
            all.checked += counts.checked;
            all.valid += counts.valid;
            for (problem, n) in &counts.by_problem {
                *all.by_problem.entry(problem.clone()).or_default() += n;
            }
        }
        (all.checked > 0).then(|| StructuredSummary {
            checked: all.checked,
            valid_answers: all.valid,
            valid: all.valid as f64 / all.checked as f64,
            by_problem: all.by_problem,
            by_model: stats.structured.clone(),
        })
    }
}

/// What embeddings and moderations answers held (they generate no text: no output tokens).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemTotals {
    /// Ok answers with items, and the inputs they held.
    pub requests: u64,
    pub items: u64,
    pub items_per_s: Option<f64>,
    /// Moderations: answers flagging each category.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flagged_by_category: BTreeMap<String, u64>,
}

impl RequestCounts {
    /// Failed requests among those judged (ok + failed; lines not sent are neither), 0–1; None
    /// when none was judged.
    pub fn error_rate(&self) -> Option<f64> {
        let judged = self.ok + self.failed;
        (judged > 0).then(|| self.failed as f64 / judged as f64)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestCounts {
    pub total: u64,
    pub ok: u64,
    /// Sent (or unusable) and not ok: what the server, the network or the input failed.
    pub failed: u64,
    /// Lines this session did not send, which no one failed (`not_sent`, `skipped_budget`):
    /// `--resume` sends them.
    #[serde(default)]
    pub not_sent: u64,
    pub by_status: BTreeMap<String, u64>,
    pub by_http_status: BTreeMap<String, u64>,
}

/// Token sums over ok requests only. A figure no ok request reported is null ("unknown"), never 0.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenTotals {
    pub input: Option<u64>,
    pub cached: Option<u64>,
    pub output: Option<u64>,
    pub reasoning: Option<u64>,
    pub total: Option<u64>,
    pub output_per_s: Option<f64>,
    pub total_per_s: Option<f64>,
    /// Input tokens of ok requests per second of the window: an embeddings run's throughput.
    #[serde(default)]
    pub input_per_s: Option<f64>,
    /// ok requests whose input / output token count is unknown (no usage, nothing counted).
    pub input_unknown_requests: u64,
    pub output_unknown_requests: u64,
    /// ok requests whose output tokens were counted locally, those tokens (inside `output`), their
    /// share of the ok requests, and the tokenizers that counted them.
    pub estimated_output_requests: u64,
    pub estimated_output: u64,
    pub estimated_share: Option<f64>,
    pub tokenizers: Vec<String>,
    /// Output tokens failed requests received before failing, and how many such requests: in no
    /// figure above.
    pub failed_output: u64,
    pub failed_requests_with_output: u64,
}

/// Percentiles of one HdrHistogram, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Distribution {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Distribution {
    pub fn of(h: &ScaledHistogram) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let h = h.inner();
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(h.value_at_quantile(q));
        Some(Distribution {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            stdev: h.stdev() / 1000.0,
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            p99_9: at(0.999),
            max: ms(h.max()),
        })
    }
}

/// The requests of one turn index of the run's conversations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TurnRow {
    /// 1-based; the last row (`and_later`) holds that turn and every later one.
    pub turn: u32,
    pub and_later: bool,
    pub requests: u64,
    pub ok: u64,
    /// Input tokens an ok request of this turn carried, on average: the context's growth.
    pub input_tokens_mean: Option<f64>,
    pub latency_ms: Option<Distribution>,
    pub ttft_ms: Option<Distribution>,
}

/// Conversations that ended, and what one took.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConversationSummary {
    pub count: u64,
    /// Conversations whose every turn was ok.
    pub ok: u64,
    /// Turns (requests) per conversation, and wall time from its first send to its last answer.
    pub turns: Option<TokenLengths>,
    pub wall_ms: Option<Distribution>,
    /// Totals over the conversations, and per conversation on average.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub mean_input_tokens: f64,
    pub mean_output_tokens: f64,
    pub mean_cost_usd: f64,
}

impl ConversationSummary {
    fn of(c: &super::ConversationTally) -> Option<Self> {
        let n = c.count as f64;
        (c.count > 0).then(|| ConversationSummary {
            count: c.count,
            ok: c.ok,
            turns: TokenLengths::of(&c.turns),
            wall_ms: Distribution::of(&c.wall_ms),
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
            cost_usd: c.cost_usd,
            mean_input_tokens: c.input_tokens as f64 / n,
            mean_output_tokens: c.output_tokens as f64 / n,
            mean_cost_usd: c.cost_usd / n,
        })
    }
}

/// What the answers did with the tools they were offered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolCallSummary {
    /// Ok answers that made at least one function call, and the calls they made.
    pub answers_with_calls: u64,
    pub calls: u64,
    /// Faulty calls by fault: `invalid_json`, `schema`, `unknown_tool`, `duplicate` (a call can
    /// have more than one).
    pub faults: BTreeMap<String, u64>,
    /// Answers by how many calls they made in parallel (`"4": 40`).
    pub calls_per_answer: BTreeMap<u32, u64>,
    pub by_tool: Vec<ToolRow>,
}

/// One model's calls of one tool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolRow {
    pub model: String,
    pub tool: String,
    pub calls: u64,
    pub faults: BTreeMap<String, u64>,
}

impl ToolCallSummary {
    fn of(stats: &RunStats) -> Option<ToolCallSummary> {
        let faults_of = |counts: &[u64]| -> BTreeMap<String, u64> {
            crate::record::ToolCallFault::ALL
                .iter()
                .zip(counts)
                .map(|(fault, n)| (fault.as_str().to_string(), *n))
                .collect()
        };
        let mut totals = [0u64; crate::record::ToolCallFault::ALL.len()];
        let mut by_tool = Vec::new();
        for (model, tools) in &stats.tool_calls {
            for (tool, tally) in tools {
                for (total, n) in totals.iter_mut().zip(tally.faults) {
                    *total += n;
                }
                by_tool.push(ToolRow {
                    model: model.clone(),
                    tool: tool.clone(),
                    calls: tally.calls,
                    faults: faults_of(&tally.faults),
                });
            }
        }
        Some(ToolCallSummary {
            answers_with_calls: stats.calls_per_answer.values().sum(),
            calls: by_tool.iter().map(|r| r.calls).sum(),
            faults: faults_of(&totals),
            calls_per_answer: stats.calls_per_answer.clone(),
            by_tool,
        })
    }
}

/// A distribution of token counts (prompt or answer lengths), in whole tokens.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TokenLengths {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl TokenLengths {
    /// Every figure exact, from the counts of each length.
    pub fn of(counts: &super::LengthCounts) -> Option<Self> {
        let at = |q| counts.quantile(q).unwrap_or(0);
        Some(TokenLengths {
            count: counts.count(),
            min: *counts.0.keys().next()?,
            mean: counts.mean()?,
            stdev: counts.stdev()?,
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            p99_9: at(0.999),
            max: *counts.0.keys().next_back()?,
        })
    }
}

/// What makes the token figures doubtful: a server reporting zero tokens for real answers.
fn token_warnings(stats: &RunStats, ok: u64) -> Vec<String> {
    let mut warnings = Vec::new();
    if stats.zero_usage_ok > 0 {
        warnings.push(format!(
            "the server reported zero tokens (usage 0 in, 0 out) for {} of {ok} ok answers: their token figures and cost are not real",
            stats.zero_usage_ok
        ));
    }
    warnings
}

impl Summary {
    pub fn from_stats(stats: &RunStats, wall_time_s: f64, unpriced_models: Vec<String>) -> Self {
        let ok = stats.count(Status::Ok);
        let total = stats.total();
        let not_sent = Status::ALL
            .iter()
            .filter(|s| s.not_sent())
            .map(|s| stats.count(*s))
            .sum::<u64>();
        // A timed load's window ends at its deadline: answers after it are in the totals, not
        // the rates.
        let last_done = match (stats.last_done_ms, stats.window_end_ms) {
            (Some(last), Some(end)) => Some(last.min(end)),
            (last, _) => last,
        };
        let window_s = match (stats.first_sent_ms, last_done) {
            (Some(first), Some(last)) if last > first => (last - first) / 1000.0,
            _ => 0.0,
        };
        let after = stats.after_window;
        let per_s = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        let rate = |n: Option<u64>, apart: u64| n.map(|n| per_s(n.saturating_sub(apart)));
        let steady = match (stats.window_end_ms, stats.first_sent_ms) {
            (Some(end), Some(first)) if end > first => {
                let span_s = (end - first) / 1000.0;
                Some(SteadyState {
                    window_s: span_s,
                    requests_per_s: stats.steady.completions / span_s,
                    output_tokens_per_s: stats.steady.output_tokens / span_s,
                    total_tokens_per_s: stats.steady.total_tokens / span_s,
                    answers_after_window: after.ok,
                })
            }
            _ => None,
        };
        Summary {
            stopped_early: None,
            saturation: None,
            server: None,
            batch: None,
            schema_version: SUMMARY_SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            requests: RequestCounts {
                total,
                ok,
                failed: total - ok - not_sent,
                not_sent,
                by_status: Status::ALL
                    .iter()
                    .filter(|s| stats.count(**s) > 0)
                    .map(|s| (s.as_str().to_string(), stats.count(*s)))
                    .collect(),
                by_http_status: stats
                    .by_http_status
                    .iter()
                    .map(|(code, n)| (code.to_string(), *n))
                    .collect(),
            },
            errors_by_kind: stats.errors_by_kind.clone(),
            structured_output: StructuredSummary::of(stats),
            items: (stats.item_requests > 0).then(|| ItemTotals {
                requests: stats.item_requests,
                items: stats.items,
                items_per_s: (window_s > 0.0).then(|| per_s(stats.items)),
                flagged_by_category: stats.flagged.clone(),
            }),
            not_sent_by_reason: stats.not_sent_by_reason.clone(),
            top_errors: TopError::of(stats),
            retries: stats.retries,
            retried_errors_by_kind: stats.retried_errors_by_kind.clone(),
            wall_time_s,
            window_s,
            requests_per_s: per_s(ok - after.ok),
            steady_state: steady,
            tokens: TokenTotals {
                input: stats.input_tokens.value(),
                cached: stats.cached_tokens.value(),
                output: stats.output_tokens.value(),
                reasoning: stats.reasoning_tokens.value(),
                total: stats.total_tokens.value(),
                output_per_s: rate(stats.output_tokens.value(), after.output_tokens),
                total_per_s: rate(stats.total_tokens.value(), after.total_tokens),
                input_per_s: rate(
                    stats.input_tokens.value(),
                    after.total_tokens.saturating_sub(after.output_tokens),
                ),
                input_unknown_requests: ok - stats.input_tokens.requests,
                // Embeddings and moderations have no output tokens to know.
                output_unknown_requests: (ok - stats.output_tokens.requests)
                    .saturating_sub(stats.item_requests),
                estimated_output_requests: stats.estimated_output_requests,
                estimated_output: stats.estimated_output_tokens,
                estimated_share: (ok > 0 && stats.estimated_output_requests > 0)
                    .then(|| stats.estimated_output_requests as f64 / ok as f64),
                tokenizers: stats.tokenizers.iter().cloned().collect(),
                failed_output: stats.failed_output_tokens,
                failed_requests_with_output: stats.failed_with_output,
            },
            latency_ms: Distribution::of(&stats.latency),
            latency_from_schedule_ms: Distribution::of(&stats.latency_from_schedule),
            failed_latency_ms: Distribution::of(&stats.failed_latency),
            queue_ms: Distribution::of(&stats.queue),
            ttft_ms: Distribution::of(&stats.ttft),
            ttfo_ms: Distribution::of(&stats.ttfo),
            tpot_ms: Distribution::of(&stats.tpot),
            itl_ms: Distribution::of(&stats.itl),
            chunk_gap_ms: Distribution::of(&stats.chunk_gap),
            connect_ms: Distribution::of(&stats.connect),
            output_tokens_per_s: Distribution::of(&stats.output_tps),
            input_length: TokenLengths::of(&stats.input_length),
            output_length: TokenLengths::of(&stats.output_length),
            tokens_per_chunk: (stats.stream_chunks > 0)
                .then(|| stats.stream_output_tokens as f64 / stats.stream_chunks as f64),
            cost: CostSummary {
                total_usd: (stats.priced_requests > 0).then_some(stats.cost_usd),
                per_1k_requests_usd: (stats.priced_requests > 0)
                    .then(|| stats.cost_usd * 1000.0 / stats.priced_requests as f64),
                priced_requests: stats.priced_requests,
                unpriced_models,
                by_model: stats.by_model.clone(),
                budget_usd: None,
                budget_stopped: false,
                session_usd: None,
                job_spent_usd: None,
            },
            resumed_kept: None,
            interrupted: false,
            gave_up: None,
            resume_command: None,
            warmup_requests: stats.warmup,
            slo: stats.slo.as_ref().map(|tally| tally.summary(window_s)),
            tool_calls: ToolCallSummary::of(stats),
            turns: stats
                .by_turn
                .iter()
                .map(|(turn, t)| TurnRow {
                    turn: *turn,
                    and_later: *turn == super::LAST_TURN_ROW,
                    requests: t.requests,
                    ok: t.ok,
                    input_tokens_mean: t
                        .input_tokens
                        .value()
                        .map(|sum| sum as f64 / t.input_tokens.requests as f64),
                    latency_ms: Distribution::of(&t.latency),
                    ttft_ms: Distribution::of(&t.ttft),
                })
                .collect(),
            conversations: ConversationSummary::of(&stats.conversations),
            thresholds: Vec::new(),
            load: None,
            retry_wait_ms: Distribution::of(&stats.retry_wait),
            reconnects: stats.reconnects,
            flags: crate::record::Flag::ALL
                .iter()
                .map(|f| {
                    let name = f.name().to_string();
                    let n = stats.flags.get(&name).copied().unwrap_or(0);
                    (name, n)
                })
                .collect(),
            incomplete: {
                let mut by_reason: BTreeMap<String, u64> =
                    ["max_output_tokens", "content_filter", "length"]
                        .iter()
                        .map(|r| (r.to_string(), 0))
                        .collect();
                by_reason.extend(stats.incomplete.iter().map(|(r, n)| (r.clone(), *n)));
                by_reason.insert("total".into(), stats.incomplete.values().sum());
                by_reason
            },
            server_pacing: None,
            warnings: token_warnings(stats, ok),
            epoch_unix_us: None,
        }
    }
}
