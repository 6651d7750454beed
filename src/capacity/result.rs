//! A finished search as `search.json` holds it: the answer, its line, every probe with its
//! objectives' figures and intervals; what `report` draws and `compare` compares.

use super::{Answer, Judged, Outcome, SearchOver};
use crate::stats::gate::Verdict;
use serde::{Deserialize, Serialize};

/// `search.json`: the answer, then every probe in the order run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResult {
    pub over: SearchOver,
    /// The objectives every probe was judged against, as one line.
    pub objectives: String,
    pub precision: f64,
    /// Of each objective's bootstrap interval.
    pub confidence: f64,
    pub answer: Answer,
    /// Goodput (requests meeting every per-request SLO per second) at the answer, when `--slo`
    /// gave per-request limits; else the answer's ok requests per second.
    pub goodput_per_s: Option<f64>,
    /// Why the search ended before its answer was resolved (`--max-duration`, `--max-cost`, an
    /// interrupt, a dead endpoint).
    pub stopped: Option<String>,
    /// The answer in one line, as printed first.
    pub line: String,
    pub wall_time_s: f64,
    pub probes: Vec<Probe>,
    /// `--fail-on` gates on the answer (`search.max_rate<30/s`).
    pub thresholds: Vec<Verdict>,
}

/// One probe: a step folder, its load and its judgement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub step: usize,
    pub folder: String,
    /// The rate offered (req/s), or the concurrency.
    pub load: f64,
    pub requests_per_s: f64,
    pub requests: u64,
    /// How long the probe ran (its spans, extensions included), in seconds.
    pub duration_s: f64,
    pub outcome: Outcome,
    /// Still inconclusive after its last extension: judged on its figures alone.
    pub inconclusive: bool,
    /// Stopped by an interrupt, the budget or a dead endpoint before it was judged: its outcome
    /// is `inconclusive` and the search did not use it.
    #[serde(default)]
    pub cut_short: bool,
    /// Extensions run (0: decided after its first span).
    pub extensions: u32,
    /// Over-saturated (the evidence is in the step's summary).
    pub saturated: bool,
    pub goodput_per_s: Option<f64>,
    pub objectives: Vec<Judged>,
}

impl SearchResult {
    /// The unit of the load searched.
    pub fn unit(&self) -> &'static str {
        match self.over {
            SearchOver::Rate => "req/s",
            SearchOver::Concurrency => "in flight",
        }
    }

    /// "max rate meeting ttft.p99 ≤ 500 ms: 32.5 req/s (passes at 32.5, fails at 34.0; goodput
    /// 32.1/s)", or what is known when that is not.
    pub fn answer_line(&self) -> String {
        let what = match self.over {
            SearchOver::Rate => "max rate",
            SearchOver::Concurrency => "max concurrency",
        };
        let unit = self.unit();
        let n = |v: f64| match self.over {
            SearchOver::Rate => format!("{v:.2}"),
            SearchOver::Concurrency => format!("{v:.0}"),
        };
        let goodput = self
            .goodput_per_s
            .map(|g| format!("; goodput {g:.2}/s"))
            .unwrap_or_default();
        let head = format!("{what} meeting {}", self.objectives);
        match (self.answer.max, self.answer.fails_at, self.answer.resolved) {
            (Some(max), Some(fail), true) => format!(
                "{head}: {} {unit} (passes at {}, fails at {}{goodput})",
                n(max),
                n(max),
                n(fail)
            ),
            (Some(max), None, true) => format!(
                "{head}: at least {} {unit}, the highest probed (no probe failed{goodput})",
                n(max)
            ),
            (Some(max), None, false) => format!(
                "{head}: at least {} {unit}; not yet shown to fail ({}{goodput})",
                n(max),
                self.stopped.as_deref().unwrap_or("stopped")
            ),
            (Some(max), Some(fail), false) => format!(
                "{head}: between {} and {} {unit}, not yet within {:.0}% ({}{goodput})",
                n(max),
                n(fail),
                self.precision * 100.0,
                self.stopped.as_deref().unwrap_or("stopped")
            ),
            (None, Some(fail), _) => format!(
                "{head}: none; every load probed failed, the lowest {} {unit}",
                n(fail)
            ),
            (None, None, _) => format!(
                "{head}: unknown; no probe was judged ({})",
                self.stopped.as_deref().unwrap_or("stopped")
            ),
        }
    }
}
