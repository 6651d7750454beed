//! Run comparison (`llmvolley compare`): each headline figure of two sides (one or several run
//! folders each), the change, and whether it is larger than the noise, judged by a bootstrap over
//! the per-request records (and over the runs, when a side has several).
//!
//! Method, per row: `resamples` times, each side's figure is recomputed from a resample of its data,
//! and the relative change (new − base) / base is taken; the central `confidence` share of those
//! changes is the interval. When it excludes 0 the change is real at that confidence: *better* or
//! *worse* by the row's direction; else *within noise*. Resampling by row:
//! - a percentile: the bootstrap percentile drawn exactly in O(1) from the sorted sample (the k-th
//!   smallest of n values resampled with replacement is the value at the k-th order statistic of n
//!   uniforms, a Beta(k, n − k + 1) draw; Efron & Tibshirani, *An Introduction to the Bootstrap*);
//! - the error rate: failed requests drawn Binomial(n, p);
//! - ok req/s and output tok/s: the run's rate scaled by a resample of its per-second completions
//!   (first and last second left out: they are partial);
//! - cost per 1k requests: the mean cost per priced request, by the central limit theorem.
//!
//! With several runs per side, each resample first draws that many runs with replacement, then
//! resamples each drawn run: the interval then holds the run-to-run spread too.

pub mod search;

use crate::stats::bootstrap::{self, rank};
use crate::stats::gate::percent_label;
use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// A figure `compare` can put in a row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    RequestsPerS,
    OutputTokensPerS,
    /// A percentile (0–1) of a per-request time.
    Percentile(Time, f64),
    ErrorRate,
    CostPer1k,
}

/// A per-request time, by its record field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Time {
    Latency,
    LatencyFromSchedule,
    Queue,
    Ttft,
    Ttfo,
    Tpot,
}

impl Time {
    fn name(self) -> &'static str {
        match self {
            Time::Latency => "latency",
            Time::LatencyFromSchedule => "latency_from_schedule",
            Time::Queue => "queue",
            Time::Ttft => "ttft",
            Time::Ttfo => "ttfo",
            Time::Tpot => "tpot",
        }
    }
}

impl Figure {
    /// The default rows: the headline figures.
    pub fn headline() -> Vec<Figure> {
        let mut rows = vec![Figure::RequestsPerS, Figure::OutputTokensPerS];
        for time in [Time::Latency, Time::Ttft, Time::Tpot] {
            for q in [0.5, 0.9, 0.99] {
                rows.push(Figure::Percentile(time, q));
            }
        }
        rows.extend([Figure::ErrorRate, Figure::CostPer1k]);
        rows
    }

    /// `requests_per_s`, `output_tokens_per_s`, `latency.p99` (any percentile of latency,
    /// latency_from_schedule, queue, ttft, ttfo, tpot), `error_rate`, `cost_per_1k`.
    pub fn parse(text: &str) -> Result<Figure, String> {
        use crate::stats::Histo;
        use crate::stats::gate::{Metric, Stat};
        let time = |h: Histo| match h {
            Histo::Latency => Some(Time::Latency),
            Histo::LatencyFromSchedule => Some(Time::LatencyFromSchedule),
            Histo::Queue => Some(Time::Queue),
            Histo::Ttft => Some(Time::Ttft),
            Histo::Ttfo => Some(Time::Ttfo),
            Histo::Tpot => Some(Time::Tpot),
            _ => None,
        };
        let figure = match Metric::parse(text).unwrap_or(Metric::Path(String::new())) {
            Metric::RequestsPerS => Some(Figure::RequestsPerS),
            Metric::OutputTokensPerS => Some(Figure::OutputTokensPerS),
            Metric::ErrorRate => Some(Figure::ErrorRate),
            Metric::CostPer1k => Some(Figure::CostPer1k),
            Metric::Histogram(h, Stat::Quantile(q)) => time(h).map(|t| Figure::Percentile(t, q)),
            _ => None,
        };
        figure.ok_or_else(|| {
            format!(
                "{text:?}: compare takes requests_per_s, output_tokens_per_s, error_rate, cost_per_1k and percentiles of latency, latency_from_schedule, queue, ttft, ttfo and tpot (e.g. ttft.p99)"
            )
        })
    }

    /// The row's name as printed: `ttft p99 ms`.
    pub fn label(self) -> String {
        match self {
            Figure::RequestsPerS => "ok req/s".into(),
            Figure::OutputTokensPerS => "output tok/s".into(),
            Figure::Percentile(time, q) => format!("{} p{} ms", time.name(), percent_label(q)),
            Figure::ErrorRate => "error rate %".into(),
            Figure::CostPer1k => "cost per 1k $".into(),
        }
    }

    /// The row's name in `--json` and `--metric`: `ttft.p99`.
    pub fn key(self) -> String {
        match self {
            Figure::RequestsPerS => "requests_per_s".into(),
            Figure::OutputTokensPerS => "output_tokens_per_s".into(),
            Figure::Percentile(time, q) => format!("{}.p{}", time.name(), percent_label(q)),
            Figure::ErrorRate => "error_rate".into(),
            Figure::CostPer1k => "cost_per_1k".into(),
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Figure::RequestsPerS | Figure::OutputTokensPerS)
    }
}

/// What one run folder holds for a comparison.
#[derive(Debug, Clone, Default)]
pub struct RunSample {
    pub dir: PathBuf,
    /// Measured ok requests' times, each sorted ascending (ms).
    times: BTreeMap<&'static str, Vec<f64>>,
    /// Measured requests (warm-up left out), and those not ok (dropped included).
    pub requests: u64,
    failed: u64,
    /// ok completions and their output tokens per whole second of the run (partial ends left out).
    ok_per_second: Vec<f64>,
    tokens_per_second: Vec<f64>,
    requests_per_s: Option<f64>,
    output_tokens_per_s: Option<f64>,
    /// Cost of priced requests: count, sum, sum of squares.
    cost: (u64, f64, f64),
    /// ok requests, and the sum and sum of squares of their output tokens (for short runs' noise).
    ok: u64,
    tokens: (f64, f64),
    /// How the run was made (`run.json`, and the models its records name), by `SETTINGS` name.
    settings: BTreeMap<&'static str, String>,
}

/// The settings that change what a run measures: sides that differ in one compare its effect
/// mixed with the change under test, so the comparison says so.
const SETTINGS: [&str; 7] = [
    "endpoint",
    "api",
    "profile",
    "concurrency",
    "rate_per_s",
    "stream",
    "command",
];

/// A setting whose values differ between the sides (each side's distinct values, joined by `|`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingDifference {
    pub setting: String,
    pub base: String,
    pub new: String,
}

/// The fields of a record a comparison reads.
#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    warmup: bool,
    status: String,
    #[serde(default)]
    model: Option<String>,
    sent_at: Option<f64>,
    latency_ms: Option<f64>,
    latency_from_schedule_ms: Option<f64>,
    queue_ms: Option<f64>,
    ttft_ms: Option<f64>,
    ttfo_ms: Option<f64>,
    tpot_ms: Option<f64>,
    output_tokens: Option<u64>,
    cost_usd: Option<f64>,
}

impl RunSample {
    /// Reads `dir/records.jsonl` (and the rates of `dir/summary.json`). Errors name the file and
    /// line; a folder without records (a sweep's top folder) says where its runs are.
    pub fn read(dir: &Path) -> anyhow::Result<RunSample> {
        let path = dir.join(crate::run_folder::RECORDS_JSONL);
        if !path.is_file() {
            if dir.join("steps").is_dir() {
                bail!(
                    "{} is a sweep: compare its steps, e.g. {}",
                    dir.display(),
                    dir.join("steps/02-throughput").display()
                );
            }
            bail!(
                "{} has no records.jsonl: is it a run folder?",
                dir.display()
            );
        }
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut sample = RunSample {
            dir: dir.to_path_buf(),
            ..RunSample::default()
        };
        let mut times: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        let mut models = std::collections::BTreeSet::new();
        let mut seconds: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let row: Row = serde_json::from_str(&line).with_context(|| {
                format!("{}:{}: not a record of llmvolley", path.display(), i + 1)
            })?;
            // Warm-up, and lines not sent (a limit, an interrupt): not measured requests.
            if row.warmup || matches!(row.status.as_str(), "not_sent" | "skipped_budget") {
                continue;
            }
            if let Some(model) = &row.model {
                models.insert(model.clone());
            }
            sample.requests += 1;
            if row.status != "ok" {
                sample.failed += 1;
                continue;
            }
            for (time, value) in [
                (Time::Latency, row.latency_ms),
                (Time::LatencyFromSchedule, row.latency_from_schedule_ms),
                (Time::Queue, row.queue_ms),
                (Time::Ttft, row.ttft_ms),
                (Time::Ttfo, row.ttfo_ms),
                (Time::Tpot, row.tpot_ms),
            ] {
                if let Some(v) = value.filter(|v| v.is_finite()) {
                    times.entry(time.name()).or_default().push(v);
                }
            }
            if let (Some(sent), Some(latency)) = (row.sent_at, row.latency_ms) {
                let second = seconds
                    .entry(((sent + latency) / 1000.0) as u64)
                    .or_default();
                second.0 += 1.0;
                second.1 += row.output_tokens.unwrap_or(0) as f64;
            }
            sample.ok += 1;
            if let Some(tokens) = row.output_tokens {
                sample.tokens.0 += tokens as f64;
                sample.tokens.1 += (tokens as f64) * (tokens as f64);
            }
            if let Some(cost) = row.cost_usd {
                sample.cost.0 += 1;
                sample.cost.1 += cost;
                sample.cost.2 += cost * cost;
            }
        }
        for values in times.values_mut() {
            values.sort_by(f64::total_cmp);
        }
        sample.times = times;
        sample.settings = run_settings(dir);
        if !models.is_empty() {
            sample
                .settings
                .insert("model", models.into_iter().collect::<Vec<_>>().join(", "));
        }
        // Every second between the first and the last (a second with no completion is a zero).
        if let (Some(first), Some(last)) = (
            seconds.keys().next().copied(),
            seconds.keys().next_back().copied(),
        ) && last > first + 1
        {
            for s in first + 1..last {
                let (ok, tokens) = seconds.get(&s).copied().unwrap_or_default();
                sample.ok_per_second.push(ok);
                sample.tokens_per_second.push(tokens);
            }
        }
        let summary: Option<serde_json::Value> =
            std::fs::read(dir.join(crate::run_folder::SUMMARY_JSON))
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if let Some(summary) = summary {
            sample.requests_per_s = summary["requests_per_s"].as_f64();
            sample.output_tokens_per_s = summary["tokens"]["output_per_s"].as_f64();
        }
        Ok(sample)
    }

    fn times(&self, time: Time) -> &[f64] {
        self.times.get(time.name()).map_or(&[], Vec::as_slice)
    }

    /// The figure as measured.
    fn value(&self, figure: Figure) -> Option<f64> {
        match figure {
            Figure::RequestsPerS => self.requests_per_s,
            Figure::OutputTokensPerS => self.output_tokens_per_s,
            Figure::Percentile(time, q) => {
                let v = self.times(time);
                (!v.is_empty()).then(|| v[rank(q, v.len()) - 1])
            }
            Figure::ErrorRate => {
                (self.requests > 0).then(|| self.failed as f64 / self.requests as f64 * 100.0)
            }
            Figure::CostPer1k => {
                (self.cost.0 > 0).then(|| self.cost.1 / self.cost.0 as f64 * 1000.0)
            }
        }
    }

    /// The figure recomputed from one resample of this run's data.
    fn resampled(&self, figure: Figure, rng: &mut impl rand::Rng) -> Option<f64> {
        let value = self.value(figure)?;
        Some(match figure {
            Figure::RequestsPerS | Figure::OutputTokensPerS => {
                let per_second = if figure == Figure::RequestsPerS {
                    &self.ok_per_second
                } else {
                    &self.tokens_per_second
                };
                let mean = per_second.iter().sum::<f64>() / per_second.len().max(1) as f64;
                if per_second.len() < 3 || mean <= 0.0 {
                    // Too short to see its own spread second by second: the requests' own noise,
                    // their count as Poisson and, for tokens, each request's size too.
                    let relative = if figure == Figure::RequestsPerS {
                        1.0 / (self.ok.max(1) as f64).sqrt()
                    } else if self.tokens.0 > 0.0 {
                        self.tokens.1.sqrt() / self.tokens.0
                    } else {
                        0.0
                    };
                    let z: f64 = StandardNormal.sample(rng);
                    value * (1.0 + z * relative)
                } else {
                    let resampled = (0..per_second.len())
                        .map(|_| per_second[rng.random_range(0..per_second.len())])
                        .sum::<f64>()
                        / per_second.len() as f64;
                    value * resampled / mean
                }
            }
            Figure::Percentile(time, q) => {
                let v = self.times(time);
                v[bootstrap::percentile_index(q, v.len(), rng)]
            }
            Figure::ErrorRate => {
                let p = self.failed as f64 / self.requests as f64;
                let failed = Binomial::new(self.requests, p)
                    .map(|b| b.sample(rng))
                    .unwrap_or(self.failed);
                failed as f64 / self.requests as f64 * 100.0
            }
            Figure::CostPer1k => {
                let (n, sum, squares) = self.cost;
                let mean = sum / n as f64;
                let variance = (squares / n as f64 - mean * mean).max(0.0);
                let z: f64 = StandardNormal.sample(rng);
                (mean + z * (variance / n as f64).sqrt()) * 1000.0
            }
        })
    }
}

/// One side of a comparison: one run folder, or several repeats of the same set-up.
#[derive(Debug, Clone)]
pub struct Side {
    pub runs: Vec<RunSample>,
}

impl Side {
    pub fn read(dirs: &[PathBuf]) -> anyhow::Result<Side> {
        Ok(Side {
            runs: dirs
                .iter()
                .map(|d| RunSample::read(d))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    /// The mean over the runs holding the figure.
    fn value(&self, figure: Figure) -> Option<f64> {
        mean(self.runs.iter().filter_map(|r| r.value(figure)))
    }

    fn resampled(&self, figure: Figure, rng: &mut impl rand::Rng) -> Option<f64> {
        let runs: Vec<&RunSample> = self
            .runs
            .iter()
            .filter(|r| r.value(figure).is_some())
            .collect();
        if runs.len() < 2 {
            return runs.first()?.resampled(figure, rng);
        }
        mean(
            (0..runs.len())
                .filter_map(|_| runs[rng.random_range(0..runs.len())].resampled(figure, rng)),
        )
    }

    fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = values.fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    (n > 0).then(|| sum / n as f64)
}

/// How a row's change reads against the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    WithinNoise,
    /// The change is smaller than the figure's resolution (one request's worth of a rate or an
    /// error rate) or than the practical threshold (`--min-change`): whatever the interval says.
    NoChange,
    /// A side has no data for the row (e.g. TTFT of runs that did not stream).
    NoData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::WithinNoise => "within noise",
            Verdict::NoChange => "no change",
            Verdict::NoData => "no data",
        }
    }
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ComparedRow {
    pub metric: String,
    pub label: String,
    pub higher_is_better: bool,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// (new − base) / base, in percent; for the error rate, new − base in percentage points
    /// (`change_unit` says which). None when the base is 0.
    pub change_pct: Option<f64>,
    /// `%`, or `pts` for the error rate.
    pub change_unit: &'static str,
    /// The `confidence` interval of the change, in percent.
    pub interval_pct: Option<(f64, f64)>,
    pub verdict: Verdict,
    /// Why the verdict is what it is when the interval alone does not say (too few requests).
    pub note: Option<String>,
}

/// The `SETTINGS` of `dir/run.json` (none when it is missing or unreadable: nothing to compare).
fn run_settings(dir: &Path) -> BTreeMap<&'static str, String> {
    let Ok(text) = std::fs::read_to_string(dir.join(crate::run_folder::RUN_JSON)) else {
        return BTreeMap::new();
    };
    let Ok(run) = serde_json::from_str::<serde_json::Value>(&text) else {
        return BTreeMap::new();
    };
    SETTINGS
        .iter()
        .filter_map(|&name| {
            let value = match &run[name] {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // The mock is started on a new port each run: one endpoint.
            let value = if name == "endpoint" && run["mock"].is_object() {
                "the embedded mock".to_string()
            } else {
                value
            };
            Some((name, value))
        })
        .collect()
}

impl Side {
    /// This side's values of a setting: the distinct values of its runs, joined by `|`.
    fn setting(&self, name: &str) -> String {
        let values: std::collections::BTreeSet<&str> = self
            .runs
            .iter()
            .map(|r| r.settings.get(name).map_or("-", String::as_str))
            .collect();
        values.into_iter().collect::<Vec<_>>().join("|")
    }
}

/// The settings whose values differ between the sides (a setting neither side recorded is left out).
pub fn differences(base: &Side, new: &Side) -> Vec<SettingDifference> {
    std::iter::once("model")
        .chain(SETTINGS)
        .filter_map(|name| {
            let (b, n) = (base.setting(name), new.setting(name));
            (b != n).then(|| SettingDifference {
                setting: name.to_string(),
                base: b,
                new: n,
            })
        })
        .collect()
}

/// Requests a run needs beyond a percentile for it to be judged: with fewer, no resample can say
/// where the tail is (the bootstrap of a sample maximum is notoriously too narrow), so p99 needs
/// 1,000 requests per run and p90 100.
pub const MIN_TAIL: usize = 10;

/// What `compare` prints and `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub method: String,
    pub confidence: f64,
    pub resamples: u32,
    pub base: Vec<PathBuf>,
    pub new: Vec<PathBuf>,
    pub base_requests: u64,
    pub new_requests: u64,
    /// Settings that differ between the sides: each row then mixes their effect in.
    pub differences: Vec<SettingDifference>,
    pub rows: Vec<ComparedRow>,
}

/// The settings of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Two-sided, in (0, 1): 0.95.
    pub confidence: f64,
    pub resamples: u32,
    pub seed: u64,
    /// Changes smaller than this (percent, or points for the error rate) are "no change".
    pub min_change_pct: f64,
}

/// Compares each figure of `base` and `new`.
pub fn compare(base: &Side, new: &Side, figures: &[Figure], settings: Settings) -> Comparison {
    let rows = figures
        .iter()
        .map(|&figure| {
            // One stream of draws per row: a row's interval does not depend on the rows before it.
            let mut rng = rand_pcg::Pcg64::seed_from_u64(settings.seed ^ hash(&figure.key()));
            row(base, new, figure, settings, &mut rng)
        })
        .collect();
    Comparison {
        method: format!(
            "bootstrap, {} resamples of the per-request records (percentiles by order statistics, rates by second, error rate binomial, cost by the CLT; runs resampled too when a side has several); {}% interval of the change, per row",
            settings.resamples,
            settings.confidence * 100.0
        ),
        confidence: settings.confidence,
        resamples: settings.resamples,
        base: base.runs.iter().map(|r| r.dir.clone()).collect(),
        new: new.runs.iter().map(|r| r.dir.clone()).collect(),
        base_requests: base.requests(),
        new_requests: new.requests(),
        differences: differences(base, new),
        rows,
    }
}

fn hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

fn row(
    base: &Side,
    new: &Side,
    figure: Figure,
    settings: Settings,
    rng: &mut impl rand::Rng,
) -> ComparedRow {
    let (b, n) = (base.value(figure), new.value(figure));
    let mut out = ComparedRow {
        metric: figure.key(),
        label: figure.label(),
        higher_is_better: figure.higher_is_better(),
        base: b,
        new: n,
        change_pct: None,
        change_unit: "%",
        interval_pct: None,
        verdict: Verdict::NoData,
        note: None,
    };
    let (Some(b), Some(n)) = (b, n) else {
        return out;
    };
    if let Figure::Percentile(time, q) = figure {
        let fewest = base
            .runs
            .iter()
            .chain(&new.runs)
            .map(|r| r.times(time).len())
            .filter(|n| *n > 0)
            .min()
            .unwrap_or(0);
        let beyond = fewest.saturating_sub(rank(q, fewest.max(1)));
        if beyond < MIN_TAIL {
            out.change_pct = (b > 0.0).then(|| (n - b) / b * 100.0);
            out.verdict = Verdict::WithinNoise;
            let needed = (1..).find(|m| m - rank(q, *m) >= MIN_TAIL).unwrap_or(0);
            out.note = Some(format!(
                "{fewest} requests in a run: too few beyond p{} to judge (needs {needed})",
                percent_label(q),
            ));
            return out;
        }
    }
    // The error rate changes in percentage points; every other figure relative to its base, and a
    // zero base (nothing before) in its own units, with no percentage.
    let points = figure == Figure::ErrorRate;
    let relative = !points && b.abs() > f64::EPSILON;
    let scale = if relative { b.abs() / 100.0 } else { 1.0 };
    out.change_unit = if points { "pts" } else { "%" };
    if relative || points {
        out.change_pct = Some((n - b) / scale);
    } else {
        out.note = Some("the base is 0: no relative change".into());
    }
    let mut changes: Vec<f64> = (0..settings.resamples)
        .filter_map(|_| {
            let b = base.resampled(figure, rng)?;
            let n = new.resampled(figure, rng)?;
            Some((n - b) / scale)
        })
        .collect();
    if changes.is_empty() {
        return out;
    }
    changes.sort_by(f64::total_cmp);
    let tail = (1.0 - settings.confidence) / 2.0;
    let at = |q: f64| changes[((q * changes.len() as f64) as usize).min(changes.len() - 1)];
    let (low, high) = (at(tail), at(1.0 - tail));
    if relative || points {
        out.interval_pct = Some((low, high));
    }
    // A change below the figure's resolution or the practical threshold is no change, however
    // narrow its interval: identical runs whose every second holds 20 completions give a
    // zero-width interval, and a 3 ms longer window would otherwise read as "worse".
    let floor = settings
        .min_change_pct
        .max(resolution(base, new, figure).unwrap_or(0.0));
    // No change: the interval lies within the floor (the change is surely that small), or the
    // change is real but below it. A small change with a wide interval stays "within noise".
    let excludes_zero = low > 0.0 || high < 0.0;
    let measurable = relative || points;
    let surely_small = measurable && low > -floor && high < floor;
    let small_but_real = excludes_zero && out.change_pct.is_some_and(|c| c.abs() < floor);
    if surely_small || small_but_real {
        out.verdict = Verdict::NoChange;
        out.note = Some(format!(
            "smaller than {floor:.2}{} ({})",
            out.change_unit,
            if floor > settings.min_change_pct {
                "one request's worth"
            } else {
                "--min-change"
            }
        ));
        return out;
    }
    out.verdict = if low > 0.0 || high < 0.0 {
        let up = low > 0.0;
        if up == figure.higher_is_better() {
            Verdict::Better
        } else {
            Verdict::Worse
        }
    } else {
        Verdict::WithinNoise
    };
    out
}

/// The smallest change a figure can show, in its change unit: one request's worth of a rate (in
/// percent) or of the error rate (in points), over the side with fewer requests. Percentiles are
/// exact to the µs and costs to the nano-dollar: only the practical threshold applies.
fn resolution(base: &Side, new: &Side, figure: Figure) -> Option<f64> {
    let fewest = base.requests().min(new.requests());
    match figure {
        Figure::RequestsPerS | Figure::OutputTokensPerS | Figure::ErrorRate if fewest > 0 => {
            Some(100.0 / fewest as f64)
        }
        _ => None,
    }
}

impl Comparison {
    /// Rows worse beyond the noise and by more than `pct` percent.
    pub fn worse_beyond(&self, pct: f64) -> Vec<&ComparedRow> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Worse && r.change_pct.is_some_and(|c| c.abs() > pct))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(latencies: &[f64]) -> RunSample {
        let mut sorted = latencies.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut times = BTreeMap::new();
        times.insert("latency", sorted);
        RunSample {
            requests: latencies.len() as u64,
            times,
            ..RunSample::default()
        }
    }

    /// Deterministic log-normal-ish latencies around `median` ms.
    fn latencies(n: usize, median: f64, seed: u64) -> Vec<f64> {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                median * (0.4 * z).exp()
            })
            .collect()
    }

    fn verdict(base: &[f64], new: &[f64], q: f64) -> Verdict {
        let settings = Settings {
            confidence: 0.95,
            resamples: 2000,
            seed: 7,
            min_change_pct: 1.0,
        };
        let side = |v: &[f64]| Side {
            runs: vec![sample(v)],
        };
        compare(
            &side(base),
            &side(new),
            &[Figure::Percentile(Time::Latency, q)],
            settings,
        )
        .rows[0]
            .verdict
    }

    #[test]
    fn the_bootstrap_percentile_draw_matches_resampling_the_records() {
        // The O(1) order-statistic draw against the direct bootstrap (resample, sort, pick).
        let values = latencies(200, 100.0, 1);
        let run = sample(&values);
        let figure = Figure::Percentile(Time::Latency, 0.9);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let mut fast: Vec<f64> = (0..4000)
            .map(|_| run.resampled(figure, &mut rng).unwrap())
            .collect();
        let mut slow: Vec<f64> = (0..4000)
            .map(|_| {
                let mut r: Vec<f64> = (0..values.len())
                    .map(|_| values[rng.random_range(0..values.len())])
                    .collect();
                r.sort_by(f64::total_cmp);
                r[rank(0.9, r.len()) - 1]
            })
            .collect();
        fast.sort_by(f64::total_cmp);
        slow.sort_by(f64::total_cmp);
        for q in [0.025, 0.5, 0.975] {
            let (f, s) = (fast[(q * 4000.0) as usize], slow[(q * 4000.0) as usize]);
            assert!((f - s).abs() / s < 0.03, "q {q}: {f} vs {s}");
        }
    }

    #[test]
    fn identical_and_same_distribution_runs_are_within_noise() {
        // Each side is resampled on its own: the interval of identical records is as wide as
        // their noise, so it says "within noise", not "no change".
        let a = latencies(2000, 100.0, 1);
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(
                verdict(&a, &a, q),
                Verdict::WithinNoise,
                "p{q}, same records"
            );
        }
        let b = latencies(2000, 100.0, 2);
        for q in [0.5, 0.9] {
            assert_eq!(
                verdict(&a, &b, q),
                Verdict::WithinNoise,
                "p{q}, same distribution"
            );
        }
    }

    #[test]
    fn a_20_percent_shift_is_worse_with_2000_requests_and_noise_with_20() {
        let base = latencies(2000, 100.0, 1);
        let slower: Vec<f64> = latencies(2000, 100.0, 2).iter().map(|v| v * 1.2).collect();
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(verdict(&base, &slower, q), Verdict::Worse, "p{q}");
        }
        let faster: Vec<f64> = slower.iter().map(|v| v / 1.44).collect();
        assert_eq!(verdict(&base, &faster, 0.5), Verdict::Better);
        let few = latencies(20, 100.0, 1);
        let few_slower: Vec<f64> = latencies(20, 100.0, 2).iter().map(|v| v * 1.2).collect();
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(verdict(&few, &few_slower, q), Verdict::WithinNoise, "p{q}");
        }
    }

    #[test]
    fn figures_parse_from_the_gate_names() {
        assert_eq!(
            Figure::parse("ttft.p99.9").unwrap(),
            Figure::Percentile(Time::Ttft, 0.999)
        );
        assert_eq!(Figure::parse("rps").unwrap(), Figure::RequestsPerS);
        assert_eq!(
            Figure::parse("ttft.p99.9").unwrap().label(),
            "ttft p99.9 ms"
        );
        for bad in ["itl.p99", "ttft.mean", "goodput", "nope"] {
            assert!(Figure::parse(bad).is_err(), "{bad}");
        }
    }
}
