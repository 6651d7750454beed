//! When and whether requests are sent: the one dispatch engine (source, plan, pace, gates), arrival
//! schedules, the `Requester` (retries, waits) and the run-wide `Throttle`.

mod arrivals;
mod engine;
mod give_up;
mod launch;
mod plan;
mod requester;
mod source;
mod throttle;

pub use arrivals::{ArrivalOffsets, Arrivals};
pub use engine::{
    Dispatched, Ended, Gates, Launch, Launcher, Pace, Pacer, Planned, ThreadPacer, TokioPacer,
    WhenFull, dispatch,
};
pub use give_up::GiveUp;
pub use launch::RequestLauncher;
pub use plan::{Admit, Limit, Plan, Warmup};
pub use requester::{Requester, RetryPolicy};
pub use source::{Cycled, Next, Source, Streamed};
pub use throttle::Throttle;

use crate::record::{Record, Status};
use crate::workload::InvalidLine;
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
    record.metadata = request
        .metadata
        .as_deref()
        .and_then(crate::record::raw_json);
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

/// The record for a line not sent because the load's `--duration` (or `--requests`) ended first;
/// `run --resume` sends it.
pub fn limit_record(request: crate::workload::Request) -> Record {
    unsent_record(
        request,
        Status::NotSent,
        "limit",
        "not sent: the load's --duration or --requests limit came first (--resume sends it)",
    )
}

/// The record for a line not sent because the run gave up on a dead endpoint; `--resume` sends it.
pub fn gave_up_record(request: crate::workload::Request, verdict: &str) -> Record {
    unsent_record(
        request,
        Status::NotSent,
        "gave_up",
        &format!("not sent: the run gave up: {verdict}"),
    )
}

/// The record for a line not sent because the run was interrupted.
pub fn interrupted_record(request: crate::workload::Request) -> Record {
    unsent_record(
        request,
        Status::NotSent,
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
