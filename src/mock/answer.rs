//! What the mock says: text or function calls derived from the request, with usage to match.

use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiShape {
    Responses,
    Chat,
}

/// A function tool the request offers.
pub struct FunctionTool {
    pub name: String,
    pub parameters: Value,
}

/// What the mock reads from a request.
pub struct Prompt {
    pub model: String,
    pub text: String,
    pub messages: u64,
    pub tools: Vec<FunctionTool>,
    /// Which tools to call: none, all of them (parallel), the first, or one by name.
    pub tool_choice: ToolChoice,
    pub max_output_tokens: Option<u64>,
    tool_definition_chars: usize,
}

pub enum ToolChoice {
    None,
    All,
    First,
    Named(String),
}

impl Prompt {
    pub fn read(request: &Value, shape: ApiShape) -> Prompt {
        let mut text = String::new();
        let mut messages = 0;
        if let Some(instructions) = request.get("instructions").and_then(Value::as_str) {
            text.push_str(instructions);
            messages += 1;
        }
        let conversation = match shape {
            ApiShape::Responses => request.get("input"),
            ApiShape::Chat => request.get("messages"),
        };
        match conversation {
            Some(Value::String(s)) => {
                text.push_str(s);
                messages += 1;
            }
            Some(Value::Array(items)) => {
                for item in items {
                    messages += 1;
                    collect_text(item.get("content").unwrap_or(item), &mut text);
                    if let Some(output) = item.get("output").and_then(Value::as_str) {
                        text.push_str(output);
                    }
                }
            }
            _ => {}
        }
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
        Prompt {
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("mock-model")
                .to_string(),
            text,
            messages,
            tool_definition_chars: request.get("tools").map_or(0, |t| t.to_string().len()),
            tools,
            tool_choice,
            max_output_tokens,
        }
    }

    /// About four characters per token, plus the per-message framing real tokenizers add.
    pub fn input_tokens(&self) -> u64 {
        (self.text.len() as u64).div_ceil(4)
            + (self.tool_definition_chars as u64).div_ceil(4)
            + 4 * self.messages
            + 3
    }
}

fn collect_text(content: &Value, out: &mut String) {
    match content {
        Value::String(s) => {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(s);
        }
        Value::Array(parts) => {
            for part in parts {
                if let Some(text) = part.get("text") {
                    collect_text(text, out);
                }
            }
        }
        _ => {}
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

/// The generated answer: text, or function calls, and how many tokens it took.
pub struct Answer {
    pub text: String,
    pub calls: Vec<Call>,
    pub output_tokens: u64,
    pub truncated: bool,
}

impl Answer {
    /// Deterministic for a given `key`: 8 to 64 words of text, or one call per chosen tool.
    pub fn generate(prompt: &Prompt, key: u64) -> Answer {
        let chosen: Vec<&FunctionTool> = match &prompt.tool_choice {
            _ if prompt.tools.is_empty() => Vec::new(),
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
            let calls: Vec<Call> = chosen
                .into_iter()
                .map(|tool| Call {
                    name: tool.name.clone(),
                    arguments: example_arguments(&tool.parameters).to_string(),
                })
                .collect();
            let output_tokens = calls
                .iter()
                .map(|c| 5 + (c.arguments.len() as u64).div_ceil(4))
                .sum();
            return Answer {
                text: String::new(),
                calls,
                output_tokens,
                truncated: false,
            };
        }
        let wanted = 8 + key % 57;
        let words = prompt
            .max_output_tokens
            .map_or(wanted, |max| wanted.min(max));
        let mut text = String::with_capacity(words as usize * 8);
        let mut state = key;
        for i in 0..words {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let word = WORDS[(state >> 33) as usize % WORDS.len()];
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push('.');
        Answer {
            text,
            calls: Vec::new(),
            output_tokens: words,
            truncated: words < wanted,
        }
    }

    pub fn responses_body(&self, request: &Value, prompt: &Prompt, key: u64) -> Value {
        let mut output = Vec::new();
        if self.calls.is_empty() {
            output.push(json!({
                "type": "message",
                "id": format!("msg_{key:016x}"),
                "status": if self.truncated { "incomplete" } else { "completed" },
                "role": "assistant",
                "content": [{"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}],
            }));
        }
        for (i, call) in self.calls.iter().enumerate() {
            output.push(json!({
                "type": "function_call",
                "id": format!("fc_{key:016x}{i:02}"),
                "call_id": format!("call_{key:016x}{i:02}"),
                "name": call.name,
                "arguments": call.arguments,
                "status": "completed",
            }));
        }
        let input_tokens = prompt.input_tokens();
        json!({
            "id": format!("resp_{key:016x}"),
            "object": "response",
            "created_at": unix_now(),
            "status": if self.truncated { "incomplete" } else { "completed" },
            "background": false,
            "error": null,
            "incomplete_details": if self.truncated { json!({"reason": "max_output_tokens"}) } else { Value::Null },
            "instructions": request.get("instructions").cloned().unwrap_or(Value::Null),
            "max_output_tokens": prompt.max_output_tokens,
            "model": prompt.model,
            "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls").cloned().unwrap_or(Value::Bool(true)),
            "previous_response_id": null,
            "reasoning": {"effort": null, "summary": null},
            "service_tier": "default",
            "store": request.get("store").cloned().unwrap_or(Value::Bool(true)),
            "temperature": request.get("temperature").cloned().unwrap_or(json!(1.0)),
            "text": {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice").cloned().unwrap_or(json!("auto")),
            "tools": echo_tools(request),
            "top_p": request.get("top_p").cloned().unwrap_or(json!(1.0)),
            "truncation": "disabled",
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": self.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + self.output_tokens,
            },
            "user": null,
            "metadata": request.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    }

    pub fn chat_body(&self, prompt: &Prompt, key: u64) -> Value {
        let input_tokens = prompt.input_tokens();
        let mut message = json!({"role": "assistant", "content": null, "refusal": null});
        let finish = if !self.calls.is_empty() {
            let calls: Vec<Value> = self
                .calls
                .iter()
                .enumerate()
                .map(|(i, call)| {
                    json!({"id": format!("call_{key:016x}{i:02}"), "type": "function",
                           "function": {"name": call.name, "arguments": call.arguments}})
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
            "tool_calls"
        } else {
            message["content"] = Value::String(self.text.clone());
            if self.truncated { "length" } else { "stop" }
        };
        json!({
            "id": format!("chatcmpl-{key:016x}"),
            "object": "chat.completion",
            "created": unix_now(),
            "model": prompt.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": self.output_tokens,
                "total_tokens": input_tokens + self.output_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": "fp_llmvolley_mock",
        })
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

fn unix_now() -> u64 {
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
        let answer = Answer::generate(&prompt, 7);
        let names: Vec<_> = answer.calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["random_generator", "system_info"]);
        assert_eq!(answer.calls[0].arguments, r#"{"min":1}"#);
    }

    #[test]
    fn answer_length_varies_with_the_prompt_and_respects_the_token_cap() {
        let a = Prompt::read(&json!({"input": "a"}), ApiShape::Responses);
        let lengths: std::collections::BTreeSet<u64> = (0..20)
            .map(|k| Answer::generate(&a, k).output_tokens)
            .collect();
        assert!(lengths.len() > 5);
        let capped = Prompt::read(
            &json!({"input": "a", "max_output_tokens": 3}),
            ApiShape::Responses,
        );
        let answer = Answer::generate(&capped, 40);
        assert_eq!(answer.output_tokens, 3);
        assert!(answer.truncated);
    }
}
