//! The mock's streamed answers: SSE frames for the Responses and Chat APIs, each with its send time.

use super::answer::{Answer, Prompt, TokenText, unix_now};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

/// One write to the socket: the events due at `at` after the request arrived.
pub struct Frame {
    pub at: Duration,
    pub bytes: Bytes,
}

/// When chunks go out: the first at `first`, then one every `step`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub first: Duration,
    pub step: Duration,
    pub tokens_per_chunk: usize,
}

/// Collects events into frames; a new frame starts at each chunk's time.
struct Frames {
    done: Vec<Frame>,
    current: BytesMut,
    current_at: Duration,
    pace: Pace,
    chunks: u32,
    sequence: u64,
}

impl Frames {
    fn new(pace: Pace) -> Self {
        Frames {
            done: Vec::new(),
            current: BytesMut::with_capacity(1024),
            current_at: Duration::ZERO,
            pace,
            chunks: 0,
            sequence: 0,
        }
    }

    /// Starts the frame of the next generated chunk.
    fn next_chunk(&mut self) {
        let at = self.pace.first + self.pace.step * self.chunks;
        self.chunks += 1;
        self.cut(at);
    }

    fn cut(&mut self, at: Duration) {
        if !self.current.is_empty() {
            self.done.push(Frame {
                at: self.current_at,
                bytes: self.current.split().freeze(),
            });
        }
        self.current_at = at;
    }

    /// A Responses event: `event:` line naming its type, `data:` with the sequence number set.
    fn responses_event(&mut self, mut event: Value) {
        event["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        let kind = event["type"].as_str().unwrap_or("").to_string();
        let _ = write!(
            Writer(&mut self.current),
            "event: {kind}\ndata: {event}\n\n"
        );
    }

    /// A hot-path Responses delta, formatted directly (no `Value` per token).
    fn responses_delta(
        &mut self,
        kind: &str,
        item_id: &str,
        output_index: usize,
        delta: &str,
        logprobs: bool,
    ) {
        let sequence = self.sequence;
        self.sequence += 1;
        let delta = serde_json::to_string(delta).unwrap_or_default();
        let logprobs = if logprobs { ",\"logprobs\":[]" } else { "" };
        let content_index = if kind == "response.function_call_arguments.delta" {
            ""
        } else {
            ",\"content_index\":0"
        };
        let _ = write!(
            Writer(&mut self.current),
            "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{sequence},\"item_id\":\"{item_id}\",\"output_index\":{output_index}{content_index},\"delta\":{delta}{logprobs}}}\n\n"
        );
    }

    fn data(&mut self, data: &str) {
        let _ = write!(Writer(&mut self.current), "data: {data}\n\n");
    }

    fn finish(mut self) -> Vec<Frame> {
        if self.chunks == 0 {
            // Nothing was generated: the answer still takes the time to first token.
            self.cut(self.pace.first);
        }
        let at = self.current_at;
        self.cut(at);
        self.done
    }
}

/// `fmt::Write` into a `BytesMut`.
struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// Calls `each(from, to)` for the token ranges of successive chunks of `text`.
fn for_chunks(text: &TokenText, per_chunk: usize, mut each: impl FnMut(usize, usize)) {
    let n = text.ends.len();
    let mut from = 0;
    while from < n {
        let to = (from + per_chunk).min(n);
        each(from, to);
        from = to;
    }
}

/// The Responses event sequence of PROTOCOL.md §1, reasoning first when there is any.
pub fn responses_frames(
    answer: &Answer,
    request: &Value,
    prompt: &Prompt,
    key: u64,
    pace: Pace,
) -> Vec<Frame> {
    let mut frames = Frames::new(pace);
    let mut response = answer.responses_body(request, prompt, key);
    let final_status = response["status"]
        .as_str()
        .unwrap_or("completed")
        .to_string();
    let mut opening = response.clone();
    opening["status"] = json!("in_progress");
    opening["output"] = json!([]);
    opening["usage"] = Value::Null;
    opening["incomplete_details"] = Value::Null;
    frames.responses_event(json!({"type": "response.created", "response": opening}));
    frames.responses_event(json!({"type": "response.in_progress", "response": opening}));
    let per_chunk = pace.tokens_per_chunk;
    let mut output_index = 0;

    if answer.reasoning_tokens > 0 {
        let item_id = format!("rs_{key:016x}");
        frames.responses_event(json!({"type": "response.output_item.added", "output_index": output_index, "item": answer.reasoning_item(key, false)}));
        for_chunks(&answer.reasoning, per_chunk, |from, to| {
            frames.next_chunk();
            frames.responses_delta(
                "response.reasoning_text.delta",
                &item_id,
                output_index,
                answer.reasoning.slice(from, to),
                false,
            );
        });
        frames.responses_event(json!({"type": "response.reasoning_text.done", "item_id": item_id, "output_index": output_index, "content_index": 0, "text": answer.reasoning.text}));
        frames.responses_event(json!({"type": "response.output_item.done", "output_index": output_index, "item": answer.reasoning_item(key, true)}));
        output_index += 1;
    }

    if answer.calls.is_empty() {
        let item_id = format!("msg_{key:016x}");
        let empty_part =
            json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
        frames.responses_event(json!({"type": "response.output_item.added", "output_index": output_index, "item": answer.message_item(key, false)}));
        frames.responses_event(json!({"type": "response.content_part.added", "item_id": item_id, "output_index": output_index, "content_index": 0, "part": empty_part}));
        for_chunks(&answer.text, per_chunk, |from, to| {
            frames.next_chunk();
            frames.responses_delta(
                "response.output_text.delta",
                &item_id,
                output_index,
                answer.text.slice(from, to),
                true,
            );
        });
        let text = &answer.text.text;
        let part = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
        frames.responses_event(json!({"type": "response.output_text.done", "item_id": item_id, "output_index": output_index, "content_index": 0, "text": text, "logprobs": []}));
        frames.responses_event(json!({"type": "response.content_part.done", "item_id": item_id, "output_index": output_index, "content_index": 0, "part": part}));
        frames.responses_event(json!({"type": "response.output_item.done", "output_index": output_index, "item": answer.message_item(key, true)}));
    }
    for (i, (call, pieces)) in answer.calls.iter().enumerate() {
        let index = output_index + i;
        let item_id = format!("fc_{key:016x}{i:02}");
        frames.responses_event(json!({"type": "response.output_item.added", "output_index": index, "item": answer.call_item(key, i, false)}));
        for_chunks(pieces, per_chunk, |from, to| {
            frames.next_chunk();
            frames.responses_delta(
                "response.function_call_arguments.delta",
                &item_id,
                index,
                pieces.slice(from, to),
                false,
            );
        });
        frames.responses_event(json!({"type": "response.function_call_arguments.done", "item_id": item_id, "output_index": index, "name": call.name, "arguments": call.arguments}));
        frames.responses_event(json!({"type": "response.output_item.done", "output_index": index, "item": answer.call_item(key, i, true)}));
    }
    let terminal = if final_status == "incomplete" {
        "response.incomplete"
    } else {
        "response.completed"
    };
    response["status"] = json!(final_status);
    frames.responses_event(json!({"type": terminal, "response": response}));
    frames.finish()
}

/// Chat Completions chunks: role, reasoning, content or tool calls, finish, optional usage, `[DONE]`.
pub fn chat_frames(
    answer: &Answer,
    prompt: &Prompt,
    key: u64,
    include_usage: bool,
    pace: Pace,
) -> Vec<Frame> {
    let mut frames = Frames::new(pace);
    let model = serde_json::to_string(&prompt.model).unwrap_or_default();
    let head = format!(
        "{{\"id\":\"chatcmpl-{key:016x}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{model},\"system_fingerprint\":\"fp_llmvolley_mock\",\"choices\":[",
        unix_now()
    );
    let chunk = |frames: &mut Frames, delta: &str, finish: &str| {
        let data = format!(
            "{head}{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]}}"
        );
        frames.data(&data);
    };
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
    chunk(
        &mut frames,
        "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
        "null",
    );
    let per_chunk = pace.tokens_per_chunk;
    for_chunks(&answer.reasoning, per_chunk, |from, to| {
        frames.next_chunk();
        let delta = format!(
            "{{\"reasoning_content\":{}}}",
            quoted(answer.reasoning.slice(from, to))
        );
        chunk(&mut frames, &delta, "null");
    });
    for_chunks(&answer.text, per_chunk, |from, to| {
        frames.next_chunk();
        let delta = format!("{{\"content\":{}}}", quoted(answer.text.slice(from, to)));
        chunk(&mut frames, &delta, "null");
    });
    for (i, (call, pieces)) in answer.calls.iter().enumerate() {
        let opening = format!(
            "{{\"tool_calls\":[{{\"index\":{i},\"id\":\"call_{key:016x}{i:02}\",\"type\":\"function\",\"function\":{{\"name\":{},\"arguments\":\"\"}}}}]}}",
            quoted(&call.name)
        );
        chunk(&mut frames, &opening, "null");
        for_chunks(pieces, per_chunk, |from, to| {
            frames.next_chunk();
            let delta = format!(
                "{{\"tool_calls\":[{{\"index\":{i},\"function\":{{\"arguments\":{}}}}}]}}",
                quoted(pieces.slice(from, to))
            );
            chunk(&mut frames, &delta, "null");
        });
    }
    chunk(&mut frames, "{}", &quoted(answer.chat_finish_reason()));
    if include_usage {
        let usage = json!({
            "id": format!("chatcmpl-{key:016x}"), "object": "chat.completion.chunk", "created": unix_now(),
            "model": prompt.model, "choices": [], "usage": answer.chat_usage(prompt),
        });
        frames.data(&usage.to_string());
    }
    frames.data("[DONE]");
    frames.finish()
}
