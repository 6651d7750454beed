//! Why a step ended before its plan did, and the evidence of over-saturation, as `summary.json`
//! keeps them (`capacity` decides them).

use serde::{Deserialize, Serialize};

/// Why a step ended before its planned end, and when (seconds from its start).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StoppedEarly {
    /// The server could not keep up with the offered load (the evidence is the summary's
    /// `saturation`).
    Saturated { after_s: f64 },
    /// A search probe's objectives were decided (pass or fail) before its longest run, after
    /// its first `--duration` and `extensions` more.
    Decided { after_s: f64, extensions: u32 },
}

/// The evidence that a step was over-saturated, in its `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// Seconds from the step's start.
    pub detected_after_s: f64,
    pub offered_per_s: f64,
    /// Mean requests in flight at the start and at the end of the window judged.
    pub in_flight_from: f64,
    pub in_flight_to: f64,
    /// The window between those two means, in seconds.
    pub over_s: f64,
    /// In-flight growth per second: how far completions fell short of arrivals.
    pub growth_per_s: f64,
    /// Every `--max-inflight` slot was busy for a second: arrivals waited in the client.
    pub client_full: bool,
    /// Whether the step was stopped for it (a sweep's or search's step; a single run is only
    /// marked).
    pub stopped: bool,
    /// One line saying what was seen.
    pub evidence: String,
}
