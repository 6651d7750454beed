//! The cut: ends a step's dispatch before its planned end (it is over-saturated, or a probe is
//! decided), moving the end of its measured window to the moment of the cut.

pub use crate::stats::StoppedEarly;
use crate::stats::WindowEnd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Shared by the watchers of a step and its dispatcher: the first `stop` wins.
#[derive(Debug)]
pub struct Cut {
    stop: CancellationToken,
    why: OnceLock<StoppedEarly>,
    epoch: Instant,
    window_end: WindowEnd,
    /// An open loop's in-flight count is clearly not growing (always, for a step not watched
    /// for saturation): a probe's pass may then end it.
    flat: AtomicBool,
}

impl Cut {
    /// `stop` is the step's own stop token (not the process's: an interrupt is not a cut).
    pub fn new(stop: CancellationToken, epoch: Instant, window_end: WindowEnd) -> Cut {
        Cut {
            stop,
            why: OnceLock::new(),
            epoch,
            window_end,
            flat: AtomicBool::new(true),
        }
    }

    /// Seconds since the step's epoch.
    pub fn elapsed_s(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// Ends dispatch now (requests in flight finish and are recorded); answers after this moment
    /// stay out of the step's rates.
    pub fn stop(&self, why: StoppedEarly) {
        if self.why.set(why).is_ok() {
            self.window_end
                .set(self.epoch.elapsed().as_micros().min(u64::MAX as u128) as u64);
            self.stop.cancel();
        }
    }

    pub fn set_flat(&self, flat: bool) {
        self.flat.store(flat, Ordering::Relaxed);
    }

    pub fn flat(&self) -> bool {
        self.flat.load(Ordering::Relaxed)
    }

    pub fn reason(&self) -> Option<StoppedEarly> {
        self.why.get().copied()
    }
}
