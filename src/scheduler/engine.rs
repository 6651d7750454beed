//! The one dispatcher every run goes through: it draws requests from a source, asks the plan whether
//! each is wanted and when it is due, passes it through the gates and launches it, and makes sure
//! every line it does not send still ends as one record.

use super::arrivals::{Arrivals, trace_offset};
use super::give_up::GiveUp;
use super::plan::{Admit, Plan};
use super::source::{Next, Source};
use super::throttle::Throttle;
use super::{
    dropped_record, gave_up_record, interrupted_record, invalid_input_record, limit_record,
    skipped_budget_record,
};
use crate::cost::{Budget, Reservation};
use crate::record::{Record, millis};
use crate::stats::ScaledHistogram;
use crate::workload::Request;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What to do with an arrival that finds every slot taken (`--max-inflight`, or `-c` for `run --rate`).
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
    /// The next request starts when one of `concurrency` slots frees up; the first `concurrency`
    /// start evenly over `ramp_up` instead of all at once, so requests of equal length do not stay
    /// in lock-step waves.
    Closed {
        concurrency: usize,
        ramp_up: Duration,
    },
    /// Requests are due on an arrival schedule, whatever the server does.
    Open {
        arrivals: Arrivals,
        max_inflight: usize,
        when_full: WhenFull,
    },
}

impl Pace {
    /// A closed loop of `concurrency` slots, all starting at once.
    pub fn closed(concurrency: usize) -> Pace {
        Pace::Closed {
            concurrency,
            ramp_up: Duration::ZERO,
        }
    }

    /// Requests in flight at most.
    pub fn slots(&self) -> usize {
        match *self {
            Pace::Closed { concurrency, .. } => concurrency,
            Pace::Open { max_inflight, .. } => max_inflight,
        }
    }
}

/// What every launch passes besides its slot: run-wide pacing (`--rps`/`--rpm`/`--tpm`, and for
/// `run` the server's own limits and the AIMD concurrency) and the `--max-cost` budget. Shutdown is
/// the `stop` token `dispatch` watches, which `give_up` fires on a dead endpoint.
#[derive(Clone, Default)]
pub struct Gates {
    pub throttle: Option<Arc<Throttle>>,
    pub budget: Option<Arc<Budget>>,
    pub give_up: Option<Arc<GiveUp>>,
    /// A step's watchers: it is over-saturated, or a search probe is decided.
    pub cut: Option<Arc<crate::capacity::Cut>>,
}

impl Gates {
    /// Why `stop` fired: the endpoint is dead, the step was cut, or an interrupt.
    fn stopped(&self) -> Ended {
        match (&self.give_up, &self.cut) {
            (Some(give_up), _) if give_up.verdict().is_some() => Ended::GaveUp,
            (_, Some(cut)) if cut.reason().is_some() => Ended::Cut,
            _ => Ended::Interrupted,
        }
    }
}

/// One request's place in the plan: its 1-based sequence number and whether it is warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub seq: u64,
    pub warmup: bool,
    /// Whether records carry `seq`: a cycled workload's requests are known by it; a workload
    /// file's lines by their line number and id (a `seq` would restart in every `--resume`).
    pub numbered: bool,
}

impl Planned {
    /// Marks a record with its place in the schedule and whether it was warm-up.
    pub fn stamp(self, record: &mut Record) {
        if self.numbered {
            record.seq = Some(self.seq);
        }
        record.warmup = self.warmup;
    }
}

/// A request cleared to go.
pub struct Launch {
    pub request: Request,
    pub planned: Planned,
    /// When it was due: its queue delay and latency from schedule count from here.
    pub scheduled: Instant,
    /// The budget it holds (micro-dollars) until its record is made.
    pub reserved: Option<u64>,
}

/// Carries the dispatcher's decisions out: starts requests and hands records on.
pub trait Launcher: Sync {
    /// Starts a request; `slot` must be held until its record is handed on.
    fn launch(&self, launch: Launch, slot: OwnedSemaphorePermit);
    /// Hands on the record of a line that was not sent; false once records can't be written.
    fn record(&self, record: Record) -> impl Future<Output = bool> + Send;
    /// Requests sent and not yet answered (the throttle's AIMD gate compares it with its limit).
    fn in_flight(&self) -> &AtomicUsize;
    /// Whether records can no longer be handed on (the collector failed): nothing more is sent.
    fn closed(&self) -> bool;
    /// The run's epoch, which record offsets count from.
    fn epoch(&self) -> std::time::Instant;
    /// The plan's `--duration`/`--requests` ended the load: conversations under way send no
    /// further turn.
    fn limit_reached(&self) {}
    /// The measured phase of a timed load ends at `end`: answers after it stay out of its rates.
    fn measured_until(&self, _end: Instant) {}
}

/// Waits until a request is due, or less once the load's stop token fires.
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

/// Where a request's due time comes from.
enum DueBy {
    /// A free slot (closed loop): due when it has one.
    Slot,
    /// The arrival schedule.
    Schedule(super::ArrivalOffsets),
    /// The request's own trace timestamp, divided by the speed.
    Trace(f64),
}

/// Why dispatch stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The source had no more lines.
    Done,
    /// The plan's `--requests` or `--duration` was reached.
    Limit,
    /// `--max-cost` would have been passed.
    Budget,
    /// An interrupt (or a caller's stop).
    Interrupted,
    /// The step's watchers ended it before its plan did (`capacity::Cut`).
    Cut,
    /// The first attempts all failed the same way (`--give-up-after`): the endpoint is dead.
    GaveUp,
    /// Records can no longer be written (the collector failed).
    RecordsClosed,
}

/// What a dispatch did besides its records.
#[derive(Debug)]
pub struct Dispatched {
    pub ended: Ended,
    /// Open loop: how late each arrival was handled after it was due, not counting arrivals late
    /// only because they waited for a slot (that wait is the server's pressure, shown in
    /// `queue_ms`). None for the closed loop, which has no timer.
    pub scheduler_lag: Option<ScaledHistogram>,
}

/// Dispatches `source` as `plan` and `pace` say until the plan or the source ends, the budget runs
/// out or `stop` fires; then, when the source owes them (a workload file's lines each end as one
/// record), records the lines not sent, and waits until every launched request has given its slot
/// back, that is, handed its record on.
pub async fn dispatch(
    source: &mut impl Source,
    plan: &mut Plan,
    pace: Pace,
    gates: &Gates,
    pacer: &mut impl Pacer,
    launcher: &impl Launcher,
    stop: &CancellationToken,
) -> Dispatched {
    let slots = Arc::new(Semaphore::new(pace.slots()));
    // When each request is due: when a slot frees (closed loop), on the arrival schedule, or at
    // its own trace timestamp.
    let mut due_by = match pace {
        Pace::Closed { .. } => DueBy::Slot,
        Pace::Open {
            arrivals: Arrivals::Trace { speed },
            ..
        } => DueBy::Trace(speed),
        Pace::Open { arrivals, .. } => arrivals.offsets().map_or(DueBy::Slot, DueBy::Schedule),
    };
    // A trace counts from the run's epoch, so each `scheduled_at` is its timestamp ÷ speed.
    let start = match due_by {
        DueBy::Trace(_) => Instant::from_std(launcher.epoch()),
        _ => Instant::now(),
    };
    let mut lag = (!matches!(due_by, DueBy::Slot)).then(ScaledHistogram::default);
    // Arrivals due before this instant were held up by a wait for room, not by the timer.
    let mut room_wait_ended = start;
    // Only a throttle that can lower its limit (AIMD after 429s) narrows the slots.
    let narrowing = gates.throttle.as_ref().filter(|t| t.follows_server());
    // A workload file's records are known by line; a cycled workload's by their place in the plan.
    let numbered = !source.owes_records();
    let mut seq = 0;
    let mut launched = 0usize;
    // A request drawn but not launched when dispatch stopped: it still gets its record.
    let mut pending: Option<(Request, Planned)> = None;
    let mut window_published = false;
    let ended = 'dispatch: loop {
        if stop.is_cancelled() {
            break gates.stopped();
        }
        // Closed loop: room first (the AIMD limit, then a slot); the request is due when it has it,
        // so neither wait counts as the request's queue time.
        let (mut due, mut slot) = match &mut due_by {
            DueBy::Slot => {
                if let Some(throttle) = narrowing {
                    tokio::select! {
                        biased;
                        () = throttle.wait_for_slot(launcher.in_flight()) => {}
                        () = stop.cancelled() => break gates.stopped(),
                    }
                }
                // Biased towards the slot: a free one is taken without registering a stop waiter
                // (the check above sees an interrupt). The duration ends the load even while every
                // slot is held (by conversations, say), not only when the next one frees.
                let ends = plan.ends_at().map(|at| start + at);
                let slot = tokio::select! {
                    biased;
                    slot = slots.clone().acquire_owned() => slot,
                    () = stop.cancelled() => break gates.stopped(),
                    () = sleep_until_some(ends) => break Ended::Limit,
                };
                let Ok(slot) = slot else {
                    break Ended::RecordsClosed;
                };
                (Instant::now(), Some(slot))
            }
            DueBy::Schedule(offsets) => (start + offsets.next().unwrap_or(Duration::MAX), None),
            // Known once the request is drawn.
            DueBy::Trace(_) => (start, None),
        };
        // The next request; lines that cannot be sent are recorded on the way.
        let request = loop {
            let next = tokio::select! {
                biased;
                next = source.next() => next,
                () = stop.cancelled() => break 'dispatch gates.stopped(),
            };
            match next {
                None => break 'dispatch Ended::Done,
                Some(Next::Send(request)) => break request,
                Some(Next::Invalid(bad)) => {
                    if !launcher.record(invalid_input_record(bad)).await {
                        break 'dispatch Ended::RecordsClosed;
                    }
                }
            }
        };
        if let DueBy::Trace(speed) = due_by {
            due = start + trace_offset(request.timestamp.unwrap_or_default(), speed);
        }
        seq += 1;
        let warmup = match plan.admit(due.saturating_duration_since(start)) {
            Admit::Stop => {
                let planned = Planned {
                    seq,
                    warmup: false,
                    numbered,
                };
                pending = Some((request, planned));
                break Ended::Limit;
            }
            admit => admit == Admit::Warmup,
        };
        // Known from the first measured request on (after any warm-up).
        if !warmup
            && !window_published
            && let Some(end) = plan.ends_at()
        {
            launcher.measured_until(start + end);
            window_published = true;
        }
        let planned = Planned {
            seq,
            warmup,
            numbered,
        };
        // A launch that does not fit waits for requests in flight to settle (their real cost
        // replaces their reservation) and is decided again; the budget ends dispatch only when it
        // does not fit with nothing in flight.
        let reserved = match &gates.budget {
            None => None,
            Some(budget) => loop {
                match budget.reserve(&request) {
                    Reservation::Reserved(reserved) => break Some(reserved),
                    Reservation::Exhausted => {
                        pending = Some((request, planned));
                        break 'dispatch Ended::Budget;
                    }
                    Reservation::Wait => {
                        let ends = plan.ends_at().map(|at| start + at);
                        tokio::select! {
                            biased;
                            () = stop.cancelled() => {
                                pending = Some((request, planned));
                                break 'dispatch gates.stopped();
                            }
                            () = sleep_until_some(ends) => {
                                pending = Some((request, planned));
                                break 'dispatch Ended::Limit;
                            }
                            () = budget.settled() => {}
                        }
                        // Time spent waiting for the budget is not the pacer's lag.
                        room_wait_ended = Instant::now();
                    }
                }
            },
        };
        let release = |reserved: Option<u64>| {
            if let (Some(budget), Some(reserved)) = (&gates.budget, reserved) {
                budget.release(reserved);
            }
        };
        match pace {
            Pace::Closed {
                concurrency,
                ramp_up,
            } => {
                if launched < concurrency && !ramp_up.is_zero() {
                    due = start + ramp_up.mul_f64(launched as f64 / concurrency as f64);
                    pacer.wait_until(due).await;
                }
                if stop.is_cancelled() {
                    release(reserved);
                    pending = Some((request, planned));
                    break gates.stopped();
                }
            }
            Pace::Open { when_full, .. } => {
                // The pacer watches `stop` itself: no waiter registered per arrival here.
                pacer.wait_until(due).await;
                if stop.is_cancelled() {
                    release(reserved);
                    pending = Some((request, planned));
                    break gates.stopped();
                }
                if due >= room_wait_ended
                    && let Some(lag) = &mut lag
                {
                    lag.record(millis(Instant::now().saturating_duration_since(due)));
                }
                // Room for an arrival: under the AIMD limit, and a free slot. Either full is full.
                let narrowed = narrowing
                    .is_some_and(|t| launcher.in_flight().load(Ordering::Relaxed) >= t.limit());
                let free = if narrowed {
                    None
                } else {
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => Some(slot),
                        Err(TryAcquireError::Closed) => {
                            release(reserved);
                            break Ended::RecordsClosed;
                        }
                        Err(TryAcquireError::NoPermits) => None,
                    }
                };
                slot = match free {
                    Some(slot) => Some(slot),
                    None if when_full == WhenFull::Drop => {
                        release(reserved);
                        let mut record = dropped_record(request, pace.slots());
                        planned.stamp(&mut record);
                        record.scheduled_at = Some(millis(
                            due.into_std().saturating_duration_since(launcher.epoch()),
                        ));
                        if !launcher.record(record).await {
                            break Ended::RecordsClosed;
                        }
                        continue;
                    }
                    None => {
                        if let Some(throttle) = narrowing {
                            tokio::select! {
                                biased;
                                () = throttle.wait_for_slot(launcher.in_flight()) => {}
                                () = stop.cancelled() => {
                                    release(reserved);
                                    pending = Some((request, planned));
                                    break gates.stopped();
                                }
                            }
                        }
                        let slot = tokio::select! {
                            biased;
                            slot = slots.clone().acquire_owned() => slot,
                            () = stop.cancelled() => {
                                release(reserved);
                                pending = Some((request, planned));
                                break gates.stopped();
                            }
                        };
                        room_wait_ended = Instant::now();
                        let Ok(slot) = slot else {
                            release(reserved);
                            break Ended::RecordsClosed;
                        };
                        Some(slot)
                    }
                };
            }
        }
        // Records can no longer be written (the collector failed): send nothing more.
        let (Some(slot), false) = (slot, launcher.closed()) else {
            release(reserved);
            break Ended::RecordsClosed;
        };
        launcher.launch(
            Launch {
                request,
                planned,
                scheduled: due,
                reserved,
            },
            slot,
        );
        launched += 1;
    };
    if matches!(ended, Ended::Limit | Ended::Budget | Ended::Cut) {
        launcher.limit_reached();
    }
    if ended != Ended::RecordsClosed && source.owes_records() {
        let verdict = gates.give_up.as_ref().and_then(|g| g.verdict());
        record_unsent(source, pending, ended, verdict, launcher).await;
    }
    let _ = slots.acquire_many(pace.slots() as u32).await;
    Dispatched {
        ended,
        scheduler_lag: lag,
    }
}

/// Sleeps until `at`, or forever when there is none.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Every line not sent because dispatch stopped early ends as one record saying why.
async fn record_unsent(
    source: &mut impl Source,
    pending: Option<(Request, Planned)>,
    ended: Ended,
    verdict: Option<&str>,
    launcher: &impl Launcher,
) {
    let unsent = |request| match (ended, verdict) {
        (Ended::Budget, _) => skipped_budget_record(request),
        (Ended::Limit | Ended::Cut, _) => limit_record(request),
        (Ended::GaveUp, Some(verdict)) => gave_up_record(request, verdict),
        _ => interrupted_record(request),
    };
    if let Some((request, planned)) = pending {
        let mut record = unsent(request);
        planned.stamp(&mut record);
        if !launcher.record(record).await {
            return;
        }
    }
    if ended == Ended::Done {
        return;
    }
    while let Some(next) = source.next().await {
        let record = match next {
            Next::Send(request) => unsent(request),
            Next::Invalid(bad) => invalid_input_record(bad),
        };
        if !launcher.record(record).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Limit, Warmup};
    use super::super::source::Cycled;
    use super::*;
    use crate::record::Status;
    use crate::workload::Route;
    use bytes::Bytes;
    use std::sync::Mutex;

    /// Holds each slot for `hold` of (paused) time and notes when every request was launched.
    struct FakeLauncher {
        hold: Duration,
        start: Instant,
        in_flight: Arc<AtomicUsize>,
        launched: Mutex<Vec<(Planned, Duration, Duration)>>,
        records: Mutex<Vec<Record>>,
        closed: bool,
        /// Told when each request ends, as the real launcher does.
        throttle: Option<Arc<Throttle>>,
    }

    impl FakeLauncher {
        fn new(hold: Duration) -> Self {
            FakeLauncher {
                hold,
                start: Instant::now(),
                in_flight: Arc::default(),
                launched: Mutex::default(),
                records: Mutex::default(),
                closed: false,
                throttle: None,
            }
        }

        fn sent(&self) -> usize {
            self.launched.lock().unwrap().len()
        }

        /// When each launched request was sent, from the start, in launch order.
        fn sent_times(&self) -> Vec<Duration> {
            self.launched.lock().unwrap().iter().map(|l| l.2).collect()
        }

        /// When each launched request was due, from the start, in launch order.
        fn scheduled(&self) -> Vec<Duration> {
            self.launched.lock().unwrap().iter().map(|l| l.1).collect()
        }

        fn recorded(&self, status: Status) -> Vec<Record> {
            let records = self.records.lock().unwrap();
            records
                .iter()
                .filter(|r| r.status == status)
                .cloned()
                .collect()
        }
    }

    impl Launcher for FakeLauncher {
        fn launch(&self, launch: Launch, slot: OwnedSemaphorePermit) {
            let sent = Instant::now() - self.start;
            self.launched.lock().unwrap().push((
                launch.planned,
                launch.scheduled - self.start,
                sent,
            ));
            let (hold, in_flight) = (self.hold, self.in_flight.clone());
            let throttle = self.throttle.clone();
            in_flight.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Some(throttle) = throttle {
                    throttle.finished();
                }
                drop(slot);
            });
        }

        async fn record(&self, record: Record) -> bool {
            self.records.lock().unwrap().push(record);
            true
        }

        fn in_flight(&self) -> &AtomicUsize {
            &self.in_flight
        }

        fn closed(&self) -> bool {
            self.closed
        }

        fn epoch(&self) -> std::time::Instant {
            self.start.into_std()
        }
    }

    fn request(line: u64) -> Request {
        Request {
            line,
            id: line.to_string(),
            route: Route::Responses,
            body: Bytes::from_static(b"{\"model\":\"gpt-4o-mini\",\"input\":\"hi\"}"),
            model: Some("gpt-4o-mini".into()),
            max_output_tokens: Some(16),
            metadata: None,
            timestamp: None,
            conversation: None,
            prior_turns: None,
            usage_option_added: false,
        }
    }

    fn cycled() -> Cycled {
        Cycled::new((1..=3).map(request).collect::<Vec<_>>().into())
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

    async fn run(
        source: &mut impl Source,
        plan: &mut Plan,
        pace: Pace,
        gates: &Gates,
        launcher: &FakeLauncher,
        stop: &CancellationToken,
    ) -> Dispatched {
        let mut pacer = TokioPacer { stop: stop.clone() };
        dispatch(source, plan, pace, gates, &mut pacer, launcher, stop).await
    }

    #[tokio::test(start_paused = true)]
    async fn constant_rate_sends_each_request_at_its_scheduled_time() {
        let launcher = FakeLauncher::new(ms(5));
        let done = run(
            &mut cycled(),
            &mut requests(50),
            open(100.0, 64, WhenFull::Wait),
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let launched = launcher.launched.lock().unwrap();
        assert_eq!(
            (launched.len(), launcher.records.lock().unwrap().len()),
            (50, 0)
        );
        for (i, (planned, scheduled, sent)) in launched.iter().enumerate() {
            assert_eq!(planned.seq, i as u64 + 1);
            assert_eq!(*scheduled, ms(10 * i as u64));
            assert_eq!(sent, scheduled, "request {i} waited");
        }
        assert_eq!(done.ended, Ended::Limit);
        assert_eq!(
            done.scheduler_lag.unwrap().inner().max(),
            1,
            "paused time: no lag"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trace_sends_each_request_at_its_timestamp_over_the_speed_once_through() {
        let stamps = [0u64, 0, 7, 250, 251, 1000];
        let trace: Vec<Request> = stamps
            .iter()
            .enumerate()
            .map(|(i, ms_)| Request {
                timestamp: Some(ms(*ms_)),
                ..request(i as u64 + 1)
            })
            .collect();
        let launcher = FakeLauncher::new(ms(5));
        let done = run(
            &mut Cycled::once(trace.into()),
            &mut Plan::new(Warmup::None, Limit::NONE),
            Pace::Open {
                arrivals: Arrivals::Trace { speed: 2.0 },
                max_inflight: 64,
                when_full: WhenFull::Wait,
            },
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let halves: Vec<Duration> = stamps
            .iter()
            .map(|t| Duration::from_micros(t * 500))
            .collect();
        let scheduled = launcher.scheduled();
        assert_eq!(scheduled, halves);
        assert_eq!(done.ended, Ended::Done, "the trace ends; it does not cycle");
    }

    #[tokio::test(start_paused = true)]
    async fn arrivals_wait_for_a_slot_when_full_and_keep_their_schedule() {
        // Two slots held 100 ms each, an arrival every 10 ms: the third arrival (due at 20 ms) waits
        // until the first slot frees at 100 ms; its scheduled time stays 20 ms, so its queue is 80 ms.
        let launcher = FakeLauncher::new(ms(100));
        let done = run(
            &mut cycled(),
            &mut requests(6),
            open(100.0, 2, WhenFull::Wait),
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let times: Vec<(Duration, Duration)> = launcher
            .launched
            .lock()
            .unwrap()
            .iter()
            .map(|l| (l.1, l.2))
            .collect();
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
        assert_eq!(done.scheduler_lag.unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn drop_when_full_records_every_arrival_that_finds_no_slot() {
        // Arrivals at 0, 10, …, 190 ms; two slots held 95 ms: 0 and 10 run, 20–90 are dropped,
        // 100 and 110 run, 120–190 are dropped.
        let launcher = FakeLauncher::new(ms(95));
        run(
            &mut cycled(),
            &mut requests(20),
            open(100.0, 2, WhenFull::Drop),
            &Gates::default(),
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
        let dropped = launcher.recorded(Status::Dropped);
        assert_eq!(dropped.len(), 16);
        assert_eq!(
            (dropped[0].seq, dropped[0].scheduled_at),
            (Some(3), Some(20.0))
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
        let done = run(
            &mut cycled(),
            &mut plan,
            Pace::closed(3),
            &Gates::default(),
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
        assert!(done.scheduler_lag.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn ramp_up_spreads_the_first_closed_loop_requests_evenly() {
        let launcher = FakeLauncher::new(ms(1000));
        run(
            &mut cycled(),
            &mut requests(4),
            Pace::Closed {
                concurrency: 4,
                ramp_up: ms(400),
            },
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let starts = launcher.sent_times();
        assert_eq!(starts, [ms(0), ms(100), ms(200), ms(300)]);
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
        let done = run(
            &mut cycled(),
            &mut requests(1000),
            open(100.0, 64, WhenFull::Wait),
            &Gates::default(),
            &launcher,
            &stop,
        )
        .await;
        assert_eq!(done.ended, Ended::Interrupted);
        assert_eq!(launcher.sent(), 5);
        // Returns only once the last request (sent at 40 ms, held 500 ms) gave its slot back.
        assert_eq!(before.elapsed(), ms(540));
    }

    /// A finite source: each line is one request, line 3 cannot be sent.
    struct Lines(std::vec::IntoIter<u64>);

    impl Source for Lines {
        async fn next(&mut self) -> Option<Next> {
            self.0.next().map(|line| {
                if line == 3 {
                    Next::Invalid(crate::workload::InvalidLine {
                        line,
                        id: line.to_string(),
                        message: "not JSON".into(),
                        refuses_run: false,
                    })
                } else {
                    Next::Send(request(line))
                }
            })
        }
    }

    fn lines(n: u64) -> Lines {
        Lines((1..=n).collect::<Vec<_>>().into_iter())
    }

    #[tokio::test(start_paused = true)]
    async fn every_line_of_a_finite_source_ends_as_one_record_when_the_duration_ends() {
        // 2 in flight, 100 ms each, 250 ms of load: 6 lines sent, line 3 recorded as invalid on the
        // way, the other 13 recorded as not sent.
        let launcher = FakeLauncher::new(ms(100));
        let mut plan = Plan::new(
            Warmup::None,
            Limit {
                requests: None,
                duration: Some(ms(250)),
            },
        );
        let done = run(
            &mut lines(20),
            &mut plan,
            Pace::closed(2),
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(done.ended, Ended::Limit);
        assert_eq!(launcher.sent(), 6);
        assert_eq!(launcher.recorded(Status::InvalidInput).len(), 1);
        let unsent = launcher.recorded(Status::NotSent);
        assert_eq!(unsent.len(), 13);
        assert!(
            unsent
                .iter()
                .all(|r| r.error.as_ref().is_some_and(|e| e.kind == "limit"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_stops_dispatch_and_records_the_rest_as_skipped() {
        let launcher = FakeLauncher::new(ms(10));
        // A budget below one request's estimate: nothing is sent.
        let budget = Arc::new(Budget::new(
            1e-9,
            Arc::new(crate::cost::PriceTable::default()),
            crate::cost::Tier::Standard,
        ));
        let gates = Gates {
            budget: Some(budget),
            ..Gates::default()
        };
        let done = run(
            &mut lines(5),
            &mut Plan::new(Warmup::None, Limit::NONE),
            Pace::closed(2),
            &gates,
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(done.ended, Ended::Budget);
        assert_eq!(launcher.sent(), 0);
        assert_eq!(launcher.recorded(Status::SkippedBudget).len(), 4);
        assert_eq!(launcher.recorded(Status::InvalidInput).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_over_a_finite_source_ends_when_the_lines_do() {
        let launcher = FakeLauncher::new(ms(5));
        let done = run(
            &mut lines(5),
            &mut Plan::new(Warmup::None, Limit::NONE),
            open(100.0, 8, WhenFull::Wait),
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(done.ended, Ended::Done);
        let scheduled = launcher.scheduled();
        // Line 3 is recorded, not scheduled: four arrivals, 10 ms apart.
        assert_eq!(scheduled, [ms(0), ms(10), ms(20), ms(30)]);
    }

    fn throttle(follow_server: bool, max: usize) -> Arc<Throttle> {
        let throttle = Throttle::new(None, None, None, max, Duration::from_secs(60));
        Arc::new(if follow_server {
            throttle
        } else {
            throttle.limits_only()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_that_cannot_narrow_leaves_drop_when_full_alone() {
        // As `drop_when_full_records_every_arrival_that_finds_no_slot`, with `bench --rps`'s
        // limits-only throttle among the gates: the same drops, none turned into waits.
        let launcher = FakeLauncher::new(ms(95));
        let gates = Gates {
            throttle: Some(throttle(false, 2)),
            ..Gates::default()
        };
        run(
            &mut cycled(),
            &mut requests(20),
            open(100.0, 2, WhenFull::Drop),
            &gates,
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(launcher.sent(), 4);
        assert_eq!(launcher.recorded(Status::Dropped).len(), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_arrival_over_the_aimd_limit_is_full_and_its_wait_is_not_timer_lag() {
        // Four slots, but a 429 halved the server-following throttle's limit to two: arrivals every
        // 10 ms, each held 95 ms, so the third waits for room until 95 ms, the fourth until 105 ms,
        // the fifth until 190 ms.
        let throttle = throttle(true, 4);
        throttle.observe(Some(429), &crate::client::RateHints::default());
        assert_eq!(throttle.limit(), 2);
        let mut launcher = FakeLauncher::new(ms(95));
        launcher.throttle = Some(throttle.clone());
        let gates = Gates {
            throttle: Some(throttle),
            ..Gates::default()
        };
        let done = run(
            &mut cycled(),
            &mut requests(5),
            open(100.0, 4, WhenFull::Wait),
            &gates,
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        let sent = launcher.sent_times();
        assert_eq!(sent, [ms(0), ms(10), ms(95), ms(105), ms(190)]);
        // The fourth and fifth were late because of the third's wait for room: not timer lag.
        assert_eq!(done.scheduler_lag.unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_once_records_can_no_longer_be_written() {
        let mut launcher = FakeLauncher::new(ms(10));
        launcher.closed = true;
        let done = run(
            &mut lines(5),
            &mut Plan::new(Warmup::None, Limit::NONE),
            Pace::closed(2),
            &Gates::default(),
            &launcher,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(done.ended, Ended::RecordsClosed);
        assert_eq!(launcher.sent(), 0);
    }
}
