//! Streamed answers: assembles text, tool calls, usage and chunk timings from Responses or Chat SSE events.
//!
//! The rules (`docs/reliability.md`, "Streaming", and `docs/metrics.md`, "What counts"): an
//! event is at most one chunk, and only when it carries
//! non-empty generated text; the answer ends at its terminal event (`[DONE]`, `response.completed`
//! / `incomplete` / `failed` / `done`), at an in-band error, or at an event that is not JSON —
//! nothing after that counts.

use super::parse::{
    AnyBody, ErrorField, Usage, apply_usage, error_parts, non_finite_as_null, read_any_body,
    truncate,
};
use super::sse::SseEvent;
use crate::record::{Flag, Record, Status, TokenSource, ToolCall};
use serde::Deserialize;
use std::borrow::Cow;
use std::time::Instant;

/// Every field either stream shape sends that we read; one lenient parse per event.
#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    item: Option<StreamItem>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(borrow, default)]
    response: Option<AnyBody<'a>>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ErrorField>,
    #[serde(borrow, default)]
    choices: Option<FirstChoice<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StreamItem {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A Chat chunk's `choices`: only the first choice (`index` 0) is kept, so a chunk costs no `Vec`.
struct FirstChoice<'a>(Option<ChunkChoice<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstChoice<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Choices<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Choices<'a> {
            type Value = FirstChoice<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut first = None;
                while let Some(choice) = seq.next_element::<ChunkChoice<'a>>()? {
                    if choice.index == 0 && first.is_none() {
                        first = Some(choice);
                    }
                }
                Ok(FirstChoice(first))
            }
        }
        deserializer.deserialize_seq(Choices(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow, default)]
    delta: Option<ChunkDelta<'a>>,
    /// Completions streams carry the text on the choice itself (`choices[].text`).
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
    /// Reasoning text as vLLM, SGLang and DeepSeek stream it.
    #[serde(borrow, default, alias = "reasoning")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ChunkToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ChunkToolCall<'a> {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    id: Option<String>,
    #[serde(borrow, default)]
    function: Option<ChunkFunction<'a>>,
}

#[derive(Deserialize)]
struct ChunkFunction<'a> {
    #[serde(default)]
    name: Option<String>,
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

/// A tool call being assembled: keyed by the Responses item id, or by the Chat `index`.
struct PartialCall {
    key: OwnedKey,
    call: ToolCall,
}

/// Looked up borrowed, so a delta for a known call allocates nothing; owned only when stored.
#[derive(PartialEq, Clone, Copy)]
enum CallKey<'a> {
    Item(&'a str),
    Output(u64),
    ChatIndex(u64),
}

#[derive(PartialEq)]
enum OwnedKey {
    Item(String),
    Output(u64),
    ChatIndex(u64),
}

impl OwnedKey {
    fn matches(&self, key: CallKey) -> bool {
        match (self, key) {
            (OwnedKey::Item(a), CallKey::Item(b)) => a == b,
            (OwnedKey::Output(a), CallKey::Output(b))
            | (OwnedKey::ChatIndex(a), CallKey::ChatIndex(b)) => *a == b,
            _ => false,
        }
    }

    fn of(key: CallKey) -> OwnedKey {
        match key {
            CallKey::Item(id) => OwnedKey::Item(id.to_string()),
            CallKey::Output(index) => OwnedKey::Output(index),
            CallKey::ChatIndex(index) => OwnedKey::ChatIndex(index),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Responses,
    Chat,
}

/// The Responses event types we act on (the rest are ignored).
#[derive(Clone, Copy, PartialEq)]
enum EventKind {
    TextDelta,
    RefusalDelta,
    ReasoningDelta,
    OutputItem,
    ArgumentsDelta,
    ArgumentsDone,
    Terminal,
    Other,
}

impl EventKind {
    fn of(kind: &str) -> EventKind {
        match kind {
            "response.output_text.delta" => EventKind::TextDelta,
            "response.refusal.delta" => EventKind::RefusalDelta,
            "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
                EventKind::ReasoningDelta
            }
            "response.output_item.added" | "response.output_item.done" => EventKind::OutputItem,
            "response.function_call_arguments.delta" => EventKind::ArgumentsDelta,
            "response.function_call_arguments.done" => EventKind::ArgumentsDone,
            "response.completed" | "response.incomplete" | "response.failed" | "response.done" => {
                EventKind::Terminal
            }
            _ => EventKind::Other,
        }
    }
}

/// What one event carried, for timing: at most one chunk per event.
#[derive(Clone, Copy, Default)]
struct Carried {
    /// Non-empty reasoning text: generated, not shown.
    hidden: bool,
    /// Non-empty answer text, refusal or tool-call arguments.
    visible: bool,
}

/// Why reading a stream stopped before its body ended.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Ended {
    /// `[DONE]`, or a Responses `completed` / `incomplete` / `failed` / `done` event.
    Terminal,
    /// An in-band error (any shape), or an event that is not JSON: the answer is broken.
    Failed,
}

/// Folds one stream's events into a record.
pub struct StreamAssembler {
    sent: Instant,
    shape: Option<Shape>,
    text: String,
    /// Refusal deltas: kept on the record.
    refusal: String,
    /// Reasoning deltas: counted locally when the stream has no usage, or its usage reports no
    /// reasoning tokens.
    reasoning: String,
    calls: Vec<PartialCall>,
    first_chunk: Option<Instant>,
    first_visible: Option<Instant>,
    last_chunk: Option<Instant>,
    chunks: u32,
    itl_us: Vec<u32>,
    /// Set by the event that ended the answer, with its arrival time.
    ended: Option<(Ended, Instant)>,
    /// When the last event arrived: a Chat answer that has its `finish_reason` but no `[DONE]` ends there.
    last_event: Option<Instant>,
    /// An event of valid JSON with an unexpected field type was skipped (noted once).
    skipped_event: bool,
    chat_finished: bool,
    usage_seen: bool,
    error: Option<(Status, String, String)>,
    events: u32,
}

impl StreamAssembler {
    pub fn new(sent: Instant) -> Self {
        StreamAssembler {
            sent,
            shape: None,
            text: String::new(),
            refusal: String::new(),
            reasoning: String::new(),
            calls: Vec::new(),
            first_chunk: None,
            first_visible: None,
            last_chunk: None,
            chunks: 0,
            itl_us: Vec::with_capacity(64),
            ended: None,
            last_event: None,
            skipped_event: false,
            chat_finished: false,
            usage_seen: false,
            error: None,
            events: 0,
        }
    }

    /// Reads one event that arrived at `at`. Returns `Some` when this event ended the answer:
    /// the caller stops reading, and nothing after it counts.
    pub fn on_event(
        &mut self,
        event: &SseEvent,
        at: Instant,
        record: &mut Record,
    ) -> Option<Ended> {
        if self.ended.is_some() {
            return self.ended.map(|(ended, _)| ended);
        }
        let data = event.data.trim();
        if data.is_empty() {
            return None;
        }
        self.events += 1;
        self.last_event = Some(at);
        let ended = self.read_event(event.event, data, at, record);
        if let Some(ended) = ended {
            self.ended = Some((ended, at));
        }
        ended
    }

    fn read_event(
        &mut self,
        name: &str,
        data: &str,
        at: Instant,
        record: &mut Record,
    ) -> Option<Ended> {
        if data == "[DONE]" {
            return Some(Ended::Terminal);
        }
        let sanitized;
        let parsed: StreamEvent = match serde_json::from_str(data) {
            Ok(parsed) => parsed,
            Err(_) if name == "error" => {
                self.fail(Status::ApiError, "stream_error".to_string(), truncate(data));
                return Some(Ended::Failed);
            }
            // `NaN`/`Infinity` (logprobs from some servers) are read as null; the answer is kept.
            Err(e) if e.is_syntax() => match non_finite_as_null(data.as_bytes()) {
                Some(clean) => {
                    sanitized = clean;
                    match serde_json::from_slice(&sanitized) {
                        Ok(parsed) => {
                            record.flag(Flag::NonFiniteNumbers);
                            parsed
                        }
                        Err(e) => return self.malformed(data, &e),
                    }
                }
                None => return self.malformed(data, &e),
            },
            Err(e) if e.is_data() => {
                // Valid JSON with a field of another type than the spec's: skipped, not fatal.
                if !self.skipped_event {
                    self.skipped_event = true;
                    record.notes.push(format!(
                        "stream event {} was skipped: a field has an unexpected type ({e})",
                        self.events
                    ));
                }
                return None;
            }
            Err(e) => return self.malformed(data, &e),
        };
        let kind = parsed
            .kind
            .as_deref()
            .or((!name.is_empty()).then_some(name));
        if let Some((code, message)) = in_band_error(&parsed, kind, name) {
            self.fail(Status::ApiError, code, message);
            return Some(Ended::Failed);
        }
        if parsed.choices.is_some() || kind.is_none() && parsed.usage.is_some() {
            self.shape.get_or_insert(Shape::Chat);
            self.on_chat_chunk(parsed, at, record);
            None
        } else if let Some(kind) = kind {
            self.shape.get_or_insert(Shape::Responses);
            let kind = EventKind::of(kind);
            self.on_responses_event(kind, parsed, at, record)
        } else {
            None
        }
    }

    /// An event that is not JSON breaks the answer, naming its first 80 characters.
    fn malformed(&mut self, data: &str, e: &serde_json::Error) -> Option<Ended> {
        let head: String = data.chars().take(80).collect();
        let message = format!(
            "stream event {} is not valid JSON ({e}): {head:?}",
            self.events
        );
        self.fail(
            Status::InvalidResponse,
            "malformed_event".to_string(),
            message,
        );
        Some(Ended::Failed)
    }

    fn fail(&mut self, status: Status, kind: String, message: String) {
        self.error.get_or_insert((status, kind, message));
    }

    fn on_responses_event(
        &mut self,
        kind: EventKind,
        event: StreamEvent,
        at: Instant,
        record: &mut Record,
    ) -> Option<Ended> {
        let mut carried = Carried::default();
        match kind {
            EventKind::TextDelta | EventKind::RefusalDelta => {
                if let Some(delta) = event.delta.filter(|d| !d.is_empty()) {
                    if kind == EventKind::TextDelta {
                        self.text.push_str(&delta);
                    } else {
                        self.refusal.push_str(&delta);
                    }
                    carried.visible = true;
                }
            }
            EventKind::ReasoningDelta => {
                if let Some(delta) = event.delta.filter(|d| !d.is_empty()) {
                    self.reasoning.push_str(&delta);
                    carried.hidden = true;
                }
            }
            EventKind::OutputItem => {
                // An announced call (name, empty arguments) is no chunk, as a Chat chunk carrying
                // only a tool's name is none: TTFT means the same on both APIs.
                if let Some(item) = event.item
                    && item.kind.as_deref() == Some("function_call")
                {
                    let key = match (&item.id, event.output_index) {
                        (Some(id), _) => CallKey::Item(id),
                        (None, Some(index)) => CallKey::Output(index),
                        (None, None) => CallKey::Output(self.calls.len() as u64),
                    };
                    let call = Self::call_mut(&mut self.calls, key);
                    if let Some(call_id) = item.call_id {
                        call.call_id = call_id;
                    }
                    if let Some(name) = item.name {
                        call.name = name;
                    }
                    if let Some(arguments) = item.arguments.filter(|a| !a.is_empty()) {
                        call.arguments = arguments;
                    }
                }
            }
            EventKind::ArgumentsDelta | EventKind::ArgumentsDone => {
                let key = match (event.item_id.as_deref(), event.output_index) {
                    (Some(id), _) => CallKey::Item(id),
                    (None, Some(index)) => CallKey::Output(index),
                    (None, None) => return None,
                };
                let is_delta = kind == EventKind::ArgumentsDelta;
                let call = Self::call_mut(&mut self.calls, key);
                if is_delta {
                    if let Some(delta) = event.delta.filter(|d| !d.is_empty()) {
                        call.arguments.push_str(&delta);
                        carried.visible = true;
                    }
                } else if let Some(arguments) = event.arguments {
                    call.arguments = arguments;
                }
            }
            EventKind::Terminal => {
                if let Some(response) = event.response {
                    self.usage_seen |= response.usage.is_some();
                    read_any_body(response.into_response(), record);
                }
                return Some(Ended::Terminal);
            }
            EventKind::Other => {}
        }
        self.chunk(at, carried);
        None
    }

    fn on_chat_chunk(&mut self, chunk: StreamEvent, at: Instant, record: &mut Record) {
        // Every Chat chunk repeats the id and model: copied only when they change, not per token.
        for (field, value) in [
            (&mut record.response_id, chunk.id),
            (&mut record.model, chunk.model),
        ] {
            if let Some(value) = value
                && field.as_deref() != Some(value.as_ref())
            {
                *field = Some(value.into_owned());
            }
        }
        if let Some(usage) = &chunk.usage {
            self.usage_seen = true;
            apply_usage(usage, record);
        }
        let mut carried = Carried::default();
        if let Some(choice) = chunk.choices.and_then(|c| c.0) {
            if let Some(finish) = choice.finish_reason {
                self.chat_finished = true;
                record.finish = Some(finish);
            }
            if let Some(text) = choice.text.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                carried.visible = true;
            }
            if let Some(delta) = choice.delta {
                if let Some(reasoning) = delta.reasoning_content.filter(|r| !r.is_empty()) {
                    self.reasoning.push_str(&reasoning);
                    carried.hidden = true;
                }
                if let Some(content) = delta.content.filter(|c| !c.is_empty()) {
                    self.text.push_str(&content);
                    carried.visible = true;
                }
                if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
                    self.refusal.push_str(&refusal);
                    carried.visible = true;
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    let partial = Self::call_mut(&mut self.calls, CallKey::ChatIndex(call.index));
                    if let Some(id) = call.id {
                        partial.call_id = id;
                    }
                    if let Some(function) = call.function {
                        if let Some(name) = function.name {
                            partial.name = name;
                        }
                        if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                            partial.arguments.push_str(&arguments);
                            carried.visible = true;
                        }
                    }
                }
            }
        }
        self.chunk(at, carried);
    }

    fn call_mut<'c>(calls: &'c mut Vec<PartialCall>, key: CallKey) -> &'c mut ToolCall {
        let index = match calls.iter().position(|c| c.key.matches(key)) {
            Some(index) => index,
            None => {
                calls.push(PartialCall {
                    key: OwnedKey::of(key),
                    call: ToolCall {
                        name: String::new(),
                        call_id: String::new(),
                        arguments: String::new(),
                    },
                });
                calls.len() - 1
            }
        };
        &mut calls[index].call
    }

    /// Counts the event as a chunk if it carried generated text.
    fn chunk(&mut self, at: Instant, carried: Carried) {
        if !(carried.hidden || carried.visible) {
            return;
        }
        self.chunks += 1;
        self.first_chunk.get_or_insert(at);
        if carried.visible {
            self.first_visible.get_or_insert(at);
        }
        if let Some(last) = self.last_chunk {
            let gap = at.saturating_duration_since(last).as_micros();
            self.itl_us.push(u32::try_from(gap).unwrap_or(u32::MAX));
        }
        self.last_chunk = Some(at);
    }

    /// Whether every chunk arrived at once after a wait (a proxy that buffers the stream and
    /// sends it whole): at least 3 chunks, spread over at most 1 ms and at most 2% of the TTFT.
    /// A model streams over tens of milliseconds; a buffered stream over one read.
    fn arrived_in_one_burst(&self) -> bool {
        let (Some(first), Some(last)) = (self.first_chunk, self.last_chunk) else {
            return false;
        };
        let spread = last.saturating_duration_since(first);
        let ttft = first.saturating_duration_since(self.sent);
        self.chunks >= 3
            && spread <= std::time::Duration::from_millis(1)
            && spread.as_secs_f64() <= 0.02 * ttft.as_secs_f64()
    }

    /// Completes the record and returns when the answer ended: at the event that ended it, else at
    /// `body_end` (when reading stopped). `broken` says why the body broke off, if it did.
    ///
    /// Output tokens of a stream without usage are left to count (`token_source: estimated`,
    /// `output_tokens` null): counting is CPU work, done off the async runtime by the collector.
    pub fn finish(
        mut self,
        body_end: Instant,
        broken: Option<(Status, &'static str, String)>,
        record: &mut Record,
    ) -> Instant {
        let end = match self.ended {
            Some((_, at)) => at,
            // A Chat answer with its finish_reason but no [DONE] ends at its last event.
            None if self.chat_finished => self.last_event.unwrap_or(body_end),
            None => body_end,
        };
        let latency = end.saturating_duration_since(self.sent);
        record.latency_ms = Some(super::millis(latency));
        record.ttft_ms = self
            .first_chunk
            .map(|t| super::millis(t.saturating_duration_since(self.sent)));
        record.ttfo_ms = self
            .first_visible
            .map(|t| super::millis(t.saturating_duration_since(self.sent)));
        record.chunks = Some(self.chunks);
        if self.arrived_in_one_burst() {
            record.flag(Flag::Buffered);
        }
        record.itl_us = std::mem::take(&mut self.itl_us);
        if self.chunks > 0 || record.output_text.is_none() {
            record.output_text = Some(std::mem::take(&mut self.text));
        }
        if !self.calls.is_empty() {
            record.tool_calls = self.calls.drain(..).map(|c| c.call).collect();
        }
        if !self.refusal.is_empty() {
            record.refusal = Some(std::mem::take(&mut self.refusal));
        }
        if self.usage_seen {
            if !self.reasoning.is_empty() && record.reasoning_tokens.unwrap_or(0) == 0 {
                // Left to count on the collector's thread: it sets reasoning (and, when the
                // server left them out, output) tokens and TPOT.
                record.reasoning_text = std::mem::take(&mut self.reasoning);
            } else {
                record.derive_tpot();
            }
        } else {
            record.token_source = Some(TokenSource::Estimated);
            // Reasoning is generated text outside the answer: counted with it.
            record.reasoning_text = std::mem::take(&mut self.reasoning);
        }
        let terminal = matches!(self.ended, Some((Ended::Terminal, _)));
        if let Some((status, kind, message)) = self.error {
            record.fail(status, kind, message);
        } else if terminal {
            // Whatever followed the terminal event (a cut, comments, silence) does not count.
        } else if let Some((status, kind, message)) = broken {
            if self.chat_finished {
                // The answer is whole; only its [DONE] (and perhaps the usage chunk) is missing.
                record.notes.push(format!(
                    "the stream broke off after its finish_reason, before [DONE] ({kind}: {message})"
                ));
            } else {
                record.fail(status, kind, message);
            }
        } else if record.status == Status::Ok && !self.chat_finished {
            let message = match self.shape {
                None => "stream ended without any event".to_string(),
                Some(Shape::Responses) => {
                    "stream ended before a terminal event (response.completed/incomplete/failed)"
                        .to_string()
                }
                Some(Shape::Chat) => "stream ended before [DONE] or a finish_reason".to_string(),
            };
            record.fail(Status::Truncated, "stream_truncated", message);
        }
        end
    }
}

/// A failure reported inside a 2xx stream, in any shape servers use: an `event: error`, a Responses
/// `{"type": "error"}`, an `error` field (object or plain string), or vLLM's top-level
/// `{"object": "error"}`. A Responses terminal event carries its own `error` with its status.
fn in_band_error(event: &StreamEvent, kind: Option<&str>, name: &str) -> Option<(String, String)> {
    if name == "error" || kind == Some("error") {
        let nested = event.error.as_ref().and_then(ErrorField::describe);
        return Some(nested.unwrap_or_else(|| {
            let (code, message) = error_parts(event.code.as_ref(), None, event.message.as_ref());
            let code = if code == "error" {
                "stream_error".to_string()
            } else {
                code
            };
            (code, message)
        }));
    }
    if event.object.as_deref() == Some("error") {
        return Some(error_parts(
            event.code.as_ref(),
            event.kind.as_deref(),
            event.message.as_ref(),
        ));
    }
    if event.response.is_some() {
        return None;
    }
    event.error.as_ref().and_then(ErrorField::describe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event_kind() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("response.output_text.delta".to_string()),
            Just("response.function_call_arguments.delta".to_string()),
            Just("response.function_call_arguments.done".to_string()),
            Just("response.output_item.added".to_string()),
            Just("response.completed".to_string()),
            Just("response.failed".to_string()),
            Just("error".to_string()),
            Just(String::new()),
            "[a-z._]{0,12}",
        ]
    }

    fn data() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[DONE]".to_string()),
            Just(r#"{"type":"response.output_text.delta","delta":"x"}"#.to_string()),
            Just(r#"{"delta":"y","item_id":"fc_1","output_index":0}"#.to_string()),
            Just(r#"{"item":{"type":"function_call","id":"fc_1","name":"f"},"output_index":0}"#.to_string()),
            Just(r#"{"response":{"status":"completed","usage":{"input_tokens":1,"output_tokens":2}}}"#.to_string()),
            Just(r#"{"choices":[{"index":0,"delta":{"content":"z","tool_calls":[{"index":3,"function":{"arguments":"{"}}]},"finish_reason":null}]}"#.to_string()),
            Just(r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#.to_string()),
            Just(r#"{"error":{"message":"m"}}"#.to_string()),
            "[ -~]{0,30}",
        ]
    }

    #[test]
    fn only_the_first_choice_of_a_chat_chunk_is_read() {
        let mut record = Record::empty("1".into(), 1, Status::Ok);
        let mut assembler = StreamAssembler::new(Instant::now());
        for data in [
            r#"{"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"mine"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ] {
            assembler.on_event(&SseEvent { event: "", data }, Instant::now(), &mut record);
        }
        assembler.finish(Instant::now(), None, &mut record);
        assert_eq!(record.output_text.as_deref(), Some("mine"));
        assert_eq!(
            (record.chunks, record.finish.as_deref()),
            (Some(1), Some("stop"))
        );
    }

    proptest! {
        #[test]
        fn stream_assembly_never_panics_and_never_calls_a_broken_stream_ok(
            events in proptest::collection::vec((event_kind(), data()), 0..30),
            close_with_terminal in any::<bool>(),
        ) {
            let sent = Instant::now();
            let mut record = Record::empty("1".into(), 1, Status::Ok);
            let mut assembler = StreamAssembler::new(sent);
            for (event, data) in &events {
                assembler.on_event(&SseEvent { event, data }, Instant::now(), &mut record);
            }
            if close_with_terminal {
                assembler.on_event(&SseEvent { event: "", data: "[DONE]" }, Instant::now(), &mut record);
            }
            assembler.finish(Instant::now(), None, &mut record);
            if let (Some(ttft), Some(latency)) = (record.ttft_ms, record.latency_ms) {
                prop_assert!(ttft <= latency);
            }
            if events.is_empty() && !close_with_terminal {
                prop_assert_ne!(record.status, Status::Ok);
            }
        }
    }
}
