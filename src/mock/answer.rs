//! What the mock says: text or function calls derived from the request, with usage to match.

use crate::tokenize::{Encoding, TokenCounter};
use crate::workload::Route;
use serde::Serialize;
use serde::ser::SerializeMap as _;
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiShape {
    Responses,
    Chat,
    /// Legacy text completions: a `prompt`, answered as `choices[].text`.
    Completions,
}

/// A function tool the request offers.
pub struct FunctionTool {
    pub name: String,
    pub parameters: Value,
}

/// What the mock reads from a request.
pub struct Prompt {
    pub model: String,
    pub tools: Vec<FunctionTool>,
    /// Which tools to call: none, all of them (parallel), the first, or one by name.
    pub tool_choice: ToolChoice,
    pub max_output_tokens: Option<u64>,
    /// vLLM's and SGLang's `ignore_eos`: the answer runs to its cap.
    pub ignore_eos: bool,
    /// vLLM's `min_tokens`: the answer is at least this long (its cap permitting).
    pub min_tokens: u64,
    /// Input tokens as `llmvolley estimate` counts them (tiktoken, with the API's framing).
    input_tokens: u64,
    /// The tool results this request hands back (after its last user message), as (tool name,
    /// output): the answer is then text that uses them, not more calls.
    pub tool_results: Vec<(String, String)>,
    /// The history already holds tool results: the tools were used, so a later user turn gets
    /// text, not another round of calls (as llmock's agent loop and a well-behaved model do).
    pub tools_used: bool,
    /// Structured output asked for (`response_format`, or Responses' `text.format`): Some(schema)
    /// for `json_schema`, Some(None) for `json_object`; the answer is JSON that satisfies it.
    pub structured: Option<Option<Value>>,
}

/// The structured output a request asks for (see `Prompt::structured`).
fn structured(request: &Value) -> Option<Option<Value>> {
    let format = request
        .get("response_format")
        .or_else(|| request.pointer("/text/format"))?;
    match format.get("type").and_then(Value::as_str)? {
        "json_object" => Some(None),
        "json_schema" => Some(
            format
                .pointer("/json_schema/schema")
                .or_else(|| format.get("schema"))
                .cloned(),
        ),
        _ => None,
    }
}

/// How a fault breaks a structured answer (`--mock-faults bad_json,schema_violation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// The JSON loses its last character.
    BadJson,
    /// A required field is left out, or (with none required) a field gets the wrong type.
    SchemaViolation,
}

/// The request's input tokens as `llmvolley estimate` counts them: the model's tiktoken encoding,
/// plus the API's framing.
pub fn count_input(request: &Value, shape: ApiShape) -> u64 {
    let route = match shape {
        ApiShape::Responses => Route::Responses,
        ApiShape::Chat => Route::Chat,
        ApiShape::Completions => Route::Completions,
    };
    let model = request.get("model").and_then(Value::as_str);
    let counter = TokenCounter::Tiktoken(Encoding::for_model(model));
    crate::cost::estimate::input_tokens(request, &route, &counter)
}

/// The longest answer the mock writes (tokens): a cap or `min_tokens` above it is held to it, so
/// one request cannot make it allocate without bound.
pub const MAX_ANSWER_TOKENS: u64 = 1 << 18;

/// Reads the tool round a request carries, and refuses a history the real API refuses (400):
/// a function call without its output, or an output without its call (Responses: `function_call`
/// and `function_call_output` items matched by `call_id`; Chat: an assistant message's
/// `tool_calls` and the `tool` messages answering them by `tool_call_id`). With
/// `previous_response_id` the calls live on the server, so outputs are taken as they come.
pub fn tool_round(request: &Value, shape: ApiShape) -> Result<ToolRound, String> {
    let items: &[Value] = match shape {
        ApiShape::Responses => request.get("input"),
        ApiShape::Chat => request.get("messages"),
        // A prompt has no history and no tools.
        ApiShape::Completions => None,
    }
    .and_then(Value::as_array)
    .map_or(&[], Vec::as_slice);
    let text_of = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let stateful = request
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null());
    let mut calls: Vec<(String, String)> = Vec::new(); // (call_id, name) not yet answered
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut round = Vec::new();
    let mut used = false;
    for item in items {
        let kind = item.get("type").and_then(Value::as_str);
        let role = item.get("role").and_then(Value::as_str);
        match (shape, kind, role) {
            (ApiShape::Responses, Some("function_call"), _) => {
                let id = text_of(item.get("call_id"));
                let name = text_of(item.get("name"));
                names.insert(id.clone(), name.clone());
                calls.push((id, name));
            }
            (ApiShape::Responses, Some("function_call_output"), _) => {
                let id = text_of(item.get("call_id"));
                let name = match (names.get(&id), stateful) {
                    (Some(name), _) => name.clone(),
                    (None, true) => id.clone(),
                    (None, false) => {
                        return Err(format!(
                            "No tool call found for function call output with call_id {id}."
                        ));
                    }
                };
                calls.retain(|(c, _)| *c != id);
                used = true;
                round.push((name, text_of(item.get("output"))));
            }
            (ApiShape::Chat, _, Some("assistant")) => {
                if let Some(pending) = calls.first() {
                    return Err(unanswered_chat(&calls, pending));
                }
                for call in item
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let id = text_of(call.get("id"));
                    let name = text_of(call.pointer("/function/name"));
                    names.insert(id.clone(), name.clone());
                    calls.push((id, name));
                }
                round.clear();
            }
            (ApiShape::Chat, _, Some("tool")) => {
                let id = text_of(item.get("tool_call_id"));
                let Some(at) = calls.iter().position(|(c, _)| *c == id) else {
                    return Err("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".to_string());
                };
                let (_, name) = calls.remove(at);
                used = true;
                round.push((name, text_of(item.get("content"))));
            }
            (_, _, Some("user" | "system" | "developer")) => {
                if let Some(pending) = calls.first() {
                    return Err(match shape {
                        ApiShape::Responses => {
                            format!("No tool output found for function call {}.", pending.0)
                        }
                        ApiShape::Chat | ApiShape::Completions => unanswered_chat(&calls, pending),
                    });
                }
                round.clear();
            }
            _ => {}
        }
    }
    if let Some(pending) = calls.first()
        && !round.is_empty()
    {
        return Err(match shape {
            ApiShape::Responses => format!("No tool output found for function call {}.", pending.0),
            ApiShape::Chat | ApiShape::Completions => unanswered_chat(&calls, pending),
        });
    }
    Ok(ToolRound {
        results: round,
        used,
    })
}

/// The tool results a request hands back, read once per request (`tool_round`).
#[derive(Debug, Default, PartialEq)]
pub struct ToolRound {
    /// The results after the last user message, as (tool name, output).
    pub results: Vec<(String, String)>,
    /// Whether the history holds any tool result at all.
    pub used: bool,
}

fn unanswered_chat(calls: &[(String, String)], _first: &(String, String)) -> String {
    let ids: Vec<&str> = calls.iter().map(|(id, _)| id.as_str()).collect();
    format!(
        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
        ids.join(", ")
    )
}

pub enum ToolChoice {
    None,
    All,
    First,
    Named(String),
}

impl Prompt {
    #[cfg(test)]
    pub fn read(request: &Value, shape: ApiShape) -> Prompt {
        let round = tool_round(request, shape).unwrap_or_default();
        Prompt::read_counted(request, count_input(request, shape), round)
    }

    /// As `read`, with the input tokens already counted (`count_input`: the mock counts long
    /// prompts off its thread, and each distinct body once).
    pub fn read_counted(request: &Value, input_tokens: u64, round: ToolRound) -> Prompt {
        let tools: Vec<FunctionTool> = request
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
            .filter_map(|t| {
                let def = t.get("function").unwrap_or(t);
                Some(FunctionTool {
                    name: def.get("name")?.as_str()?.to_string(),
                    parameters: def.get("parameters").cloned().unwrap_or_else(|| json!({})),
                })
            })
            .collect();
        let parallel = request.get("parallel_tool_calls").and_then(Value::as_bool) != Some(false);
        let tool_choice = match request.get("tool_choice") {
            Some(Value::String(s)) if s == "none" => ToolChoice::None,
            Some(Value::Object(o)) => {
                let name = o
                    .get("name")
                    .or_else(|| o.get("function").and_then(|f| f.get("name")));
                match name.and_then(Value::as_str) {
                    Some(name) => ToolChoice::Named(name.to_string()),
                    None if parallel => ToolChoice::All,
                    None => ToolChoice::First,
                }
            }
            _ if parallel => ToolChoice::All,
            _ => ToolChoice::First,
        };
        let max_output_tokens = ["max_output_tokens", "max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| request.get(*k).and_then(Value::as_u64));
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("mock-model")
            .to_string();
        Prompt {
            tools_used: round.used,
            tool_results: round.results,
            input_tokens,
            model,
            tools,
            tool_choice,
            max_output_tokens,
            structured: structured(request),
            ignore_eos: request.get("ignore_eos").and_then(Value::as_bool) == Some(true),
            min_tokens: request
                .get("min_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        }
    }

    /// The tiktoken count of what the model reads plus the API's framing: exactly what
    /// `llmvolley estimate` predicts for the request.
    pub fn input_tokens(&self) -> u64 {
        self.input_tokens
    }
}

const WORDS: [&str; 48] = [
    "the",
    "unicorn",
    "moon",
    "quietly",
    "silver",
    "river",
    "dreams",
    "of",
    "a",
    "gentle",
    "light",
    "under",
    "stars",
    "wandered",
    "through",
    "meadow",
    "softly",
    "whispered",
    "and",
    "found",
    "hidden",
    "path",
    "to",
    "sleep",
    "where",
    "every",
    "wish",
    "glowed",
    "like",
    "morning",
    "dew",
    "on",
    "petals",
    "while",
    "owls",
    "sang",
    "old",
    "songs",
    "in",
    "warm",
    "wind",
    "beside",
    "sparkling",
    "hills",
    "forever",
    "kind",
    "bright",
    "tale",
];

pub struct Call {
    pub name: String,
    pub arguments: String,
}

/// Knobs that shape answers, from `MockConfig`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnswerKnobs {
    /// Fixed answer length in tokens instead of 8–64 depending on the prompt.
    pub output_tokens: Option<u32>,
    /// Reasoning tokens generated (and streamed) before the answer.
    pub reasoning_tokens: u32,
}

/// Text cut into tokens: `ends[i]` is the byte offset where token `i` ends.
#[derive(Default)]
pub struct TokenText {
    pub text: String,
    pub ends: Vec<usize>,
}

impl TokenText {
    /// `n` words from the word list, one token each, in an order drawn from `key`.
    fn words(n: u64, key: u64) -> TokenText {
        let mut out = TokenText {
            text: String::with_capacity(n as usize * 8),
            ends: Vec::with_capacity(n as usize),
        };
        let mut state = key;
        for i in 0..n {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let word = WORDS[(state >> 33) as usize % WORDS.len()];
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    out.text.extend(first.to_uppercase());
                    out.text.push_str(chars.as_str());
                }
            } else {
                out.text.push(' ');
                out.text.push_str(word);
            }
            if i + 1 == n {
                out.text.push('.');
            }
            out.ends.push(out.text.len());
        }
        out
    }

    /// Arguments as tokens of about four characters (cut on character boundaries).
    fn pieces_of(text: String) -> TokenText {
        let mut ends = Vec::with_capacity(text.len() / 4 + 1);
        let mut chars = 0;
        for (i, c) in text.char_indices() {
            chars += 1;
            if chars % 4 == 0 {
                ends.push(i + c.len_utf8());
            }
        }
        if ends.last() != Some(&text.len()) && !text.is_empty() {
            ends.push(text.len());
        }
        TokenText { text, ends }
    }

    pub fn tokens(&self) -> u64 {
        self.ends.len() as u64
    }

    /// The text of tokens `from..to`.
    pub fn slice(&self, from: usize, to: usize) -> &str {
        let start = if from == 0 { 0 } else { self.ends[from - 1] };
        &self.text[start..self.ends[to - 1]]
    }
}

/// The generated answer: reasoning, then text or function calls, and the tokens they took.
pub struct Answer {
    pub reasoning: TokenText,
    pub text: TokenText,
    pub calls: Vec<(Call, TokenText)>,
    /// Answer plus reasoning tokens (reasoning is inside output, as the API counts it).
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub truncated: bool,
}

impl Answer {
    /// A fixed text (tool results used, a structured answer) after `reasoning`, cut at the
    /// request's cap (`truncated` then).
    fn of_text(text: String, reasoning: TokenText, reasoning_tokens: u64, cap: u64) -> Answer {
        let mut text = TokenText::pieces_of(text);
        let room = (cap - reasoning_tokens).min(text.tokens()) as usize;
        let truncated = room < text.ends.len();
        if truncated {
            text.text
                .truncate(if room == 0 { 0 } else { text.ends[room - 1] });
            text.ends.truncate(room);
        }
        Answer {
            reasoning,
            output_tokens: reasoning_tokens + text.tokens(),
            text,
            calls: Vec::new(),
            reasoning_tokens,
            truncated,
        }
    }

    /// Deterministic for a given `key`: text of 8 to 64 tokens, or one call per chosen tool.
    pub fn generate(prompt: &Prompt, key: u64, knobs: AnswerKnobs) -> Answer {
        let cap = prompt.max_output_tokens.unwrap_or(u64::MAX);
        let reasoning_tokens = u64::from(knobs.reasoning_tokens).min(cap);
        let reasoning = TokenText::words(reasoning_tokens, key ^ 0x5eed);
        if !prompt.tool_results.is_empty() {
            // A tool round handed back: the answer uses the results instead of calling again.
            let mut text = String::from("Using the tool results:");
            for (i, (name, output)) in prompt.tool_results.iter().enumerate() {
                let sep = if i == 0 { " " } else { "; " };
                text.push_str(&format!("{sep}{name} returned {output}"));
            }
            text.push('.');
            return Answer::of_text(text, reasoning, reasoning_tokens, cap);
        }
        let chosen: Vec<&FunctionTool> = match &prompt.tool_choice {
            _ if prompt.tools.is_empty() || prompt.tools_used => Vec::new(),
            ToolChoice::None => Vec::new(),
            ToolChoice::All => prompt.tools.iter().collect(),
            ToolChoice::First => prompt.tools.iter().take(1).collect(),
            ToolChoice::Named(name) => prompt
                .tools
                .iter()
                .filter(|t| &t.name == name)
                .take(1)
                .collect(),
        };
        if !chosen.is_empty() {
            let calls: Vec<(Call, TokenText)> = chosen
                .into_iter()
                .map(|tool| {
                    let arguments = example_arguments(&tool.parameters).to_string();
                    let pieces = TokenText::pieces_of(arguments.clone());
                    (
                        Call {
                            name: tool.name.clone(),
                            arguments,
                        },
                        pieces,
                    )
                })
                .collect();
            let call_tokens: u64 = calls.iter().map(|(_, pieces)| 5 + pieces.tokens()).sum();
            return Answer {
                reasoning,
                text: TokenText::default(),
                calls,
                output_tokens: reasoning_tokens + call_tokens,
                reasoning_tokens,
                truncated: false,
            };
        }
        if let Some(format) = &prompt.structured {
            let json = match format {
                Some(schema) => example_arguments(schema),
                None => json!({"answer": TokenText::words(8, key).text}),
            };
            return Answer::of_text(json.to_string(), reasoning, reasoning_tokens, cap);
        }
        let wanted = knobs.output_tokens.map_or(8 + key % 57, u64::from);
        // As vLLM does: ignore_eos runs to the cap; min_tokens holds off the end of the answer.
        let wanted = if prompt.ignore_eos && cap < u64::MAX {
            cap
        } else {
            wanted.max(prompt.min_tokens)
        }
        .min(MAX_ANSWER_TOKENS);
        let words = wanted.min(cap - reasoning_tokens);
        Answer {
            reasoning,
            text: TokenText::words(words, key),
            calls: Vec::new(),
            output_tokens: reasoning_tokens + words,
            reasoning_tokens,
            // An answer that reached its cap ends for length (finish "length", status
            // "incomplete"), as vLLM reports an ignore_eos answer.
            truncated: words < wanted || reasoning_tokens + words == cap,
        }
    }

    /// Breaks a structured answer's JSON as `how` says (a fault knob, to test the check both ways).
    pub fn break_structured(&mut self, prompt: &Prompt, how: Breakage) {
        let Some(format) = &prompt.structured else {
            return;
        };
        let broken = match how {
            Breakage::BadJson => {
                let mut text = self.text.text.clone();
                text.pop();
                text
            }
            Breakage::SchemaViolation => {
                let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(&self.text.text)
                else {
                    return;
                };
                let required = format
                    .as_ref()
                    .and_then(|s| s.get("required"))
                    .and_then(Value::as_array)
                    .and_then(|r| r.first())
                    .and_then(Value::as_str);
                match required {
                    Some(name) => {
                        object.remove(name);
                    }
                    None => {
                        if let Some((_, value)) = object.iter_mut().next() {
                            *value = if value.is_string() {
                                json!(42)
                            } else {
                                json!("wrong type")
                            };
                        }
                    }
                }
                Value::Object(object).to_string()
            }
        };
        let tokens_before = self.text.tokens();
        self.text = TokenText::pieces_of(broken);
        self.output_tokens = self.output_tokens - tokens_before + self.text.tokens();
    }

    /// Token-sized pieces in the order they are generated: reasoning, then text or call arguments.
    pub fn chunk_count(&self, tokens_per_chunk: u64) -> u64 {
        let chunks = |t: &TokenText| t.tokens().div_ceil(tokens_per_chunk);
        chunks(&self.reasoning)
            + chunks(&self.text)
            + self.calls.iter().map(|(_, p)| chunks(p)).sum::<u64>()
    }

    /// The whole Responses answer as a JSON value (the streams' `response.*` events carry it).
    pub fn responses_body(&self, request: &Value, prompt: &Prompt, key: u64) -> Value {
        serde_json::to_value(self.responses_answer(request, prompt, key)).unwrap_or(Value::Null)
    }

    /// The whole Responses answer, serialized without building a JSON tree first (the mock's
    /// non-streamed path is a calibration reference and must not be the bottleneck). Fields in
    /// the order a JSON object of them is written (sorted), as before.
    pub fn responses_answer<'a>(
        &'a self,
        request: &'a Value,
        prompt: &'a Prompt,
        key: u64,
    ) -> ResponsesAnswer<'a> {
        let mut output = Vec::new();
        if self.reasoning_tokens > 0 {
            output.push(self.reasoning_item(key, true));
        }
        if self.calls.is_empty() {
            output.push(self.message_item(key, true));
        }
        for i in 0..self.calls.len() {
            output.push(self.call_item(key, i, true));
        }
        let input_tokens = prompt.input_tokens();
        let echo = |name: &str, default: Echo<'a>| request.get(name).map_or(default, Echo::Value);
        ResponsesAnswer {
            background: false,
            created_at: unix_now(),
            error: None,
            id: format!("resp_{key:016x}"),
            incomplete_details: self.truncated.then_some(Incomplete {
                reason: "max_output_tokens",
            }),
            instructions: echo("instructions", Echo::Null),
            max_output_tokens: prompt.max_output_tokens,
            metadata: echo("metadata", Echo::EmptyObject),
            model: &prompt.model,
            object: "response",
            output,
            parallel_tool_calls: echo("parallel_tool_calls", Echo::Bool(true)),
            previous_response_id: None,
            reasoning: Reasoning {
                effort: None,
                summary: None,
            },
            service_tier: "default",
            status: if self.truncated {
                "incomplete"
            } else {
                "completed"
            },
            store: echo("store", Echo::Bool(true)),
            temperature: echo("temperature", Echo::Number(1.0)),
            text: TextConfig {
                format: TextFormat { r#type: "text" },
            },
            tool_choice: echo("tool_choice", Echo::Str("auto")),
            tools: echo_tools(request),
            top_p: echo("top_p", Echo::Number(1.0)),
            truncation: "disabled",
            usage: ResponsesUsage {
                input_tokens,
                input_tokens_details: InputDetails {
                    cache_write_tokens: 0,
                    cached_tokens: 0,
                },
                output_tokens: self.output_tokens,
                output_tokens_details: OutputDetails {
                    reasoning_tokens: self.reasoning_tokens,
                },
                total_tokens: input_tokens + self.output_tokens,
            },
            user: None,
        }
    }

    pub fn reasoning_item(&self, key: u64, done: bool) -> Value {
        let content = if done {
            json!([{"type": "reasoning_text", "text": self.reasoning.text}])
        } else {
            json!([])
        };
        json!({"type": "reasoning", "id": format!("rs_{key:016x}"), "summary": [], "content": content,
               "status": if done { "completed" } else { "in_progress" }})
    }

    pub fn message_item(&self, key: u64, done: bool) -> Value {
        let status = match (done, self.truncated) {
            (false, _) => "in_progress",
            (true, true) => "incomplete",
            (true, false) => "completed",
        };
        let content = if done {
            json!([{"type": "output_text", "text": self.text.text, "annotations": [], "logprobs": []}])
        } else {
            json!([])
        };
        json!({"type": "message", "id": format!("msg_{key:016x}"), "status": status, "role": "assistant", "content": content})
    }

    pub fn call_item(&self, key: u64, i: usize, done: bool) -> Value {
        let call = &self.calls[i].0;
        json!({
            "type": "function_call",
            "id": format!("fc_{key:016x}{i:02}"),
            "call_id": format!("call_{key:016x}{i:02}"),
            "name": call.name,
            "arguments": if done { call.arguments.as_str() } else { "" },
            "status": if done { "completed" } else { "in_progress" },
        })
    }

    pub fn chat_usage(&self, prompt: &Prompt) -> Value {
        let input_tokens = prompt.input_tokens();
        json!({
            "prompt_tokens": input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        })
    }

    /// A Completions answer (Completions API reference, "The completion object").
    pub fn completion_body(&self, prompt: &Prompt, key: u64) -> Value {
        json!({
            "id": format!("cmpl-{key:016x}"),
            "object": "text_completion",
            "created": unix_now(),
            "model": prompt.model,
            "choices": [{"text": self.text.text, "index": 0, "logprobs": null,
                         "finish_reason": if self.truncated { "length" } else { "stop" }}],
            "usage": {
                "prompt_tokens": prompt.input_tokens(),
                "completion_tokens": self.output_tokens,
                "total_tokens": prompt.input_tokens() + self.output_tokens,
            },
            "system_fingerprint": "fp_llmvolley_mock",
        })
    }

    pub fn chat_finish_reason(&self) -> &'static str {
        match (self.calls.is_empty(), self.truncated) {
            (false, _) => "tool_calls",
            (true, true) => "length",
            (true, false) => "stop",
        }
    }

    pub fn chat_body(&self, prompt: &Prompt, key: u64) -> Value {
        let mut message = json!({"role": "assistant", "content": null, "refusal": null});
        if self.calls.is_empty() {
            message["content"] = Value::String(self.text.text.clone());
        } else {
            let calls: Vec<Value> = self
                .calls
                .iter()
                .enumerate()
                .map(|(i, (call, _))| {
                    json!({"id": format!("call_{key:016x}{i:02}"), "type": "function",
                           "function": {"name": call.name, "arguments": call.arguments}})
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        if self.reasoning_tokens > 0 {
            message["reasoning_content"] = Value::String(self.reasoning.text.clone());
        }
        json!({
            "id": format!("chatcmpl-{key:016x}"),
            "object": "chat.completion",
            "created": unix_now(),
            "model": prompt.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": self.chat_finish_reason()}],
            "usage": self.chat_usage(prompt),
            "service_tier": "default",
            "system_fingerprint": "fp_llmvolley_mock",
        })
    }
}

/// A Responses answer (`Answer::responses_answer`).
#[derive(Serialize)]
pub struct ResponsesAnswer<'a> {
    background: bool,
    created_at: u64,
    error: Option<()>,
    id: String,
    incomplete_details: Option<Incomplete>,
    instructions: Echo<'a>,
    max_output_tokens: Option<u64>,
    metadata: Echo<'a>,
    model: &'a str,
    object: &'static str,
    output: Vec<Value>,
    parallel_tool_calls: Echo<'a>,
    previous_response_id: Option<()>,
    reasoning: Reasoning,
    service_tier: &'static str,
    status: &'static str,
    store: Echo<'a>,
    temperature: Echo<'a>,
    text: TextConfig,
    tool_choice: Echo<'a>,
    tools: Value,
    top_p: Echo<'a>,
    truncation: &'static str,
    usage: ResponsesUsage,
    user: Option<()>,
}

#[derive(Serialize)]
struct Incomplete {
    reason: &'static str,
}

#[derive(Serialize)]
struct Reasoning {
    effort: Option<()>,
    summary: Option<()>,
}

#[derive(Serialize)]
struct TextConfig {
    format: TextFormat,
}

#[derive(Serialize)]
struct TextFormat {
    r#type: &'static str,
}

#[derive(Serialize)]
struct ResponsesUsage {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

#[derive(Serialize)]
struct InputDetails {
    cache_write_tokens: u64,
    cached_tokens: u64,
}

#[derive(Serialize)]
struct OutputDetails {
    reasoning_tokens: u64,
}

/// A request field echoed in the answer, or the API's default when the request had none.
enum Echo<'a> {
    Value(&'a Value),
    Null,
    EmptyObject,
    Bool(bool),
    Number(f64),
    Str(&'static str),
}

impl Serialize for Echo<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Echo::Value(value) => value.serialize(serializer),
            Echo::Null => serializer.serialize_unit(),
            Echo::EmptyObject => serializer.serialize_map(Some(0))?.end(),
            Echo::Bool(b) => serializer.serialize_bool(*b),
            Echo::Number(n) => serializer.serialize_f64(*n),
            Echo::Str(s) => serializer.serialize_str(s),
        }
    }
}

/// The request's tools as a Responses object lists them: flat function tools with `strict` set.
fn echo_tools(request: &Value) -> Value {
    let tools = request
        .get("tools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Value::Array(
        tools
            .into_iter()
            .map(|mut tool| {
                if let Some(def) = tool.get("function").cloned()
                    && let (Some(obj), Value::Object(def)) = (tool.as_object_mut(), def)
                {
                    obj.remove("function");
                    obj.extend(def);
                }
                if tool.get("type").and_then(Value::as_str) == Some("function")
                    && let Some(obj) = tool.as_object_mut()
                {
                    obj.entry("strict").or_insert(Value::Bool(false));
                    obj.entry("parameters").or_insert_with(|| json!({}));
                }
                tool
            })
            .collect(),
    )
}

/// Plausible arguments for a JSON-schema `parameters` object: one value per property.
fn example_arguments(parameters: &Value) -> Value {
    let mut args = Map::new();
    if let Some(props) = parameters.get("properties").and_then(Value::as_object) {
        for (i, (name, schema)) in props.iter().enumerate() {
            args.insert(name.clone(), example_value(name, schema, i as u64));
        }
    }
    Value::Object(args)
}

fn example_value(name: &str, schema: &Value, i: u64) -> Value {
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer" | "number") if name == "min" => json!(1),
        Some("integer" | "number") if name == "max" => json!(100),
        Some("integer") if name == "count" => json!(3),
        Some("integer") => json!(i + 1),
        Some("number") => json!(i as f64 + 0.5),
        Some("boolean") => Value::Bool(true),
        Some("array") => json!([]),
        Some("object") => example_arguments(schema),
        _ if name == "operation" => json!("add"),
        _ => json!(format!("example {name}")),
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_tool_calling_calls_every_function_tool() {
        let request = json!({"model": "gpt-4.1", "input": "do four things", "tools": [
            {"type": "function", "name": "random_generator", "parameters": {"type": "object", "properties": {"min": {"type": "integer"}}}},
            {"type": "function", "name": "system_info", "parameters": {"type": "object", "properties": {}}},
        ]});
        let prompt = Prompt::read(&request, ApiShape::Responses);
        let answer = Answer::generate(&prompt, 7, AnswerKnobs::default());
        let names: Vec<_> = answer.calls.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(names, ["random_generator", "system_info"]);
        assert_eq!(answer.calls[0].0.arguments, r#"{"min":1}"#);
        assert_eq!(
            answer.calls[0]
                .1
                .slice(0, answer.calls[0].1.tokens() as usize),
            r#"{"min":1}"#
        );
    }

    #[test]
    fn answer_length_varies_with_the_prompt_and_respects_the_token_cap() {
        let a = Prompt::read(&json!({"input": "a"}), ApiShape::Responses);
        let lengths: std::collections::BTreeSet<u64> = (0..20)
            .map(|k| Answer::generate(&a, k, AnswerKnobs::default()).output_tokens)
            .collect();
        assert!(lengths.len() > 5);
        let capped = Prompt::read(
            &json!({"input": "a", "max_output_tokens": 3}),
            ApiShape::Responses,
        );
        let answer = Answer::generate(&capped, 40, AnswerKnobs::default());
        assert_eq!(answer.output_tokens, 3);
        assert!(answer.truncated);
        let fixed = Answer::generate(
            &a,
            1,
            AnswerKnobs {
                output_tokens: Some(128),
                reasoning_tokens: 5,
            },
        );
        assert_eq!(
            (
                fixed.text.tokens(),
                fixed.reasoning_tokens,
                fixed.output_tokens
            ),
            (128, 5, 133)
        );
        assert_eq!(fixed.text.slice(0, 128), fixed.text.text);
    }

    #[test]
    fn a_tool_round_is_read_in_both_apis_and_broken_histories_are_refused() {
        let call = |id: &str, name: &str| json!({"type": "function_call", "call_id": id, "name": name, "arguments": "{}"});
        let output = |id: &str, out: &str| json!({"type": "function_call_output", "call_id": id, "output": out});
        let user = json!({"role": "user", "content": "go"});
        let responses = |items: Vec<Value>| json!({"model": "m", "input": items});
        let round = tool_round(
            &responses(vec![
                user.clone(),
                call("a", "clock"),
                call("b", "dice"),
                output("a", "noon"),
                output("b", "4"),
            ]),
            ApiShape::Responses,
        );
        assert_eq!(
            round.unwrap().results,
            [
                ("clock".to_string(), "noon".to_string()),
                ("dice".to_string(), "4".to_string())
            ]
        );
        let lost = tool_round(
            &responses(vec![user.clone(), output("zz", "x")]),
            ApiShape::Responses,
        );
        assert!(lost.unwrap_err().contains("call_id zz"));
        let unanswered = tool_round(
            &responses(vec![
                user.clone(),
                call("a", "clock"),
                call("b", "dice"),
                output("a", "noon"),
            ]),
            ApiShape::Responses,
        );
        assert!(unanswered.unwrap_err().contains("function call b"));
        let mut stateful = responses(vec![output("a", "noon")]);
        stateful["previous_response_id"] = json!("resp_1");
        assert_eq!(
            tool_round(&stateful, ApiShape::Responses)
                .unwrap()
                .results
                .len(),
            1
        );
        // A new user message after the outputs starts a new round: nothing to use.
        let later = responses(vec![
            user.clone(),
            call("a", "clock"),
            output("a", "noon"),
            user.clone(),
        ]);
        let later = tool_round(&later, ApiShape::Responses).unwrap();
        assert!(
            later.results.is_empty() && later.used,
            "results were used earlier"
        );

        let chat = |messages: Vec<Value>| json!({"model": "m", "messages": messages});
        let assistant = json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "clock", "arguments": "{}"}}]});
        let tool = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "noon"});
        let ok = tool_round(
            &chat(vec![user.clone(), assistant.clone(), tool("c1")]),
            ApiShape::Chat,
        );
        assert_eq!(
            ok.unwrap().results,
            [("clock".to_string(), "noon".to_string())]
        );
        let stray = tool_round(&chat(vec![user.clone(), tool("c9")]), ApiShape::Chat);
        assert!(
            stray
                .unwrap_err()
                .contains("must be a response to a preceeding message")
        );
        let dropped = tool_round(&chat(vec![user.clone(), assistant, user]), ApiShape::Chat);
        assert!(
            dropped
                .unwrap_err()
                .contains("did not have response messages: c1")
        );
    }

    #[test]
    fn an_answer_to_a_tool_round_is_text_that_uses_the_results() {
        let request = json!({"model": "m", "input": [
            {"role": "user", "content": "time?"},
            {"type": "function_call", "call_id": "a", "name": "current_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": "2026-12-01T04:00:00Z"}],
            "tools": [{"type": "function", "name": "current_time", "parameters": {"type": "object"}}]});
        let prompt = Prompt::read(&request, ApiShape::Responses);
        let answer = Answer::generate(
            &prompt,
            1,
            AnswerKnobs {
                output_tokens: None,
                reasoning_tokens: 0,
            },
        );
        assert!(answer.calls.is_empty(), "no second round of calls");
        assert_eq!(
            answer.text.text,
            "Using the tool results: current_time returned 2026-12-01T04:00:00Z."
        );
        assert_eq!(answer.output_tokens, answer.text.tokens());
    }
}
