//! The `Record`: the one row per workload line that every sink, statistic and user reads.

use serde::Serialize;
use serde_json::value::RawValue;

/// Milliseconds with microsecond resolution, so records print as `12.345`, not float noise.
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// How one workload line ended. Serialized in snake_case; names may grow, never change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A well-formed answer (Responses `completed`/`incomplete`, or a Chat completion).
    Ok,
    /// The server answered with a non-2xx HTTP status.
    HttpError,
    /// The server answered 2xx but the body reports a failure (`status: failed`, an `error` object).
    ApiError,
    /// No complete answer within `--timeout`.
    Timeout,
    /// The connection could not be made (refused, DNS, TLS).
    ConnectError,
    /// The connection broke before the whole body arrived.
    Truncated,
    /// A complete body that is not a readable Responses or Chat Completions object.
    InvalidResponse,
    /// The workload line itself was unusable; nothing was sent.
    InvalidInput,
    /// Sent, and the run stopped before its answer ended (an interrupt's grace ran out).
    Cancelled,
    /// Not sent: `--max-cost` would have been exceeded.
    SkippedBudget,
    /// Not sent: `bench --drop-when-full` and `--max-inflight` requests were already in flight.
    Dropped,
    /// Not sent in this session: a limit (`--requests`, `--duration`) or an interrupt came first,
    /// or the run gave up on a dead endpoint. Not a failure: `--resume` sends it.
    NotSent,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Ok,
        Status::HttpError,
        Status::ApiError,
        Status::Timeout,
        Status::ConnectError,
        Status::Truncated,
        Status::InvalidResponse,
        Status::InvalidInput,
        Status::Cancelled,
        Status::SkippedBudget,
        Status::Dropped,
        Status::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::HttpError => "http_error",
            Status::ApiError => "api_error",
            Status::Timeout => "timeout",
            Status::ConnectError => "connect_error",
            Status::Truncated => "truncated",
            Status::InvalidResponse => "invalid_response",
            Status::InvalidInput => "invalid_input",
            Status::Cancelled => "cancelled",
            Status::SkippedBudget => "skipped_budget",
            Status::Dropped => "dropped",
            Status::NotSent => "not_sent",
        }
    }

    /// The line was not sent in this session and no one failed it: a later `--resume` sends it.
    pub fn not_sent(self) -> bool {
        matches!(self, Status::NotSent | Status::SkippedBudget)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where the token counts of a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// The server's `usage` object.
    Server,
    /// Counted on the client (the server sent no usage).
    Estimated,
}

/// Something about an answer that changes what its figures mean without failing it; each is
/// counted in the summary's `flags` (gateable: `--fail-on flags.buffered>0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Every chunk of the stream arrived in one burst at its end (a buffering proxy): TTFT ≈
    /// latency, and TTFT and ITL describe the proxy, not the model.
    Buffered,
    /// `stream: true` was sent but the server answered one whole body: no TTFT, TPOT or ITL.
    NotStreamed,
    /// The body was compressed (`Content-Encoding`) although the request asked for no encoding.
    Compressed,
    /// The JSON carried `NaN`/`Infinity` (not JSON); they were read as null.
    NonFiniteNumbers,
    /// Completed with an empty message and no calls: a 200 that said nothing.
    EmptyCompleted,
    /// The server refused the `stream_options` `--stream` adds, so the request went without it
    /// and its output tokens were counted locally.
    UsageOptionRefused,
    /// `--responses-state server`, and the server dropped `previous_response_id` (it echoed
    /// another, or its input did not grow): this answer lost the conversation's context, and the
    /// conversation goes on with the whole history.
    ServerStateIgnored,
    /// The answer holds several choices (`n` > 1): `output_text` is the first's, while the output
    /// tokens (and so TPOT and tok/s) count every choice.
    SeveralChoices,
}

impl Flag {
    /// Every flag, in the summary's order.
    pub const ALL: [Flag; 8] = [
        Flag::Buffered,
        Flag::NotStreamed,
        Flag::Compressed,
        Flag::NonFiniteNumbers,
        Flag::EmptyCompleted,
        Flag::UsageOptionRefused,
        Flag::ServerStateIgnored,
        Flag::SeveralChoices,
    ];

    /// The name in records and the summary.
    pub fn name(self) -> &'static str {
        match self {
            Flag::Buffered => "buffered",
            Flag::NotStreamed => "not_streamed",
            Flag::Compressed => "compressed",
            Flag::NonFiniteNumbers => "non_finite_numbers",
            Flag::EmptyCompleted => "empty_completed",
            Flag::SeveralChoices => "several_choices",
            Flag::UsageOptionRefused => "usage_option_refused",
            Flag::ServerStateIgnored => "server_state_ignored",
        }
    }
}

/// Why a request failed: a short machine-usable `kind` and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RecordError {
    pub kind: String,
    pub message: String,
}

impl RecordError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RecordError {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub call_id: String,
    /// The arguments exactly as the model produced them: a JSON string, not re-encoded.
    pub arguments: String,
}

/// What is wrong with one function call of an answer (`tool_call_problems`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallFault {
    /// `arguments` is not valid JSON.
    InvalidJson,
    /// `arguments` ends mid-JSON because the answer was cut by its length limit (Responses
    /// `incomplete`, Chat `finish_reason: length`): the limit's doing, not the model's.
    Truncated,
    /// `arguments` does not validate against the tool's `parameters` JSON Schema.
    Schema,
    /// The request offered no function tool of that name.
    UnknownTool,
    /// The same call (name and equal arguments, or the same `call_id`) came earlier in the answer.
    Duplicate,
}

impl ToolCallFault {
    pub const ALL: [ToolCallFault; 5] = [
        ToolCallFault::InvalidJson,
        ToolCallFault::Truncated,
        ToolCallFault::Schema,
        ToolCallFault::UnknownTool,
        ToolCallFault::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallFault::InvalidJson => "invalid_json",
            ToolCallFault::Truncated => "truncated",
            ToolCallFault::Schema => "schema",
            ToolCallFault::UnknownTool => "unknown_tool",
            ToolCallFault::Duplicate => "duplicate",
        }
    }
}

/// One faulty function call of an answer, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ToolCallProblem {
    pub call_id: String,
    pub name: String,
    pub fault: ToolCallFault,
    pub message: String,
}

/// What is wrong with a structured answer (`Record::output_problems`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFault {
    /// The text is not JSON (for `json_object`, not a JSON object).
    InvalidJson,
    /// Valid JSON that breaks the requested JSON Schema.
    Schema,
    /// The model refused instead of answering (the API's `refusal`).
    Refusal,
    /// The answer was cut by its length limit (finish reason `length`, Responses `incomplete`).
    Truncated,
}

impl OutputFault {
    pub const ALL: [OutputFault; 4] = [
        OutputFault::InvalidJson,
        OutputFault::Schema,
        OutputFault::Refusal,
        OutputFault::Truncated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OutputFault::InvalidJson => "invalid_json",
            OutputFault::Schema => "schema",
            OutputFault::Refusal => "refusal",
            OutputFault::Truncated => "truncated",
        }
    }
}

/// One problem of a structured answer, with where and why (`schema`: the failing path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OutputProblem {
    pub fault: OutputFault,
    pub message: String,
}

/// The full response body, kept only with `--save-responses`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum SavedBody {
    Json(Box<RawValue>),
    Text(String),
}

/// One workload line's outcome. Times are milliseconds; `scheduled_at`/`sent_at` count from the run start.
/// Read back (`--resume`) every field but `response` and the ITL gaps, which are not needed again.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Record {
    pub id: String,
    pub line: u64,
    /// `bench`: the request's 1-based place in the schedule (the workload is cycled, so ids repeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// `bench`: sent during `--warmup`, left out of every statistic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
    pub attempts: u32,
    /// The error kind of each earlier attempt that was retried, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_errors: Vec<String>,
    pub status: Status,
    pub http_status: Option<u16>,
    pub error: Option<RecordError>,
    pub scheduled_at: Option<f64>,
    /// Send of the attempt that produced this record.
    pub sent_at: Option<f64>,
    /// Send of the first attempt (differs from `sent_at` after retries): where rate windows start.
    #[serde(default)]
    pub first_sent_at: Option<f64>,
    /// First send − scheduled send: the dispatcher's lag, never time spent on retries.
    pub queue_ms: Option<f64>,
    /// Answer end of the last attempt − its send.
    pub latency_ms: Option<f64>,
    /// Answer end − scheduled send: what a caller arriving on schedule waited, retries included.
    #[serde(default)]
    pub latency_from_schedule_ms: Option<f64>,
    /// Time between attempts (retry back-off and pauses), summed; absent without retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_wait_ms: Option<f64>,
    /// Sends repeated at once on a new connection because a pooled connection was found closed
    /// before any byte of the answer arrived (not retries, not errors).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconnects: u32,
    /// Set-up time (DNS, TCP, proxy tunnel, TLS) of the connection this request opened; absent on
    /// a reused connection. Inside `ttfb_ms`, `ttft_ms` and `latency_ms`, which count from the send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
    /// Time to the response headers: the server's queueing and prefill-independent overhead.
    pub ttfb_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    /// Time to the first visible content (differs from TTFT when reasoning streams first).
    pub ttfo_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    /// SSE events that carried generated text (streamed requests).
    pub chunks: Option<u32>,
    pub model: Option<String>,
    pub response_id: Option<String>,
    /// The `previous_response_id` the answer echoes (Responses), when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    pub request_id: Option<String>,
    pub finish: Option<String>,
    pub incomplete_reason: Option<String>,
    pub input_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    /// Input tokens written to the prompt cache (newer Responses usage), inside `input_tokens`.
    pub cache_write_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub total_tokens: Option<u64>,
    /// Failed requests: output tokens counted locally in what arrived before the failure. Never in
    /// the run's token totals or rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_output_tokens: Option<u64>,
    pub token_source: Option<TokenSource>,
    /// The encoding that counted estimated tokens (e.g. `o200k_base`).
    pub tokenizer: Option<String>,
    /// The `service_tier` the answer reports (it decides the price list).
    pub service_tier: Option<String>,
    pub cost_usd: Option<f64>,
    pub output_text: Option<String>,
    /// The model's refusal text (Responses `refusal` content, Chat `message.refusal`): a refusal
    /// is an answer, kept apart from `output_text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCall>,
    /// Embeddings: the inputs embedded (`data` entries); moderations: the inputs classified
    /// (`results`). Absent for the APIs that generate text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// Embeddings: the length of the first vector (a base64 vector's bytes / 4: float32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u64>,
    /// Moderations: the categories any result flagged, sorted, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flagged_categories: Vec<String>,
    /// The structured output the request asked for (`json_schema` or `json_object`, from Chat's
    /// `response_format` or Responses' `text.format`); its ok answer was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<String>,
    /// What is wrong with a checked structured answer; empty when it is valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_problems: Vec<OutputProblem>,
    /// The answer's faulty function calls (checked against the request's tools); empty when all
    /// are valid or there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_call_problems: Vec<ToolCallProblem>,
    /// A conversation's records: its id (the line's) and the 1-based turn (each request, tool
    /// results included, is one turn); `conversation_end` on the record of its last turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conversation_end: bool,
    /// The request body, carried to the collector only for an answer with function calls (its
    /// tools are what the calls are checked against); never written.
    #[serde(skip)]
    pub request_body: Option<bytes::Bytes>,
    /// What the answer's figures mean differently (see `Flag`), each at most once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// What was odd about the answer without making it fail (e.g. its Content-Type disagreed with
    /// its body).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing, default)]
    pub response: Option<SavedBody>,
    /// Gaps between consecutive text chunks in microseconds, for the run's pooled ITL histogram.
    #[serde(skip)]
    pub itl_us: Vec<u32>,
    /// Reasoning text whose tokens are counted locally on the collector's thread: that of a
    /// stream without usage (with the answer's, as its output), or of an answer whose usage
    /// reported no reasoning tokens (some open servers). Empty otherwise.
    #[serde(skip)]
    pub reasoning_text: String,
    /// The `--max-cost` reservation (micro-dollars) the request held, released by the collector only
    /// once the request's cost is spent, so the budget never loses sight of a finished request.
    #[serde(skip)]
    pub budget_reserved: Option<u64>,
    /// A Batch line's own `metadata`, as the line had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<RawValue>>,
}

impl Record {
    /// Why an answer was cut short, if it was: a Responses `incomplete` status's reason (else
    /// `unknown`), or a Chat `finish_reason` of `length` or `content_filter`.
    pub fn cut_short(&self) -> Option<&str> {
        match self.finish.as_deref()? {
            "incomplete" => Some(self.incomplete_reason.as_deref().unwrap_or("unknown")),
            reason @ ("length" | "content_filter") => Some(reason),
            _ => None,
        }
    }

    /// An ok answer that carries nothing (no text, no call, no refusal, no reasoning) fails as
    /// `empty_answer`: a 200 that is not an answer (a stream of only the role chunk and `[DONE]`).
    /// One that generated tokens but shows none, or reported completion with an empty message, is
    /// flagged `empty_completed`. An answer cut short by its limit is judged as cut, not empty.
    pub fn judge_emptiness(&mut self) {
        // Embeddings and moderations answer with items, not text: an empty list is empty.
        let said_something = self.output_text.as_deref().is_some_and(|t| !t.is_empty())
            || !self.tool_calls.is_empty()
            || self.refusal.as_deref().is_some_and(|t| !t.is_empty())
            || self.items.is_some_and(|n| n > 0);
        if self.status != Status::Ok || said_something || self.cut_short().is_some() {
            return;
        }
        let generated = self.output_tokens.is_some_and(|n| n > 0)
            || self.reasoning_tokens.is_some_and(|n| n > 0)
            || !self.reasoning_text.is_empty();
        if generated {
            self.flag(Flag::EmptyCompleted);
        } else {
            self.fail(
                Status::InvalidResponse,
                "empty_answer",
                "a 2xx answer with no text, no tool call, no refusal and no output tokens",
            );
        }
    }

    /// Marks the answer with `flag` (once).
    pub fn flag(&mut self, flag: Flag) {
        if !self.flags.contains(&flag) {
            self.flags.push(flag);
        }
    }

    /// A record with every measured field empty, to be filled in by whoever finishes the line.
    pub fn empty(id: String, line: u64, status: Status) -> Self {
        Record {
            id,
            line,
            seq: None,
            warmup: false,
            attempts: 0,
            attempt_errors: Vec::new(),
            status,
            http_status: None,
            error: None,
            scheduled_at: None,
            sent_at: None,
            first_sent_at: None,
            queue_ms: None,
            latency_ms: None,
            latency_from_schedule_ms: None,
            retry_wait_ms: None,
            reconnects: 0,
            connect_ms: None,
            ttfb_ms: None,
            ttft_ms: None,
            ttfo_ms: None,
            tpot_ms: None,
            chunks: None,
            model: None,
            response_id: None,
            previous_response_id: None,
            request_id: None,
            finish: None,
            incomplete_reason: None,
            input_tokens: None,
            cached_tokens: None,
            cache_write_tokens: None,
            output_tokens: None,
            reasoning_tokens: None,
            total_tokens: None,
            partial_output_tokens: None,
            token_source: None,
            tokenizer: None,
            service_tier: None,
            cost_usd: None,
            output_text: None,
            tool_calls: Vec::new(),
            items: None,
            dimensions: None,
            flagged_categories: Vec::new(),
            structured_output: None,
            output_problems: Vec::new(),
            tool_call_problems: Vec::new(),
            conversation_id: None,
            turn: None,
            conversation_end: false,
            request_body: None,
            flags: Vec::new(),
            refusal: None,
            notes: Vec::new(),
            response: None,
            itl_us: Vec::new(),
            reasoning_text: String::new(),
            budget_reserved: None,
            metadata: None,
        }
    }

    pub fn fail(&mut self, status: Status, kind: impl Into<String>, message: impl Into<String>) {
        self.status = status;
        self.error = Some(RecordError::new(kind, message));
    }

    /// TPOT = (latency − TTFT) / (output_tokens − 1), once all three are known and output_tokens > 1
    /// (the metric definitions in `docs/metrics.md`).
    pub fn derive_tpot(&mut self) {
        self.tpot_ms = match (self.latency_ms, self.ttft_ms, self.output_tokens) {
            (Some(latency), Some(ttft), Some(output)) if output > 1 => {
                Some(((latency - ttft).max(0.0) / (output - 1) as f64 * 1000.0).round() / 1000.0)
            }
            _ => None,
        };
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// JSON text kept as it is (a Batch line's `metadata`); None if it is not valid JSON.
pub fn raw_json(bytes: &[u8]) -> Option<Box<RawValue>> {
    let text = std::str::from_utf8(bytes).ok()?;
    RawValue::from_string(text.to_string()).ok()
}
