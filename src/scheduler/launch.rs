//! The launcher every run uses: starts each request on the main runtime and hands its record on.

use super::engine::{Gates, Launch, Launcher};
use super::requester::Requester;
use crate::record::Record;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

/// Sends requests through a `Requester` and hands their records to the collector.
///
/// Requests run on long-lived workers, one per slot at most, started as the load first needs
/// them: a launch queues the request and wakes an idle worker, which sends it and hands its
/// record on, then waits for the next. No task is spawned, and no request's state (4 KB) is
/// allocated or moved, per request; the queue holds at most one request per slot, since each
/// carries its slot.
pub struct RequestLauncher {
    shared: Arc<Shared>,
    /// Dropped with the launcher: the queue closes and idle workers end.
    jobs: async_channel::Sender<Job>,
    /// The workers' end of the queue, cloned into each new worker.
    waiting: async_channel::Receiver<Job>,
    /// Workers started so far (at most `slots`).
    workers: AtomicUsize,
    slots: usize,
}

/// A request cleared to go, with the slot it holds until its record is handed on.
type Job = (Launch, OwnedSemaphorePermit);

/// What the workers share.
struct Shared {
    requester: Requester,
    records: mpsc::Sender<Record>,
    in_flight: Arc<AtomicUsize>,
    /// Workers waiting for a request.
    idle: AtomicUsize,
    abandon: CancellationToken,
    gates: Gates,
    runtime: tokio::runtime::Handle,
}

impl RequestLauncher {
    /// Runs requests on the runtime this is called on, whichever thread dispatch runs on, at most
    /// `slots` at once. `abandon` drops requests still in flight (they are recorded as cancelled);
    /// `gates` learn when each request ends.
    pub fn new(
        requester: Requester,
        records: mpsc::Sender<Record>,
        in_flight: Arc<AtomicUsize>,
        abandon: CancellationToken,
        gates: Gates,
        slots: usize,
    ) -> Self {
        let slots = slots.max(1);
        let (jobs, waiting) = async_channel::bounded(slots);
        RequestLauncher {
            shared: Arc::new(Shared {
                requester,
                records,
                in_flight,
                idle: AtomicUsize::new(0),
                abandon,
                gates,
                runtime: tokio::runtime::Handle::current(),
            }),
            jobs,
            waiting,
            workers: AtomicUsize::new(0),
            slots,
        }
    }
}

impl Shared {
    /// One worker: takes requests from the queue until it closes.
    async fn work(self: Arc<Self>, jobs: async_channel::Receiver<Job>) {
        loop {
            self.idle.fetch_add(1, Ordering::AcqRel);
            let job = jobs.recv().await;
            self.idle.fetch_sub(1, Ordering::AcqRel);
            let Ok((launch, slot)) = job else {
                return;
            };
            self.run(launch, slot).await;
        }
    }

    async fn run(&self, launch: Launch, slot: OwnedSemaphorePermit) {
        let Launch {
            request,
            planned,
            scheduled,
            reserved,
        } = launch;
        let mut record = self
            .requester
            .execute(request, scheduled.into_std(), &self.abandon)
            .await;
        planned.stamp(&mut record);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(throttle) = &self.gates.throttle {
            throttle.finished();
        }
        // Released by the collector once it has spent the request's cost, not before.
        record.budget_reserved = reserved;
        // Holding the slot until the collector has the record keeps memory bounded when it lags.
        let _ = self.records.send(record).await;
        drop(slot);
    }
}

impl Launcher for RequestLauncher {
    fn launch(&self, launch: Launch, slot: OwnedSemaphorePermit) {
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        // Room is certain: the queue holds one request per slot, and each holds its slot.
        if let Err(e) = self.jobs.try_send((launch, slot)) {
            // Unreachable while the launcher lives; were it reached, the request still runs.
            let (launch, slot) = e.into_inner();
            let shared = self.shared.clone();
            self.shared
                .runtime
                .spawn(async move { shared.run(launch, slot).await });
            return;
        }
        // No worker waiting: start one, up to one per slot. One busy worker about to take the
        // request would have done; an extra is harmless, being bounded by the slots.
        if self.shared.idle.load(Ordering::Acquire) == 0
            && self.workers.load(Ordering::Relaxed) < self.slots
        {
            self.workers.fetch_add(1, Ordering::Relaxed);
            let shared = self.shared.clone();
            let jobs = self.waiting.clone();
            // Called on the pacer thread too, whose own runtime only paces: requests run on the main one.
            self.shared.runtime.spawn(shared.work(jobs));
        }
    }

    async fn record(&self, record: Record) -> bool {
        self.shared.records.send(record).await.is_ok()
    }

    fn in_flight(&self) -> &AtomicUsize {
        &self.shared.in_flight
    }

    fn closed(&self) -> bool {
        self.shared.records.is_closed()
    }

    fn epoch(&self) -> std::time::Instant {
        self.shared.requester.epoch()
    }
}
