//! When requests are sent: the closed loop of `run`, and the bench profiles' dispatcher and schedules.

mod arrivals;
mod bench_loop;
mod plan;
mod requester;
mod throttle;

pub use arrivals::{ArrivalOffsets, Arrivals};
pub use bench_loop::{Launcher, Pace, Pacer, Planned, ThreadPacer, TokioPacer, WhenFull, dispatch};
pub use plan::{Admit, Limit, Plan, Warmup};
pub use requester::{Requester, RetryPolicy};
pub use throttle::Throttle;

use crate::cost::Budget;
use crate::record::{Record, Status};
use crate::workload::{InvalidLine, WorkItem};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// The record for a line that could not be sent.
pub fn invalid_input_record(bad: InvalidLine) -> Record {
    let mut record = Record::empty(bad.id, bad.line, Status::InvalidInput);
    record.fail(
        Status::InvalidInput,
        "invalid_input",
        format!("line {}: {}", bad.line, bad.message),
    );
    record
}

fn unsent_record(
    request: crate::workload::Request,
    status: Status,
    kind: &str,
    message: &str,
) -> Record {
    let mut record = Record::empty(request.id, request.line, status);
    record.model = request.model;
    record.fail(status, kind, message);
    record
}

/// The record for a line left unsent because the cost budget ran out.
pub fn skipped_budget_record(request: crate::workload::Request) -> Record {
    unsent_record(
        request,
        Status::SkippedBudget,
        "budget",
        "not sent: --max-cost would have been exceeded",
    )
}

/// The record for a `bench` arrival not sent because `max_in_flight` requests were in flight
/// (`--drop-when-full`).
pub fn dropped_record(request: crate::workload::Request, max_in_flight: usize) -> Record {
    unsent_record(
        request,
        Status::Dropped,
        "dropped",
        &format!(
            "not sent: {max_in_flight} requests were in flight (--max-inflight) and --drop-when-full is set"
        ),
    )
}

/// The record for a line not sent because the run was interrupted.
pub fn interrupted_record(request: crate::workload::Request) -> Record {
    unsent_record(
        request,
        Status::Cancelled,
        "interrupted",
        "not sent: the run was interrupted",
    )
}

/// How an interrupt reaches the scheduler: `stop` ends dispatch (the rest of the workload is recorded
/// as cancelled), `abandon` drops the requests still in flight once the grace period is over.
#[derive(Clone, Default)]
pub struct Shutdown {
    pub stop: CancellationToken,
    pub abandon: CancellationToken,
}

/// The closed loop's shape: how many requests in flight, and how fast the first ones start.
#[derive(Clone)]
pub struct ClosedLoop {
    pub concurrency: usize,
    /// The first `concurrency` requests start evenly over this span instead of all at once, so
    /// requests of equal length do not stay in lock-step waves.
    pub ramp_up: Duration,
    /// `--max-cost`: lines past the budget are recorded as `skipped_budget`, not sent.
    pub budget: Option<Arc<Budget>>,
    /// Run-wide pacing: fewer requests in flight after a 429 (AIMD).
    pub throttle: Option<Arc<Throttle>>,
}

/// Sends every item with at most `concurrency` in flight; returns when every record is handed on.
///
/// Each line yields exactly one record: sent lines from the client, invalid lines directly.
/// A closed records channel (the collector failed) stops dispatch.
pub async fn run_closed_loop(
    mut items: mpsc::Receiver<WorkItem>,
    requester: Arc<Requester>,
    shape: &ClosedLoop,
    records: mpsc::Sender<Record>,
    in_flight: Arc<AtomicUsize>,
    shutdown: &Shutdown,
) {
    let concurrency = shape.concurrency;
    let slots = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut dispatched = 0usize;
    loop {
        let item = tokio::select! {
            biased;
            () = shutdown.stop.cancelled() => break,
            item = items.recv() => item,
        };
        let Some(item) = item else { break };
        let request = match item {
            WorkItem::Send(request) => request,
            WorkItem::Invalid(bad) => {
                if records.send(invalid_input_record(bad)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if let Some(throttle) = &shape.throttle {
            tokio::select! {
                biased;
                () = shutdown.stop.cancelled() => {
                    let _ = records.send(interrupted_record(request)).await;
                    break;
                }
                () = throttle.wait_for_slot(&in_flight) => {}
            }
        }
        let slot = tokio::select! {
            biased;
            () = shutdown.stop.cancelled() => {
                if records.send(interrupted_record(request)).await.is_err() {
                    break;
                }
                break;
            }
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let reservation = match &shape.budget {
            None => None,
            Some(budget) => match budget.reserve(&request) {
                Some(reserved) => Some((budget.clone(), reserved)),
                None => {
                    drop(slot);
                    if records.send(skipped_budget_record(request)).await.is_err() {
                        break;
                    }
                    continue;
                }
            },
        };
        if records.is_closed() {
            break;
        }
        let scheduled = if dispatched < concurrency && !shape.ramp_up.is_zero() {
            let due = started
                + shape
                    .ramp_up
                    .mul_f64(dispatched as f64 / concurrency as f64);
            tokio::time::sleep_until(due.into()).await;
            due
        } else {
            Instant::now()
        };
        dispatched += 1;
        let (requester, records, in_flight) =
            (requester.clone(), records.clone(), in_flight.clone());
        let abandon = shutdown.abandon.clone();
        let throttle = shape.throttle.clone();
        in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let record = requester.execute(request, scheduled, &abandon).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Some(throttle) = &throttle {
                throttle.finished();
            }
            if let Some((budget, reserved)) = reservation {
                budget.release(reserved);
            }
            // Holding the slot until the collector has the record keeps memory bounded when it lags.
            let _ = records.send(record).await;
            drop(slot);
        });
    }
    // Interrupted: every line not yet sent still ends as one record.
    if shutdown.stop.is_cancelled() {
        while let Some(item) = items.recv().await {
            let record = match item {
                WorkItem::Send(request) => interrupted_record(request),
                WorkItem::Invalid(bad) => invalid_input_record(bad),
            };
            if records.send(record).await.is_err() {
                break;
            }
        }
    }
    // Every slot back means every spawned request has handed its record on.
    let _ = slots.acquire_many(concurrency as u32).await;
}
