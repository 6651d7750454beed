//! `summary.json` and the printed table: what a run did, from `RunStats`.

use super::{RunStats, ScaledHistogram};
use crate::record::Status;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Bumped whenever a field of `summary.json` changes meaning or goes away.
pub const SUMMARY_SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub schema_version: u32,
    pub tool_version: String,
    pub requests: RequestCounts,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Attempts after the first, and the errors of the attempts that were retried, by kind.
    pub retries: u64,
    pub retried_errors_by_kind: BTreeMap<String, u64>,
    /// From the first request dispatched to the last record written.
    pub wall_time_s: f64,
    /// From the first send to the last completion: the denominator of every rate.
    pub window_s: f64,
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
    /// Gaps between consecutive text chunks, pooled over streamed ok requests.
    pub itl_ms: Option<Distribution>,
    /// Per ok request: output tokens / latency.
    pub output_tokens_per_s: Option<Distribution>,
    /// Output tokens per text chunk over streamed ok requests.
    pub tokens_per_chunk: Option<f64>,
    pub cost: CostSummary,
    /// `--resume`: lines whose earlier record stood (not sent again). Counts, tokens, cost and
    /// percentiles cover the whole workload; rates and ITL cover this session.
    pub resumed_kept: Option<u64>,
    /// SIGINT or SIGTERM stopped the run: unsent lines and abandoned requests are `cancelled`.
    pub interrupted: bool,
    /// `bench --warmup`: requests sent before the measurement, left out of every figure above.
    #[serde(default)]
    pub warmup_requests: u64,
    /// `bench --slo`: share of measured requests meeting each objective, and goodput.
    #[serde(default)]
    pub slo: Option<super::SloSummary>,
    /// `bench`: the load profile, the rate it achieved and the client's self-check.
    #[serde(default)]
    pub load: Option<LoadSummary>,
    /// Time between attempts of retried requests (retry back-off and server-requested waits).
    #[serde(default)]
    pub retry_wait_ms: Option<Distribution>,
    /// Sends repeated at once on a new connection after a pooled one was found closed.
    #[serde(default)]
    pub reconnects: u64,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestCounts {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
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

/// A token figure as printed: the number, or "unknown".
fn known(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

fn known_rate(n: Option<f64>) -> String {
    n.map_or_else(|| "unknown".to_string(), |n| format!("{n:.1}"))
}

impl Summary {
    pub fn from_stats(stats: &RunStats, wall_time_s: f64, unpriced_models: Vec<String>) -> Self {
        let ok = stats.count(Status::Ok);
        let total = stats.total();
        let window_s = match (stats.first_sent_ms, stats.last_done_ms) {
            (Some(first), Some(last)) if last > first => (last - first) / 1000.0,
            _ => 0.0,
        };
        let per_s = |n: u64| {
            if window_s > 0.0 {
                n as f64 / window_s
            } else {
                0.0
            }
        };
        let rate = |n: Option<u64>| n.map(per_s);
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            requests: RequestCounts {
                total,
                ok,
                failed: total - ok,
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
            retries: stats.retries,
            retried_errors_by_kind: stats.retried_errors_by_kind.clone(),
            wall_time_s,
            window_s,
            requests_per_s: per_s(ok),
            tokens: TokenTotals {
                input: stats.input_tokens.value(),
                cached: stats.cached_tokens.value(),
                output: stats.output_tokens.value(),
                reasoning: stats.reasoning_tokens.value(),
                total: stats.total_tokens.value(),
                output_per_s: rate(stats.output_tokens.value()),
                total_per_s: rate(stats.total_tokens.value()),
                input_unknown_requests: ok - stats.input_tokens.requests,
                output_unknown_requests: ok - stats.output_tokens.requests,
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
            output_tokens_per_s: Distribution::of(&stats.output_tps),
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
            },
            resumed_kept: None,
            interrupted: false,
            warmup_requests: stats.warmup,
            slo: stats.slo.as_ref().map(|tally| tally.summary(window_s)),
            load: None,
            retry_wait_ms: Distribution::of(&stats.retry_wait),
            reconnects: stats.reconnects,
            server_pacing: None,
            warnings: token_warnings(stats, ok),
            epoch_unix_us: None,
        }
    }

    /// The aligned table printed at the end of a run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = &self.requests;
        let statuses = r
            .by_status
            .iter()
            .filter(|(s, _)| s.as_str() != "ok")
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            out,
            "{:<13}{} total, {} ok, {} failed",
            "requests", r.total, r.ok, r.failed
        );
        if !statuses.is_empty() {
            let _ = write!(out, " ({statuses})");
        }
        out.push('\n');
        for (label, counts) in [
            ("http status", &r.by_http_status),
            ("errors", &self.errors_by_kind),
            ("retried", &self.retried_errors_by_kind),
        ] {
            if !counts.is_empty() {
                let listed = counts
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(out, "{label:<13}{listed}");
            }
        }
        let _ = writeln!(
            out,
            "{:<13}{:.2} s wall, {:.2} s sending; {:.1} ok req/s",
            "time", self.wall_time_s, self.window_s, self.requests_per_s
        );
        let t = &self.tokens;
        let _ = writeln!(
            out,
            "{:<13}input {} (cached {}), output {} (reasoning {}), total {}; {} output tok/s, {} total tok/s (ok requests)",
            "tokens",
            known(t.input),
            known(t.cached),
            known(t.output),
            known(t.reasoning),
            known(t.total),
            known_rate(t.output_per_s),
            known_rate(t.total_per_s)
        );
        let mut unknown = Vec::new();
        if t.input_unknown_requests > 0 && t.input.is_some() {
            unknown.push(format!(
                "input unknown for {} ok requests",
                t.input_unknown_requests
            ));
        }
        if t.output_unknown_requests > 0 && t.output.is_some() {
            unknown.push(format!(
                "output unknown for {} ok requests",
                t.output_unknown_requests
            ));
        }
        if !unknown.is_empty() {
            let _ = writeln!(
                out,
                "{:<13}{} (sums cover the rest)",
                "",
                unknown.join(", ")
            );
        }
        if let Some(share) = t.estimated_share {
            let _ = writeln!(
                out,
                "{:<13}output tokens of {} ok requests ({:.0}%) are local estimates ({}), not server counts; so are their TPOT and tok/s",
                "estimated",
                t.estimated_output_requests,
                share * 100.0,
                t.tokenizers.join(", ")
            );
        }
        if t.failed_requests_with_output > 0 {
            let _ = writeln!(
                out,
                "{:<13}{} output tokens received by {} failed requests, in no figure above",
                "partial", t.failed_output, t.failed_requests_with_output
            );
        }
        if let Some(total) = self.cost.total_usd {
            let per_1k = self.cost.per_1k_requests_usd.unwrap_or(0.0);
            let models = self
                .cost
                .by_model
                .iter()
                .map(|(model, t)| match t.cost_usd {
                    Some(cost) => format!("{model} ${cost:.4}"),
                    None => format!("{model} (no price)"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "{:<13}${total:.4} for {} priced requests (${per_1k:.4} per 1,000): {models}",
                "cost", self.cost.priced_requests
            );
        } else if !self.cost.unpriced_models.is_empty() {
            let _ = writeln!(
                out,
                "{:<13}no price for {}",
                "cost",
                self.cost.unpriced_models.join(", ")
            );
        }
        if let (true, Some(limit)) = (self.cost.budget_stopped, self.cost.budget_usd) {
            let skipped = self
                .requests
                .by_status
                .get("skipped_budget")
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "{:<13}--max-cost ${limit} stopped the run: {skipped} lines not sent (skipped_budget)",
                "budget"
            );
        }
        if self.interrupted {
            let _ = writeln!(
                out,
                "{:<13}the run was interrupted: unsent lines are cancelled (--resume sends them)",
                "interrupted"
            );
        }
        if let Some(kept) = self.resumed_kept {
            let _ = writeln!(
                out,
                "{:<13}{kept} lines kept from earlier sessions; totals cover the whole workload",
                "resumed"
            );
        }
        if self.reconnects > 0 {
            let _ = writeln!(
                out,
                "{:<13}{} sends repeated on a new connection (the pooled one was closed by the server; not retries)",
                "reconnects", self.reconnects
            );
        }
        if let Some(pacing) = &self.server_pacing {
            render_pacing(&mut out, pacing);
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "{:<13}{warning}", "WARNING");
        }
        if self.warmup_requests > 0 {
            let _ = writeln!(
                out,
                "{:<13}{} warm-up requests sent first, left out of every figure",
                "warmup", self.warmup_requests
            );
        }
        if let Some(load) = &self.load {
            render_load(&mut out, load);
        }
        if let Some(slo) = &self.slo {
            render_slo(&mut out, slo);
        }
        if let Some(per_chunk) = self.tokens_per_chunk {
            let _ = writeln!(
                out,
                "{:<13}{per_chunk:.2} output tokens per chunk",
                "streaming"
            );
        }
        let from_schedule = if self.load.is_some() {
            &self.latency_from_schedule_ms
        } else {
            &None
        };
        let rows = [
            ("latency ms", &self.latency_ms),
            ("from sched ms", from_schedule),
            ("failed ms", &self.failed_latency_ms),
            ("queue ms", &self.queue_ms),
            ("retry wait ms", &self.retry_wait_ms),
            ("ttft ms", &self.ttft_ms),
            ("ttfo ms", &self.ttfo_ms),
            ("tpot ms", &self.tpot_ms),
            ("itl ms", &self.itl_ms),
            ("out tok/s", &self.output_tokens_per_s),
        ];
        if rows.iter().any(|(_, d)| d.is_some()) {
            out.push('\n');
            let _ = writeln!(
                out,
                "{:<13}{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "", "p50", "p90", "p95", "p99", "p99.9", "max", "mean", "stdev", "count"
            );
            for (name, d) in rows {
                if let Some(d) = d {
                    let _ = writeln!(
                        out,
                        "{name:<13}{:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                        d.p50, d.p90, d.p95, d.p99, d.p99_9, d.max, d.mean, d.stdev, d.count
                    );
                }
            }
        }
        out
    }
}

fn render_pacing(out: &mut String, p: &ServerPacing) {
    let mut parts = Vec::new();
    if p.pauses > 0 {
        parts.push(format!("{} pauses, {:.1} s in all", p.pauses, p.paused_s));
    }
    if let (Some(longest), Some(source)) = (p.longest_wait_s, &p.longest_wait_source) {
        parts.push(format!("longest wait {longest:.1} s ({source})"));
    }
    if p.capped_waits > 0 {
        parts.push(format!(
            "{} waits capped at {:.0} s (--max-server-wait)",
            p.capped_waits, p.max_server_wait_s
        ));
    }
    if let (Some(limit), Some(paced)) = (p.announced_requests_per_min, p.paced_to_requests_per_min)
    {
        parts.push(format!(
            "paced to {paced:.0} requests/min (the server announced {limit}/min in x-ratelimit-limit-requests)"
        ));
    }
    if let Some(lowest) = p.lowest_concurrency {
        parts.push(format!(
            "concurrency fell to {lowest} of {} after 429s",
            p.concurrency
        ));
    }
    let _ = writeln!(
        out,
        "{:<13}the server slowed this run: {}",
        "server",
        parts.join("; ")
    );
}

fn render_load(out: &mut String, load: &LoadSummary) {
    let target = load
        .rate_per_s
        .map(|r| format!(" at {r:.2} req/s"))
        .unwrap_or_default();
    let achieved = load
        .achieved_rate_per_s
        .map(|r| format!(", {r:.2} req/s achieved"))
        .unwrap_or_default();
    let full = if load.drop_when_full {
        format!("{} dropped when full", load.dropped)
    } else {
        "arrivals wait when full".to_string()
    };
    let _ = writeln!(
        out,
        "{:<13}{}{target}: {} sent{achieved}; at most {} in flight, {full}",
        "load",
        load.profile.as_str(),
        load.sent,
        load.max_in_flight
    );
    let cpu = load
        .client
        .cpu_cores_used
        .map(|c| format!("{:.0}% of a core", c * 100.0))
        .unwrap_or_else(|| "CPU not measured".to_string());
    let lag = load
        .scheduler_lag_ms
        .as_ref()
        .map(|d| {
            format!(
                "; scheduler lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                d.p50, d.p99, d.max
            )
        })
        .unwrap_or_default();
    let steal = load
        .client
        .steal_share
        .map(|s| format!(", {:.1}% stolen by the hypervisor", s * 100.0))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<13}{cpu} ({} cores{steal}){lag}",
        "client", load.client.cores_available
    );
    for warning in &load.client.warnings {
        let _ = writeln!(out, "{:<13}{warning}", "WARNING");
    }
}

fn render_slo(out: &mut String, slo: &super::SloSummary) {
    let mut parts = Vec::new();
    for (name, limit, share) in [
        ("ttft", slo.ttft_ms, slo.share_ttft),
        ("tpot", slo.tpot_ms, slo.share_tpot),
        ("e2e", slo.e2e_ms, slo.share_e2e),
    ] {
        if let (Some(limit), Some(share)) = (limit, share) {
            parts.push(format!("{name} <= {limit} ms {:.1}%", share * 100.0));
        }
    }
    let _ = writeln!(
        out,
        "{:<13}{}; all {:.1}% ({} of {}): goodput {:.2} req/s",
        "slo",
        parts.join(", "),
        slo.share_all * 100.0,
        slo.meeting_all,
        slo.requests,
        slo.goodput_per_s
    );
}
