//! When requests are sent: the closed loop keeps up to N requests in flight until the workload ends.

use crate::client::Client;
use crate::record::{Record, Status};
use crate::workload::{InvalidLine, WorkItem};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};

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

/// Sends every item with at most `concurrency` in flight; returns when every record is handed on.
///
/// Each line yields exactly one record: sent lines from the client, invalid lines directly.
/// A closed records channel (the collector failed) stops dispatch.
pub async fn run_closed_loop(
    mut items: mpsc::Receiver<WorkItem>,
    client: Arc<Client>,
    concurrency: usize,
    records: mpsc::Sender<Record>,
    in_flight: Arc<AtomicUsize>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    while let Some(item) = items.recv().await {
        let request = match item {
            WorkItem::Send(request) => request,
            WorkItem::Invalid(bad) => {
                if records.send(invalid_input_record(bad)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if records.is_closed() {
            break;
        }
        let scheduled = Instant::now();
        let (client, records, in_flight) = (client.clone(), records.clone(), in_flight.clone());
        in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let record = client.execute(request, scheduled).await;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            // Holding the slot until the collector has the record keeps memory bounded when it lags.
            let _ = records.send(record).await;
            drop(slot);
        });
    }
    // Every slot back means every spawned request has handed its record on.
    let _ = slots.acquire_many(concurrency as u32).await;
}
