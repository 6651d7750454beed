//! The bench dispatcher: sends a plan's requests closed-loop or on an open-loop arrival schedule,
//! never skipping an arrival silently, and measures how late its own timer fires.

use super::arrivals::Arrivals;
use super::plan::{Admit, Plan};
use crate::record::millis;
use crate::stats::ScaledHistogram;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What to do with an arrival that finds `--max-inflight` requests in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for a slot; the wait shows in the request's `queue_ms`.
    Wait,
    /// Record the arrival as `dropped` and go on with the schedule.
    Drop,
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The next request starts when one of `concurrency` slots frees up.
    Closed { concurrency: usize },
    /// Requests are due on an arrival schedule, whatever the server does.
    Open {
        arrivals: Arrivals,
        max_inflight: usize,
        when_full: WhenFull,
    },
}

impl Pace {
    /// Requests in flight at most.
    pub fn slots(&self) -> usize {
        match *self {
            Pace::Closed { concurrency } => concurrency,
            Pace::Open { max_inflight, .. } => max_inflight,
        }
    }
}

/// One request of the plan: its 1-based place in the schedule and whether it is warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub seq: u64,
    pub warmup: bool,
}

/// Carries the dispatcher's decisions out: sends requests and records dropped arrivals.
pub trait Launcher {
    /// Starts a request scheduled at `scheduled`; `slot` must be held until its record is handed on.
    fn launch(&self, planned: Planned, scheduled: Instant, slot: OwnedSemaphorePermit);
    /// Records an arrival dropped because every slot was taken; false once records can't be written.
    fn dropped(&self, planned: Planned, scheduled: Instant) -> impl Future<Output = bool> + Send;
}

/// Waits until an arrival is due, or less once the load's stop token fires.
pub trait Pacer {
    fn wait_until(&mut self, due: Instant) -> impl Future<Output = ()> + Send;
}

/// Sleeps on the tokio timer (millisecond ticks; follows paused time in tests).
pub struct TokioPacer {
    pub stop: CancellationToken,
}

impl Pacer for TokioPacer {
    async fn wait_until(&mut self, due: Instant) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = tokio::time::sleep_until(due) => {}
        }
    }
}

/// Sleeps the calling thread with the OS timer (tens of microseconds late instead of up to a
/// millisecond), then spins for the last stretch: a thread that slept a long time, above all on a
/// virtual machine whose idle CPU was handed back to the host, can take milliseconds to wake up.
/// Only for a runtime of its own: it blocks the thread it runs on.
pub struct ThreadPacer {
    stop: CancellationToken,
    spin: Duration,
}

impl ThreadPacer {
    /// The longest spin before an arrival; the spin is also at most a tenth of the mean gap, so it
    /// costs at most ~10% of a core whatever the rate.
    const MAX_SPIN: Duration = Duration::from_millis(1);

    /// For arrivals `rate` per second on average. Lowers this thread's timer slack (Linux: 50 µs by
    /// default) so sleeps end when asked.
    pub fn for_this_thread(stop: CancellationToken, rate: f64) -> Self {
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        }
        let spin = Duration::try_from_secs_f64(0.1 / rate)
            .unwrap_or(Self::MAX_SPIN)
            .min(Self::MAX_SPIN);
        ThreadPacer { stop, spin }
    }
}

impl Pacer for ThreadPacer {
    async fn wait_until(&mut self, due: Instant) {
        // Long gaps are slept in slices so an interrupt is seen promptly.
        const SLICE: Duration = Duration::from_millis(50);
        let due = due.into_std();
        loop {
            let now = std::time::Instant::now();
            if now >= due || self.stop.is_cancelled() {
                return;
            }
            let left = due - now;
            if left > self.spin {
                std::thread::sleep((left - self.spin).min(SLICE));
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// Dispatches the plan until it says stop or `stop` fires, then waits until every launched request
/// has given its slot back (its record is handed on). What was launched and dropped is in the records.
///
/// Returns the open loop's scheduler lag: how late each arrival was handled after it was due, not
/// counting arrivals late only because they waited for a slot (that wait is the server's pressure,
/// shown in `queue_ms`). None for the closed loop, which has no timer.
pub async fn dispatch(
    plan: &mut Plan,
    pace: Pace,
    pacer: &mut impl Pacer,
    launcher: &impl Launcher,
    stop: &CancellationToken,
) -> Option<ScaledHistogram> {
    let slots = Arc::new(Semaphore::new(pace.slots()));
    let mut scheduler_lag = None;
    let start = Instant::now();
    let mut seq = 0;
    match pace {
        Pace::Closed { .. } => loop {
            let slot = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                slot = slots.clone().acquire_owned() => slot,
            };
            let Ok(slot) = slot else { break };
            let now = Instant::now();
            let warmup = match plan.admit(now - start) {
                Admit::Stop => break,
                admit => admit == Admit::Warmup,
            };
            seq += 1;
            launcher.launch(Planned { seq, warmup }, now, slot);
        },
        Pace::Open {
            arrivals,
            when_full,
            ..
        } => {
            let mut lag = ScaledHistogram::default();
            // Arrivals due before this instant were held up by the slot wait, not by the timer.
            let mut slot_wait_ended = start;
            for offset in arrivals.offsets() {
                let warmup = match plan.admit(offset) {
                    Admit::Stop => break,
                    admit => admit == Admit::Warmup,
                };
                seq += 1;
                let planned = Planned { seq, warmup };
                let due = start + offset;
                // The pacer watches `stop` itself: no waiter registered per arrival here.
                pacer.wait_until(due).await;
                if stop.is_cancelled() {
                    break;
                }
                if due >= slot_wait_ended {
                    lag.record(millis(Instant::now().saturating_duration_since(due)));
                }
                let slot = match slots.clone().try_acquire_owned() {
                    Ok(slot) => slot,
                    Err(TryAcquireError::Closed) => break,
                    Err(TryAcquireError::NoPermits) if when_full == WhenFull::Drop => {
                        if !launcher.dropped(planned, due).await {
                            break;
                        }
                        continue;
                    }
                    Err(TryAcquireError::NoPermits) => {
                        let slot = tokio::select! {
                            biased;
                            () = stop.cancelled() => break,
                            slot = slots.clone().acquire_owned() => slot,
                        };
                        slot_wait_ended = Instant::now();
                        let Ok(slot) = slot else { break };
                        slot
                    }
                };
                launcher.launch(planned, due, slot);
            }
            scheduler_lag = Some(lag);
        }
    }
    let _ = slots.acquire_many(pace.slots() as u32).await;
    scheduler_lag
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Limit, Warmup};
    use super::*;
    use std::sync::Mutex;

    /// Holds each slot for `hold` of (paused) time and notes when every request was launched.
    struct FakeLauncher {
        hold: Duration,
        start: Instant,
        launched: Mutex<Vec<(Planned, Duration, Duration)>>,
        dropped: Mutex<Vec<(Planned, Duration)>>,
    }

    impl FakeLauncher {
        fn new(hold: Duration) -> Self {
            FakeLauncher {
                hold,
                start: Instant::now(),
                launched: Mutex::default(),
                dropped: Mutex::default(),
            }
        }
    }

    impl Launcher for FakeLauncher {
        fn launch(&self, planned: Planned, scheduled: Instant, slot: OwnedSemaphorePermit) {
            let sent = Instant::now() - self.start;
            self.launched
                .lock()
                .unwrap()
                .push((planned, scheduled - self.start, sent));
            let hold = self.hold;
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(slot);
            });
        }

        async fn dropped(&self, planned: Planned, scheduled: Instant) -> bool {
            self.dropped
                .lock()
                .unwrap()
                .push((planned, scheduled - self.start));
            true
        }
    }

    fn requests(n: u64) -> Plan {
        Plan::new(
            Warmup::None,
            Limit {
                requests: Some(n),
                duration: None,
            },
        )
    }

    fn open(rate: f64, max_inflight: usize, when_full: WhenFull) -> Pace {
        Pace::Open {
            arrivals: Arrivals::Constant { rate },
            max_inflight,
            when_full,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn constant_rate_sends_each_request_at_its_scheduled_time() {
        let launcher = FakeLauncher::new(ms(5));
        let pace = open(100.0, 64, WhenFull::Wait);
        let lag = dispatch(
            &mut requests(50),
            pace,
            &mut TokioPacer {
                stop: CancellationToken::new(),
            },
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let launched = launcher.launched.lock().unwrap();
        assert_eq!(
            (launched.len(), launcher.dropped.lock().unwrap().len()),
            (50, 0)
        );
        for (i, (planned, scheduled, sent)) in launched.iter().enumerate() {
            assert_eq!(planned.seq, i as u64 + 1);
            assert_eq!(*scheduled, ms(10 * i as u64));
            assert_eq!(sent, scheduled, "request {i} waited");
        }
        assert_eq!(lag.unwrap().inner().max(), 1, "paused time: no lag");
    }

    #[tokio::test(start_paused = true)]
    async fn arrivals_wait_for_a_slot_when_full_and_keep_their_schedule() {
        // Two slots held 100 ms each, an arrival every 10 ms: the third arrival (due at 20 ms) waits
        // until the first slot frees at 100 ms; its scheduled time stays 20 ms, so its queue is 80 ms.
        let launcher = FakeLauncher::new(ms(100));
        let lag = dispatch(
            &mut requests(6),
            open(100.0, 2, WhenFull::Wait),
            &mut TokioPacer {
                stop: CancellationToken::new(),
            },
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let launched = launcher.launched.lock().unwrap();
        assert_eq!(
            (launched.len(), launcher.dropped.lock().unwrap().len()),
            (6, 0)
        );
        let times: Vec<(Duration, Duration)> = launched.iter().map(|l| (l.1, l.2)).collect();
        assert_eq!(
            times,
            [
                (ms(0), ms(0)),
                (ms(10), ms(10)),
                (ms(20), ms(100)),
                (ms(30), ms(110)),
                (ms(40), ms(200)),
                (ms(50), ms(210)),
            ]
        );
        // Arrivals late only because of an earlier arrival's slot wait are not timer lag.
        assert_eq!(lag.unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn drop_when_full_records_every_arrival_that_finds_no_slot() {
        // Arrivals at 0, 10, …, 190 ms; two slots held 95 ms: 0 and 10 run, 20–90 are dropped,
        // 100 and 110 run, 120–190 are dropped.
        let launcher = FakeLauncher::new(ms(95));
        dispatch(
            &mut requests(20),
            open(100.0, 2, WhenFull::Drop),
            &mut TokioPacer {
                stop: CancellationToken::new(),
            },
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let sent: Vec<u64> = launcher
            .launched
            .lock()
            .unwrap()
            .iter()
            .map(|l| l.0.seq)
            .collect();
        assert_eq!(sent, [1, 2, 11, 12]);
        let dropped = launcher.dropped.lock().unwrap();
        assert_eq!(dropped.len(), 16);
        assert_eq!(
            dropped[0],
            (
                Planned {
                    seq: 3,
                    warmup: false
                },
                ms(20)
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_keeps_concurrency_requests_in_flight_until_the_duration_ends() {
        let launcher = FakeLauncher::new(ms(100));
        let mut plan = Plan::new(
            Warmup::Requests(3),
            Limit {
                requests: None,
                duration: Some(ms(250)),
            },
        );
        let lag = dispatch(
            &mut plan,
            Pace::Closed { concurrency: 3 },
            &mut TokioPacer {
                stop: CancellationToken::new(),
            },
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        // Waves of 3 at 0 (warm-up), 100, 200, 300 ms; the measured 250 ms start at 100 ms, so the
        // wave at 300 ms is measured and the one at 400 ms is not sent.
        let launched = launcher.launched.lock().unwrap();
        let sends: Vec<(u64, bool, Duration)> = launched
            .iter()
            .map(|l| (l.0.seq, l.0.warmup, l.2))
            .collect();
        assert_eq!(sends.len(), 12, "{sends:?}");
        assert!(sends[..3].iter().all(|s| s.1 && s.2 == ms(0)));
        assert!(sends[3..].iter().all(|s| !s.1));
        assert_eq!(sends[11].2, ms(300));
        let warmups = sends.iter().filter(|s| s.1).count();
        assert_eq!((sends.len(), warmups), (12, 3));
        assert!(lag.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_the_schedule_and_waits_for_requests_in_flight() {
        let launcher = FakeLauncher::new(ms(500));
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ms(45)).await;
            stopper.cancel();
        });
        let before = Instant::now();
        dispatch(
            &mut requests(1000),
            open(100.0, 64, WhenFull::Wait),
            &mut TokioPacer { stop: stop.clone() },
            &launcher,
            &stop,
        )
        .await;
        assert_eq!(launcher.launched.lock().unwrap().len(), 5);
        // Returns only once the last request (sent at 40 ms, held 500 ms) gave its slot back.
        assert_eq!(before.elapsed(), ms(540));
    }
}
