//! Service-level objectives (`--slo ttft=500ms,tpot=50ms,e2e=10s`): which requests meet them, and goodput.

use crate::record::{Flag, Record, Status, millis};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits a request must stay within; any subset may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Slo {
    pub ttft: Option<Duration>,
    pub tpot: Option<Duration>,
    pub e2e: Option<Duration>,
}

impl Slo {
    /// Parses `ttft=500ms,tpot=50ms,e2e=10s` (any subset, any order; a bare number is refused).
    pub fn parse(text: &str) -> Result<Slo, String> {
        match Objectives::parse(text)? {
            Objectives {
                per_request: Some(slo),
                percentiles,
            } if percentiles.is_empty() => Ok(slo),
            _ => Err(format!(
                "{text:?}: expected per-request limits only, e.g. ttft=500ms,e2e=10s"
            )),
        }
    }
}

/// A per-request time an objective limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloTime {
    Ttft,
    Tpot,
    /// End-to-end: the request's latency.
    E2e,
}

impl SloTime {
    fn parse(name: &str) -> Option<SloTime> {
        Some(match name {
            "ttft" => SloTime::Ttft,
            "tpot" => SloTime::Tpot,
            "e2e" => SloTime::E2e,
            _ => None?,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SloTime::Ttft => "ttft",
            SloTime::Tpot => "tpot",
            SloTime::E2e => "e2e",
        }
    }
}

/// A limit on a percentile of a per-request time (`ttft.p99=500ms`): the q-quantile of the time
/// over every measured request, a failed request counted as slower than any limit (so 2% failed
/// requests fail a p99 objective whatever the others did).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PercentileSlo {
    pub time: SloTime,
    /// In (0, 1]: 0.99 for p99.
    pub quantile: f64,
    pub limit_ms: f64,
}

impl PercentileSlo {
    /// `ttft.p99`.
    pub fn name(&self) -> String {
        format!(
            "{}.p{}",
            self.time.as_str(),
            crate::stats::gate::percent_label(self.quantile)
        )
    }
}

/// Everything `--slo` gives: per-request limits (goodput's) and percentile objectives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Objectives {
    pub per_request: Option<Slo>,
    pub percentiles: Vec<PercentileSlo>,
}

impl Objectives {
    /// Parses `ttft=500ms,e2e=10s` (per request) and `ttft.p99=500ms,e2e.p90=2s` (percentiles),
    /// mixed in any order; a bare number (no unit) is refused.
    pub fn parse(text: &str) -> Result<Objectives, String> {
        let mut slo = Slo::default();
        let mut percentiles: Vec<PercentileSlo> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected NAME=DURATION, e.g. ttft=500ms"))?;
            let (key, value) = (key.trim(), value.trim());
            // A bare number would be seconds for other flags; for an SLO that is almost never meant.
            if value.parse::<f64>().is_ok() {
                return Err(format!(
                    "{part}: {value} what? give a unit, e.g. {key}={value}ms"
                ));
            }
            let limit = crate::duration::parse_duration(value)?;
            let (name, stat) = match key.split_once('.') {
                Some((name, stat)) => (name, Some(stat)),
                None => (key, None),
            };
            let time = SloTime::parse(name).ok_or_else(|| {
                format!("{name:?}: SLOs are ttft, tpot and e2e (each alone, or with a percentile: ttft.p99)")
            })?;
            let twice = || format!("{key:?} is given twice");
            match stat {
                None => {
                    let slot = match time {
                        SloTime::Ttft => &mut slo.ttft,
                        SloTime::Tpot => &mut slo.tpot,
                        SloTime::E2e => &mut slo.e2e,
                    };
                    if slot.replace(limit).is_some() {
                        return Err(twice());
                    }
                }
                Some(stat) => {
                    let quantile = match crate::stats::gate::Stat::parse(stat)? {
                        crate::stats::gate::Stat::Quantile(q) => q,
                        _ => {
                            return Err(format!(
                                "{key:?}: an SLO is on a percentile (p50, p99, p99.9), not {stat}"
                            ));
                        }
                    };
                    if percentiles
                        .iter()
                        .any(|p| p.time == time && p.quantile == quantile)
                    {
                        return Err(twice());
                    }
                    percentiles.push(PercentileSlo {
                        time,
                        quantile,
                        limit_ms: millis(limit),
                    });
                }
            }
        }
        let per_request = (slo != Slo::default()).then_some(slo);
        if per_request.is_none() && percentiles.is_empty() {
            return Err(
                "no SLO given: e.g. --slo ttft=500ms,tpot=50ms (per request) or --slo ttft.p99=500ms"
                    .to_string(),
            );
        }
        Ok(Objectives {
            per_request,
            percentiles,
        })
    }
}

/// Counts, over measured requests, of those meeting each SLO and all of them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SloTally {
    pub slo: Slo,
    pub requests: u64,
    pub ttft: u64,
    pub tpot: u64,
    pub e2e: u64,
    pub all: u64,
    /// Ok requests the server answered whole although they asked to stream: their TTFT and TPOT
    /// cannot be judged, and are left out of those SLOs' shares.
    #[serde(default)]
    pub whole_answers: u64,
    /// Of those, the ones no SLO could judge (only TTFT/TPOT were set): out of goodput's share.
    #[serde(default)]
    pub unjudged: u64,
    /// Requests meeting every SLO whose answer came after a timed load's deadline: in `all` (the
    /// share), not in goodput (a rate over the window).
    #[serde(default)]
    pub all_after_window: u64,
}

impl SloTally {
    pub fn new(slo: Slo) -> Self {
        SloTally {
            slo,
            ..SloTally::default()
        }
    }

    /// Adds the counts of another part of the same run (judged against the same SLOs).
    pub fn merge(&mut self, other: &SloTally) {
        self.requests += other.requests;
        self.ttft += other.ttft;
        self.tpot += other.tpot;
        self.e2e += other.e2e;
        self.all += other.all;
        self.whole_answers += other.whole_answers;
        self.unjudged += other.unjudged;
        self.all_after_window += other.all_after_window;
    }

    /// A failed request meets no SLO. TTFT and TPOT need a streamed answer (an answer read at once
    /// has no first token to time); a streamed answer of one token meets any TPOT limit.
    pub fn add(&mut self, r: &Record, after_window: bool) {
        self.requests += 1;
        if r.status != Status::Ok {
            return;
        }
        let within =
            |value: Option<f64>, limit: Duration| value.is_some_and(|v| v <= millis(limit));
        // Asked to stream, answered whole: no first token exists to judge, for or against.
        let whole = r.flags.contains(&Flag::NotStreamed);
        let ttft = self
            .slo
            .ttft
            .filter(|_| !whole)
            .map(|limit| within(r.ttft_ms, limit));
        let tpot = self
            .slo
            .tpot
            .filter(|_| !whole)
            .map(|limit| match r.tpot_ms {
                Some(_) => within(r.tpot_ms, limit),
                None => r.ttft_ms.is_some() && r.output_tokens.unwrap_or(0) <= 1,
            });
        let e2e = self.slo.e2e.map(|limit| within(r.latency_ms, limit));
        if whole {
            self.whole_answers += 1;
            if e2e.is_none() {
                self.unjudged += 1;
                return;
            }
        }
        let mut all = true;
        for (met, count) in [
            (ttft, &mut self.ttft),
            (tpot, &mut self.tpot),
            (e2e, &mut self.e2e),
        ] {
            if let Some(met) = met {
                *count += u64::from(met);
                all &= met;
            }
        }
        self.all += u64::from(all);
        self.all_after_window += u64::from(all && after_window);
    }

    /// Shares and goodput over `window_s`, the same window as the request throughput.
    pub fn summary(&self, window_s: f64) -> SloSummary {
        let share = |n: u64, of: u64| {
            if of == 0 { 0.0 } else { n as f64 / of as f64 }
        };
        // TTFT and TPOT shares are over the requests they could judge; none judged: unjudged.
        let streamed = self.requests - self.whole_answers;
        let judged = |limit: Option<Duration>, n: u64| {
            limit.filter(|_| streamed > 0).map(|_| share(n, streamed))
        };
        SloSummary {
            ttft_ms: self.slo.ttft.map(millis),
            tpot_ms: self.slo.tpot.map(millis),
            e2e_ms: self.slo.e2e.map(millis),
            requests: self.requests,
            meeting_all: self.all,
            share_ttft: judged(self.slo.ttft, self.ttft),
            share_tpot: judged(self.slo.tpot, self.tpot),
            share_e2e: self.slo.e2e.map(|_| share(self.e2e, self.requests)),
            share_all: share(self.all, self.requests - self.unjudged),
            whole_answers: self.whole_answers,
            unjudged: self.unjudged,
            goodput_per_s: if window_s > 0.0 {
                (self.all - self.all_after_window) as f64 / window_s
            } else {
                0.0
            },
        }
    }
}

/// The SLO part of `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SloSummary {
    /// The limits, in milliseconds (null when not set).
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    /// Measured requests judged (every status: a failed request meets no SLO).
    pub requests: u64,
    pub meeting_all: u64,
    /// Share of `requests` meeting each SLO (null when not set) and all of them.
    pub share_ttft: Option<f64>,
    pub share_tpot: Option<f64>,
    pub share_e2e: Option<f64>,
    pub share_all: f64,
    /// Requests meeting every SLO per second of the throughput window.
    pub goodput_per_s: f64,
    /// Ok requests answered whole although they asked to stream: TTFT and TPOT SLOs not judged
    /// for them (`share_ttft`/`share_tpot` are over the rest, null when none is left).
    #[serde(default)]
    pub whole_answers: u64,
    /// Of those, the ones no SLO could judge: out of `share_all` and goodput.
    #[serde(default)]
    pub unjudged: u64,
}

impl SloSummary {
    /// Whether any request could be judged at all (else goodput means nothing).
    pub fn judged(&self) -> bool {
        self.unjudged < self.requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ttft: Option<f64>, tpot: Option<f64>, latency: f64, output: u64) -> Record {
        let mut r = Record::empty("1".into(), 1, Status::Ok);
        r.ttft_ms = ttft;
        r.tpot_ms = tpot;
        r.latency_ms = Some(latency);
        r.output_tokens = Some(output);
        r
    }

    #[test]
    fn slo_text_parses_any_subset_and_rejects_mistakes() {
        let slo = Slo::parse("ttft=500ms, tpot=50ms,e2e=10s").unwrap();
        assert_eq!(slo.ttft, Some(Duration::from_millis(500)));
        assert_eq!(slo.tpot, Some(Duration::from_millis(50)));
        assert_eq!(slo.e2e, Some(Duration::from_secs(10)));
        // A bare number has no unit: refused, not read as seconds.
        let both = Objectives::parse("ttft.p99=500ms,e2e=2s,tpot.p99.9=40ms").unwrap();
        assert_eq!(both.per_request.unwrap().e2e, Some(Duration::from_secs(2)));
        assert_eq!(
            both.percentiles
                .iter()
                .map(|p| (p.name(), p.limit_ms))
                .collect::<Vec<_>>(),
            [
                ("ttft.p99".to_string(), 500.0),
                ("tpot.p99.9".to_string(), 40.0)
            ]
        );
        for bad in [
            "ttft.max=1s",
            "ttft.p99=1s,ttft.p99=2s",
            "ttft.p99=500",
            "itl.p99=5ms",
            "ttft.p99=500ms",
        ] {
            assert!(
                Slo::parse(bad).is_err(),
                "{bad:?} accepted as per-request limits"
            );
        }
        for bad in [
            "",
            "ttft",
            "ttft=fast",
            "itl=5ms",
            "ttft=1s,ttft=2s",
            "e2e=2",
            "ttft=500",
        ] {
            assert!(Slo::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn goodput_counts_requests_meeting_every_slo_per_second_of_the_window() {
        let slo = Slo::parse("ttft=100ms,tpot=10ms,e2e=1s").unwrap();
        let mut tally = SloTally::new(slo);
        for r in [
            ok(Some(50.0), Some(5.0), 500.0, 100),   // meets all
            ok(Some(100.0), Some(10.0), 1000.0, 90), // meets all: limits are inclusive
            ok(Some(150.0), Some(5.0), 800.0, 60),   // TTFT missed
            ok(Some(50.0), Some(20.0), 900.0, 40),   // TPOT missed
            ok(Some(50.0), Some(5.0), 1500.0, 200),  // e2e missed
            ok(Some(50.0), None, 60.0, 1),           // one token: TPOT met
            ok(None, None, 300.0, 20),               // not streamed: no TTFT, no TPOT
        ] {
            tally.add(&r, false);
        }
        let mut failed = ok(Some(1.0), Some(1.0), 2.0, 5);
        failed.status = Status::HttpError;
        tally.add(&failed, false);
        let s = tally.summary(2.0);
        assert_eq!((s.requests, s.meeting_all), (8, 3));
        assert_eq!(s.share_ttft, Some(5.0 / 8.0));
        assert_eq!(s.share_tpot, Some(5.0 / 8.0));
        assert_eq!(s.share_e2e, Some(6.0 / 8.0));
        assert_eq!(s.share_all, 3.0 / 8.0);
        assert_eq!(s.goodput_per_s, 1.5);
        assert_eq!((s.ttft_ms, s.e2e_ms), (Some(100.0), Some(1000.0)));
    }

    #[test]
    fn only_the_configured_slos_are_judged() {
        let mut tally = SloTally::new(Slo::parse("e2e=1s").unwrap());
        tally.add(&ok(None, None, 300.0, 20), false);
        let s = tally.summary(1.0);
        assert_eq!(
            (s.meeting_all, s.share_ttft, s.share_e2e),
            (1, None, Some(1.0))
        );
    }
}
