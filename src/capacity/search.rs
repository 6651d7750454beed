//! The search's next probe: bracket (double from the start until a probe fails), then bisect
//! between the highest pass and the lowest fail until they are within the precision.

pub use crate::modes::SearchOver;
use serde::{Deserialize, Serialize};

/// Rates are not doubled past this (requests per second): a server that never fails is reported
/// as passing there.
const MAX_RATE: f64 = 1_000_000.0;
/// A rate search whose first probe fails halves down to the start ÷ this before it gives up.
const LOWEST_FRACTION: f64 = 64.0;

/// Where a search stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    over: SearchOver,
    start: f64,
    /// Relative: 0.05 stops bisecting once the fail is within 5% above the pass.
    precision: f64,
    /// The highest load probes go to (`--max-inflight` for concurrency).
    ceiling: f64,
    pass: Option<f64>,
    fail: Option<f64>,
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The highest load that passed (null: none did).
    pub max: Option<f64>,
    /// The lowest load that failed (null: none did, so far).
    pub fails_at: Option<f64>,
    /// Pass and fail are within the precision (or nothing passes, or the ceiling passed).
    pub resolved: bool,
}

impl Search {
    pub fn new(over: SearchOver, start: f64, precision: f64, ceiling: f64) -> Search {
        Search {
            over,
            start,
            precision,
            ceiling: match over {
                SearchOver::Rate => ceiling.min(MAX_RATE),
                SearchOver::Concurrency => ceiling.floor().max(1.0),
            },
            pass: None,
            fail: None,
        }
    }

    /// The next load to probe, or None once the answer is known.
    pub fn next(&self) -> Option<f64> {
        let integer = self.over == SearchOver::Concurrency;
        match (self.pass, self.fail) {
            (None, None) => Some(self.start.min(self.ceiling)),
            (Some(pass), None) => (pass < self.ceiling).then(|| (pass * 2.0).min(self.ceiling)),
            (None, Some(fail)) => {
                let half = if integer {
                    (fail / 2.0).floor()
                } else {
                    fail / 2.0
                };
                let lowest = if integer {
                    1.0
                } else {
                    self.start / LOWEST_FRACTION
                };
                (half >= lowest).then_some(half)
            }
            (Some(pass), Some(fail)) => {
                if integer {
                    let mid = ((pass + fail) / 2.0).floor();
                    (fail - pass > (self.precision * pass).max(1.0) && mid > pass).then_some(mid)
                } else {
                    (fail - pass > self.precision * pass).then(|| (pass + fail) / 2.0)
                }
            }
        }
    }

    /// A probe's result. A pass above a fail (noise near the knee) is taken as the new fail's
    /// lower neighbour: the answer stays at the highest pass below the lowest fail.
    pub fn record(&mut self, at: f64, passed: bool) {
        if passed {
            if self.fail.is_none_or(|f| at < f) {
                self.pass = Some(self.pass.map_or(at, |p| p.max(at)));
            }
        } else {
            self.fail = Some(self.fail.map_or(at, |f| f.min(at)));
            if self.pass.is_some_and(|p| p >= at) {
                self.pass = None;
            }
        }
    }

    pub fn answer(&self) -> Answer {
        Answer {
            max: self.pass,
            fails_at: self.fail,
            resolved: self.next().is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a server that passes every load up to `capacity`.
    fn search(over: SearchOver, start: f64, capacity: f64) -> (Answer, Vec<f64>) {
        let mut s = Search::new(over, start, 0.05, 1000.0);
        let mut probes = Vec::new();
        while let Some(at) = s.next() {
            assert!(probes.len() < 40, "does not converge: {probes:?}");
            probes.push(at);
            s.record(at, at <= capacity);
        }
        (s.answer(), probes)
    }

    #[test]
    fn a_rate_search_brackets_then_bisects_to_its_precision() {
        let (answer, probes) = search(SearchOver::Rate, 4.0, 33.0);
        let max = answer.max.unwrap();
        let fail = answer.fails_at.unwrap();
        assert!(
            max <= 33.0 && fail > 33.0 && fail - max <= 0.05 * max,
            "{answer:?}"
        );
        assert_eq!(&probes[..5], [4.0, 8.0, 16.0, 32.0, 64.0]);
        assert!(probes.len() <= 11, "{probes:?}");
    }

    #[test]
    fn a_concurrency_search_ends_on_neighbouring_integers_or_within_precision() {
        let (answer, probes) = search(SearchOver::Concurrency, 1.0, 13.0);
        assert_eq!((answer.max, answer.fails_at), (Some(13.0), Some(14.0)));
        assert!(probes.iter().all(|c| c.fract() == 0.0), "{probes:?}");
    }

    #[test]
    fn a_first_probe_that_fails_halves_down_and_may_find_nothing() {
        let (answer, probes) = search(SearchOver::Rate, 40.0, 12.0);
        assert!(
            answer.max.unwrap() <= 12.0 && answer.max.unwrap() > 11.0,
            "{probes:?}"
        );
        let (answer, _) = search(SearchOver::Rate, 40.0, 0.1);
        assert_eq!(answer.max, None);
        assert!(answer.resolved);
        let (answer, _) = search(SearchOver::Concurrency, 1.0, 0.5);
        assert_eq!((answer.max, answer.fails_at), (None, Some(1.0)));
    }

    #[test]
    fn a_server_that_never_fails_stops_at_the_ceiling() {
        let (answer, _) = search(SearchOver::Concurrency, 1.0, f64::INFINITY);
        assert_eq!(
            (answer.max, answer.fails_at, answer.resolved),
            (Some(1000.0), None, true)
        );
    }
}
