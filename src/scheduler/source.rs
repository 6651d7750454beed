//! Where requests come from: the streamed workload file of `run`, the cycled in-memory workload of
//! `bench`, or that workload sent once in time order (a trace replay).

use crate::workload::{InvalidLine, Request, WorkItem};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a source yields next.
pub enum Next {
    Send(Request),
    /// A line that cannot be sent: it ends as an `invalid_input` record.
    Invalid(InvalidLine),
}

/// A supply of requests for the dispatcher.
pub trait Source: Send {
    /// The next item to dispatch; None when the source has no more.
    fn next(&mut self) -> impl Future<Output = Option<Next>> + Send;

    /// Whether every line drawn or left unsent when dispatch stops early is owed a record: true
    /// for a workload file (each line ends as one record), false for a cycled workload (a request
    /// not sent was never due).
    fn owes_records(&self) -> bool {
        true
    }
}

/// A workload file read on a blocking thread (see `workload::WorkloadReader`) a bounded queue ahead
/// of dispatch, so memory stays flat whatever its size.
pub struct Streamed {
    items: mpsc::Receiver<WorkItem>,
}

impl Streamed {
    /// Reads `items` on a blocking thread; those `skip` says yes to are counted, not dispatched
    /// (`--resume`: lines already done). The task's result is the number skipped, or the first
    /// read error.
    pub fn read(
        items: impl Iterator<Item = std::io::Result<WorkItem>> + Send + 'static,
        queue: usize,
        mut skip: impl FnMut(&WorkItem) -> bool + Send + 'static,
    ) -> (Streamed, tokio::task::JoinHandle<std::io::Result<u64>>) {
        let (tx, rx) = mpsc::channel(queue);
        let reading = tokio::task::spawn_blocking(move || {
            let mut skipped = 0;
            for item in items {
                let item = item?;
                if skip(&item) {
                    skipped += 1;
                    continue;
                }
                if tx.blocking_send(item).is_err() {
                    break;
                }
            }
            Ok(skipped)
        });
        (Streamed { items: rx }, reading)
    }
}

impl Source for Streamed {
    async fn next(&mut self) -> Option<Next> {
        Some(match self.items.recv().await? {
            WorkItem::Send(request) => Next::Send(request),
            WorkItem::Invalid(bad) => Next::Invalid(bad),
        })
    }
}

/// A workload held in memory and sent over and over, in order (`bench`), or once (a trace).
pub struct Cycled {
    workload: Arc<[Request]>,
    next: usize,
    once: bool,
}

impl Cycled {
    /// An empty workload yields nothing.
    pub fn new(workload: Arc<[Request]>) -> Self {
        Cycled {
            workload,
            next: 0,
            once: false,
        }
    }

    /// The workload once through, then nothing: a trace, whose timestamps do not repeat.
    pub fn once(workload: Arc<[Request]>) -> Self {
        Cycled {
            once: true,
            ..Cycled::new(workload)
        }
    }
}

impl Source for Cycled {
    async fn next(&mut self) -> Option<Next> {
        let request = self.workload.get(self.next)?.clone();
        self.next += 1;
        if self.next == self.workload.len() && !self.once {
            self.next = 0;
        }
        Some(Next::Send(request))
    }

    fn owes_records(&self) -> bool {
        false
    }
}
