//! The capacity question, "how much load does this server take while meeting its SLOs?": a
//! probe's judgement with its uncertainty, over-saturation watched in every open-loop step, the
//! cut that ends a step early, and the search that brackets and bisects the load.

mod cut;
mod judge;
mod result;
mod saturation;
mod search;

pub use cut::{Cut, StoppedEarly};
pub use judge::{Criteria, Judged, Judgement, Outcome};
pub use result::{Probe, SearchResult};
pub use saturation::{SAMPLE_EVERY_S, Saturation, SaturationWatch, at_end as saturation_at_end};
pub use search::{Answer, Search, SearchOver};

use std::sync::Arc;
use std::time::Duration;

/// What watches a step besides its plan.
#[derive(Debug, Clone, Default)]
pub struct Watch {
    /// Open loops: over-saturation is detected (and the step stopped, when `stop`).
    pub saturation: Option<SaturationSettings>,
    /// A search probe: judged along the way, cut once decided.
    pub probe: Option<ProbeSettings>,
}

/// In-flight growth taken as saturation in a sweep's steps and single runs: a tenth of the offered
/// rate (a search uses half its precision).
pub const SATURATION_TOLERANCE: f64 = 0.1;

impl Watch {
    /// Saturation watched (a tenth of the offered rate): a sweep's step is stopped when it is
    /// (`stop`; the rest of its time would say nothing new), a single run only marked (its length
    /// is what the user asked for).
    pub fn saturation(stop: bool) -> Watch {
        Watch {
            saturation: Some(SaturationSettings {
                tolerance: SATURATION_TOLERANCE,
                stop,
            }),
            probe: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SaturationSettings {
    /// Growth of the in-flight count, as a share of the offered rate, taken as saturation.
    pub tolerance: f64,
    /// Stop the step when saturated (a sweep's or search's step; a single run is only marked).
    pub stop: bool,
}

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub criteria: Arc<Criteria>,
    /// `--duration`: judged after each such span of the probe.
    pub every: Duration,
    /// Spans an inconclusive probe runs on for, at most.
    pub extensions: u32,
}
