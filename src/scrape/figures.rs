//! Named server figures (running, waiting, KV-cache usage, server-side TTFT ...) read from the
//! families the servers people benchmark expose, per scrape and over the run; every other family
//! kept raw by name.
//!
//! Families, each from its server's documentation (vLLM "Production Metrics", docs.vllm.ai/en/
//! stable/usage/metrics; SGLang "Production Metrics", docs.sglang.ai/references/
//! production_metrics; TGI "Metrics", huggingface.co/docs/text-generation-inference/reference/
//! metrics; llama.cpp tools/server/README.md `/metrics`; NVIDIA dcgm-exporter
//! etc/default-counters.csv): the README's metric map lists them per server. Where a server
//! renamed a family, both names are listed, the newest first; the first one a scrape holds is read.

use super::parse::{Kind, Part};
use super::series::Reading;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a gauge's label sets (one per GPU, per model, per engine) become one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Requests, memory, power: the server's (or the node's) total.
    Sum,
    /// Utilisation, clocks: the GPUs' mean.
    Mean,
    /// KV-cache usage, temperature: the fullest (hottest) one.
    Max,
}

/// What a named figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Gauge(Combine),
    /// A counter's increase; a histogram's `_sum` counts too (TGI's token lengths).
    Counter,
    /// Per-request times: percentiles from the buckets' increases.
    Histogram,
}

/// One family a figure can be read from, and the factor to its unit.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// As `parse` names it: a counter's without `_total`.
    pub family: &'static str,
    pub scale: f64,
    /// Read a histogram family's `_sum` as the counter (token lengths as totals).
    pub histogram_sum: bool,
}

const fn src(family: &'static str, scale: f64) -> Source {
    Source {
        family,
        scale,
        histogram_sum: false,
    }
}

const fn sum_of(family: &'static str) -> Source {
    Source {
        family,
        scale: 1.0,
        histogram_sum: true,
    }
}

/// A named figure: its name in `summary.json` (`server.<name>`) and `server_metrics.csv`.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub name: &'static str,
    pub shape: Shape,
    pub sources: &'static [Source],
}

const MS: f64 = 1000.0;

/// Every named figure, in the order the CSV and the printed summary give them.
pub const FIGURES: &[Figure] = &[
    Figure {
        name: "running",
        shape: Shape::Gauge(Combine::Sum),
        sources: &[
            src("vllm:num_requests_running", 1.0),
            src("sglang:num_running_reqs", 1.0),
            src("tgi_batch_current_size", 1.0),
            src("llamacpp:requests_processing", 1.0),
        ],
    },
    Figure {
        name: "waiting",
        shape: Shape::Gauge(Combine::Sum),
        sources: &[
            src("vllm:num_requests_waiting", 1.0),
            src("sglang:num_queue_reqs", 1.0),
            src("tgi_queue_size", 1.0),
            src("llamacpp:requests_deferred", 1.0),
        ],
    },
    Figure {
        name: "kv_cache_usage",
        shape: Shape::Gauge(Combine::Max),
        sources: &[
            src("vllm:kv_cache_usage_perc", 1.0),
            src("vllm:gpu_cache_usage_perc", 1.0),
            src("sglang:token_usage", 1.0),
            src("llamacpp:kv_cache_usage_ratio", 1.0),
        ],
    },
    Figure {
        name: "prompt_tokens",
        shape: Shape::Counter,
        sources: &[
            src("vllm:prompt_tokens", 1.0),
            src("sglang:prompt_tokens", 1.0),
            src("llamacpp:prompt_tokens", 1.0),
            sum_of("tgi_request_input_length"),
        ],
    },
    Figure {
        name: "generation_tokens",
        shape: Shape::Counter,
        sources: &[
            src("vllm:generation_tokens", 1.0),
            src("sglang:generation_tokens", 1.0),
            src("llamacpp:tokens_predicted", 1.0),
            sum_of("tgi_request_generated_tokens"),
        ],
    },
    Figure {
        name: "prefix_cache_queries",
        shape: Shape::Counter,
        sources: &[
            src("vllm:prefix_cache_queries", 1.0),
            src("vllm:gpu_prefix_cache_queries", 1.0),
        ],
    },
    Figure {
        name: "prefix_cache_hits",
        shape: Shape::Counter,
        sources: &[
            src("vllm:prefix_cache_hits", 1.0),
            src("vllm:gpu_prefix_cache_hits", 1.0),
            src("sglang:cached_tokens", 1.0),
            src("llamacpp:prompt_tokens_cached", 1.0),
        ],
    },
    Figure {
        name: "cache_hit_rate",
        shape: Shape::Gauge(Combine::Mean),
        sources: &[src("sglang:cache_hit_rate", 1.0)],
    },
    Figure {
        name: "preemptions",
        shape: Shape::Counter,
        // SGLang "retracts" a running request to free KV cache: its preemption.
        sources: &[
            src("vllm:num_preemptions", 1.0),
            src("sglang:num_retracted_requests", 1.0),
        ],
    },
    Figure {
        name: "ttft_ms",
        shape: Shape::Histogram,
        sources: &[
            src("vllm:time_to_first_token_seconds", MS),
            src("sglang:time_to_first_token_seconds", MS),
        ],
    },
    Figure {
        name: "itl_ms",
        shape: Shape::Histogram,
        sources: &[
            src("vllm:inter_token_latency_seconds", MS),
            src("vllm:time_per_output_token_seconds", MS),
            src("sglang:inter_token_latency_seconds", MS),
            src("tgi_request_mean_time_per_token_duration", MS),
        ],
    },
    Figure {
        name: "e2e_ms",
        shape: Shape::Histogram,
        sources: &[
            src("vllm:e2e_request_latency_seconds", MS),
            src("sglang:e2e_request_latency_seconds", MS),
            src("tgi_request_duration", MS),
        ],
    },
    Figure {
        name: "queue_ms",
        shape: Shape::Histogram,
        sources: &[
            src("vllm:request_queue_time_seconds", MS),
            src("sglang:queue_time_seconds", MS),
            src("tgi_request_queue_duration", MS),
        ],
    },
    Figure {
        name: "gpu_util",
        shape: Shape::Gauge(Combine::Mean),
        // Percent → a 0–1 share, as every other share here.
        sources: &[src("DCGM_FI_DEV_GPU_UTIL", 0.01)],
    },
    Figure {
        name: "gpu_memory_used_mib",
        shape: Shape::Gauge(Combine::Sum),
        sources: &[src("DCGM_FI_DEV_FB_USED", 1.0)],
    },
    Figure {
        name: "gpu_power_w",
        shape: Shape::Gauge(Combine::Sum),
        sources: &[src("DCGM_FI_DEV_POWER_USAGE", 1.0)],
    },
    Figure {
        name: "gpu_energy_j",
        shape: Shape::Counter,
        // Millijoules since the driver loaded → joules.
        sources: &[src("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", 0.001)],
    },
    Figure {
        name: "gpu_sm_clock_mhz",
        shape: Shape::Gauge(Combine::Mean),
        sources: &[src("DCGM_FI_DEV_SM_CLOCK", 1.0)],
    },
    Figure {
        name: "gpu_temperature_c",
        shape: Shape::Gauge(Combine::Max),
        sources: &[src("DCGM_FI_DEV_GPU_TEMP", 1.0)],
    },
];

/// One scrape's readings from one target, and the seconds since that target's previous good
/// scrape (None for its first: increases are then unknown).
pub struct TargetScrape<'a> {
    pub readings: &'a [Reading],
    pub interval_s: Option<f64>,
}

/// A named figure in one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Gauge(f64),
    /// Increase per second over the interval, and the increase.
    Counter {
        per_s: f64,
        increase: f64,
    },
    Histogram {
        p50: Option<f64>,
        p99: Option<f64>,
        count: f64,
    },
}

/// Cumulative buckets (upper bound in the figure's unit, count), sorted by bound.
type Buckets = Vec<(f64, f64)>;

/// The value of `figure` in one interval: read from the first of its sources any target holds.
pub fn value<'a>(figure: &Figure, scrapes: &[TargetScrape<'a>]) -> Option<(Value, Buckets, f64)> {
    let source = figure.sources.iter().find(|s| {
        scrapes
            .iter()
            .any(|t| t.readings.iter().any(|r| r.family == s.family))
    })?;
    // The source family's readings of one target, borrowed (a page may hold thousands).
    let of = |t: &TargetScrape<'a>| {
        let readings: &'a [Reading] = t.readings;
        readings.iter().filter(move |r| r.family == source.family)
    };
    match figure.shape {
        Shape::Gauge(combine) => {
            let values: Vec<f64> = scrapes
                .iter()
                .flat_map(&of)
                .filter(|r| r.part == Part::Value && matches!(r.kind, Kind::Gauge | Kind::Untyped))
                .filter_map(|r| r.value)
                .map(|v| v * source.scale)
                .collect();
            if values.is_empty() {
                return None;
            }
            let v = match combine {
                Combine::Sum => values.iter().sum(),
                Combine::Mean => values.iter().sum::<f64>() / values.len() as f64,
                Combine::Max => values.iter().copied().fold(f64::MIN, f64::max),
            };
            Some((Value::Gauge(v), Vec::new(), 0.0))
        }
        Shape::Counter => {
            let (mut increase, mut per_s, mut any) = (0.0, 0.0, false);
            for t in scrapes {
                let Some(dt) = t.interval_s.filter(|dt| *dt > 0.0) else {
                    continue;
                };
                let inc: f64 = of(t)
                    .filter(|r| {
                        if source.histogram_sum {
                            r.part == Part::Sum
                        } else {
                            r.part == Part::Value && r.kind == Kind::Counter
                        }
                    })
                    .filter_map(|r| r.value)
                    .sum::<f64>()
                    * source.scale;
                any = true;
                increase += inc;
                per_s += inc / dt;
            }
            any.then_some((Value::Counter { per_s, increase }, Vec::new(), 0.0))
        }
        Shape::Histogram => {
            let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
            let mut sum = 0.0;
            let mut any = false;
            for t in scrapes.iter().filter(|t| t.interval_s.is_some()) {
                for r in of(t) {
                    match (r.part, r.value) {
                        (Part::Bucket { le }, Some(v)) => {
                            any = true;
                            let bound = le * source.scale;
                            by_bound.entry(order_key(bound)).or_insert((bound, 0.0)).1 += v;
                        }
                        (Part::Sum, Some(v)) => sum += v * source.scale,
                        _ => {}
                    }
                }
            }
            if !any {
                return None;
            }
            let buckets: Buckets = by_bound.into_values().collect();
            let count = buckets.last().map_or(0.0, |b| b.1);
            Some((
                Value::Histogram {
                    p50: quantile(&buckets, 0.5),
                    p99: quantile(&buckets, 0.99),
                    count,
                },
                buckets,
                sum,
            ))
        }
    }
}

/// An f64's order as a u64 (positive bounds; +Inf last).
fn order_key(v: f64) -> u64 {
    if v.is_sign_negative() { 0 } else { v.to_bits() }
}

/// The q-quantile of cumulative buckets, interpolated linearly within the bucket that holds it,
/// as Prometheus' `histogram_quantile` does (the lowest bucket from 0; a quantile in the +Inf
/// bucket is the highest finite bound). None when the buckets are empty.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let share = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * share);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

/// The bounds of the bucket holding the q-quantile (the +Inf bucket: from the highest finite bound
/// to +Inf, written as that bound twice, since JSON has no infinity).
pub fn bucket_of(buckets: &[(f64, f64)], q: f64) -> Option<[f64; 2]> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            return Some(if bound.is_infinite() {
                [lower, lower]
            } else {
                [lower, bound]
            });
        }
        lower = bound;
    }
    None
}

/// A gauge over the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GaugeStats {
    pub mean: f64,
    pub max: f64,
    pub last: f64,
}

/// A counter over the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CounterStats {
    pub total: f64,
    pub per_s: f64,
}

/// Per-request times over the run, from the summed bucket increases, in ms. The mean is exact
/// (`_sum` ÷ `_count`); a percentile is interpolated inside the bucket that holds it, so it is
/// only known to lie within that bucket's bounds (`p50_within`, `p99_within`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HistogramStats {
    pub count: f64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p50_within: Option<[f64; 2]>,
    pub p99_within: Option<[f64; 2]>,
}

/// A named figure over the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Stats {
    Gauge(GaugeStats),
    Counter(CounterStats),
    Histogram(HistogramStats),
}

/// A named figure's intervals, accumulated.
#[derive(Debug, Clone, Default)]
pub struct Accumulated {
    n: u64,
    sum: f64,
    max: f64,
    last: f64,
    increase: f64,
    buckets: BTreeMap<u64, (f64, f64)>,
    histogram_sum: f64,
}

impl Accumulated {
    pub fn add(&mut self, value: &Value, buckets: &[(f64, f64)], histogram_sum: f64) {
        match *value {
            Value::Gauge(v) => {
                self.max = if self.n == 0 { v } else { self.max.max(v) };
                self.n += 1;
                self.sum += v;
                self.last = v;
            }
            Value::Counter { increase, .. } => {
                self.n += 1;
                self.increase += increase;
            }
            Value::Histogram { .. } => {
                self.n += 1;
                for &(bound, count) in buckets {
                    self.buckets
                        .entry(order_key(bound))
                        .or_insert((bound, 0.0))
                        .1 += count;
                }
                self.histogram_sum += histogram_sum;
            }
        }
    }

    /// None when no interval had the figure: absent, never 0.
    pub fn stats(&self, shape: Shape, span_s: f64) -> Option<Stats> {
        if self.n == 0 {
            return None;
        }
        Some(match shape {
            Shape::Gauge(_) => Stats::Gauge(GaugeStats {
                mean: self.sum / self.n as f64,
                max: self.max,
                last: self.last,
            }),
            Shape::Counter => Stats::Counter(CounterStats {
                total: self.increase,
                per_s: if span_s > 0.0 {
                    self.increase / span_s
                } else {
                    0.0
                },
            }),
            Shape::Histogram => {
                let buckets: Vec<(f64, f64)> = self.buckets.values().copied().collect();
                let count = buckets.last().map_or(0.0, |b| b.1);
                Stats::Histogram(HistogramStats {
                    count,
                    mean: (count > 0.0).then(|| self.histogram_sum / count),
                    p50: quantile(&buckets, 0.5),
                    p90: quantile(&buckets, 0.9),
                    p99: quantile(&buckets, 0.99),
                    p50_within: bucket_of(&buckets, 0.5),
                    p99_within: bucket_of(&buckets, 0.99),
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_interpolated_within_its_bucket_as_prometheus_does() {
        let b = [(10.0, 50.0), (20.0, 90.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&b, 0.5), Some(10.0));
        assert_eq!(quantile(&b, 0.25), Some(5.0));
        assert_eq!(quantile(&b, 0.7), Some(15.0));
        // In the +Inf bucket: the highest finite bound.
        assert_eq!(quantile(&b, 0.99), Some(20.0));
        assert_eq!(quantile(&[(10.0, 0.0)], 0.5), None);
        assert_eq!(bucket_of(&b, 0.7), Some([10.0, 20.0]));
        assert_eq!(bucket_of(&b, 0.25), Some([0.0, 10.0]));
    }
}

/// The servers' pages as documented (tests/fixtures/metrics/, each naming its sources), read
/// after a baseline page that held none of their series: every counter's increase is its value.
#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::scrape::parse::parse;
    use crate::scrape::series::Cumulative;

    /// Every named figure of `page`, over one 1-second interval.
    fn figures(page: &str) -> BTreeMap<&'static str, Stats> {
        let mut c = Cumulative::default();
        c.read(parse(""));
        let exposition = parse(page);
        assert_eq!(exposition.skipped_lines, 0, "every line of the page reads");
        let readings = c.read(exposition);
        let scrape = [TargetScrape {
            readings: &readings,
            interval_s: Some(1.0),
        }];
        FIGURES
            .iter()
            .filter_map(|f| {
                let (v, buckets, sum) = value(f, &scrape)?;
                let mut acc = Accumulated::default();
                acc.add(&v, &buckets, sum);
                Some((f.name, acc.stats(f.shape, 1.0)?))
            })
            .collect()
    }

    fn gauge(f: &BTreeMap<&str, Stats>, name: &str) -> f64 {
        match &f[name] {
            Stats::Gauge(g) => g.last,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn total(f: &BTreeMap<&str, Stats>, name: &str) -> f64 {
        match &f[name] {
            Stats::Counter(c) => c.total,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn times(f: &BTreeMap<&str, Stats>, name: &str) -> HistogramStats {
        match &f[name] {
            Stats::Histogram(h) => h.clone(),
            other => panic!("{name}: {other:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn vllm_metrics_give_every_named_server_figure() {
        let page = include_str!("../../tests/fixtures/metrics/vllm.prom");
        assert!(
            !parse(page)
                .samples
                .iter()
                .any(|s| s.family.ends_with("_created")),
            "prometheus_client's _created gauges are no reading"
        );
        let f = figures(page);
        assert_eq!(gauge(&f, "running"), 4.0);
        assert_eq!(gauge(&f, "waiting"), 2.0);
        assert_eq!(gauge(&f, "kv_cache_usage"), 0.42);
        assert_eq!(total(&f, "prompt_tokens"), 12345.0);
        assert_eq!(total(&f, "generation_tokens"), 6789.0);
        assert_eq!(total(&f, "prefix_cache_queries"), 10000.0);
        assert_eq!(total(&f, "prefix_cache_hits"), 2500.0);
        assert_eq!(total(&f, "preemptions"), 3.0);
        let ttft = times(&f, "ttft_ms");
        assert_eq!(ttft.count, 100.0);
        assert!(close(ttft.mean.unwrap(), 118.0), "{ttft:?}");
        // 50 of 100 at or under 80 ms: the median is the 80 ms bound.
        assert!(close(ttft.p50.unwrap(), 80.0), "{ttft:?}");
        assert_eq!(ttft.p50_within, Some([60.0, 80.0]));
        assert_eq!(times(&f, "itl_ms").count, 6689.0);
        assert!(close(times(&f, "e2e_ms").mean.unwrap(), 1825.0));
        assert!(close(times(&f, "queue_ms").mean.unwrap(), 47.5));
        assert!(!f.contains_key("gpu_util"), "no GPU figures from vLLM");
    }

    #[test]
    fn sglang_metrics_give_its_named_server_figures() {
        let f = figures(include_str!("../../tests/fixtures/metrics/sglang.prom"));
        assert_eq!(gauge(&f, "running"), 4.0);
        assert_eq!(gauge(&f, "waiting"), 2.0);
        assert_eq!(gauge(&f, "kv_cache_usage"), 0.42);
        assert_eq!(gauge(&f, "cache_hit_rate"), 0.25);
        assert_eq!(total(&f, "prompt_tokens"), 12345.0);
        assert_eq!(total(&f, "generation_tokens"), 6789.0);
        assert_eq!(total(&f, "prefix_cache_hits"), 2500.0);
        assert!(close(times(&f, "ttft_ms").mean.unwrap(), 118.0));
        assert_eq!(times(&f, "itl_ms").count, 6689.0);
        assert!(close(times(&f, "queue_ms").mean.unwrap(), 47.5));
    }

    #[test]
    fn tgi_metrics_give_its_named_server_figures_tokens_from_histogram_sums() {
        let f = figures(include_str!("../../tests/fixtures/metrics/tgi.prom"));
        assert_eq!(gauge(&f, "running"), 4.0);
        assert_eq!(gauge(&f, "waiting"), 2.0);
        assert_eq!(total(&f, "prompt_tokens"), 12345.0);
        assert_eq!(total(&f, "generation_tokens"), 6789.0);
        assert!(close(times(&f, "e2e_ms").mean.unwrap(), 1825.0));
        assert!(close(times(&f, "queue_ms").mean.unwrap(), 47.5));
        assert!(close(times(&f, "itl_ms").mean.unwrap(), 25.0));
        // TGI exposes no TTFT and no KV-cache gauge: absent, not 0.
        assert!(!f.contains_key("ttft_ms") && !f.contains_key("kv_cache_usage"));
    }

    #[test]
    fn llamacpp_metrics_give_its_named_server_figures() {
        let f = figures(include_str!("../../tests/fixtures/metrics/llamacpp.prom"));
        assert_eq!(gauge(&f, "running"), 4.0);
        assert_eq!(gauge(&f, "waiting"), 2.0);
        assert_eq!(total(&f, "prompt_tokens"), 12345.0);
        assert_eq!(total(&f, "generation_tokens"), 6789.0);
        assert_eq!(total(&f, "prefix_cache_hits"), 2500.0);
        assert!(!f.contains_key("kv_cache_usage"), "removed upstream");
    }

    #[test]
    fn dcgm_metrics_give_the_gpus_figures_summed_or_averaged_as_each_reads() {
        let f = figures(include_str!("../../tests/fixtures/metrics/dcgm.prom"));
        assert!(close(gauge(&f, "gpu_util"), 0.89), "the GPUs' mean");
        assert!(close(gauge(&f, "gpu_power_w"), 510.75), "the node's total");
        assert_eq!(gauge(&f, "gpu_memory_used_mib"), 81000.0);
        assert!(close(gauge(&f, "gpu_sm_clock_mhz"), 1867.5));
        assert_eq!(gauge(&f, "gpu_temperature_c"), 64.0, "the hottest");
        assert!(close(
            total(&f, "gpu_energy_j"),
            (123_456_789_012.0 + 134_567_890_123.0) / 1000.0
        ));
        assert!(!f.contains_key("running"));
    }
}
