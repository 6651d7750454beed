//! CI gates (`--fail-on 'ttft.p99>500ms,error_rate>1%'`): thresholds on any summary figure or any
//! percentile, judged at the end of a run, saved in `summary.json`, and exit code 3 when one fails.
//! The model is k6's thresholds, written as the condition that fails the build.

use super::{Histo, RunStats, ScaledHistogram, Summary};
use serde::{Deserialize, Serialize};
use serde_json::Value;

impl Histo {
    fn unit(self) -> Unit {
        match self {
            Histo::OutputTps => Unit::PerSecond,
            _ => Unit::Millis,
        }
    }
}

/// One figure of a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A quantile in (0, 1]: `p99` is 0.99, `p99.9` 0.999.
    Quantile(f64),
    Min,
    Max,
    Mean,
    Stdev,
    Count,
}

/// `0.999` → `99.9`.
pub fn percent_label(q: f64) -> String {
    let text = format!("{:.4}", q * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Stat {
    /// `p99`, `p99.9`, `min`, `max`, `mean`, `stdev`, `count`.
    pub fn parse(text: &str) -> Result<Stat, String> {
        Ok(match text {
            "min" => Stat::Min,
            "max" => Stat::Max,
            "mean" | "avg" => Stat::Mean,
            "stdev" => Stat::Stdev,
            "count" => Stat::Count,
            _ => {
                let digits = text
                    .strip_prefix('p')
                    .ok_or_else(|| {
                        format!("{text:?}: expected p50, p99.9, min, max, mean, stdev or count")
                    })?
                    .replace('_', ".");
                // The decimal point moved two places in the text, so p99.9 is exactly 0.999.
                let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
                let valid = !whole.is_empty()
                    && whole.len() <= 3
                    && whole
                        .bytes()
                        .chain(fraction.bytes())
                        .all(|b| b.is_ascii_digit());
                let whole = format!("{whole:0>3}");
                let q: Option<f64> = valid
                    .then(|| {
                        format!("{}.{}{fraction}", &whole[..1], &whole[1..])
                            .parse()
                            .ok()
                    })
                    .flatten();
                match q {
                    Some(q) if q > 0.0 && q <= 1.0 => Stat::Quantile(q),
                    _ => {
                        return Err(format!(
                            "{text:?}: a percentile is p followed by a number up to 100, e.g. p99 or p99.9"
                        ));
                    }
                }
            }
        })
    }

    /// The figure of `h`, in the histogram's unit (thousandths are scaled back).
    pub fn of(self, h: &ScaledHistogram) -> Option<f64> {
        if h.is_empty() {
            // Nothing recorded is a count of zero; every other figure has no value.
            return (self == Stat::Count).then_some(0.0);
        }
        let h = h.inner();
        let scaled = |v: u64| v as f64 / 1000.0;
        Some(match self {
            Stat::Quantile(q) => scaled(h.value_at_quantile(q)),
            Stat::Min => scaled(h.min()),
            Stat::Max => scaled(h.max()),
            Stat::Mean => h.mean() / 1000.0,
            Stat::Stdev => h.stdev() / 1000.0,
            Stat::Count => h.len() as f64,
        })
    }
}

/// What a threshold is judged on.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A figure of one of the run's histograms: `ttft.p99`, `latency.p99.9`, `itl.max`.
    Histogram(Histo, Stat),
    /// A figure of the input or output tokens per ok request (`input_length.p50`), exact.
    Length(Side, Stat),
    /// Requests not ok / all requests (0–1).
    ErrorRate,
    /// ok requests per second of the throughput window.
    RequestsPerS,
    /// Output tokens of ok requests per second of the window.
    OutputTokensPerS,
    /// `bench --slo`: requests meeting every objective per second.
    Goodput,
    /// Dollars for the whole run, and per 1,000 priced requests.
    CostUsd,
    CostPer1k,
    /// Checked structured answers that are valid (0–1): `structured_output.valid`.
    StructuredValid,
    /// `bench --profile search`: the answer, the highest rate (or concurrency) meeting every
    /// objective (`search.max_rate<30/s` fails a capacity regression).
    SearchMaxRate,
    SearchMaxConcurrency,
    /// Any other number in `summary.json`, by its dotted path (`tokens.total_per_s`).
    Path(String),
}

/// Which token lengths: of what was sent, or of what came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

/// How a metric's values are written and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds; limits are written with their unit: `500ms`, `2s`, `250us`.
    #[serde(rename = "ms")]
    Millis,
    /// Per second; limits may be written `10`, `10/s` or `600/min`.
    #[serde(rename = "per_s")]
    PerSecond,
    /// A share (0–1); limits may be written `1%` or `0.01`.
    Share,
    /// Dollars; `$5` or `5`.
    Usd,
    /// Tokens per request; `500` or `500tok`.
    #[serde(rename = "tokens")]
    Tokens,
    Number,
}

impl Metric {
    /// `ttft.p99`, `latency.mean`, `error_rate`, `goodput`, `cost`, or a dotted summary.json path.
    pub fn parse(text: &str) -> Result<Metric, String> {
        let text = text.trim();
        let side = |name: &str| match name {
            "input_length" => Some(Side::Input),
            "output_length" => Some(Side::Output),
            _ => None,
        };
        if let Some((name, stat)) = text.split_once('.') {
            if let Some(histo) = Histo::named(name) {
                return Ok(Metric::Histogram(histo, Stat::parse(stat)?));
            }
            if let Some(side) = side(name) {
                return Ok(Metric::Length(side, Stat::parse(stat)?));
            }
        }
        if Histo::named(text).is_some() || side(text).is_some() {
            return Err(format!(
                "{text:?} is a distribution: say which figure, e.g. {text}.p99 or {text}.mean"
            ));
        }
        Ok(match text {
            "error_rate" | "errors" => Metric::ErrorRate,
            "requests_per_s" | "rps" | "throughput" => Metric::RequestsPerS,
            "output_tokens_per_s" | "output_tok_s" | "tokens.output_per_s" => {
                Metric::OutputTokensPerS
            }
            "goodput" | "goodput_per_s" | "slo.goodput_per_s" => Metric::Goodput,
            "cost" | "cost_usd" | "cost.total_usd" => Metric::CostUsd,
            "cost_per_1k" | "cost.per_1k_requests_usd" => Metric::CostPer1k,
            "structured_output.valid" | "structured_output" => Metric::StructuredValid,
            "search.max_rate" => Metric::SearchMaxRate,
            "search.max_concurrency" => Metric::SearchMaxConcurrency,
            path if path.starts_with("server.") => {
                crate::scrape::check_path(&path["server.".len()..])?;
                Metric::Path(path.to_string())
            }
            path => {
                let known = serde_json::to_value(Summary::from_stats(
                    &RunStats::default(),
                    0.0,
                    Vec::new(),
                ))
                .unwrap_or(Value::Null);
                if !path_is_known(&known, path) {
                    return Err(format!(
                        "{path:?}: not a figure of the summary. Use ttft.p99 (any percentile of latency, latency_from_schedule, queue, ttft, ttfo, tpot, itl, chunk_gap, connect, output_tps, failed_latency, retry_wait, input_length, output_length; or min, max, mean, stdev, count), error_rate, requests_per_s, output_tokens_per_s, goodput, cost, cost_per_1k, or a dotted path of summary.json such as tokens.total_per_s"
                    ));
                }
                Metric::Path(path.to_string())
            }
        })
    }

    pub fn unit(&self) -> Unit {
        match self {
            Metric::Histogram(_, Stat::Count) | Metric::Length(_, Stat::Count) => Unit::Number,
            Metric::Length(..) => Unit::Tokens,
            Metric::Histogram(h, _) => h.unit(),
            Metric::ErrorRate | Metric::StructuredValid => Unit::Share,
            Metric::RequestsPerS
            | Metric::OutputTokensPerS
            | Metric::Goodput
            | Metric::SearchMaxRate => Unit::PerSecond,
            Metric::SearchMaxConcurrency => Unit::Number,
            Metric::CostUsd | Metric::CostPer1k => Unit::Usd,
            Metric::Path(path) if path.starts_with("server.") => server_unit(path),
            Metric::Path(path) if path.ends_with("_ms") || path.contains("_ms.") => Unit::Millis,
            Metric::Path(path) if path.ends_with("_per_s") => Unit::PerSecond,
            Metric::Path(_) => Unit::Number,
        }
    }

    /// The metric's value for a finished run: histogram figures from `stats` (any percentile), the
    /// rest from `summary`. None when the run has no data for it (no streamed request has a TTFT).
    pub fn value(&self, summary: &Summary, stats: &RunStats) -> Option<f64> {
        match self {
            Metric::Histogram(h, stat) => stat.of(h.of(stats)),
            Metric::Length(side, stat) => {
                let counts = match side {
                    Side::Input => &stats.input_length,
                    Side::Output => &stats.output_length,
                };
                let last = |k: Option<(&u64, &u64)>| k.map(|(t, _)| *t as f64);
                match *stat {
                    Stat::Count => Some(counts.count() as f64),
                    Stat::Quantile(q) => counts.quantile(q).map(|t| t as f64),
                    Stat::Min => last(counts.0.iter().next()),
                    Stat::Max => last(counts.0.iter().next_back()),
                    Stat::Mean => counts.mean(),
                    Stat::Stdev => counts.stdev(),
                }
            }
            Metric::ErrorRate => summary.requests.error_rate(),
            Metric::RequestsPerS => (summary.window_s > 0.0).then_some(summary.requests_per_s),
            Metric::OutputTokensPerS => summary.tokens.output_per_s,
            Metric::Goodput => summary
                .slo
                .as_ref()
                .filter(|s| s.judged())
                .map(|s| s.goodput_per_s),
            Metric::CostUsd => summary.cost.total_usd,
            Metric::CostPer1k => summary.cost.per_1k_requests_usd,
            Metric::StructuredValid => summary.structured_output.as_ref().map(|s| s.valid),
            // A search's answer is in search.json, judged there.
            Metric::SearchMaxRate | Metric::SearchMaxConcurrency => None,
            Metric::Path(path) => {
                let value = serde_json::to_value(summary).ok()?;
                let (parent, last) = match path.rsplit_once('.') {
                    Some((parent, last)) => (
                        parent.split('.').try_fold(&value, |v, key| v.get(key))?,
                        last,
                    ),
                    None => (&value, path.as_str()),
                };
                match parent {
                    // A count map (`errors_by_kind`, `by_http_status`) lists only what happened:
                    // a key it lacks is a count of zero.
                    Value::Object(map) if !map.contains_key(last) && !parent_is_struct(path) => {
                        Some(0.0)
                    }
                    _ => parent.get(last).and_then(Value::as_f64),
                }
            }
        }
    }

    /// Whether the gate judges a search's answer (`search.max_rate<30/s`), not a run or a probe.
    pub fn judges_a_search(&self) -> bool {
        matches!(self, Metric::SearchMaxRate | Metric::SearchMaxConcurrency)
    }

    /// Whether a run with nothing wrong leaves this metric empty (no retry waited, none failed).
    fn empty_when_healthy(&self) -> bool {
        matches!(
            self,
            Metric::Histogram(Histo::RetryWait | Histo::FailedLatency, _)
        )
    }

    /// Why a run may hold no value for this metric.
    fn missing_hint(&self) -> &'static str {
        match self {
            Metric::Histogram(Histo::Ttft | Histo::Ttfo | Histo::Tpot | Histo::Itl, _) => {
                " (streamed ok requests only: add --stream)"
            }
            Metric::Goodput => " (goodput needs bench --slo)",
            Metric::StructuredValid => {
                " (no ok answer to a body asking for json_schema or json_object)"
            }
            Metric::CostUsd | Metric::CostPer1k => " (no record could be priced)",
            Metric::SearchMaxRate | Metric::SearchMaxConcurrency => {
                " (a search's answer: bench --profile search)"
            }
            _ => "",
        }
    }
}

/// Whether `path`'s last key belongs to a fixed section of `summary.json` (a missing key there is
/// missing data), rather than to a map of counts keyed by what happened.
fn parent_is_struct(path: &str) -> bool {
    const COUNT_MAPS: [&str; 4] = [
        "errors_by_kind",
        "retried_errors_by_kind",
        "requests.by_status",
        "requests.by_http_status",
    ];
    !COUNT_MAPS.iter().any(|map| {
        path.strip_prefix(map)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Whether `path` names a field of `summary.json` (a null on the way is an optional section).
/// A `server.` path's unit, from its figure and statistic: times in ms (not their count), rates
/// per second, shares (KV cache, GPU utilisation, hit rates) as shares, the rest as numbers.
fn server_unit(path: &str) -> Unit {
    let last = path.rsplit('.').next().unwrap_or("");
    if last == "count" || last == "increase" || last == "total" || last == "sum" {
        Unit::Number
    } else if last == "per_s" || path.ends_with("_per_s") {
        Unit::PerSecond
    } else if path.contains("_ms.") || path.ends_with("_ms") {
        Unit::Millis
    } else if [
        "kv_cache_usage",
        "gpu_util",
        "cache_hit_rate",
        "prefix_cache_hit_rate",
    ]
    .iter()
    .any(|share| path["server.".len()..].starts_with(share))
    {
        Unit::Share
    } else {
        Unit::Number
    }
}

fn path_is_known(known: &Value, path: &str) -> bool {
    let mut at = known;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, key) in keys.iter().enumerate() {
        match at {
            Value::Null => return true,
            Value::Object(map) => match map.get(*key) {
                Some(next) => at = next,
                // Any key of a count map (`errors_by_kind.timeout`), listed or not.
                None => return i + 1 == keys.len() && !parent_is_struct(path),
            },
            _ => return false,
        }
    }
    matches!(at, Value::Number(_) | Value::Null)
}

/// The comparison that fails the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Op {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Above => value > limit,
            Op::AtLeast => value >= limit,
            Op::Below => value < limit,
            Op::AtMost => value <= limit,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::AtLeast => ">=",
            Op::Below => "<",
            Op::AtMost => "<=",
        }
    }
}

/// One threshold: the run fails the gate when `metric op limit` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric_text: String,
    pub metric: Metric,
    pub op: Op,
    /// In the metric's unit (ms, per second, a 0–1 share, dollars).
    pub limit: f64,
}

impl Threshold {
    fn parse(text: &str) -> Result<Threshold, String> {
        let text = text.trim();
        let at = text.find(['<', '>']).ok_or_else(|| {
            format!("{text:?}: expected METRIC>LIMIT or METRIC<LIMIT, e.g. ttft.p99>500ms")
        })?;
        let (metric_text, rest) = text.split_at(at);
        let (op, limit_text) = match rest.as_bytes() {
            [b'>', b'=', ..] => (Op::AtLeast, &rest[2..]),
            [b'<', b'=', ..] => (Op::AtMost, &rest[2..]),
            [b'>', ..] => (Op::Above, &rest[1..]),
            _ => (Op::Below, &rest[1..]),
        };
        let metric_text = metric_text.trim();
        let metric = Metric::parse(metric_text).map_err(|e| format!("{text}: {e}"))?;
        let limit =
            parse_limit(limit_text.trim(), metric.unit()).map_err(|e| format!("{text}: {e}"))?;
        Ok(Threshold {
            text: text.to_string(),
            metric_text: metric_text.to_string(),
            metric,
            op,
            limit,
        })
    }

    /// Judges a finished run.
    pub fn judge(&self, summary: &Summary, stats: &RunStats) -> Verdict {
        self.judge_value(self.metric.value(summary, stats))
    }

    /// Judges a value measured elsewhere (a search's answer); None is no data.
    pub fn judge_value(&self, value: Option<f64>) -> Verdict {
        let (failed, note) = match value {
            Some(v) => (self.op.holds(v, self.limit), None),
            // Retries and failures leave these empty on a healthy run: nothing recorded is
            // nothing above a limit.
            None if self.metric.empty_when_healthy()
                && matches!(self.op, Op::Above | Op::AtLeast) =>
            {
                (false, Some("nothing recorded".to_string()))
            }
            // A gate with nothing to judge is a misconfigured gate: CI should hear of it.
            None => (
                true,
                Some(format!(
                    "no data for {}{}",
                    self.metric_text,
                    self.metric.missing_hint()
                )),
            ),
        };
        Verdict {
            expression: self.text.clone(),
            metric: self.metric_text.clone(),
            op: self.op,
            limit: self.limit,
            unit: self.metric.unit(),
            value,
            failed,
            note,
        }
    }
}

/// Parses a limit in `unit`: `500ms`/`2s`/`250us`; `10/s`/`600/min`; `1%`/`0.01`; `$5`.
fn parse_limit(text: &str, unit: Unit) -> Result<f64, String> {
    let number = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{text:?} is not a number"))
    };
    match unit {
        // A bare number is refused, as in --slo: `--timeout 5` means seconds, so `ttft.p99>500`
        // could be read either way.
        Unit::Millis => match text.parse::<f64>() {
            Ok(_) => Err(format!(
                "{text:?}: give a time its unit, e.g. {text}ms or {text}s"
            )),
            Err(_) => humantime::parse_duration(text)
                .map(|d| d.as_secs_f64() * 1000.0)
                .map_err(|_| format!("{text:?}: expected a time such as 500ms, 2s or 250us")),
        },
        Unit::PerSecond => {
            if let Some(n) = text.strip_suffix("/s") {
                number(n)
            } else if let Some(n) = text
                .strip_suffix("/min")
                .or_else(|| text.strip_suffix("/m"))
            {
                Ok(number(n)? / 60.0)
            } else {
                number(text)
            }
        }
        Unit::Share => {
            let share = match text.strip_suffix('%') {
                Some(n) => number(n)? / 100.0,
                None => number(text)?,
            };
            if !(0.0..=1.0).contains(&share) {
                return Err(format!(
                    "{text:?} is not a share between 0 and 1: write 5% (or 0.05) for five per cent"
                ));
            }
            Ok(share)
        }
        Unit::Usd => number(text.strip_prefix('$').unwrap_or(text)),
        Unit::Tokens => number(
            text.strip_suffix("tokens")
                .or_else(|| text.strip_suffix("tok"))
                .unwrap_or(text),
        ),
        Unit::Number => number(text),
    }
}

/// `--fail-on`: thresholds separated by commas.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds(pub Vec<Threshold>);

impl Thresholds {
    pub fn parse(text: &str) -> Result<Thresholds, String> {
        let list = text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Threshold::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if list.is_empty() {
            return Err("no threshold given: e.g. --fail-on 'ttft.p99>500ms,error_rate>1%'".into());
        }
        Ok(Thresholds(list))
    }

    /// Whether a threshold needs `--slo` (goodput), for a setup error before anything is sent.
    pub fn needs_slo(&self) -> bool {
        self.0.iter().any(|t| t.metric == Metric::Goodput)
    }

    /// Judges a finished run (or a search's probe) on every gate but those on a search's answer,
    /// which the search judges itself.
    pub fn judge(&self, summary: &Summary, stats: &RunStats) -> Vec<Verdict> {
        self.0
            .iter()
            .filter(|t| !t.metric.judges_a_search())
            .map(|t| t.judge(summary, stats))
            .collect()
    }
}

/// One threshold's verdict, as `summary.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub expression: String,
    pub metric: String,
    pub op: Op,
    /// The limit and the measured value, in `unit` (ms, per second, a 0–1 share, dollars).
    pub limit: f64,
    pub unit: Unit,
    pub value: Option<f64>,
    /// The gate failed: the condition held, or there was no data to judge.
    pub failed: bool,
    pub note: Option<String>,
}

impl Verdict {
    /// `ttft.p99 > 500 ms: 612.3 ms  FAILED`
    pub fn line(&self) -> String {
        let shown = |v: f64| show(v, self.unit);
        let value = self.value.map_or_else(|| "no data".to_string(), shown);
        let outcome = if self.failed { "FAILED" } else { "passed" };
        let note = self
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        format!(
            "{} {} {}: {value}  {outcome}{note}",
            self.metric,
            self.op.as_str(),
            shown(self.limit)
        )
    }
}

/// A value with its unit, as people read it.
pub fn show(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Millis => format!("{v:.2} ms"),
        Unit::PerSecond => format!("{v:.2}/s"),
        Unit::Share => format!("{:.2}%", v * 100.0),
        Unit::Usd => format!("${v:.4}"),
        Unit::Tokens if v.fract() == 0.0 => format!("{v} tokens"),
        Unit::Tokens => format!("{v:.2} tokens"),
        Unit::Number => {
            let text = format!("{v:.4}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Record, Status};

    fn run(latencies: &[f64], failed: u64) -> (Summary, RunStats) {
        let mut stats = RunStats::default();
        for (i, ms) in latencies.iter().enumerate() {
            let mut r = Record::empty(i.to_string(), i as u64 + 1, Status::Ok);
            r.sent_at = Some(i as f64 * 10.0);
            r.latency_ms = Some(*ms);
            stats.add(&r);
        }
        for i in 0..failed {
            let mut r = Record::empty(format!("f{i}"), 1000 + i, Status::HttpError);
            r.sent_at = Some(0.0);
            r.latency_ms = Some(1.0);
            stats.add(&r);
        }
        (Summary::from_stats(&stats, 1.0, Vec::new()), stats)
    }

    #[test]
    fn thresholds_parse_units_and_refuse_unknown_figures() {
        let t = Thresholds::parse("ttft.p99>500ms, latency.p50>2s,error_rate>1%,goodput<10/s,itl.p99.9>=0.5s,cost>$2,output_tokens_per_s<600/min").unwrap();
        let limits: Vec<f64> = t.0.iter().map(|t| t.limit).collect();
        assert_eq!(limits, vec![500.0, 2000.0, 0.01, 10.0, 500.0, 2.0, 10.0]);
        assert_eq!(
            t.0[4].metric,
            Metric::Histogram(Histo::Itl, Stat::Quantile(0.999))
        );
        assert_eq!(t.0[4].op, Op::AtLeast);
        assert_eq!(t.0[3].op, Op::Below);
        assert!(t.needs_slo());
        assert_eq!(
            Threshold::parse("tokens.total_per_s<5").unwrap().metric,
            Metric::Path("tokens.total_per_s".into())
        );
        for bad in [
            "ttft>1s",
            "ttft.p101>1s",
            "latncy.p99>1s",
            "error_rate",
            "ttft.p99>fast",
            "",
            "requests.nope>1",
            "latency.p0>1ms",
            "latency.p1000>1ms",
            "latency.p9x>1ms",
            "ttft.p99>500",
            "error_rate>5",
            "error_rate>150%",
        ] {
            assert!(Thresholds::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_paths_take_their_figures_unit() {
        for good in [
            "server.kv_cache_usage.max>95%",
            "server.ttft_ms.p99>500ms",
            "server.ttft_ms.count<10",
            "server.generation_tokens.per_s<100/s",
            "server.waiting.mean>10",
            "server.series.vllm:num_preemptions.increase>0",
            "server.prefix_cache_hit_rate<20%",
        ] {
            assert!(Thresholds::parse(good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "server.running.p99>1",
            "server.nope.max>1",
            "server.series.x.p50>1",
        ] {
            assert!(Thresholds::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_threshold_fails_only_when_its_condition_holds() {
        let latencies: Vec<f64> = (1..=100).map(f64::from).collect();
        let (summary, stats) = run(&latencies, 0);
        let verdicts =
            Thresholds::parse("latency.p50>60ms,latency.p99>90ms,latency.p75>=75ms,error_rate>0%")
                .unwrap()
                .judge(&summary, &stats);
        let failed: Vec<bool> = verdicts.iter().map(|v| v.failed).collect();
        assert_eq!(failed, vec![false, true, true, false]);
        assert!((verdicts[1].value.unwrap() - 99.0).abs() < 0.1);
        assert_eq!(verdicts[3].value, Some(0.0));
    }

    #[test]
    fn a_threshold_with_no_data_fails_and_says_why() {
        let (summary, stats) = run(&[10.0, 20.0], 1);
        let v = &Thresholds::parse("ttft.p99>500ms")
            .unwrap()
            .judge(&summary, &stats)[0];
        assert!(v.failed);
        assert_eq!(v.value, None);
        assert!(v.note.as_deref().unwrap().contains("--stream"), "{v:?}");
        let (healthy_summary, healthy_stats) = run(&[10.0], 0);
        let healthy = Thresholds::parse(
            "retry_wait.p99>5s,failed_latency.max>=1s,errors_by_kind.timeout>0,requests.by_http_status.503>=1",
        )
        .unwrap()
        .judge(&healthy_summary, &healthy_stats);
        assert!(healthy.iter().all(|v| !v.failed), "{healthy:?}");
        assert_eq!(
            healthy[2].value,
            Some(0.0),
            "a kind that never happened counts 0"
        );
        let none = &Thresholds::parse("ttft.count<1")
            .unwrap()
            .judge(&summary, &stats)[0];
        assert_eq!(
            (none.value, none.failed),
            (Some(0.0), true),
            "an empty histogram counts 0"
        );
        let rate = &Thresholds::parse("error_rate>=30%")
            .unwrap()
            .judge(&summary, &stats)[0];
        assert!(rate.failed && (rate.value.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(rate.line(), "error_rate >= 30.00%: 33.33%  FAILED");
    }
}
