//! Streamed answers: assembles text, tool calls, usage and chunk timings from Responses or Chat SSE events.

use super::parse::{AnyBody, ErrorObject, Usage, apply_usage, read_any_body, truncate};
use super::sse::SseEvent;
use crate::record::{Record, Status, TokenSource, ToolCall};
use crate::tokenize::{HfTokenizer, TokenCounter};
use serde::Deserialize;
use std::borrow::Cow;
use std::time::Instant;

/// Every field either stream shape sends that we read; one lenient parse per event.
#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
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
    message: Option<String>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChunkChoice<'a>>>,
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

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow, default)]
    delta: Option<ChunkDelta<'a>>,
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
    key: CallKey,
    call: ToolCall,
}

#[derive(PartialEq)]
enum CallKey {
    Item(String),
    Output(u64),
    ChatIndex(u64),
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
    Error,
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
            "error" => EventKind::Error,
            _ => EventKind::Other,
        }
    }
}

/// What a chunk carried, for timing.
#[derive(Clone, Copy, PartialEq)]
enum ChunkKind {
    /// Reasoning text: generated, not shown.
    Hidden,
    /// Answer text, refusal or tool-call arguments.
    Visible,
}

/// Folds one stream's events into a record.
pub struct StreamAssembler {
    sent: Instant,
    shape: Option<Shape>,
    text: String,
    calls: Vec<PartialCall>,
    first_chunk: Option<Instant>,
    first_visible: Option<Instant>,
    last_chunk: Option<Instant>,
    chunks: u32,
    itl_us: Vec<u32>,
    /// A terminal event arrived (Responses `completed`/`incomplete`/`failed`/`done`, Chat `[DONE]`).
    terminal: bool,
    chat_finished: bool,
    usage_seen: bool,
    error: Option<(Status, String, String)>,
    unparsable_events: u32,
}

impl StreamAssembler {
    pub fn new(sent: Instant) -> Self {
        StreamAssembler {
            sent,
            shape: None,
            text: String::new(),
            calls: Vec::new(),
            first_chunk: None,
            first_visible: None,
            last_chunk: None,
            chunks: 0,
            itl_us: Vec::with_capacity(64),
            terminal: false,
            chat_finished: false,
            usage_seen: false,
            error: None,
            unparsable_events: 0,
        }
    }

    /// Reads one event that arrived at `at`.
    pub fn on_event(&mut self, event: &SseEvent, at: Instant, record: &mut Record) {
        let data = event.data.trim();
        if data == "[DONE]" {
            if self.shape != Some(Shape::Responses) {
                self.terminal = true;
            }
            return;
        }
        let parsed: StreamEvent = match serde_json::from_str(data) {
            Ok(parsed) => parsed,
            Err(_) => {
                self.unparsable_events += 1;
                return;
            }
        };
        let kind = parsed
            .kind
            .as_deref()
            .or((!event.event.is_empty()).then_some(event.event));
        if parsed.choices.is_some()
            || kind.is_none() && (parsed.usage.is_some() || parsed.error.is_some())
        {
            self.shape.get_or_insert(Shape::Chat);
            self.on_chat_chunk(parsed, at, record);
        } else if let Some(kind) = kind {
            self.shape.get_or_insert(Shape::Responses);
            let kind = EventKind::of(kind);
            self.on_responses_event(kind, parsed, at, record);
        }
    }

    fn on_responses_event(
        &mut self,
        kind: EventKind,
        event: StreamEvent,
        at: Instant,
        record: &mut Record,
    ) {
        match kind {
            EventKind::TextDelta | EventKind::RefusalDelta => {
                if let Some(delta) = event.delta {
                    if kind == EventKind::TextDelta {
                        self.text.push_str(&delta);
                    }
                    self.chunk(at, ChunkKind::Visible);
                }
            }
            EventKind::ReasoningDelta => {
                self.chunk(at, ChunkKind::Hidden);
            }
            EventKind::OutputItem => {
                if let Some(item) = event.item
                    && item.kind.as_deref() == Some("function_call")
                {
                    let key = match (&item.id, event.output_index) {
                        (Some(id), _) => CallKey::Item(id.clone()),
                        (None, Some(index)) => CallKey::Output(index),
                        (None, None) => CallKey::Output(self.calls.len() as u64),
                    };
                    let call = self.call_mut(key);
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
                let key = match (event.item_id, event.output_index) {
                    (Some(id), _) => CallKey::Item(id.into_owned()),
                    (None, Some(index)) => CallKey::Output(index),
                    (None, None) => return,
                };
                let is_delta = kind == EventKind::ArgumentsDelta;
                let call = self.call_mut(key);
                if is_delta {
                    if let Some(delta) = &event.delta {
                        call.arguments.push_str(delta);
                    }
                    self.chunk(at, ChunkKind::Visible);
                } else if let Some(arguments) = event.arguments {
                    call.arguments = arguments;
                }
            }
            EventKind::Terminal => {
                self.terminal = true;
                if let Some(response) = event.response {
                    self.usage_seen |= response.usage.is_some();
                    read_any_body(response, record);
                }
            }
            EventKind::Error => {
                let (code, message) = match (&event.error, event.code, event.message) {
                    (Some(error), _, _) => (error.kind(), error.message()),
                    (None, Some(serde_json::Value::String(code)), message) => {
                        (code, message.unwrap_or_default())
                    }
                    (None, _, message) => ("stream_error".to_string(), message.unwrap_or_default()),
                };
                self.error = Some((Status::ApiError, code, truncate(&message)));
            }
            EventKind::Other => {}
        }
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
        if let Some(error) = chunk.error {
            self.error = Some((Status::ApiError, error.kind(), truncate(&error.message())));
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index != 0 {
                continue;
            }
            if let Some(finish) = choice.finish_reason {
                self.chat_finished = true;
                record.finish = Some(finish);
            }
            let Some(delta) = choice.delta else { continue };
            if delta
                .reasoning_content
                .as_deref()
                .is_some_and(|r| !r.is_empty())
            {
                self.chunk(at, ChunkKind::Hidden);
            }
            let mut visible = false;
            if let Some(content) = delta.content.filter(|c| !c.is_empty()) {
                self.text.push_str(&content);
                visible = true;
            }
            visible |= delta.refusal.is_some_and(|r| !r.is_empty());
            for call in delta.tool_calls.unwrap_or_default() {
                let partial = self.call_mut(CallKey::ChatIndex(call.index));
                if let Some(id) = call.id {
                    partial.call_id = id;
                }
                if let Some(function) = call.function {
                    if let Some(name) = function.name {
                        partial.name = name;
                    }
                    if let Some(arguments) = function.arguments {
                        partial.arguments.push_str(&arguments);
                        visible = true;
                    }
                }
            }
            if visible {
                self.chunk(at, ChunkKind::Visible);
            }
        }
    }

    fn call_mut(&mut self, key: CallKey) -> &mut ToolCall {
        let index = match self.calls.iter().position(|c| c.key == key) {
            Some(index) => index,
            None => {
                self.calls.push(PartialCall {
                    key,
                    call: ToolCall {
                        name: String::new(),
                        call_id: String::new(),
                        arguments: String::new(),
                    },
                });
                self.calls.len() - 1
            }
        };
        &mut self.calls[index].call
    }

    fn chunk(&mut self, at: Instant, kind: ChunkKind) {
        self.chunks += 1;
        self.first_chunk.get_or_insert(at);
        if kind == ChunkKind::Visible {
            self.first_visible.get_or_insert(at);
        }
        if let Some(last) = self.last_chunk {
            let gap = at.saturating_duration_since(last).as_micros();
            self.itl_us.push(u32::try_from(gap).unwrap_or(u32::MAX));
        }
        self.last_chunk = Some(at);
    }

    /// Completes the record once the body has ended (`end` is when the last byte arrived).
    /// `broken` says why reading stopped early, if it did.
    pub fn finish(
        mut self,
        end: Instant,
        broken: Option<(Status, &'static str, String)>,
        tokenizer: Option<&HfTokenizer>,
        record: &mut Record,
    ) {
        let latency = end.saturating_duration_since(self.sent);
        record.latency_ms = Some(super::millis(latency));
        let ttft = self
            .first_chunk
            .map(|t| t.saturating_duration_since(self.sent));
        record.ttft_ms = ttft.map(super::millis);
        record.ttfo_ms = self
            .first_visible
            .map(|t| super::millis(t.saturating_duration_since(self.sent)));
        record.chunks = Some(self.chunks);
        record.itl_us = std::mem::take(&mut self.itl_us);
        if self.chunks > 0 || record.output_text.is_none() {
            record.output_text = Some(std::mem::take(&mut self.text));
        }
        if !self.calls.is_empty() {
            record.tool_calls = self.calls.drain(..).map(|c| c.call).collect();
        }
        if self.shape == Some(Shape::Chat) && record.finish.is_none() && self.terminal {
            record.finish = Some("stop".to_string());
        }
        if !self.usage_seen && record.status == Status::Ok {
            let counter = TokenCounter::choose(record.model.as_deref(), tokenizer);
            let mut output = counter.count(record.output_text.as_deref().unwrap_or(""));
            for call in &record.tool_calls {
                output += counter.count(&call.name) + counter.count(&call.arguments);
            }
            record.output_tokens = Some(output);
            record.token_source = Some(TokenSource::Estimated);
            record.tokenizer = Some(counter.label().to_string());
        }
        if let (Some(ttft), Some(output)) = (ttft, record.output_tokens)
            && output > 1
        {
            record.tpot_ms =
                Some(super::millis(latency.saturating_sub(ttft)) / (output - 1) as f64);
        }
        let complete = self.terminal || self.chat_finished;
        if let Some((status, kind, message)) = self.error {
            record.fail(status, kind, message);
        } else if let Some((status, kind, message)) = broken {
            record.fail(status, kind, message);
        } else if record.status == Status::Ok && !complete {
            let message = match self.shape {
                None if self.unparsable_events > 0 => "stream has no readable events".to_string(),
                None => "stream ended without any event".to_string(),
                Some(Shape::Responses) => {
                    "stream ended before a terminal event (response.completed/incomplete/failed)"
                        .to_string()
                }
                Some(Shape::Chat) => "stream ended before [DONE] or a finish_reason".to_string(),
            };
            record.fail(Status::Truncated, "stream_truncated", message);
        }
    }
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
            assembler.finish(Instant::now(), None, None, &mut record);
            if let (Some(ttft), Some(latency)) = (record.ttft_ms, record.latency_ms) {
                prop_assert!(ttft <= latency);
            }
            if events.is_empty() && !close_with_terminal {
                prop_assert_ne!(record.status, Status::Ok);
            }
        }
    }
}
