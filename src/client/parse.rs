//! Reads a final (non-streamed) body in any shape the Batch API's endpoints answer in — Responses,
//! Chat Completions, Completions, Embeddings, Moderations — or an error body.

use crate::record::{Record, Status, TokenSource, ToolCall};
use serde::Deserialize;
use std::borrow::Cow;

/// Either wire shape in one lenient pass: every field optional, unknown fields ignored.
#[derive(Deserialize, Default)]
pub(super) struct AnyBody<'a> {
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
    #[serde(borrow, default)]
    output: Option<Vec<OutputItem<'a>>>,
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    pub(super) usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorField>,
    /// vLLM and SGLang report failures as a top-level `{"object": "error", "message", "code"}`.
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    service_tier: Option<String>,
    /// Echoed by servers that keep conversation state: it should be the one the request sent.
    #[serde(default)]
    previous_response_id: Option<String>,
    /// Embeddings: one entry per input, each vector measured, never held.
    #[serde(default)]
    data: Option<Vec<Embedding>>,
    /// Moderations: one result per input.
    #[serde(default)]
    results: Option<Vec<ModerationResult>>,
}

#[derive(Deserialize)]
struct Embedding {
    #[serde(default)]
    embedding: Option<VectorLength>,
}

/// A vector's length, read without keeping its numbers: an array of floats, or base64 of
/// little-endian float32s (`encoding_format: base64`, Embeddings API reference).
struct VectorLength(u64);

impl<'de> Deserialize<'de> for VectorLength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = VectorLength;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of numbers or a base64 string")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(VectorLength(n))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let text = text.trim_end_matches('=');
                let bytes = text.len() as u64 * 3 / 4;
                Ok(VectorLength(bytes / 4))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
struct ModerationResult {
    /// Category name → flagged (a provider may write null for a category it does not judge).
    #[serde(default)]
    categories: std::collections::BTreeMap<String, Option<bool>>,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
struct OutputItem<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Vec<ContentPart<'a>>>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ContentPart<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    refusal: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChatMessage>,
    /// Completions: the generated text (Completions API reference, `choices[].text`).
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<ChatContent>,
    #[serde(default)]
    refusal: Option<String>,
    /// Reasoning text as vLLM, SGLang and DeepSeek return it.
    #[serde(default, alias = "reasoning")]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ChatToolCall>>,
}

/// Chat `content` is a string in the spec; some servers send an array of parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChatContent {
    Text(String),
    Parts(Vec<ChatPart>),
}

#[derive(Deserialize)]
struct ChatPart {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct ChatToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<ChatFunction>,
}

#[derive(Deserialize)]
struct ChatFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Both usage shapes: Responses (`input_tokens`...) and Chat (`prompt_tokens`...).
#[derive(Deserialize, Default)]
pub(super) struct Usage {
    #[serde(default, alias = "prompt_tokens")]
    input_tokens: Option<u64>,
    #[serde(default, alias = "completion_tokens")]
    output_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default, alias = "prompt_tokens_details")]
    input_tokens_details: Option<InputDetails>,
    #[serde(default, alias = "completion_tokens_details")]
    output_tokens_details: Option<OutputDetails>,
    /// Anthropic-style usage (passed through by gateways): cache reads and writes beside an
    /// `input_tokens` that leaves them out.
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct ErrorObject {
    #[serde(default)]
    message: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ErrorObject {
    /// `{}` or every field null: no error, as an empty string is none.
    fn is_empty(&self) -> bool {
        let blank =
            |v: &Option<serde_json::Value>| v.as_ref().is_none_or(serde_json::Value::is_null);
        blank(&self.message) && blank(&self.code) && self.kind.is_none()
    }
}

/// An `error` field in any shape servers send: the OpenAI object, a plain string (some gateways
/// and proxies), or any other JSON value. `null` and `false` mean no error.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ErrorField {
    Object(ErrorObject),
    Text(String),
    Other(serde_json::Value),
}

impl ErrorField {
    /// The `(kind, message)` the record gets, or `None` when the field says there is no error.
    pub(super) fn describe(&self) -> Option<(String, String)> {
        match self {
            ErrorField::Object(e) if e.is_empty() => None,
            ErrorField::Object(e) => Some(error_parts(
                e.code.as_ref(),
                e.kind.as_deref(),
                e.message.as_ref(),
            )),
            ErrorField::Text(text) if text.trim().is_empty() => None,
            ErrorField::Text(text) => Some(("error".to_string(), truncate(text))),
            ErrorField::Other(serde_json::Value::Null | serde_json::Value::Bool(false)) => None,
            ErrorField::Other(value) => Some(("error".to_string(), truncate(&value.to_string()))),
        }
    }
}

/// An error's kind (its `code` when a string, else its `type`, else a numeric code) and message.
pub(super) fn error_parts(
    code: Option<&serde_json::Value>,
    kind: Option<&str>,
    message: Option<&serde_json::Value>,
) -> (String, String) {
    let kind = match (code, kind) {
        (Some(serde_json::Value::String(code)), _) if !code.is_empty() => code.clone(),
        (_, Some(kind)) if !kind.is_empty() => kind.to_string(),
        (Some(code), _) if !code.is_null() => format!("error_{code}"),
        _ => "error".to_string(),
    };
    let message = match message {
        Some(serde_json::Value::String(text)) => truncate(text),
        Some(serde_json::Value::Null) | None => "no message".to_string(),
        Some(other) => truncate(&other.to_string()),
    };
    (kind, message)
}

/// The longest error message kept in a record.
const MAX_MESSAGE_CHARS: usize = 300;

/// Fills `record` from a 2xx body: answer, usage and finish, or why the body is unusable.
pub fn read_success_body(body: &[u8], record: &mut Record) {
    let sanitized;
    let parsed: AnyBody = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        // `NaN`/`Infinity` are read as null (`non_finite_as_null`): the answer is kept.
        Err(e) => {
            sanitized = non_finite_as_null(body);
            match sanitized.as_deref().map(serde_json::from_slice::<AnyBody>) {
                Some(Ok(parsed)) => {
                    record.flag(crate::record::Flag::NonFiniteNumbers);
                    parsed
                }
                _ => {
                    let (kind, message) = describe_unparsable(body, &e);
                    record.fail(Status::InvalidResponse, kind, message);
                    return;
                }
            }
        }
    };
    read_any_body(parsed, record);
}

/// The JSON text with the bare `NaN`, `Infinity` and `-Infinity` that some servers write (Python's
/// `json.dumps` default, e.g. in logprobs) replaced by `null`, or None when it has none outside
/// strings. Only called after a strict parse failed: answers without them pay nothing.
pub(super) fn non_finite_as_null(json: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped, mut replaced) = (false, false, false);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        let rest = &json[i..];
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        match (b, token) {
            (b'"', _) => {
                in_string = true;
                out.push(b);
                i += 1;
            }
            (_, Some(token)) => {
                out.extend_from_slice(b"null");
                i += token.len();
                replaced = true;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    replaced.then_some(out)
}

impl AnyBody<'_> {
    /// The `response` of a stream's terminal event is a Responses object even when a server leaves
    /// out `object` and `output`.
    pub(super) fn into_response(mut self) -> Self {
        if self.object.is_none() && self.output.is_none() && self.choices.is_none() {
            self.output = Some(Vec::new());
        }
        self
    }
}

/// Fills `record` from a parsed body of either shape (also the `response` of a stream's terminal event).
pub(super) fn read_any_body(parsed: AnyBody, record: &mut Record) {
    if let Some((kind, message)) = in_band_error(&parsed) {
        record.fail(Status::ApiError, kind, message);
        return;
    }
    // Chat and Completions answers share `choices`: a choice holds a `message` or a `text`.
    let is_chat = parsed.choices.is_some()
        || parsed
            .object
            .as_deref()
            .is_some_and(|o| o.starts_with("chat.completion") || o == "text_completion");
    let is_responses = parsed.output.is_some() || parsed.object.as_deref() == Some("response");
    if let Some(usage) = &parsed.usage {
        apply_usage(usage, record);
    }
    record.response_id = parsed.id;
    if parsed.previous_response_id.is_some() {
        record.previous_response_id = parsed.previous_response_id;
    }
    if parsed.service_tier.is_some() {
        record.service_tier = parsed.service_tier;
    }
    if parsed.model.is_some() {
        record.model = parsed.model;
    }
    if is_chat {
        read_chat(parsed.choices.unwrap_or_default(), record);
    } else if let Some(data) = parsed.data {
        read_embeddings(data, record);
    } else if let Some(results) = parsed.results {
        read_moderations(results, record);
    } else if is_responses {
        read_responses(
            parsed.status.as_deref(),
            parsed.incomplete_details,
            parsed.output.unwrap_or_default(),
            parsed.error,
            record,
        );
    } else {
        record.fail(
            Status::InvalidResponse,
            "unknown_shape",
            "2xx body is not a Responses object, a Chat or text completion, an embeddings list or a moderation",
        );
    }
}

/// A failure the body reports outside a Responses `status`: an `error` field of any shape, or a
/// top-level `{"object": "error"}` (vLLM, SGLang). A Responses object's own `error` goes with its status.
fn in_band_error(body: &AnyBody) -> Option<(String, String)> {
    if body.object.as_deref() == Some("error") {
        return Some(error_parts(
            body.code.as_ref(),
            body.kind.as_deref(),
            body.message.as_ref(),
        ));
    }
    let is_response = body.output.is_some() || body.object.as_deref() == Some("response");
    if is_response && body.status.is_some() {
        return None;
    }
    body.error.as_ref().and_then(ErrorField::describe)
}

pub(super) fn apply_usage(usage: &Usage, record: &mut Record) {
    record.input_tokens = usage.input_tokens;
    record.output_tokens = usage.output_tokens;
    record.cached_tokens = usage
        .input_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens);
    record.cache_write_tokens = usage
        .input_tokens_details
        .as_ref()
        .and_then(|d| d.cache_write_tokens);
    record.reasoning_tokens = usage
        .output_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens);
    // Anthropic-style cache counts sit beside an input count that leaves them out; OpenAI's
    // `cached_tokens` are inside it. Gateways that translate fill both, equal: then the input
    // already holds them (it cannot be smaller than what it holds).
    let read = usage.cache_read_input_tokens.unwrap_or(0);
    let written = usage.cache_creation_input_tokens.unwrap_or(0);
    if read + written > 0
        && let Some(input) = usage.input_tokens
    {
        let inclusive = record.cached_tokens == Some(read) && input >= read + written;
        if !inclusive {
            record.input_tokens = Some(input + read + written);
            record.cached_tokens = Some(read);
            record.cache_write_tokens = Some(written);
        } else if record.cache_write_tokens.is_none() && written > 0 {
            record.cache_write_tokens = Some(written);
        }
    }
    let additive_cache = record.input_tokens != usage.input_tokens;
    record.total_tokens = usage.total_tokens.filter(|_| !additive_cache).or(
        match (record.input_tokens, usage.output_tokens) {
            (Some(i), Some(o)) => Some(i + o),
            _ => None,
        },
    );
    // Reasoning tokens are inside the output tokens in OpenAI's usage; some providers report them
    // beside it (more reasoning than output, or a total that adds them): then output is both.
    if let (Some(output), Some(reasoning)) = (record.output_tokens, record.reasoning_tokens)
        && reasoning > 0
    {
        let total_adds_them = match (usage.total_tokens, usage.input_tokens) {
            (Some(total), Some(input)) => total == input + output + reasoning,
            _ => false,
        };
        // Servers that repeat usage in every chunk get the note once.
        const BESIDE: &str = "usage reports reasoning tokens beside";
        if reasoning > output || total_adds_them {
            record.output_tokens = Some(output + reasoning);
            if !record.notes.iter().any(|n| n.starts_with(BESIDE)) {
                record.notes.push(format!(
                    "{BESIDE} the completion tokens ({reasoning} reasoning, {output} completion): output counts both"
                ));
            }
        }
    }
    if usage.input_tokens.is_some() || usage.output_tokens.is_some() {
        record.token_source = Some(TokenSource::Server);
    }
}

fn read_responses(
    status: Option<&str>,
    incomplete: Option<IncompleteDetails>,
    output: Vec<OutputItem>,
    error: Option<ErrorField>,
    record: &mut Record,
) {
    let mut text = String::new();
    for item in output {
        match item.kind.as_ref() {
            "message" => {
                for part in item.content.unwrap_or_default() {
                    if part.kind.as_deref() == Some("refusal") {
                        if let Some(r) = part.refusal.filter(|r| !r.is_empty()) {
                            record.refusal.get_or_insert_default().push_str(&r);
                        }
                    } else if part.kind.as_deref().is_none_or(|k| k == "output_text")
                        && let Some(t) = part.text
                    {
                        text.push_str(&t);
                    }
                }
            }
            "function_call" => record.tool_calls.push(ToolCall {
                name: item.name.unwrap_or_default(),
                call_id: item.call_id.unwrap_or_default(),
                arguments: item.arguments.unwrap_or_default(),
            }),
            _ => {}
        }
    }
    record.output_text = Some(text);
    let status = status.unwrap_or("completed");
    record.finish = Some(status.to_string());
    match status {
        "completed" => {}
        "incomplete" => record.incomplete_reason = incomplete.and_then(|d| d.reason),
        other => {
            let (kind, message) = match error.as_ref().and_then(ErrorField::describe) {
                Some(described) => described,
                None => (
                    format!("response_{other}"),
                    format!("response status is {other:?}"),
                ),
            };
            record.fail(Status::ApiError, kind, message);
        }
    }
}

fn read_chat(choices: Vec<Choice>, record: &mut Record) {
    if choices.len() > 1 {
        record.flag(crate::record::Flag::SeveralChoices);
    }
    let Some(choice) = choices.into_iter().next() else {
        record.fail(
            Status::InvalidResponse,
            "no_choices",
            "Chat completion has no choices",
        );
        return;
    };
    record.finish = choice.finish_reason;
    let Some(message) = choice.message else {
        record.output_text = Some(choice.text.unwrap_or_default());
        return;
    };
    record.refusal = message.refusal.filter(|r| !r.is_empty());
    // Reasoning the usage does not count (some open servers report 0): counted on the
    // collector's thread, as for a stream.
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty())
        && record.output_tokens.is_some()
        && record.reasoning_tokens.unwrap_or(0) == 0
    {
        record.reasoning_text = reasoning;
    }
    record.output_text = Some(match message.content {
        None => String::new(),
        Some(ChatContent::Text(text)) => text,
        Some(ChatContent::Parts(parts)) => parts.into_iter().filter_map(|p| p.text).collect(),
    });
    for call in message.tool_calls.unwrap_or_default() {
        let function = call.function.unwrap_or(ChatFunction {
            name: None,
            arguments: None,
        });
        record.tool_calls.push(ToolCall {
            name: function.name.unwrap_or_default(),
            call_id: call.id.unwrap_or_default(),
            arguments: function.arguments.unwrap_or_default(),
        });
    }
}

/// Embeddings: how many inputs were embedded, and the first vector's length. No output tokens:
/// an embedding generates none (null, not 0, so they stay out of every output figure).
fn read_embeddings(data: Vec<Embedding>, record: &mut Record) {
    record.items = Some(data.len() as u64);
    record.dimensions = data.first().and_then(|e| e.embedding.as_ref()).map(|v| v.0);
    record.output_tokens = None;
}

/// Moderations: how many inputs were classified, and the categories any result flagged.
fn read_moderations(results: Vec<ModerationResult>, record: &mut Record) {
    record.items = Some(results.len() as u64);
    let mut flagged: Vec<String> = results
        .into_iter()
        .flat_map(|r| r.categories.into_iter())
        .filter(|(_, on)| *on == Some(true))
        .map(|(name, _)| name)
        .collect();
    flagged.sort();
    flagged.dedup();
    record.flagged_categories = flagged;
    record.output_tokens = None;
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<ErrorField>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// Fills `record` from a non-2xx answer: the error's kind and a short message, whatever the body is.
pub fn read_error_body(http_status: u16, body: &[u8], record: &mut Record) {
    let fallback_kind = format!("http_{http_status}");
    let envelope = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let described = envelope
        .as_ref()
        .and_then(|e| e.error.as_ref())
        .and_then(ErrorField::describe);
    let (kind, message) = match (described, envelope) {
        (Some((kind, message)), _) if kind == "error" => (fallback_kind, message),
        (Some(described), _) => described,
        (
            None,
            Some(ErrorEnvelope {
                message: Some(message),
                ..
            }),
        ) => (fallback_kind, truncate(&message)),
        (
            None,
            Some(ErrorEnvelope {
                detail: Some(detail),
                ..
            }),
        ) => (fallback_kind, truncate(&detail.to_string())),
        _ => (fallback_kind, describe_text_body(body)),
    };
    record.fail(
        Status::HttpError,
        kind,
        format!("HTTP {http_status}: {message}"),
    );
}

fn describe_unparsable(body: &[u8], error: &serde_json::Error) -> (&'static str, String) {
    if body.iter().all(u8::is_ascii_whitespace) {
        ("empty_body", "2xx answer with an empty body".to_string())
    } else if error.is_eof() {
        (
            "truncated_json",
            format!("body ends mid-JSON after {} bytes", body.len()),
        )
    } else if looks_like_html(body) {
        (
            "html_body",
            format!("2xx answer is an HTML page: {}", describe_text_body(body)),
        )
    } else {
        ("invalid_json", format!("body is not valid JSON: {error}"))
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    head.trim_start().starts_with('<')
        && (head.contains("<html") || head.contains("<!doctype") || head.contains("<title"))
}

/// A one-line description of a non-JSON body: its HTML title, or its first characters.
fn describe_text_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return "empty body".to_string();
    }
    if looks_like_html(body) {
        let lower = trimmed.to_ascii_lowercase();
        if let (Some(start), Some(end)) = (lower.find("<title>"), lower.find("</title>"))
            && start + 7 <= end
        {
            return format!("HTML page \"{}\"", trimmed[start + 7..end].trim());
        }
        return "HTML page".to_string();
    }
    truncate(&trimmed.split_whitespace().collect::<Vec<_>>().join(" "))
}

pub(super) fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record::empty("1".into(), 1, Status::Ok)
    }

    #[test]
    fn responses_body_joins_message_texts_and_reads_usage() {
        let body = br#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1",
          "output":[{"type":"reasoning","summary":[]},
                    {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hello ","annotations":[]},{"type":"output_text","text":"there"}]}],
          "usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":10},"total_tokens":123}}"#;
        let mut r = record();
        read_success_body(body, &mut r);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.output_text.as_deref(), Some("Hello there"));
        assert_eq!(
            (
                r.input_tokens,
                r.cached_tokens,
                r.output_tokens,
                r.reasoning_tokens,
                r.total_tokens
            ),
            (Some(36), Some(4), Some(87), Some(10), Some(123))
        );
        assert_eq!(r.finish.as_deref(), Some("completed"));
        assert_eq!(r.response_id.as_deref(), Some("resp_1"));
        assert_eq!(r.token_source, Some(TokenSource::Server));
    }

    #[test]
    fn responses_function_calls_become_tool_calls() {
        let body = br#"{"object":"response","status":"completed","output":[
            {"id":"fc_1","type":"function_call","status":"completed","arguments":"{\"sign\":\"Aquarius\"}","call_id":"call_6k","name":"get_horoscope"}]}"#;
        let mut r = record();
        read_success_body(body, &mut r);
        assert_eq!(
            r.tool_calls,
            vec![ToolCall {
                name: "get_horoscope".into(),
                call_id: "call_6k".into(),
                arguments: "{\"sign\":\"Aquarius\"}".into()
            }]
        );
        assert_eq!(r.output_text.as_deref(), Some(""));
    }

    #[test]
    fn chat_body_is_detected_from_the_body_not_the_url() {
        let body = br#"{"id":"chatcmpl-123","object":"chat.completion","created":1677652288,"choices":[{"index":0,"message":{"role":"assistant","content":"\n\nHello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
        let mut r = record();
        read_success_body(body, &mut r);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.output_text.as_deref(), Some("\n\nHello there"));
        assert_eq!(
            (r.input_tokens, r.output_tokens, r.total_tokens),
            (Some(9), Some(12), Some(21))
        );
        assert_eq!(r.finish.as_deref(), Some("stop"));
    }

    #[test]
    fn incomplete_response_is_ok_with_its_reason() {
        let body = br#"{"object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}"#;
        let mut r = record();
        read_success_body(body, &mut r);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.finish.as_deref(), Some("incomplete"));
        assert_eq!(r.incomplete_reason.as_deref(), Some("max_output_tokens"));
    }

    #[test]
    fn failed_response_and_error_body_are_api_errors() {
        let mut r = record();
        read_success_body(br#"{"object":"response","status":"failed","error":{"code":"server_error","message":"boom"},"output":[]}"#, &mut r);
        assert_eq!(r.status, Status::ApiError);
        assert_eq!(r.error.as_ref().unwrap().kind, "server_error");
        let mut r = record();
        read_success_body(
            br#"{"error":{"message":"quota","type":"insufficient_quota"}}"#,
            &mut r,
        );
        assert_eq!(r.status, Status::ApiError);
        assert_eq!(r.error.unwrap().message, "quota");
    }

    #[test]
    fn nan_and_infinity_outside_strings_become_null_and_strings_are_left_alone() {
        let body = br#"{"a":NaN,"b":[Infinity,-Infinity],"c":"NaN \" Infinity","d":1.5}"#;
        let clean = non_finite_as_null(body).unwrap();
        assert_eq!(
            String::from_utf8(clean).unwrap(),
            r#"{"a":null,"b":[null,null],"c":"NaN \" Infinity","d":1.5}"#
        );
        assert!(non_finite_as_null(br#"{"a":"NaN"}"#).is_none());
    }

    #[test]
    fn unreadable_success_bodies_are_invalid_responses() {
        for (body, kind) in [
            (&b""[..], "empty_body"),
            (b"{\"object\":\"resp", "truncated_json"),
            (b"<html><title>Oops</title></html>", "html_body"),
            (b"nope", "invalid_json"),
        ] {
            let mut r = record();
            read_success_body(body, &mut r);
            assert_eq!(r.status, Status::InvalidResponse);
            assert_eq!(r.error.unwrap().kind, kind);
        }
    }

    #[test]
    fn error_bodies_give_kind_and_short_message() {
        let mut r = record();
        read_error_body(429, br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#, &mut r);
        let e = r.error.unwrap();
        assert_eq!(
            (r.status, e.kind.as_str()),
            (Status::HttpError, "rate_limit_exceeded")
        );
        assert_eq!(e.message, "HTTP 429: Rate limit reached");
        let mut r = record();
        read_error_body(502, b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", &mut r);
        let e = r.error.unwrap();
        assert_eq!(e.kind, "http_502");
        assert_eq!(e.message, "HTTP 502: HTML page \"502 Bad Gateway\"");
        let mut r = record();
        read_error_body(503, b"", &mut r);
        assert_eq!(r.error.unwrap().message, "HTTP 503: empty body");
    }
}
