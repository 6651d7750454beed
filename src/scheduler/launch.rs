//! The launcher every run uses: starts each request on the main runtime and hands its record on.

use super::engine::{Gates, Launch, Launcher, Planned};
use super::requester::Requester;
use crate::conversation::{Conversation, ConversationSettings, Next};
use crate::record::{Record, Status};
use crate::workload::Request;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

/// Sends requests through a `Requester` and hands their records to the collector.
///
/// Requests run on long-lived workers, one per slot at most, started as the load first needs
/// them: a launch claims a waiting worker and queues the request for it, or starts a new worker
/// with it, which sends it and hands its record on, then waits for the next. No task is spawned,
/// and no request's state (4 KB) is allocated or moved, per request; the queue holds at most one
/// request per slot, since each carries its slot.
pub struct RequestLauncher {
    shared: Arc<Shared>,
    /// Dropped with the launcher: the queue closes and idle workers end.
    jobs: async_channel::Sender<Job>,
    /// The workers' end of the queue, cloned into each new worker.
    waiting: async_channel::Receiver<Job>,
    /// Workers started so far (at most `slots`).
    workers: AtomicUsize,
    slots: usize,
    /// Where a timed load's deadline is published for the collector.
    window_end: Option<crate::stats::WindowEnd>,
}

/// A request cleared to go, with the slot it holds until its record is handed on.
type Job = (Launch, OwnedSemaphorePermit);

/// What the workers share.
struct Shared {
    requester: Requester,
    records: mpsc::Sender<Record>,
    in_flight: Arc<AtomicUsize>,
    /// Workers waiting (or about to wait) for a request and not yet claimed by a launch. A worker
    /// counts itself before it gives its slot back, so a launch that got that slot finds it.
    idle: AtomicUsize,
    abandon: CancellationToken,
    gates: Gates,
    runtime: tokio::runtime::Handle,
    conversations: ConversationSettings,
    /// The load's stop: a conversation sends no further turn once it fires.
    stop: CancellationToken,
    /// Fired when the plan's limit (or the budget) ended the load: the same, recorded as `limit`.
    limit: CancellationToken,
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
                conversations: ConversationSettings::default(),
                stop: CancellationToken::new(),
                limit: CancellationToken::new(),
            }),
            jobs,
            waiting,
            workers: AtomicUsize::new(0),
            slots,
            window_end: None,
        }
    }
}

impl RequestLauncher {
    /// Runs conversation lines (and with `--tool-loop` every line) turn after turn as `settings`
    /// say; `stop` (the load's) ends them between turns. Call before the first launch.
    /// Publishes a timed load's deadline to `end` (the collector's), once the plan knows it.
    pub fn with_window_end(mut self, end: crate::stats::WindowEnd) -> Self {
        self.window_end = Some(end);
        self
    }

    pub fn with_conversations(
        mut self,
        settings: ConversationSettings,
        stop: CancellationToken,
    ) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.conversations = settings;
            shared.stop = stop;
        }
        self
    }
}

impl Shared {
    /// One worker: runs `first`, then takes requests from the queue until it closes.
    async fn work(self: Arc<Self>, first: Job, jobs: async_channel::Receiver<Job>) {
        let (mut launch, mut slot) = first;
        loop {
            self.run(launch).await;
            self.idle.fetch_add(1, Ordering::AcqRel);
            drop(slot);
            (launch, slot) = match jobs.recv().await {
                Ok(job) => job,
                Err(_) => return,
            };
        }
    }

    /// Sends one request and hands its record on; its slot is held until then. A conversation
    /// holds it for all its turns.
    async fn run(&self, launch: Launch) {
        if self.conversations.tool_loop || launch.request.conversation.is_some() {
            // Boxed: a conversation's turns inline would size every worker's task, and each
            // in-flight request holds one (8.7 instead of 6.6 KB: 2 KB of RSS per h2c stream).
            return Box::pin(self.converse(launch)).await;
        }
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
        self.request_ended(&mut record, planned);
        // Released by the collector once it has spent the request's cost, not before.
        record.budget_reserved = reserved;
        // Holding the slot until the collector has the record keeps memory bounded when it lags.
        self.hand_on(record).await;
    }

    /// Sends a conversation's turns one after the other, each only after the answer before it,
    /// handing on one record per turn; the last says `conversation_end`. A turn that fails ends
    /// the conversation; an interrupt between turns ends it with a `cancelled` record for the turn
    /// not sent (so `--resume` sends the conversation again).
    async fn converse(&self, launch: Launch) {
        let Launch {
            request,
            planned,
            scheduled,
            reserved,
        } = launch;
        let settings = self.conversations;
        let spec = request.conversation.clone().unwrap_or_default();
        let template = Request {
            conversation: None,
            timestamp: None,
            prior_turns: None,
            ..request.clone()
        };
        let mut conversation = Conversation::start(
            &spec,
            request.route,
            settings.responses_state,
            &request.body,
        );
        let mut turn = 1;
        let mut current = request;
        // `--resume`: the history is rebuilt from the recorded turns, and the conversation goes
        // on with the first turn not done (the same body it would have had).
        if let (Some(prior), Some(c)) = (current.prior_turns.take(), &mut conversation) {
            for answer in prior.iter() {
                match c.next(answer) {
                    Next::ToolResults(body) | Next::UserTurn(body) => {
                        current = Request {
                            body: bytes::Bytes::from(body),
                            ..template.clone()
                        };
                        turn += 1;
                    }
                    Next::Done => break,
                }
            }
        }
        let (mut current, mut due, mut reserved) = (current, scheduled.into_std(), reserved);
        loop {
            let mut record = self.requester.execute(current, due, &self.abandon).await;
            self.turn_ended(&mut record, planned, &template.id, turn);
            record.budget_reserved = reserved.take();
            let next = match &mut conversation {
                _ if record.status != Status::Ok => Next::Done,
                Some(c) if turn >= settings.max_turns => {
                    let (calls, turns) = (record.tool_calls.len(), c.turns_left());
                    if calls + turns > 0 {
                        record.notes.push(format!(
                            "--max-turns {} reached: {calls} function calls left unanswered, {turns} user turns left unsent",
                            settings.max_turns
                        ));
                    }
                    Next::Done
                }
                Some(c) => {
                    if settings.responses_state == crate::conversation::ResponsesState::Server
                        && template.route != crate::workload::Route::Chat
                        && record.response_id.is_none()
                    {
                        record.notes.push("the answer has no id for previous_response_id: the next turn carries the whole history".to_string());
                    }
                    if let Some(why) = c.server_state_ignored(&record) {
                        record.flag(crate::record::Flag::ServerStateIgnored);
                        record.notes.push(format!(
                            "{why}: this answer lost the conversation's context; the next turns carry the whole history"
                        ));
                    }
                    c.next(&record)
                }
                None => Next::Done,
            };
            let (body, think) = match next {
                Next::Done => {
                    record.conversation_end = true;
                    self.hand_on(record).await;
                    return;
                }
                Next::ToolResults(body) => (body, std::time::Duration::ZERO),
                Next::UserTurn(body) => (body, settings.think_time.before(&template.id, turn + 1)),
            };
            // Records can no longer be written (the collector failed): send nothing more.
            if !self.hand_on(record).await {
                return;
            }
            turn += 1;
            let stopped = self.stop.is_cancelled()
                || self.limit.is_cancelled()
                || tokio::select! {
                    () = tokio::time::sleep(think) => false,
                    () = self.stop.cancelled() => true,
                    () = self.limit.cancelled() => true,
                };
            if stopped {
                let _ = self
                    .records
                    .send(self.unsent_turn(&template, planned, turn))
                    .await;
                return;
            }
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            current = Request {
                body: bytes::Bytes::from(body),
                ..template.clone()
            };
            // A following turn is due when its answer is in: it never queues.
            due = std::time::Instant::now();
        }
    }

    /// Hands a record to the collector; false once it can take no more (it failed). The record's
    /// budget reservation is then given back here, since no collector will price it: a launch
    /// waiting for the budget would otherwise wait for ever.
    async fn hand_on(&self, record: Record) -> bool {
        match self.records.send(record).await {
            Ok(()) => true,
            Err(mpsc::error::SendError(record)) => {
                if let (Some(budget), Some(reserved)) = (&self.gates.budget, record.budget_reserved)
                {
                    budget.release(reserved);
                }
                false
            }
        }
    }

    /// A request is over: its record gets its place in the plan, and the gates learn it.
    fn request_ended(&self, record: &mut Record, planned: Planned) {
        planned.stamp(record);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(throttle) = &self.gates.throttle {
            throttle.finished();
        }
    }

    /// What every turn's record gets once its request is over.
    fn turn_ended(&self, record: &mut Record, planned: Planned, id: &str, turn: u32) {
        self.request_ended(record, planned);
        record.conversation_id = Some(id.to_string());
        record.turn = Some(turn);
    }

    /// The record of a turn an interrupt left unsent: it ends the conversation, not ok.
    fn unsent_turn(&self, template: &Request, planned: Planned, turn: u32) -> Record {
        let mut record = Record::empty(template.id.clone(), template.line, Status::NotSent);
        record.model = template
            .model
            .clone()
            .or_else(|| crate::workload::request_model(&template.body));
        if self.stop.is_cancelled() {
            record.fail(
                Status::NotSent,
                "interrupted",
                format!("not sent: the run was interrupted before turn {turn} of the conversation"),
            );
        } else {
            record.fail(
                Status::NotSent,
                "limit",
                format!("not sent: the load's --duration, --requests or --max-cost ended before turn {turn} of the conversation (--resume sends it)"),
            );
        }
        planned.stamp(&mut record);
        record.conversation_id = Some(template.id.clone());
        record.turn = Some(turn);
        record.conversation_end = true;
        record
    }

    /// Takes one waiting worker for a launch, if any is left unclaimed.
    fn claim_idle(&self) -> bool {
        self.idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

impl Launcher for RequestLauncher {
    fn launch(&self, launch: Launch, slot: OwnedSemaphorePermit) {
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        let job = (launch, slot);
        // Dispatch runs on one thread at a time, so this count is not raced.
        let start_one =
            !self.shared.claim_idle() && self.workers.load(Ordering::Relaxed) < self.slots;
        let job = if start_one {
            job
        } else {
            // Room is certain: the queue holds one request per slot, and each holds its slot.
            match self.jobs.try_send(job) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            }
        };
        self.workers.fetch_add(1, Ordering::Relaxed);
        // Called on the pacer thread too, whose own runtime only paces: requests run on the main one.
        let work = self.shared.clone().work(job, self.waiting.clone());
        self.shared.runtime.spawn(work);
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

    fn limit_reached(&self) {
        self.shared.limit.cancel();
    }

    fn measured_until(&self, end: tokio::time::Instant) {
        if let Some(window) = &self.window_end {
            let from_epoch = end.into_std().saturating_duration_since(self.epoch());
            window.set(from_epoch.as_micros() as u64);
        }
    }
}
