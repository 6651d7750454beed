//! One request from its first send to its final record: attempts, retries as the client's retry
//! policy allows, waits between them, and the run-wide pacing every attempt passes.

use super::{GiveUp, Throttle};
use crate::client::{Attempt, Client, retry};
use crate::record::{Flag, Record, Status, millis};
use crate::workload::{Request, request_model, without_stream_options};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A server-requested wait more than this many times `--max-server-wait` ends the line and the
/// run instead of being capped and retried (a quota that resets in hours).
const FAR_WAIT_FACTOR: u32 = 10;

/// How many times a request is tried again, and the longest server-requested wait honoured.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first for a retryable failure (`--max-retries`).
    pub max_retries: u32,
    /// `--max-server-wait`.
    pub max_server_wait: Duration,
}

/// Turns workload requests into records: the client sends each attempt, this decides whether and
/// when there is another.
pub struct Requester {
    client: Client,
    policy: RetryPolicy,
    /// Run-wide pacing every attempt waits for and reports its answer to.
    throttle: Option<Arc<Throttle>>,
    /// `--give-up-after`: sees every attempt; once it gave up, nothing is retried.
    give_up: Option<Arc<GiveUp>>,
    /// The endpoint refused the `stream_options` that `--stream` adds to Chat bodies: from then
    /// on they go without it (their output tokens are counted locally).
    refuses_usage_option: AtomicBool,
}

impl Requester {
    pub fn new(client: Client, policy: RetryPolicy, throttle: Option<Arc<Throttle>>) -> Self {
        Requester {
            client,
            policy,
            throttle,
            give_up: None,
            refuses_usage_option: AtomicBool::new(false),
        }
    }

    /// Reports every attempt to `give_up`, and retries nothing once it stopped the load.
    pub fn with_give_up(mut self, give_up: Option<Arc<GiveUp>>) -> Self {
        self.give_up = give_up;
        self
    }

    /// The run's start: record times count from it.
    pub fn epoch(&self) -> Instant {
        self.client.epoch()
    }

    /// Sends one request (scheduled at `scheduled`) and reads the whole answer into a record,
    /// retrying what the retry policy allows; the record is the last attempt's, timed as the
    /// metric definitions in `docs/metrics.md` say (queue delay from the first send, retry waits
    /// apart).
    ///
    /// When `abandon` fires (the grace period after an interrupt ran out), the request is dropped and
    /// its record says `cancelled`.
    pub async fn execute(
        &self,
        request: Request,
        scheduled: Instant,
        abandon: &CancellationToken,
    ) -> Record {
        let Request {
            line,
            mut id,
            route,
            body,
            mut model,
            max_output_tokens,
            metadata,
            timestamp: _,
            conversation: _,
            prior_turns: _,
            usage_option_added,
        } = request;
        // Only a refusing endpoint's bodies are rewritten: no copy for any other.
        let mut dropped_usage_option =
            usage_option_added && self.refuses_usage_option.load(Ordering::Relaxed);
        // Whether this request was sent again without it: that send is not a retry.
        let mut resent_without_option = false;
        let mut body = if dropped_usage_option {
            without_stream_options(&body)
        } else {
            body
        };
        let mut attempt_errors = Vec::new();
        let mut attempt = 0;
        let mut first_sent: Option<Instant> = None;
        let mut last_end: Option<Instant> = None;
        let mut retry_wait = Duration::ZERO;
        // Tokens for --tpm: the body's bytes / 4 plus its answer cap (else a typical answer of 256);
        // settled with the actual usage.
        let input_guess = u32::try_from(body.len() / 4).unwrap_or(u32::MAX);
        let estimated_tokens = input_guess.saturating_add(max_output_tokens.unwrap_or(256));
        loop {
            attempt += 1;
            let mut record = Record::empty(id, line, Status::Ok);
            // Moved in and taken back for a retry: no copy per request.
            record.model = model.take();
            record.scheduled_at = Some(millis(scheduled - self.client.epoch()));
            record.attempts = attempt - 1;
            if let Some(throttle) = &self.throttle {
                tokio::select! {
                    () = throttle.before_send(estimated_tokens) => {}
                    () = abandon.cancelled() => {
                        self.stamp(&mut record, scheduled, first_sent, None, retry_wait);
                        // A retry's earlier attempts were sent; a first attempt was not.
                        let status = if attempt == 1 { Status::NotSent } else { Status::Cancelled };
                        record.fail(status, "interrupted", "not sent: the run was interrupted while it waited for the rate limit");
                        return finished(record, attempt_errors, &body, metadata.as_deref());
                    }
                }
            }
            let started = Instant::now();
            if let Some(end) = last_end {
                retry_wait += started.saturating_duration_since(end);
            }
            let first = *first_sent.get_or_insert(started);
            record.attempts = attempt;
            let sending = self
                .client
                .attempt(&route, body.clone(), started, &mut record);
            let outcome = tokio::select! {
                outcome = sending => outcome,
                () = abandon.cancelled() => {
                    self.stamp(&mut record, scheduled, Some(first), None, retry_wait);
                    record.fail(Status::Cancelled, "interrupted", "still in flight when the run stopped (the --grace period after an interrupt ran out, or a second interrupt came)");
                    return finished(record, attempt_errors, &body, metadata.as_deref());
                }
            };
            self.stamp(
                &mut record,
                scheduled,
                Some(first),
                Some(&outcome),
                retry_wait,
            );
            last_end = Some(outcome.end);
            let hints = outcome.hints;
            if let Some(throttle) = &self.throttle {
                throttle.observe(record.http_status, &hints);
                throttle
                    .settle_tokens(estimated_tokens, record.total_tokens)
                    .await;
            }
            tracing::debug!(
                line,
                attempt,
                status = record.status.as_str(),
                http_status = record.http_status,
                error = record.error.as_ref().map(|e| e.kind.as_str()),
                latency_ms = record.latency_ms,
                "attempt finished"
            );
            // A strict server refusing the field llmvolley added (422 `extra_forbidden`, 400
            // "Unrecognized request argument"): sent again at once without it, once, and
            // remembered for the endpoint. A field the user's body carries is the user's: its
            // errors stand.
            if usage_option_added && !dropped_usage_option && refuses_usage_option(&record) {
                if !self.refuses_usage_option.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the server refused stream_options (added by --stream): Chat requests go without it, and their output tokens are counted locally"
                    );
                }
                dropped_usage_option = true;
                resent_without_option = true;
                body = without_stream_options(&body);
                if let Some(error) = &record.error {
                    attempt_errors.push(error.kind.clone());
                }
                id = record.id;
                model = record.model;
                last_end = None;
                continue;
            }
            if dropped_usage_option {
                record.flag(Flag::UsageOptionRefused);
            }
            let gave_up = self.give_up.as_ref().is_some_and(|give_up| {
                give_up.observe(&record);
                give_up.verdict().is_some()
            });
            if record.status == Status::Ok {
                return finished(record, attempt_errors, &body, metadata.as_deref());
            }
            // The resend without `stream_options` is not a retry: it uses up none of them.
            let retries = attempt - u32::from(resent_without_option);
            let retry = record.status != Status::Ok
                && !gave_up
                && retries <= self.policy.max_retries
                && retry::should_retry(&record, &hints);
            let wait = retry::wait(&hints, retries, self.policy.max_server_wait);
            if record.http_status == Some(429) || retry {
                // A wait far beyond the cap (a daily quota, a window that resets in hours) is not
                // waited out line by line: this line ends, and so does the run, saying when to resume.
                if let Some(asked) = wait.asked
                    && asked.wait > self.policy.max_server_wait * FAR_WAIT_FACTOR
                {
                    let far = format!(
                        "the server asks to wait {} ({}), far beyond --max-server-wait {}: not retried; --resume (with --retry-failed for this line) after that, or raise --max-server-wait",
                        humantime::format_duration(Duration::from_secs(asked.wait.as_secs())),
                        asked.header,
                        humantime::format_duration(self.policy.max_server_wait)
                    );
                    if let Some(error) = &mut record.error {
                        error.message = format!("{}; {far}", error.message);
                    }
                    if let Some(give_up) = &self.give_up {
                        give_up.stop_with(format!("rate limited: {far}"));
                    }
                    return finished(record, attempt_errors, &body, metadata.as_deref());
                }
            }
            if !retry {
                return finished(record, attempt_errors, &body, metadata.as_deref());
            }
            // A 429's wait is the run-wide pause, which the throttle noted when it observed the answer.
            if let Some(throttle) = &self.throttle
                && record.http_status != Some(429)
            {
                throttle.note_wait(&wait);
            }
            tracing::debug!(
                line,
                attempt,
                wait_ms = wait.wait.as_millis() as u64,
                reason = %wait,
                "retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(wait.wait) => {}
                () = abandon.cancelled() => return finished(record, attempt_errors, &body, metadata.as_deref()),
            }
            if let Some(error) = &record.error {
                attempt_errors.push(error.kind.clone());
            }
            id = record.id;
            model = record.model;
        }
    }

    /// The request-level times of a record: its schedule, first send, answer end and retry waits.
    fn stamp(
        &self,
        record: &mut Record,
        scheduled: Instant,
        first_sent: Option<Instant>,
        attempt: Option<&Attempt>,
        retry_wait: Duration,
    ) {
        record.scheduled_at = Some(millis(scheduled - self.client.epoch()));
        if let Some(first) = first_sent {
            record.first_sent_at = Some(millis(first - self.client.epoch()));
            record.queue_ms = Some(millis(first.saturating_duration_since(scheduled)));
        }
        if let Some(attempt) = attempt {
            record.sent_at = Some(millis(attempt.sent - self.client.epoch()));
            record.latency_from_schedule_ms =
                Some(millis(attempt.end.saturating_duration_since(scheduled)));
        }
        record.retry_wait_ms = (!retry_wait.is_zero()).then(|| millis(retry_wait));
    }
}

/// The final record of a request: the earlier attempts' errors, and the request's model when the
/// answer named none.
fn finished(
    mut record: Record,
    attempt_errors: Vec<String>,
    body: &bytes::Bytes,
    metadata: Option<&[u8]>,
) -> Record {
    record.attempt_errors = attempt_errors;
    record.metadata = metadata.and_then(crate::record::raw_json);
    if record.model.is_none() {
        record.model = request_model(body);
    }
    // The calls are checked against the request's tools, and a structured answer against the
    // format it asked for, on the collector's thread (a shared buffer, not a copy).
    if !record.tool_calls.is_empty()
        || (record.status == crate::record::Status::Ok && crate::output_check::asks_for_json(body))
    {
        record.request_body = Some(body.clone());
    }
    record
}

/// Whether an answer is a strict server's refusal of `stream_options`: a 400 or 422 whose error
/// names the field (Pydantic's `extra_forbidden` lists it in `loc`; OpenAI-style servers say
/// "Unrecognized request argument supplied: stream_options").
fn refuses_usage_option(record: &Record) -> bool {
    matches!(record.http_status, Some(400 | 422))
        && record
            .error
            .as_ref()
            .is_some_and(|e| e.message.contains("stream_options"))
}
