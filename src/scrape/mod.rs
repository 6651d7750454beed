//! `--scrape`: the server's own Prometheus metrics (an inference server's `/metrics`, a DCGM or
//! node exporter) as they are read: per interval to `server_metrics.csv` on the run's epoch, and
//! summed up as `summary.json`'s `server`. The reading itself (HTTP, the ticks) is
//! `commands::scraper`'s.

pub mod figures;
pub mod parse;
pub mod series;

use figures::{Accumulated, FIGURES, Stats, TargetScrape, Value};
use parse::{Kind, Part};
use serde::{Deserialize, Serialize};
use series::{Cumulative, Reading};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

/// The scrape's own file beside `timeseries.csv`.
pub const SERVER_METRICS_CSV: &str = "server_metrics.csv";

/// One target as the summary reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetReport {
    /// Without credentials or query.
    pub url: String,
    pub scrapes: u64,
    pub failed: u64,
    /// Of the failed: no answer within `--scrape-every` (abandoned; the next tick tries again).
    pub slow: u64,
    pub last_error: Option<String>,
    /// Lines of its pages that could not be read (skipped).
    pub skipped_lines: u64,
    /// Families its last good page held.
    pub families: usize,
}

/// A family kept raw, over the run: label sets summed (a per-GPU or per-model family's total).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SeriesStats {
    pub kind: String,
    /// Gauges (and untyped): the per-scrape sum over label sets, its mean, max and last.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last: Option<f64>,
    /// Counters: the increase over the run; histograms and summaries: their count's and sum's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub increase: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub count: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum: Option<f64>,
    /// A family with several label sets (one per GPU, per model, per engine): each one's figures,
    /// keyed `name="value",...`. At most `MAX_LABEL_SETS`; `label_sets` counts them all.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub by_labels: BTreeMap<String, SeriesStats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label_sets: Option<usize>,
}

/// Label sets kept apart per family in the summary (a DCGM node has 8 GPUs; a page whose label
/// sets churn by the thousand gets its first ones and a count).
pub const MAX_LABEL_SETS: usize = 64;

/// A client figure beside the server's own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Against {
    pub client: Option<f64>,
    pub server: Option<f64>,
    /// client − server: the network, the client and (for TTFT) the HTTP framing.
    pub difference: Option<f64>,
    /// A server percentile is only known within its histogram bucket: these bounds. A difference
    /// smaller than the bucket says nothing; the means (exact on both sides) do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_within: Option<[f64; 2]>,
}

/// `summary.json`'s `server`: named figures (null when no target exposes them), every family by
/// name, the client's figures beside the server's, and how each target's scrapes went.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerSummary {
    pub every_s: f64,
    pub targets: Vec<TargetReport>,
    /// `running`, `waiting`, `kv_cache_usage`, `ttft_ms` ... (`figures::FIGURES`).
    #[serde(flatten)]
    pub figures: BTreeMap<String, Option<Stats>>,
    /// Prefix-cache hits ÷ queries over the run (vLLM's counters), or SGLang's hit-rate gauge.
    pub prefix_cache_hit_rate: Option<f64>,
    /// GPU energy over the run ÷ output tokens (the server's count, else the client's), in J.
    pub energy_per_output_token_j: Option<f64>,
    /// Client against server: `ttft_p50_ms`, `ttft_p99_ms`, `e2e_p50_ms`, `e2e_p99_ms`,
    /// `output_tokens_per_s`, `input_tokens_per_s`. The time differences are network plus client.
    pub against_client: BTreeMap<String, Against>,
    /// Every family by name (a counter's without `_total`).
    pub series: BTreeMap<String, SeriesStats>,
}

/// The client's figures `ServerSummary::against` puts beside the server's.
#[derive(Debug, Clone, Default)]
pub struct ClientFigures {
    pub ttft_mean_ms: Option<f64>,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub e2e_mean_ms: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
    pub output_tokens_per_s: Option<f64>,
    pub input_tokens_per_s: Option<f64>,
    pub output_tokens: Option<f64>,
}

impl ServerSummary {
    fn figure(&self, name: &str) -> Option<&Stats> {
        self.figures.get(name).and_then(Option::as_ref)
    }

    /// Puts the client's figures beside the server's; energy per token needs the token count.
    pub fn against(&mut self, client: &ClientFigures) {
        type Read = fn(&figures::HistogramStats) -> (Option<f64>, Option<[f64; 2]>);
        let histogram = |name: &str, read: Read| match self.figure(name) {
            Some(Stats::Histogram(h)) => read(h),
            _ => (None, None),
        };
        let rate = |name: &str| match self.figure(name) {
            Some(Stats::Counter(c)) => (Some(c.per_s), None),
            _ => (None, None),
        };
        let mean: Read = |h| (h.mean, None);
        let p50: Read = |h| (h.p50, h.p50_within);
        let p99: Read = |h| (h.p99, h.p99_within);
        let rows = [
            (
                "ttft_mean_ms",
                client.ttft_mean_ms,
                histogram("ttft_ms", mean),
            ),
            ("ttft_p50_ms", client.ttft_p50_ms, histogram("ttft_ms", p50)),
            ("ttft_p99_ms", client.ttft_p99_ms, histogram("ttft_ms", p99)),
            ("e2e_mean_ms", client.e2e_mean_ms, histogram("e2e_ms", mean)),
            ("e2e_p50_ms", client.e2e_p50_ms, histogram("e2e_ms", p50)),
            ("e2e_p99_ms", client.e2e_p99_ms, histogram("e2e_ms", p99)),
            (
                "output_tokens_per_s",
                client.output_tokens_per_s,
                rate("generation_tokens"),
            ),
            (
                "input_tokens_per_s",
                client.input_tokens_per_s,
                rate("prompt_tokens"),
            ),
        ];
        self.against_client = rows
            .into_iter()
            .filter(|(_, _, (server, _))| server.is_some())
            .map(|(name, client, (server, server_within))| {
                let difference = client.zip(server).map(|(c, s)| c - s);
                (
                    name.to_string(),
                    Against {
                        client,
                        server,
                        difference,
                        server_within,
                    },
                )
            })
            .collect();
        let tokens = match self.figure("generation_tokens") {
            Some(Stats::Counter(c)) if c.total > 0.0 => Some(c.total),
            _ => client.output_tokens.filter(|t| *t > 0.0),
        };
        self.energy_per_output_token_j = match self.figure("gpu_energy_j") {
            Some(Stats::Counter(e)) => tokens.map(|t| e.total / t),
            _ => None,
        };
    }
}

/// Whether `path` (after `server.`) names a figure of `ServerSummary`, for `--fail-on`: a named
/// figure's statistic (`kv_cache_usage.max`, `ttft_ms.p99`, `generation_tokens.per_s`), a
/// derived one (`prefix_cache_hit_rate`), a client comparison (`against_client.ttft_p50_ms.
/// difference`), or any scraped family's (`series.vllm:num_preemptions.increase`: the page
/// decides which exist, so any name is taken).
///
/// Errors: what the path should have been.
pub fn check_path(path: &str) -> Result<(), String> {
    let keys: Vec<&str> = path.split('.').collect();
    let ok = match keys.as_slice() {
        ["prefix_cache_hit_rate" | "energy_per_output_token_j"] => true,
        ["series", family, stat] => {
            !family.is_empty() && ["mean", "max", "last", "increase", "count", "sum"].contains(stat)
        }
        ["against_client", _, "client" | "server" | "difference"] => true,
        [name, stat] => FIGURES.iter().any(|f| {
            f.name == *name
                && match f.shape {
                    figures::Shape::Gauge(_) => ["mean", "max", "last"].contains(stat),
                    figures::Shape::Counter => ["total", "per_s"].contains(stat),
                    figures::Shape::Histogram => {
                        ["count", "mean", "p50", "p90", "p99"].contains(stat)
                    }
                }
        }),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    let names: Vec<&str> = FIGURES.iter().map(|f| f.name).collect();
    Err(format!(
        "\"server.{path}\": not a server figure. Use server.FIGURE.STAT with FIGURE one of {} (gauges: mean, max, last; counters: total, per_s; times: count, mean, p50, p90, p99), server.prefix_cache_hit_rate, server.energy_per_output_token_j, or server.series.FAMILY.STAT for any scraped family (mean, max, last, increase, count, sum)",
        names.join(", ")
    ))
}

/// One target's state between ticks.
struct Target {
    report: TargetReport,
    cumulative: Cumulative,
    last_good_s: Option<f64>,
}

/// A family's intervals, accumulated raw: over its label sets summed, and per label set.
#[derive(Default)]
struct FamilyAcc {
    kind: Option<Kind>,
    total: Acc,
    by_labels: BTreeMap<String, Acc>,
    label_sets: std::collections::HashSet<String>,
}

/// One series' (or a family's summed) intervals.
#[derive(Default, Clone)]
struct Acc {
    gauge: Option<(u64, f64, f64, f64)>,
    increase: f64,
    count: f64,
    sum: f64,
}

impl Acc {
    fn gauge(&mut self, v: f64) {
        let (n, sum, max, _) = self.gauge.unwrap_or((0, 0.0, v, v));
        self.gauge = Some((n + 1, sum + v, max.max(v), v));
    }

    fn stats(&self, kind: Kind) -> SeriesStats {
        let gauge = self
            .gauge
            .map(|(n, sum, max, last)| (sum / n as f64, max, last));
        let cumulative = matches!(kind, Kind::Histogram | Kind::Summary);
        SeriesStats {
            kind: serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            mean: gauge.map(|g| g.0),
            max: gauge.map(|g| g.1),
            last: gauge.map(|g| g.2),
            increase: (kind == Kind::Counter).then_some(self.increase),
            count: cumulative.then_some(self.count),
            sum: cumulative.then_some(self.sum),
            by_labels: BTreeMap::new(),
            label_sets: None,
        }
    }
}

/// `name="value",...`, as Prometheus writes a label set.
fn label_key(labels: &[(String, String)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The running scrape: its targets, the CSV, the accumulated figures.
pub struct Scrape {
    every: Duration,
    targets: Vec<Target>,
    csv: std::io::BufWriter<std::fs::File>,
    figures: Vec<Accumulated>,
    families: BTreeMap<String, FamilyAcc>,
    first_s: Option<f64>,
    last_s: f64,
}

impl Scrape {
    /// A scrape of `targets` every `every`, writing `dir/server_metrics.csv`.
    ///
    /// Errors: the CSV cannot be created.
    pub fn new(targets: &[http::Uri], every: Duration, dir: &Path) -> anyhow::Result<Scrape> {
        let path = dir.join(SERVER_METRICS_CSV);
        let file = std::fs::File::create(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        let mut csv = std::io::BufWriter::new(file);
        let mut header = String::from("second,from_s,t_s,targets_ok");
        for f in FIGURES {
            match f.shape {
                figures::Shape::Histogram => {
                    let stem = f.name.trim_end_matches("_ms");
                    header.push_str(&format!(",{stem}_p50_ms,{stem}_p99_ms,{stem}_count"));
                }
                figures::Shape::Counter => header.push_str(&format!(",{}_per_s", f.name)),
                figures::Shape::Gauge(_) => header.push_str(&format!(",{}", f.name)),
            }
        }
        writeln!(csv, "{header}")?;
        Ok(Scrape {
            every,
            targets: targets
                .iter()
                .map(|uri| Target {
                    report: TargetReport {
                        url: shown(uri),
                        scrapes: 0,
                        failed: 0,
                        slow: 0,
                        last_error: None,
                        skipped_lines: 0,
                        families: 0,
                    },
                    cumulative: Cumulative::default(),
                    last_good_s: None,
                })
                .collect(),
            csv,
            figures: vec![Accumulated::default(); FIGURES.len()],
            families: BTreeMap::new(),
            first_s: None,
            last_s: 0.0,
        })
    }
}

/// `http://user:pw@host:port/metrics?x` → `http://host:port/metrics`.
fn shown(uri: &http::Uri) -> String {
    let authority = uri.authority().map_or("", |a| a.as_str());
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!(
        "{}://{host}{}",
        uri.scheme_str().unwrap_or("http"),
        uri.path()
    )
}

impl Scrape {
    /// One tick's pages, one per target in order, asked for at `t_s` seconds from the run's
    /// epoch: readings, a CSV row, the run's figures. `last`: the scrape after the load ended.
    ///
    /// Errors: the CSV cannot be written.
    pub fn record(
        &mut self,
        t_s: f64,
        pages: Vec<Result<String, Failure>>,
        last: bool,
    ) -> anyhow::Result<()> {
        let mut good: Vec<(Vec<Reading>, Option<f64>)> = Vec::new();
        for (target, page) in self.targets.iter_mut().zip(pages) {
            target.report.scrapes += 1;
            let exposition = page.map(|text| parse::parse(&text)).and_then(|e| {
                // A page with no sample (a gateway's HTML, a server still starting) is no
                // baseline: every counter would then count from 0 at the next page.
                if e.samples.is_empty() {
                    Err(Failure::Other("the page holds no metrics".into()))
                } else {
                    Ok(e)
                }
            });
            match exposition {
                Ok(exposition) => {
                    target.report.skipped_lines += exposition.skipped_lines as u64;
                    let readings = target.cumulative.read(exposition);
                    let mut names: Vec<&str> = readings.iter().map(|r| r.family.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    target.report.families = names.len();
                    let interval = target.last_good_s.map(|p| t_s - p);
                    target.last_good_s = Some(t_s);
                    good.push((readings, interval));
                }
                Err(failure) => {
                    target.report.failed += 1;
                    if matches!(failure, Failure::Slow) {
                        target.report.slow += 1;
                    }
                    target.report.last_error = Some(failure.to_string());
                }
            }
        }
        if good.is_empty() {
            // Every target failed: said per target; no row, and the next row's interval
            // covers this one.
            return Ok(());
        }
        let scrapes: Vec<TargetScrape> = good
            .iter()
            .map(|(readings, interval_s)| TargetScrape {
                readings,
                interval_s: *interval_s,
            })
            .collect();
        // A row covers the interval since the previous good scrape, so it is named by the second
        // that interval starts in, as timeseries.csv names its rows. The first good scrape is the
        // baseline: no interval, no row.
        let since = self.first_s.map(|_| self.last_s);
        let baseline = since.is_none();
        self.first_s.get_or_insert(t_s);
        self.last_s = t_s;
        // Gauges are the load's only while it runs: not the baseline's idle server nor the one
        // after the last answer.
        let gauges = !baseline && !last;
        // A last interval much shorter than a tick would make its rates spikes: its increases go
        // into the totals, without a row.
        let short_last =
            last && since.is_some_and(|from| t_s - from < self.every.as_secs_f64() / 2.0);
        let row_due = !baseline && !short_last;
        let from = since.unwrap_or(t_s);
        let mut row = format!("{},{from:.3},{t_s:.3},{}", from.round(), scrapes.len());
        for (figure, acc) in FIGURES.iter().zip(self.figures.iter_mut()) {
            let value = figures::value(figure, &scrapes);
            if let Some((v, buckets, sum)) = &value
                && (gauges || !matches!(v, Value::Gauge(_)))
            {
                acc.add(v, buckets, *sum);
            }
            let cell = |v: Option<f64>| {
                v.filter(|v| v.is_finite())
                    .map_or(String::new(), |v| format!("{v}"))
            };
            match (figure.shape, value.map(|v| v.0)) {
                (figures::Shape::Histogram, Some(Value::Histogram { p50, p99, count })) => {
                    row.push_str(&format!(",{},{},{count}", cell(p50), cell(p99)))
                }
                (figures::Shape::Histogram, _) => row.push_str(",,,"),
                (_, Some(Value::Counter { per_s, .. })) => {
                    row.push_str(&format!(",{}", cell(Some(per_s))))
                }
                (_, Some(Value::Gauge(v))) => row.push_str(&format!(",{}", cell(Some(v)))),
                _ => row.push(','),
            }
        }
        if row_due {
            writeln!(self.csv, "{row}")?;
            self.csv.flush()?;
        }
        self.accumulate_families(&scrapes, gauges);
        Ok(())
    }

    fn accumulate_families(&mut self, scrapes: &[TargetScrape], with_gauges: bool) {
        // This scrape's gauges, summed over label sets and per label set, before they count.
        let mut gauges: BTreeMap<(&str, String), f64> = BTreeMap::new();
        for t in scrapes {
            for r in t.readings {
                let acc = self.families.entry(r.family.clone()).or_default();
                acc.kind = Some(r.kind);
                let key = label_key(&r.labels);
                if acc.label_sets.len() < 100 * MAX_LABEL_SETS || acc.label_sets.contains(&key) {
                    acc.label_sets.insert(key.clone());
                }
                let Some(v) = r.value else { continue };
                let kept = acc.by_labels.len() < MAX_LABEL_SETS || acc.by_labels.contains_key(&key);
                match (r.kind, r.part) {
                    (Kind::Gauge | Kind::Untyped, Part::Value) => {
                        *gauges
                            .entry((r.family.as_str(), String::new()))
                            .or_default() += v;
                        if kept {
                            *gauges.entry((r.family.as_str(), key)).or_default() += v;
                        }
                    }
                    (kind, part) => {
                        let add = |a: &mut Acc| match (kind, part) {
                            (Kind::Counter, _) => a.increase += v,
                            (Kind::Histogram | Kind::Summary, Part::Count) => a.count += v,
                            (Kind::Histogram | Kind::Summary, Part::Sum) => a.sum += v,
                            _ => {}
                        };
                        add(&mut acc.total);
                        if kept && !matches!(part, Part::Bucket { .. }) {
                            add(acc.by_labels.entry(key).or_default());
                        }
                    }
                }
            }
        }
        if !with_gauges {
            return;
        }
        for ((family, key), v) in gauges {
            if let Some(acc) = self.families.get_mut(family) {
                if key.is_empty() {
                    acc.total.gauge(v);
                } else {
                    acc.by_labels.entry(key).or_default().gauge(v);
                }
            }
        }
    }

    /// The run's server view; the CSV flushed.
    ///
    /// Errors: the CSV cannot be written.
    pub fn finish(mut self) -> anyhow::Result<ServerSummary> {
        self.csv.flush()?;
        Ok(self.summary())
    }

    fn summary(self) -> ServerSummary {
        let span = self.first_s.map_or(0.0, |first| self.last_s - first);
        let mut figures: BTreeMap<String, Option<Stats>> = FIGURES
            .iter()
            .zip(&self.figures)
            .map(|(f, acc)| (f.name.to_string(), acc.stats(f.shape, span)))
            .collect();
        let counter =
            |figures: &BTreeMap<String, Option<Stats>>, name: &str| match figures.get(name) {
                Some(Some(Stats::Counter(c))) => Some(c.total),
                _ => None,
            };
        let prefix_cache_hit_rate = match (
            counter(&figures, "prefix_cache_hits"),
            counter(&figures, "prefix_cache_queries"),
        ) {
            (Some(hits), Some(queries)) if queries > 0.0 => Some(hits / queries),
            _ => match figures.get("cache_hit_rate") {
                Some(Some(Stats::Gauge(g))) => Some(g.mean),
                _ => None,
            },
        };
        figures.retain(|_, _| true);
        let series = self
            .families
            .into_iter()
            .map(|(name, acc)| {
                let kind = acc.kind.unwrap_or(Kind::Untyped);
                let mut stats = acc.total.stats(kind);
                // One label set is the family itself: nothing to keep apart.
                if acc.label_sets.len() > 1 {
                    stats.by_labels = acc
                        .by_labels
                        .iter()
                        .map(|(key, a)| (key.clone(), a.stats(kind)))
                        .collect();
                    stats.label_sets = Some(acc.label_sets.len());
                }
                (name, stats)
            })
            .collect();
        ServerSummary {
            every_s: self.every.as_secs_f64(),
            targets: self.targets.into_iter().map(|t| t.report).collect(),
            figures,
            prefix_cache_hit_rate,
            energy_per_output_token_j: None,
            against_client: BTreeMap::new(),
            series,
        }
    }
}

/// The metric families a page holds (None: none, not a metrics page).
pub fn families_in(text: &str) -> Option<usize> {
    let exposition = parse::parse(text);
    let mut families: Vec<&str> = exposition
        .samples
        .iter()
        .map(|s| s.family.as_str())
        .collect();
    families.sort_unstable();
    families.dedup();
    (!families.is_empty()).then_some(families.len())
}

/// Why a scrape gave nothing.
#[derive(Debug)]
pub enum Failure {
    /// No whole page within `--scrape-every`: abandoned, tried again at the next tick.
    Slow,
    Status(u16),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Slow => write!(f, "no answer within --scrape-every"),
            Failure::Status(code) => write!(f, "HTTP {code}"),
            Failure::Other(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(tokens: u32, running: u32) -> Result<String, Failure> {
        Ok(format!(
            "# TYPE vllm:generation_tokens_total counter\nvllm:generation_tokens_total {tokens}\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running {running}\n"
        ))
    }

    fn scrape(pages: Vec<(f64, Result<String, Failure>, bool)>) -> (ServerSummary, String) {
        let dir = tempfile::tempdir().unwrap();
        let uri: http::Uri = "http://127.0.0.1:9/metrics".parse().unwrap();
        let mut s = Scrape::new(&[uri], Duration::from_secs(1), dir.path()).unwrap();
        for (t, p, last) in pages {
            s.record(t, vec![p], last).unwrap();
        }
        let summary = s.finish().unwrap();
        let csv = std::fs::read_to_string(dir.path().join(SERVER_METRICS_CSV)).unwrap();
        (summary, csv)
    }

    #[test]
    fn an_empty_page_is_no_baseline_and_counts_as_a_failed_scrape() {
        let (summary, _) = scrape(vec![
            (0.0, Ok(String::new()), false),
            (1.0, page(1_000_000, 0), false),
            (2.0, page(1_000_030, 2), true),
        ]);
        assert_eq!(summary.targets[0].failed, 1);
        assert_eq!(
            summary.targets[0].last_error.as_deref(),
            Some("the page holds no metrics")
        );
        match &summary.figures["generation_tokens"] {
            Some(Stats::Counter(c)) => assert_eq!(c.total, 30.0, "not the million before"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gauges_cover_the_load_not_the_idle_server_before_and_after_it() {
        let (summary, csv) = scrape(vec![
            (0.0, page(0, 0), false),
            (1.0, page(10, 4), false),
            (2.0, page(20, 4), false),
            (3.0, page(30, 0), true),
        ]);
        match &summary.figures["running"] {
            Some(Stats::Gauge(g)) => assert_eq!((g.mean, g.max), (4.0, 4.0)),
            other => panic!("{other:?}"),
        }
        // Rows are named by the second their interval starts in; no row for the baseline.
        let seconds: Vec<&str> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(seconds, ["0", "1", "2"]);
    }

    #[test]
    fn a_familys_label_sets_are_kept_apart_one_per_gpu() {
        let dcgm = || Ok(include_str!("../../tests/fixtures/metrics/dcgm.prom").to_string());
        let (summary, _) = scrape(vec![
            (0.0, dcgm(), false),
            (1.0, dcgm(), false),
            (2.0, dcgm(), true),
        ]);
        let util = &summary.series["DCGM_FI_DEV_GPU_UTIL"];
        assert_eq!(util.label_sets, Some(2));
        assert_eq!(util.mean, Some(178.0), "the family: the GPUs summed");
        let per_gpu: Vec<f64> = util.by_labels.values().filter_map(|s| s.mean).collect();
        assert_eq!(per_gpu, [87.0, 91.0]);
        assert!(
            util.by_labels.keys().all(|k| k.contains("gpu=")),
            "{:?}",
            util.by_labels.keys()
        );
        match &summary.figures["gpu_util"] {
            Some(Stats::Gauge(g)) => {
                assert!((g.mean - 0.89).abs() < 1e-9, "the figure: their mean")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_last_interval_much_shorter_than_a_tick_goes_into_the_totals_without_a_row() {
        let (summary, csv) = scrape(vec![
            (0.0, page(0, 0), false),
            (1.0, page(100, 4), false),
            (1.05, page(110, 0), true),
        ]);
        assert_eq!(csv.lines().count(), 2, "{csv}");
        match &summary.figures["generation_tokens"] {
            Some(Stats::Counter(c)) => assert_eq!(c.total, 110.0),
            other => panic!("{other:?}"),
        }
    }
}
