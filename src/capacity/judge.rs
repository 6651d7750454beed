//! A probe's judgement against its objectives, each with its uncertainty: a percentile objective
//! by the bootstrap interval of the percentile, the attainment of per-request SLOs by the
//! bootstrap interval of the share meeting them, `--fail-on` gates by their value. An interval on
//! both sides of its limit is *inconclusive*: the probe runs on before it is judged.

use crate::stats::gate::{Op, Thresholds, Unit};
use crate::stats::{PercentileSlo, RunStats, ScaledHistogram, SloTime, Summary, bootstrap};
use serde::{Deserialize, Serialize};

/// A probe's (or one objective's) outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The interval straddles the limit: more requests are needed to tell.
    Inconclusive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        }
    }
}

/// What a probe must meet.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    /// `--slo ttft.p99=500ms`: a percentile over every measured request, failures as slower
    /// than any limit.
    pub percentiles: Vec<PercentileSlo>,
    /// `--slo ttft=500ms` with `--attainment 99%`: the share of requests meeting every
    /// per-request SLO must be at least this.
    pub attainment: Option<f64>,
    /// `--fail-on` gates on a probe's own figures (the `search.*` ones judge the answer).
    pub gates: Thresholds,
    /// Of each interval, two-sided: 0.95.
    pub confidence: f64,
}

/// One objective's figure and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    /// `ttft.p99`, `slo_attainment`, or a gate's metric.
    pub name: String,
    /// `ms` for a percentile, `share` for the attainment, or the gate's unit.
    pub unit: Unit,
    pub limit: f64,
    /// The figure; null when nothing was measured, or when it lies past every answer (the
    /// percentile fell among failed requests).
    pub value: Option<f64>,
    /// The bootstrap interval (null ends: past every answer). Gates have none.
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub outcome: Outcome,
}

/// A probe's verdict: every objective's, and the worst of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub outcome: Outcome,
    pub objectives: Vec<Judged>,
}

impl Judgement {
    /// A probe still inconclusive after its last extension: judged on each figure alone (a
    /// figure past every answer fails).
    pub fn passes_on_figures(&self) -> bool {
        self.objectives.iter().all(|o| match o.outcome {
            Outcome::Pass => true,
            Outcome::Fail => false,
            Outcome::Inconclusive => match (o.value, o.unit) {
                (None, _) => false,
                (Some(v), Unit::Share) => v >= o.limit,
                (Some(v), _) => v <= o.limit,
            },
        })
    }
}

impl Criteria {
    /// `ttft.p99 ≤ 500 ms, slo attainment ≥ 99%`: the objectives as the answer names them.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .percentiles
            .iter()
            .map(|p| format!("{} ≤ {} ms", p.name(), trim(p.limit_ms)))
            .collect();
        if let Some(share) = self.attainment {
            parts.push(format!("{}% meeting --slo", trim(share * 100.0)));
        }
        parts.extend(
            self.gates
                .0
                .iter()
                .filter(|g| !g.metric.judges_a_search())
                .map(|g| {
                    // The gate fails on its expression; the objective is what passes.
                    let holds = match g.op {
                        Op::Above => "≤",
                        Op::AtLeast => "<",
                        Op::Below => "≥",
                        Op::AtMost => ">",
                    };
                    let limit = g.text[g.metric_text.len()..].trim_start_matches(['<', '>', '=']);
                    format!("{} {holds} {}", g.metric_text.trim(), limit.trim())
                }),
        );
        parts.join(", ")
    }

    /// Judges what `stats` holds so far; `summary` is made only when a gate needs it.
    pub fn judge(&self, stats: &RunStats, summary: impl FnOnce() -> Summary) -> Judgement {
        let mut objectives: Vec<Judged> = self
            .percentiles
            .iter()
            .map(|p| self.percentile(p, stats))
            .collect();
        if let (Some(target), Some(tally)) = (self.attainment, &stats.slo) {
            let judged = tally.requests - tally.unjudged;
            let (value, low, high) = if judged == 0 {
                (None, None, None)
            } else {
                let (low, high) = bootstrap::share_interval(tally.all, judged, self.confidence);
                (
                    Some(tally.all as f64 / judged as f64),
                    Some(low),
                    Some(high),
                )
            };
            objectives.push(Judged {
                name: "slo_attainment".into(),
                unit: Unit::Share,
                limit: target,
                value,
                low,
                high,
                outcome: match (low, high) {
                    (Some(low), _) if low >= target => Outcome::Pass,
                    (_, Some(high)) if high < target => Outcome::Fail,
                    _ => Outcome::Inconclusive,
                },
            });
        }
        if self.gates.0.iter().any(|g| !g.metric.judges_a_search()) {
            let summary = summary();
            objectives.extend(
                self.gates
                    .judge(&summary, stats)
                    .into_iter()
                    .map(|verdict| Judged {
                        name: verdict.expression,
                        unit: verdict.unit,
                        limit: verdict.limit,
                        value: verdict.value,
                        low: None,
                        high: None,
                        outcome: if verdict.failed {
                            Outcome::Fail
                        } else {
                            Outcome::Pass
                        },
                    }),
            );
        }
        Judgement {
            outcome: worst(objectives.iter().map(|o| o.outcome)),
            objectives,
        }
    }

    fn percentile(&self, p: &PercentileSlo, stats: &RunStats) -> Judged {
        let histogram: &ScaledHistogram = match p.time {
            SloTime::Ttft => &stats.ttft,
            SloTime::Tpot => &stats.tpot,
            SloTime::E2e => &stats.latency,
        };
        let ok = histogram.inner().len() as usize;
        let failed = failed_requests(stats) as usize;
        let n = ok + failed;
        let value_at = |i: usize| {
            if i < ok {
                histogram
                    .inner()
                    .value_at_quantile((i + 1) as f64 / ok as f64) as f64
                    / 1000.0
            } else {
                f64::INFINITY
            }
        };
        let finite = |v: f64| v.is_finite().then_some(v);
        let (value, low, high, outcome) = if n == 0 {
            (None, None, None, Outcome::Inconclusive)
        } else {
            let value = value_at(bootstrap::rank(p.quantile, n) - 1);
            let (low, high) =
                bootstrap::percentile_interval(p.quantile, n, self.confidence, value_at);
            let outcome = if high <= p.limit_ms {
                Outcome::Pass
            } else if low > p.limit_ms {
                Outcome::Fail
            } else {
                Outcome::Inconclusive
            };
            (finite(value), finite(low), finite(high), outcome)
        };
        Judged {
            name: p.name(),
            unit: Unit::Millis,
            limit: p.limit_ms,
            value,
            low,
            high,
            outcome,
        }
    }
}

/// Measured requests sent that did not end ok.
fn failed_requests(stats: &RunStats) -> u64 {
    crate::record::Status::ALL
        .iter()
        .filter(|s| **s != crate::record::Status::Ok && !s.not_sent())
        .map(|s| stats.count(*s))
        .sum()
}

/// Fail if any fails, else inconclusive if any is, else pass (no objective: inconclusive).
fn worst(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    let mut seen = None;
    for outcome in outcomes {
        seen = Some(match (seen, outcome) {
            (_, Outcome::Fail) | (Some(Outcome::Fail), _) => Outcome::Fail,
            (_, Outcome::Inconclusive) | (Some(Outcome::Inconclusive), _) => Outcome::Inconclusive,
            _ => Outcome::Pass,
        });
    }
    seen.unwrap_or(Outcome::Inconclusive)
}

/// `500` not `500.0`; `32.5` as is.
fn trim(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Record, Status};
    use crate::stats::Objectives;

    fn stats_of(ttfts: impl IntoIterator<Item = f64>, failed: usize) -> RunStats {
        let mut stats = RunStats::with_slo(Some(crate::stats::Slo::parse("ttft=500ms").unwrap()));
        for (i, ttft) in ttfts.into_iter().enumerate() {
            let mut r = Record::empty(i.to_string(), i as u64, Status::Ok);
            r.ttft_ms = Some(ttft);
            r.sent_at = Some(i as f64);
            r.latency_ms = Some(ttft + 10.0);
            stats.add(&r);
        }
        for i in 0..failed {
            let mut r = Record::empty(format!("f{i}"), 0, Status::HttpError);
            r.sent_at = Some(0.0);
            r.latency_ms = Some(1.0);
            stats.add(&r);
        }
        stats
    }

    fn criteria(slo: &str, attainment: Option<f64>) -> Criteria {
        Criteria {
            percentiles: Objectives::parse(slo).unwrap().percentiles,
            attainment,
            gates: Thresholds::default(),
            confidence: 0.95,
        }
    }

    fn outcome(c: &Criteria, stats: &RunStats) -> Outcome {
        c.judge(stats, || unreachable!("no gate")).outcome
    }

    #[test]
    fn a_p99_clearly_under_or_over_its_limit_is_decided() {
        let c = criteria("ttft.p99=500ms", None);
        // 2,000 answers, the slowest 0.5% at 600 ms: p99 is far from 500 ms in rank.
        let fast = (0..1990)
            .map(|i| 100.0 + (i % 50) as f64)
            .chain([600.0; 10]);
        assert_eq!(outcome(&c, &stats_of(fast, 0)), Outcome::Pass);
        let slow = (0..1900).map(|_| 100.0).chain([700.0; 100]);
        assert_eq!(outcome(&c, &stats_of(slow, 0)), Outcome::Fail);
    }

    #[test]
    fn a_p99_from_few_requests_is_inconclusive() {
        // 60 answers, one slow: p99 is the slowest or next, and the resamples disagree.
        let c = criteria("ttft.p99=500ms", None);
        let few = (0..59).map(|_| 100.0).chain([900.0]);
        assert_eq!(outcome(&c, &stats_of(few, 0)), Outcome::Inconclusive);
    }

    #[test]
    fn failed_requests_count_against_a_percentile() {
        // Every answer fast, but 3% failed: the p99 lies among the failures.
        let c = criteria("ttft.p99=500ms", None);
        let judged = c.judge(&stats_of((0..970).map(|_| 50.0), 30), || unreachable!());
        assert_eq!(judged.outcome, Outcome::Fail);
        assert_eq!(judged.objectives[0].value, None);
    }

    #[test]
    fn attainment_is_judged_by_the_share_meeting_every_slo() {
        let c = criteria("ttft.p50=1s", Some(0.9));
        // 95% under 500 ms out of 2,000: the share's interval is above 90%.
        let good = (0..1900).map(|_| 100.0).chain([800.0; 100]);
        let judged = c.judge(&stats_of(good, 0), || unreachable!());
        assert_eq!(judged.outcome, Outcome::Pass, "{judged:?}");
        let poor = (0..1600).map(|_| 100.0).chain([800.0; 400]);
        assert_eq!(outcome(&c, &stats_of(poor, 0)), Outcome::Fail);
    }
}
