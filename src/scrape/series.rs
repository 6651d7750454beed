//! One target's series between scrapes: counters (and histogram buckets, sums and counts) turned
//! into per-interval increases that survive a server restart, gauges kept as read.

use super::parse::{Exposition, Kind, Part};
use std::collections::HashMap;

/// At or above this a sample is a "blank" sentinel (dcgm-exporter prints the DCGM blank values,
/// just under 2^63, for unsupported fields), not a reading.
const BLANK: f64 = 9.0e18;

/// Labels of one series, sorted, `le` left out.
pub type Labels = Vec<(String, String)>;

/// What one scrape says about one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub family: String,
    pub kind: Kind,
    pub part: Part,
    pub labels: Labels,
    /// A gauge's (or untyped, or a summary quantile's) value; for a counter, a bucket, a sum or a
    /// count: its increase since the previous scrape (None: first seen in the target's first
    /// scrape, the baseline).
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    family: String,
    part: PartKey,
    labels: Labels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PartKey {
    Value,
    Bucket(u64),
    Sum,
    Count,
}

impl From<Part> for PartKey {
    fn from(part: Part) -> Self {
        match part {
            Part::Value => PartKey::Value,
            Part::Bucket { le } => PartKey::Bucket(le.to_bits()),
            Part::Sum => PartKey::Sum,
            Part::Count => PartKey::Count,
        }
    }
}

/// A target's cumulative values as of its last good scrape.
#[derive(Debug, Default)]
pub struct Cumulative {
    /// Each series' last value and the scrape that read it.
    last: HashMap<Key, (f64, u64)>,
    /// A good scrape happened: a series first seen later was created during the run (from 0).
    baselined: bool,
    scrapes: u64,
}

/// A series unseen for this many scrapes is forgotten (label sets that churn cannot grow memory
/// for the whole run); one missing now and then (a blank reading) keeps its last value.
const FORGET_AFTER: u64 = 16;

impl Cumulative {
    /// The scrape's readings. A cumulative value below the previous one is a reset (the server
    /// restarted, or the series was recreated): the increase is the new value, counted from 0.
    pub fn read(&mut self, exposition: Exposition) -> Vec<Reading> {
        let mut readings = Vec::with_capacity(exposition.samples.len());
        for s in exposition.samples {
            let cumulative = matches!(
                (s.kind, s.part),
                (Kind::Counter | Kind::Histogram, _) | (Kind::Summary, Part::Sum | Part::Count)
            );
            // NaN and DCGM's blanks are no reading, and never a counter's last value (the next
            // real one would look like a reset and count from 0).
            if s.value.is_nan() || s.value.abs() >= BLANK {
                continue;
            }
            let value = if cumulative {
                let key = Key {
                    family: s.family.clone(),
                    part: s.part.into(),
                    labels: s.labels.clone(),
                };
                let previous = self.last.insert(key, (s.value, self.scrapes)).map(|p| p.0);
                match previous {
                    Some(p) if s.value >= p => Some(s.value - p),
                    Some(_) => Some(s.value),
                    None if self.baselined => Some(s.value),
                    None => None,
                }
            } else {
                Some(s.value)
            };
            readings.push(Reading {
                family: s.family,
                kind: s.kind,
                part: s.part,
                labels: s.labels,
                value,
            });
        }
        self.baselined = true;
        self.scrapes += 1;
        if self.scrapes.is_multiple_of(FORGET_AFTER) {
            let now = self.scrapes;
            self.last.retain(|_, (_, seen)| now - *seen <= FORGET_AFTER);
        }
        readings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::parse::parse;

    fn increase(c: &mut Cumulative, page: &str) -> Option<f64> {
        c.read(parse(page))
            .into_iter()
            .find(|r| r.family == "tokens")
            .and_then(|r| r.value)
    }

    #[test]
    fn a_counter_becomes_per_interval_increases_and_a_reset_counts_from_zero() {
        let mut c = Cumulative::default();
        let page = |v: u32| format!("# TYPE tokens counter\ntokens_total {v}\n");
        assert_eq!(
            increase(&mut c, &page(100)),
            None,
            "the first scrape is the baseline"
        );
        assert_eq!(increase(&mut c, &page(130)), Some(30.0));
        // The server restarted: 130 → 12 is 12 new tokens, not −118.
        assert_eq!(increase(&mut c, &page(12)), Some(12.0));
        assert_eq!(increase(&mut c, &page(20)), Some(8.0));
    }

    #[test]
    fn a_series_that_appears_after_the_baseline_counts_from_zero() {
        let mut c = Cumulative::default();
        assert_eq!(increase(&mut c, "# TYPE other gauge\nother 1\n"), None);
        assert_eq!(
            increase(&mut c, "# TYPE tokens counter\ntokens_total 5\n"),
            Some(5.0)
        );
    }

    #[test]
    fn gauges_are_read_as_they_are() {
        let mut c = Cumulative::default();
        let page = "# TYPE running gauge\nrunning 4\n";
        for _ in 0..2 {
            let r = c.read(parse(page));
            assert_eq!(r[0].value, Some(4.0));
        }
    }
}
