//! The plan: which scheduled requests are warm-up, which are measured, and when the load ends.

use std::time::Duration;

/// `--warmup`: requests sent before the measurement, marked in the records and left out of statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Warmup {
    #[default]
    None,
    /// The first N requests.
    Requests(u64),
    /// Requests due in the first span of the load.
    Time(Duration),
}

/// When the measured part of the load ends: after `requests` measured requests, or `duration` after the
/// warm-up, whichever comes first; with neither, when the source ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
}

impl Limit {
    /// No limit: the load ends with its source.
    pub const NONE: Limit = Limit {
        requests: None,
        duration: None,
    };
}

/// What the plan says about the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Warmup,
    Measure,
    /// The load is over: send nothing more.
    Stop,
}

/// Decides request by request, from its sequence and the time it is due (offset from the load start).
#[derive(Debug, Clone)]
pub struct Plan {
    warmup: Warmup,
    limit: Limit,
    warmed: u64,
    measured: u64,
    measure_start: Option<Duration>,
}

impl Plan {
    pub fn new(warmup: Warmup, limit: Limit) -> Self {
        Plan {
            warmup,
            limit,
            warmed: 0,
            measured: 0,
            measure_start: None,
        }
    }

    /// Classifies the next request, due `offset` after the start. Offsets must not decrease.
    pub fn admit(&mut self, offset: Duration) -> Admit {
        let warm = match self.warmup {
            Warmup::None => false,
            Warmup::Requests(n) => self.warmed < n,
            Warmup::Time(span) => offset < span,
        };
        if warm {
            self.warmed += 1;
            return Admit::Warmup;
        }
        let measure_start = *self.measure_start.get_or_insert(match self.warmup {
            Warmup::Time(span) => span,
            _ => offset,
        });
        let out_of_time = self
            .limit
            .duration
            .is_some_and(|d| offset.saturating_sub(measure_start) >= d);
        let out_of_requests = self.limit.requests.is_some_and(|n| self.measured >= n);
        if out_of_time || out_of_requests {
            return Admit::Stop;
        }
        self.measured += 1;
        Admit::Measure
    }

    /// When the measured part ends by `duration` (from the load's start), once it has begun.
    pub fn ends_at(&self) -> Option<Duration> {
        Some(self.measure_start? + self.limit.duration?)
    }

    #[cfg(test)]
    fn warmed(&self) -> u64 {
        self.warmed
    }

    #[cfg(test)]
    fn measured(&self) -> u64 {
        self.measured
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Admit::{Measure, Stop, Warmup as Warm};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn classify(plan: &mut Plan, offsets_ms: impl IntoIterator<Item = u64>) -> Vec<Admit> {
        offsets_ms.into_iter().map(|o| plan.admit(ms(o))).collect()
    }

    #[test]
    fn warmup_by_count_marks_the_first_requests_then_measures_the_limit() {
        let limit = Limit {
            requests: Some(3),
            duration: None,
        };
        let mut plan = Plan::new(super::Warmup::Requests(2), limit);
        assert_eq!(
            classify(&mut plan, 0..7),
            [Warm, Warm, Measure, Measure, Measure, Stop, Stop]
        );
        assert_eq!((plan.warmed(), plan.measured()), (2, 3));
    }

    #[test]
    fn warmup_by_time_marks_requests_due_before_it_and_duration_counts_after_it() {
        let limit = Limit {
            requests: None,
            duration: Some(ms(100)),
        };
        let mut plan = Plan::new(super::Warmup::Time(ms(50)), limit);
        assert_eq!(
            classify(&mut plan, [0, 25, 49, 50, 120, 149, 150]),
            [Warm, Warm, Warm, Measure, Measure, Measure, Stop]
        );
    }

    #[test]
    fn duration_without_warmup_counts_from_the_first_request() {
        let limit = Limit {
            requests: Some(100),
            duration: Some(ms(10)),
        };
        let mut plan = Plan::new(super::Warmup::None, limit);
        assert_eq!(
            classify(&mut plan, [5, 10, 14, 15]),
            [Measure, Measure, Measure, Stop]
        );
    }
}
