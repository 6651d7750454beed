//! The mock's streamed answers: SSE events for the Responses and Chat APIs, rendered lazily, one frame
//! (one socket write) per generated chunk, each due at its own time after the request arrived.
//!
//! Only a small plan of steps is built when a request arrives; each frame's bytes are rendered when it
//! is due, so a burst of arrivals costs little and every answer's first bytes leave promptly.

use super::answer::{Answer, Prompt, TokenText, unix_now};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

/// When chunks go out: the first at `first`, then one every `step`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub first: Duration,
    pub step: Duration,
    pub tokens_per_chunk: usize,
}

/// One piece of a streamed answer. `*Delta` steps are generated chunks; the rest are bookkeeping
/// events that travel in the same write as the chunk before them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Opening,
    ReasoningAdded,
    ReasoningDelta(usize, usize),
    ReasoningDone,
    MessageAdded,
    TextDelta(usize, usize),
    MessageDone,
    CallAdded(usize),
    CallDelta(usize, usize, usize),
    CallDone(usize),
    Closing,
}

impl Step {
    fn is_chunk(self) -> bool {
        matches!(
            self,
            Step::ReasoningDelta(..) | Step::TextDelta(..) | Step::CallDelta(..)
        )
    }

    /// Steps that only make sense once generation has happened.
    fn needs_generation(self) -> bool {
        matches!(
            self,
            Step::ReasoningDone | Step::MessageDone | Step::CallDone(_) | Step::Closing
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Responses,
    Chat {
        include_usage: bool,
    },
    /// Completions chunks: `choices[].text`, usage in a last chunk with no choices when asked.
    Completions {
        include_usage: bool,
    },
}

/// A streamed answer, handing out its frames in order.
pub struct AnswerStream {
    wire: Wire,
    answer: Answer,
    request: Value,
    prompt: Prompt,
    key: u64,
    pace: Pace,
    steps: Vec<Step>,
    next: usize,
    chunks_sent: u32,
    sequence: u64,
    /// Chat chunks all start with the same id/model prefix.
    chat_head: String,
    ids: ItemIds,
}

/// The output item ids of one answer, formatted once.
struct ItemIds {
    reasoning: String,
    message: String,
    calls: Vec<String>,
}

impl AnswerStream {
    pub fn new(
        wire: Wire,
        answer: Answer,
        request: Value,
        prompt: Prompt,
        key: u64,
        pace: Pace,
    ) -> Self {
        let per_chunk = pace.tokens_per_chunk.max(1);
        let mut steps = Vec::with_capacity(answer.chunk_count(per_chunk as u64) as usize + 8);
        steps.push(Step::Opening);
        let chunks =
            |text: &TokenText, steps: &mut Vec<Step>, make: &dyn Fn(usize, usize) -> Step| {
                let n = text.ends.len();
                let mut from = 0;
                while from < n {
                    let to = (from + per_chunk).min(n);
                    steps.push(make(from, to));
                    from = to;
                }
            };
        if answer.reasoning_tokens > 0 {
            steps.push(Step::ReasoningAdded);
            chunks(&answer.reasoning, &mut steps, &|a, b| {
                Step::ReasoningDelta(a, b)
            });
            steps.push(Step::ReasoningDone);
        }
        if answer.calls.is_empty() {
            steps.push(Step::MessageAdded);
            chunks(&answer.text, &mut steps, &|a, b| Step::TextDelta(a, b));
            steps.push(Step::MessageDone);
        }
        for (i, (_, pieces)) in answer.calls.iter().enumerate() {
            steps.push(Step::CallAdded(i));
            chunks(pieces, &mut steps, &|a, b| Step::CallDelta(i, a, b));
            steps.push(Step::CallDone(i));
        }
        steps.push(Step::Closing);
        let answer_calls = answer.calls.len();
        let chat_head = match wire {
            Wire::Responses => String::new(),
            Wire::Completions { .. } => format!(
                "{{\"id\":\"cmpl-{key:016x}\",\"object\":\"text_completion\",\"created\":{},\"model\":{},\"system_fingerprint\":\"fp_llmvolley_mock\",\"choices\":[",
                unix_now(),
                serde_json::to_string(&prompt.model).unwrap_or_default()
            ),
            Wire::Chat { .. } => format!(
                "{{\"id\":\"chatcmpl-{key:016x}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\"system_fingerprint\":\"fp_llmvolley_mock\",\"choices\":[",
                unix_now(),
                serde_json::to_string(&prompt.model).unwrap_or_default()
            ),
        };
        AnswerStream {
            wire,
            answer,
            request,
            prompt,
            key,
            pace,
            steps,
            next: 0,
            chunks_sent: 0,
            sequence: 0,
            chat_head,
            ids: ItemIds {
                reasoning: format!("rs_{key:016x}"),
                message: format!("msg_{key:016x}"),
                calls: (0..answer_calls)
                    .map(|i| format!("fc_{key:016x}{i:02}"))
                    .collect(),
            },
        }
    }

    /// Whether a frame with answer tokens has been taken (the first one is events before them).
    pub fn tokens_sent(&self) -> bool {
        self.chunks_sent > 0
    }

    /// The next write and when it is due (after the request's arrival), or `None` at the end.
    ///
    /// The first write holds the opening events; each later one holds one chunk and the bookkeeping
    /// events up to the next chunk. An answer with no chunk still ends at its first-token time.
    pub fn next_frame(&mut self) -> Option<(Duration, Bytes)> {
        let step = *self.steps.get(self.next)?;
        let mut out = BytesMut::with_capacity(512);
        let at = if self.next == 0 {
            while let Some(&step) = self.steps.get(self.next) {
                if step.is_chunk() || step.needs_generation() {
                    break;
                }
                self.render(step, &mut out);
                self.next += 1;
            }
            Duration::ZERO
        } else {
            let at = self.pace.first + self.pace.step * self.chunks_sent;
            if step.is_chunk() {
                self.render(step, &mut out);
                self.next += 1;
                self.chunks_sent += 1;
            }
            while let Some(&step) = self.steps.get(self.next) {
                if step.is_chunk() {
                    break;
                }
                self.render(step, &mut out);
                self.next += 1;
            }
            at
        };
        Some((at, out.freeze()))
    }

    fn render(&mut self, step: Step, out: &mut BytesMut) {
        match self.wire {
            Wire::Responses => self.render_responses(step, out),
            Wire::Chat { include_usage } => self.render_chat(step, include_usage, out),
            Wire::Completions { include_usage } => {
                self.render_completions(step, include_usage, out)
            }
        }
    }

    /// Completions chunks: only the answer's text (a prompt has no tools, and the API streams
    /// no reasoning).
    fn render_completions(&mut self, step: Step, include_usage: bool, out: &mut BytesMut) {
        match step {
            Step::TextDelta(from, to) => {
                let _ = write!(Writer(out), "data: {}{{\"text\":", self.chat_head);
                write_json_string(out, self.answer.text.slice(from, to));
                out.put_slice(b",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n");
            }
            Step::Closing => {
                let finish = if self.answer.truncated {
                    "length"
                } else {
                    "stop"
                };
                let _ = write!(
                    Writer(out),
                    "data: {}{{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"{finish}\"}}]}}\n\n",
                    self.chat_head
                );
                if include_usage {
                    let input = self.prompt.input_tokens();
                    let usage = json!({
                        "id": format!("cmpl-{:016x}", self.key), "object": "text_completion", "created": unix_now(),
                        "model": self.prompt.model, "choices": [],
                        "usage": {"prompt_tokens": input, "completion_tokens": self.answer.output_tokens,
                                  "total_tokens": input + self.answer.output_tokens},
                    });
                    let _ = write!(Writer(out), "data: {usage}\n\n");
                }
                out.put_slice(b"data: [DONE]\n\n");
            }
            _ => {}
        }
    }

    fn event(&mut self, out: &mut BytesMut, mut event: Value) {
        event["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let kind = event["type"].as_str().unwrap_or("").to_string();
        let _ = write!(Writer(out), "event: {kind}\ndata: {event}\n\n");
    }

    fn message_index(&self) -> usize {
        usize::from(self.answer.reasoning_tokens > 0)
    }

    fn render_responses(&mut self, step: Step, out: &mut BytesMut) {
        let key = self.key;
        match step {
            Step::Opening => {
                let mut opening = self.answer.responses_body(&self.request, &self.prompt, key);
                opening["status"] = json!("in_progress");
                opening["output"] = json!([]);
                opening["usage"] = Value::Null;
                opening["incomplete_details"] = Value::Null;
                for kind in ["response.created", "response.in_progress"] {
                    let sequence = self.sequence;
                    self.sequence += 1;
                    let _ = write!(
                        Writer(out),
                        "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{sequence},\"response\":{opening}}}\n\n"
                    );
                }
            }
            Step::ReasoningAdded => {
                let item = self.answer.reasoning_item(key, false);
                self.event(
                    out,
                    json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
                );
            }
            Step::ReasoningDelta(from, to) => {
                let text = self.answer.reasoning.slice(from, to);
                write_delta(
                    out,
                    &mut self.sequence,
                    "response.reasoning_text.delta",
                    &self.ids.reasoning,
                    0,
                    text,
                );
            }
            Step::ReasoningDone => {
                let text = self.answer.reasoning.text.clone();
                let item = self.answer.reasoning_item(key, true);
                self.event(out, json!({"type": "response.reasoning_text.done", "item_id": format!("rs_{key:016x}"), "output_index": 0, "content_index": 0, "text": text}));
                self.event(
                    out,
                    json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
                );
            }
            Step::MessageAdded => {
                let index = self.message_index();
                let item = self.answer.message_item(key, false);
                let part =
                    json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
                self.event(out, json!({"type": "response.output_item.added", "output_index": index, "item": item}));
                self.event(out, json!({"type": "response.content_part.added", "item_id": format!("msg_{key:016x}"), "output_index": index, "content_index": 0, "part": part}));
            }
            Step::TextDelta(from, to) => {
                let index = self.message_index();
                let text = self.answer.text.slice(from, to);
                write_delta(
                    out,
                    &mut self.sequence,
                    "response.output_text.delta",
                    &self.ids.message,
                    index,
                    text,
                );
            }
            Step::MessageDone => {
                let index = self.message_index();
                let item_id = format!("msg_{key:016x}");
                let text = self.answer.text.text.clone();
                let part =
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                let item = self.answer.message_item(key, true);
                self.event(out, json!({"type": "response.output_text.done", "item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}));
                self.event(out, json!({"type": "response.content_part.done", "item_id": item_id, "output_index": index, "content_index": 0, "part": part}));
                self.event(out, json!({"type": "response.output_item.done", "output_index": index, "item": item}));
            }
            Step::CallAdded(i) => {
                let item = self.answer.call_item(key, i, false);
                let index = self.message_index() + i;
                self.event(out, json!({"type": "response.output_item.added", "output_index": index, "item": item}));
            }
            Step::CallDelta(i, from, to) => {
                let index = self.message_index() + i;
                let piece = self.answer.calls[i].1.slice(from, to);
                write_delta(
                    out,
                    &mut self.sequence,
                    "response.function_call_arguments.delta",
                    &self.ids.calls[i],
                    index,
                    piece,
                );
            }
            Step::CallDone(i) => {
                let index = self.message_index() + i;
                let (name, arguments) = (
                    self.answer.calls[i].0.name.clone(),
                    self.answer.calls[i].0.arguments.clone(),
                );
                let item = self.answer.call_item(key, i, true);
                self.event(out, json!({"type": "response.function_call_arguments.done", "item_id": format!("fc_{key:016x}{i:02}"), "output_index": index, "name": name, "arguments": arguments}));
                self.event(out, json!({"type": "response.output_item.done", "output_index": index, "item": item}));
            }
            Step::Closing => {
                let response = self.answer.responses_body(&self.request, &self.prompt, key);
                let terminal = if self.answer.truncated {
                    "response.incomplete"
                } else {
                    "response.completed"
                };
                self.event(out, json!({"type": terminal, "response": response}));
            }
        }
    }

    fn chat_chunk(&self, out: &mut BytesMut, delta: &str, finish: &str) {
        let head = &self.chat_head;
        let _ = write!(
            Writer(out),
            "data: {head}{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}\n\n"
        );
    }

    /// A Chat chunk whose delta is one text field, written without intermediate strings.
    fn chat_text_chunk(&self, out: &mut BytesMut, field: &str, text: &str) {
        let _ = write!(
            Writer(out),
            "data: {}{{\"index\":0,\"delta\":{{\"{field}\":",
            self.chat_head
        );
        write_json_string(out, text);
        out.put_slice(b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
    }

    fn render_chat(&mut self, step: Step, include_usage: bool, out: &mut BytesMut) {
        let key = self.key;
        let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
        match step {
            Step::Opening => self.chat_chunk(
                out,
                "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
                "null",
            ),
            Step::ReasoningDelta(from, to) => self.chat_text_chunk(
                out,
                "reasoning_content",
                self.answer.reasoning.slice(from, to),
            ),
            Step::TextDelta(from, to) => {
                self.chat_text_chunk(out, "content", self.answer.text.slice(from, to))
            }
            Step::CallAdded(i) => {
                let delta = format!(
                    "{{\"tool_calls\":[{{\"index\":{i},\"id\":\"call_{key:016x}{i:02}\",\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]}}",
                    quoted(&self.answer.calls[i].0.name)
                );
                self.chat_chunk(out, &delta, "null");
            }
            Step::CallDelta(i, from, to) => {
                let delta = format!(
                    "{{\"tool_calls\":[{{\"index\":{i},\"function\":{{\"arguments\":{}}}}}]}}",
                    quoted(self.answer.calls[i].1.slice(from, to))
                );
                self.chat_chunk(out, &delta, "null");
            }
            Step::Closing => {
                self.chat_chunk(out, "{}", &quoted(self.answer.chat_finish_reason()));
                if include_usage {
                    let usage = json!({
                        "id": format!("chatcmpl-{key:016x}"), "object": "chat.completion.chunk", "created": unix_now(),
                        "model": self.prompt.model, "choices": [], "usage": self.answer.chat_usage(&self.prompt),
                    });
                    let _ = write!(Writer(out), "data: {usage}\n\n");
                }
                out.put_slice(b"data: [DONE]\n\n");
            }
            Step::ReasoningAdded
            | Step::ReasoningDone
            | Step::MessageAdded
            | Step::MessageDone
            | Step::CallDone(_) => {}
        }
    }
}

/// A per-token Responses delta, formatted directly (no `Value` per token).
fn write_delta(
    out: &mut BytesMut,
    sequence: &mut u64,
    kind: &str,
    item_id: &str,
    output_index: usize,
    delta: &str,
) {
    let number = *sequence;
    *sequence += 1;
    let (content_index, logprobs) = match kind {
        "response.function_call_arguments.delta" => ("", ""),
        "response.output_text.delta" => (",\"content_index\":0", ",\"logprobs\":[]"),
        _ => (",\"content_index\":0", ""),
    };
    let _ = write!(
        Writer(out),
        "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{number},\"item_id\":\"{item_id}\",\"output_index\":{output_index}{content_index},\"delta\":"
    );
    write_json_string(out, delta);
    let _ = write!(Writer(out), "{logprobs}}}\n\n");
}

/// Writes `text` as a JSON string literal.
fn write_json_string(out: &mut BytesMut, text: &str) {
    let _ = serde_json::to_writer(out.writer(), text);
}

/// `fmt::Write` into a `BytesMut`.
struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}
