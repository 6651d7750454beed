//! The launcher every run uses: starts each request on the main runtime and hands its record on.

use super::engine::{Gates, Launch, Launcher};
use super::requester::Requester;
use crate::record::Record;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

/// Sends requests through a `Requester` and hands their records to the collector.
pub struct RequestLauncher(Arc<Shared>);

/// What launched requests share: one `Arc` clone per request.
struct Shared {
    requester: Requester,
    records: mpsc::Sender<Record>,
    in_flight: Arc<AtomicUsize>,
    abandon: CancellationToken,
    gates: Gates,
    runtime: tokio::runtime::Handle,
}

impl RequestLauncher {
    /// Launches on the runtime this is called on, whichever thread dispatch runs on. `abandon`
    /// drops requests still in flight (they are recorded as cancelled); `gates` learn when each
    /// request ends.
    pub fn new(
        requester: Requester,
        records: mpsc::Sender<Record>,
        in_flight: Arc<AtomicUsize>,
        abandon: CancellationToken,
        gates: Gates,
    ) -> Self {
        RequestLauncher(Arc::new(Shared {
            requester,
            records,
            in_flight,
            abandon,
            gates,
            runtime: tokio::runtime::Handle::current(),
        }))
    }
}

impl Launcher for RequestLauncher {
    fn launch(&self, launch: Launch, slot: OwnedSemaphorePermit) {
        let shared = self.0.clone();
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        // Called on the pacer thread too, whose own runtime only paces: requests run on the main one.
        self.0.runtime.spawn(async move {
            let Launch {
                request,
                planned,
                scheduled,
                reserved,
            } = launch;
            let mut record = shared
                .requester
                .execute(request, scheduled.into_std(), &shared.abandon)
                .await;
            planned.stamp(&mut record);
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Some(throttle) = &shared.gates.throttle {
                throttle.finished();
            }
            // Released by the collector once it has spent the request's cost, not before.
            record.budget_reserved = reserved;
            // Holding the slot until the collector has the record keeps memory bounded when it lags.
            let _ = shared.records.send(record).await;
            drop(slot);
        });
    }

    async fn record(&self, record: Record) -> bool {
        self.0.records.send(record).await.is_ok()
    }

    fn in_flight(&self) -> &AtomicUsize {
        &self.0.in_flight
    }

    fn closed(&self) -> bool {
        self.0.records.is_closed()
    }

    fn epoch(&self) -> std::time::Instant {
        self.0.requester.epoch()
    }
}
