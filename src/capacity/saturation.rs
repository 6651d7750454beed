//! Over-saturation: an open loop offered more than the server completes. Under capacity the
//! requests in flight hover around a level (Little's law: rate × latency); over it they grow by the
//! shortfall every second, or, once every `--max-inflight` slot is busy, arrivals wait in the
//! client. GuideLLM stops such a step early too (its over-saturation constraint); this test is
//! simpler: the growth of the in-flight count over the step's second half.

pub use crate::stats::Saturation;

/// How often the in-flight count is sampled, in seconds.
pub const SAMPLE_EVERY_S: f64 = 0.2;
/// No verdict before this much of the step has run, in seconds: the first answers' ramp is not
/// growth.
const MIN_ELAPSED_S: f64 = 2.0;
/// Fewer requests than this grown over the window are no trend, whatever the fit says.
const MIN_GROWTH: f64 = 4.0;
/// Every slot busy this long, in seconds, is the client queueing arrivals, not a burst.
const FULL_FOR_S: f64 = 1.0;

/// Watches one open-loop step's in-flight count.
#[derive(Debug)]
pub struct SaturationWatch {
    offered_per_s: f64,
    max_inflight: usize,
    /// Growth, as a share of the offered rate, taken as saturation (half a search's precision: a
    /// probe a few percent over capacity fills its queue too slowly for its SLO to notice in
    /// seconds, so the watch must see it).
    tolerance: f64,
    samples: Vec<(f64, f64)>,
    full_since: Option<f64>,
    /// The last fit showed the count clearly not growing by the tolerance (its slope plus two
    /// standard errors below it): a probe may pass on it.
    flat: bool,
}

impl SaturationWatch {
    pub fn new(offered_per_s: f64, max_inflight: usize, tolerance: f64) -> Self {
        SaturationWatch {
            offered_per_s,
            max_inflight,
            tolerance,
            samples: Vec::new(),
            full_since: None,
            flat: false,
        }
    }

    /// One sample at `t` seconds; the evidence once the step is over-saturated.
    pub fn observe(&mut self, t: f64, in_flight: usize) -> Option<Saturation> {
        self.samples.push((t, in_flight as f64));
        if in_flight >= self.max_inflight {
            let since = *self.full_since.get_or_insert(t);
            if t - since >= FULL_FOR_S {
                return Some(self.evidence(t, since, t, in_flight as f64, in_flight as f64, true));
            }
        } else {
            self.full_since = None;
        }
        if t < MIN_ELAPSED_S {
            return None;
        }
        // The last two thirds of the step so far (the first third holds the ramp up to the
        // level), fitted by least squares: the slope is the growth per second, and its standard
        // error says how much of it the wandering of the count could explain.
        let from = self.samples.partition_point(|(at, _)| *at < t / 3.0);
        let window = &self.samples[from..];
        let n = window.len() as f64;
        if window.len() < 8 {
            return None;
        }
        let mean_t = window.iter().map(|s| s.0).sum::<f64>() / n;
        let mean_y = window.iter().map(|s| s.1).sum::<f64>() / n;
        let sxx: f64 = window.iter().map(|s| (s.0 - mean_t).powi(2)).sum();
        let sxy: f64 = window.iter().map(|s| (s.0 - mean_t) * (s.1 - mean_y)).sum();
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let residual: f64 = window
            .iter()
            .map(|s| (s.1 - mean_y - slope * (s.0 - mean_t)).powi(2))
            .sum::<f64>()
            / (n - 2.0);
        let standard_error = (residual / sxx).sqrt();
        let (t0, t1) = (window[0].0, window[window.len() - 1].0);
        let grown = slope * (t1 - t0);
        // Three standard errors: the samples are correlated (a request in flight at one sample
        // often is at the next), so one would be too few.
        let trend = slope - 3.0 * standard_error;
        self.flat = slope + 2.0 * standard_error <= self.tolerance * self.offered_per_s;
        (trend > self.tolerance * self.offered_per_s && grown >= MIN_GROWTH).then(|| {
            let early = mean_y - slope * (mean_t - t0);
            self.evidence(t, t0, t1, early, early + grown, false)
        })
    }

    /// Whether the in-flight count is clearly not growing (false until there is enough to fit).
    pub fn flat(&self) -> bool {
        self.flat
    }

    fn evidence(
        &self,
        t: f64,
        t0: f64,
        t1: f64,
        early: f64,
        late: f64,
        client_full: bool,
    ) -> Saturation {
        let span = t1 - t0;
        let growth_per_s = if span > 0.0 {
            (late - early) / span
        } else {
            0.0
        };
        let evidence = if client_full {
            format!(
                "every one of the {} --max-inflight slots was busy for {:.1} s: arrivals offered at {:.2}/s waited in the client",
                self.max_inflight, FULL_FOR_S, self.offered_per_s
            )
        } else {
            format!(
                "requests in flight grew from {early:.1} to {late:.1} over {span:.1} s ({growth_per_s:.2}/s, {:.0}% of the {:.2}/s offered): answers fell behind arrivals",
                growth_per_s / self.offered_per_s * 100.0,
                self.offered_per_s
            )
        };
        Saturation {
            detected_after_s: t,
            offered_per_s: self.offered_per_s,
            in_flight_from: early,
            in_flight_to: late,
            over_s: span,
            growth_per_s,
            client_full,
            stopped: false,
            evidence,
        }
    }
}

/// The check at a timed open-loop step's end, a backstop for what the in-flight watch had no
/// time to fit: arrivals sent short of the rate offered (the client could not keep the schedule),
/// or the window's steady completions short of the arrivals sent. The steady rate credits a
/// request still queued at the end for the part of its life inside the window, so this catches
/// only a gross shortfall (a server 10% over capacity for 3 s still shows 95%); the in-flight fit
/// is the real test.
pub fn at_end(
    offered_per_s: f64,
    sent_per_s: Option<f64>,
    steady_ok_per_s: Option<f64>,
    tolerance: f64,
    after_s: f64,
) -> Option<Saturation> {
    let sent = sent_per_s?;
    let done = steady_ok_per_s?;
    let (short_of, of, what) = if sent < (1.0 - tolerance) * offered_per_s {
        (sent, offered_per_s, "arrivals were sent at")
    } else if done < (1.0 - tolerance) * sent {
        (done, sent, "answers completed at")
    } else {
        return None;
    };
    Some(Saturation {
        detected_after_s: after_s,
        offered_per_s,
        in_flight_from: 0.0,
        in_flight_to: 0.0,
        over_s: 0.0,
        growth_per_s: of - short_of,
        client_full: what.starts_with("arrivals"),
        stopped: false,
        evidence: format!(
            "{what} {short_of:.2}/s, {:.0}% of the {of:.2}/s {}: the server fell behind",
            short_of / of * 100.0,
            if what.starts_with("arrivals") {
                "offered"
            } else {
                "sent"
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples every 0.2 s until `until` of an in-flight count given by `level(t)`.
    fn watch(offered: f64, until: f64, level: impl Fn(f64) -> usize) -> Option<Saturation> {
        let mut watch = SaturationWatch::new(offered, 1000, 0.1);
        let mut t = 0.0;
        while t <= until {
            if let Some(s) = watch.observe(t, level(t)) {
                return Some(s);
            }
            t += SAMPLE_EVERY_S;
        }
        None
    }

    #[test]
    fn a_queue_growing_by_a_fifth_of_the_offered_rate_is_saturation() {
        // 50/s offered, 40/s completed: 10 more in flight every second.
        let found = watch(50.0, 20.0, |t| 8 + (10.0 * t) as usize).expect("saturated");
        assert!(found.detected_after_s < 5.0, "{found:?}");
        assert!((found.growth_per_s - 10.0).abs() < 1.0, "{found:?}");
        assert!(!found.client_full);
    }

    #[test]
    fn a_steady_or_wandering_in_flight_count_is_not_saturation() {
        assert_eq!(watch(50.0, 30.0, |_| 8), None);
        // ±4 around 10, in a quick wave.
        assert_eq!(
            watch(50.0, 30.0, |t| (10.0 + 4.0 * (t * 2.0).sin()) as usize),
            None
        );
        // Growth below the tolerance (3% of the offered rate): within what is resolved.
        assert_eq!(watch(50.0, 30.0, |t| 8 + (1.5 * t) as usize), None);
    }

    #[test]
    fn completions_short_of_arrivals_at_the_end_are_saturation() {
        assert!(at_end(85.0, Some(84.5), Some(77.0), 0.05, 3.0).is_some());
        assert_eq!(at_end(78.0, Some(77.9), Some(76.5), 0.05, 3.0), None);
        let client = at_end(100.0, Some(60.0), Some(60.0), 0.05, 3.0).unwrap();
        assert!(client.client_full);
    }

    #[test]
    fn every_slot_busy_for_a_second_is_saturation() {
        let mut watch = SaturationWatch::new(50.0, 16, 0.1);
        assert_eq!(watch.observe(0.2, 16), None);
        assert_eq!(watch.observe(0.4, 15), None);
        assert_eq!(watch.observe(0.6, 16), None);
        let found = watch.observe(1.6, 16).expect("the client queues");
        assert!(found.client_full);
    }
}
