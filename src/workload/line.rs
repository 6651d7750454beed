//! One workload line: a bare request body or an OpenAI Batch line, checked and split without copying.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Which endpoint a line goes to, relative to the base URL: every url the OpenAI Batch API takes
/// (Batch API reference, `endpoint`), each of whose answers llmvolley reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Responses,
    Chat,
    /// Legacy text completions: what `vllm bench serve` and SGLang's benchmark send by default.
    Completions,
    Embeddings,
    Moderations,
}

impl Route {
    pub const ALL: [Route; 5] = [
        Route::Responses,
        Route::Chat,
        Route::Completions,
        Route::Embeddings,
        Route::Moderations,
    ];

    /// The route's path below the base URL (`/v1`).
    pub fn path(self) -> &'static str {
        match self {
            Route::Responses => "/responses",
            Route::Chat => "/chat/completions",
            Route::Completions => "/completions",
            Route::Embeddings => "/embeddings",
            Route::Moderations => "/moderations",
        }
    }

    /// Maps a Batch line's `url` onto a route; None for a url whose answers llmvolley cannot read.
    pub fn from_batch_url(url: &str) -> Option<Route> {
        let path = url.trim_end_matches('/');
        let path = path.strip_prefix("/v1").unwrap_or(path);
        Route::ALL.into_iter().find(|route| route.path() == path)
    }

    /// Whether answers carry generated text (and so TTFT, TPOT and output tokens).
    pub fn generates(self) -> bool {
        matches!(self, Route::Responses | Route::Chat | Route::Completions)
    }

    /// Chat-like streams (`choices[].delta` or `choices[].text` chunks) take
    /// `stream_options.include_usage` to report usage (Chat and Completions API references).
    pub fn takes_stream_options(self) -> bool {
        matches!(self, Route::Chat | Route::Completions)
    }
}

/// The urls a Batch line may name, for messages.
pub fn supported_urls() -> String {
    Route::ALL
        .iter()
        .map(|r| format!("/v1{}", r.path()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a line without a route of its own goes: a bare body, or a Batch line without `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultRoute {
    /// By the body's shape: `messages` goes to Chat Completions, anything else to Responses.
    ByShape,
    /// `--api` named the route: a body of the other API's shape is refused, not sent.
    Forced(Route),
}

/// Which API a body is shaped for, by its top-level fields (`messages`: Chat; `prompt`:
/// Completions; `input`: Responses, or an embeddings/moderations body, which only `--api` or a
/// Batch url can tell apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyShape {
    Chat,
    Completions,
    Responses,
    Unknown,
}

impl BodyShape {
    fn of(messages: bool, prompt: bool, input: bool) -> BodyShape {
        match (messages, prompt, input) {
            (true, false, false) => BodyShape::Chat,
            (false, true, false) => BodyShape::Completions,
            (false, false, true) => BodyShape::Responses,
            _ => BodyShape::Unknown,
        }
    }

    fn route(self) -> Route {
        match self {
            BodyShape::Chat => Route::Chat,
            BodyShape::Completions => Route::Completions,
            BodyShape::Responses | BodyShape::Unknown => Route::Responses,
        }
    }

    /// What the body looks like, for a refusal.
    fn described(self) -> &'static str {
        match self {
            BodyShape::Chat => "a Chat Completions body (\"messages\")",
            BodyShape::Completions => "a Completions body (\"prompt\")",
            BodyShape::Responses => "a body with \"input\"",
            BodyShape::Unknown => "a body",
        }
    }
}

impl DefaultRoute {
    /// The route of a body of this shape; Err when `--api` forced a route of the other shape.
    fn resolve(&self, shape: BodyShape) -> Result<Route, LineError> {
        let route = match self {
            DefaultRoute::ByShape => return Ok(shape.route()),
            DefaultRoute::Forced(route) => *route,
        };
        // `input` is what Responses, embeddings and moderations bodies share.
        let fits = match shape {
            BodyShape::Unknown => true,
            BodyShape::Responses => {
                matches!(
                    route,
                    Route::Responses | Route::Embeddings | Route::Moderations
                )
            }
            BodyShape::Chat => route == Route::Chat,
            BodyShape::Completions => route == Route::Completions,
        };
        if fits {
            return Ok(route);
        }
        let api = |route: Route| match route {
            Route::Responses => "responses",
            Route::Chat => "chat",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Moderations => "moderations",
        };
        Err(LineError {
            message: format!(
                "{} that --api {} would send to {}: drop --api (each body goes where its shape says) or use --api {}",
                shape.described(),
                api(route),
                route.path(),
                api(shape.route())
            ),
            custom_id: None,
            refuses_run: true,
        })
    }
}

/// Why a line cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// What is wrong, without the line number.
    pub message: String,
    /// The line's `custom_id`, when it could be read: its record keeps it.
    pub custom_id: Option<String>,
    /// Sending it would be money for nothing (a body whose shape contradicts the `--api` given,
    /// a url whose answers llmvolley cannot read): the run is refused before anything is sent.
    pub refuses_run: bool,
}

impl From<String> for LineError {
    fn from(message: String) -> LineError {
        LineError {
            message,
            custom_id: None,
            refuses_run: false,
        }
    }
}

impl From<&str> for LineError {
    fn from(message: &str) -> LineError {
        message.to_string().into()
    }
}

/// A line that can be sent, borrowing its body from the line text. `model` is set for bare bodies only.
#[derive(Debug)]
pub struct ParsedLine<'a> {
    pub custom_id: Option<String>,
    pub route: Route,
    pub body: &'a str,
    pub model: Option<String>,
    pub max_output_tokens: Option<u32>,
    /// A Batch line's own `metadata` (beside its `body`, not sent): carried into the record.
    pub metadata: Option<&'a str>,
    /// A Batch line's `timestamp` (beside its `body`, not sent): when `bench --profile trace`
    /// sends it, from the trace start (given in milliseconds).
    pub timestamp: Option<std::time::Duration>,
    /// A conversation line's following user turns and canned tool results (JSON text).
    pub turns: Option<&'a str>,
    pub tool_outputs: Option<&'a str>,
}

#[derive(Deserialize)]
struct LineFields<'a> {
    #[serde(borrow, default)]
    custom_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    turns: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_outputs: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    /// A bare body's answer cap (Responses, then Chat's two names), for `--tpm` estimates.
    #[serde(borrow, default)]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    /// Present or not: a bare body's shape (which API it is written for).
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    /// Completions: `echo: true` puts the prompt in the answer's text (refused, `refuse_echo`).
    #[serde(borrow, default)]
    echo: Option<&'a RawValue>,
}

/// `echo: true` makes a Completions answer begin with the prompt: its text, first chunk (TTFT) and
/// length would then be the prompt's as much as the model's, so such a line is not sent.
fn refuse_echo(echo: Option<&RawValue>) -> Result<(), LineError> {
    if echo.is_some_and(|e| e.get() == "true") {
        return Err(
            "a Completions body with \"echo\": true: the answer would begin with the prompt, which would count as output text and set TTFT; drop echo (usage's prompt_tokens already counts the prompt)"
                .into(),
        );
    }
    Ok(())
}

/// What a Batch body is read for, in one parse and only when needed: its shape (a line without
/// `url`) and a Completions body's `echo`.
#[derive(Deserialize, Default)]
struct ShapeFields<'a> {
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    echo: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct BodyFields<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
}

/// Parses one non-blank line (already UTF-8 and stripped of its line ending).
pub fn parse_line<'a>(
    text: &'a str,
    default_route: &DefaultRoute,
) -> Result<ParsedLine<'a>, LineError> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(trimmed) {
            Ok(_) => format!(
                "expected a JSON object (a request body or a Batch line), found {}",
                json_kind(trimmed)
            ),
            Err(e) => format!("invalid JSON: {e}"),
        }
        .into());
    }
    let fields: LineFields =
        serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON: {e}"))?;
    let is_batch_line = fields.custom_id.is_some()
        || fields.method.is_some()
        || fields.url.is_some()
        || fields.body.is_some();
    if !is_batch_line {
        if fields.turns.is_some() || fields.tool_outputs.is_some() {
            return Err("\"turns\" and \"tool_outputs\" belong to a conversation line, beside the request: put the request in \"body\" ({\"custom_id\": \"c1\", \"body\": {...}, \"turns\": [...]}); in a bare body they would be sent to the server".into());
        }
        let shape = BodyShape::of(
            fields.messages.is_some(),
            fields.prompt.is_some(),
            fields.input.is_some(),
        );
        let route = default_route.resolve(shape)?;
        if route == Route::Completions {
            refuse_echo(fields.echo)?;
        }
        return Ok(ParsedLine {
            custom_id: None,
            route,
            body: trimmed,
            model: string_value(fields.model),
            max_output_tokens: [
                fields.max_output_tokens,
                fields.max_completion_tokens,
                fields.max_tokens,
            ]
            .into_iter()
            .flatten()
            .find_map(|raw| raw.get().parse::<u32>().ok()),
            metadata: None,
            timestamp: None,
            turns: None,
            tool_outputs: None,
        });
    }
    let custom_id = match fields.custom_id {
        None => None,
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(id) if !id.is_empty() => Some(id),
            Ok(_) => return Err("Batch line custom_id is empty".into()),
            Err(_) => {
                return Err(
                    format!("Batch line custom_id must be a string, found {}", raw.get()).into(),
                );
            }
        },
    };
    // From here on the line's custom_id is known: a line refused now keeps it in its record.
    let with_id = |error: LineError| LineError {
        custom_id: custom_id.clone(),
        ..error
    };
    let body = fields
        .body
        .ok_or_else(|| {
            with_id(
                "Batch line has no \"body\" (expected {\"custom_id\", \"method\", \"url\", \"body\"})"
                    .into(),
            )
        })?
        .get();
    if !body.starts_with('{') {
        return Err(with_id(
            format!(
                "Batch line \"body\" must be a JSON object, found {}",
                json_kind(body)
            )
            .into(),
        ));
    }
    if let Some(method) = &fields.method
        && !method.eq_ignore_ascii_case("POST")
    {
        return Err(with_id(
            format!("Batch line method {method:?} is not supported (only POST)").into(),
        ));
    }
    let url_route = match &fields.url {
        Some(url) if url.starts_with('/') => match Route::from_batch_url(url) {
            Some(route) => Some(route),
            None => {
                return Err(LineError {
                    refuses_run: true,
                    ..with_id(
                        format!(
                            "Batch line url {url:?} is not one llmvolley reads the answers of (sending it would cost money for answers it would discard): supported: {}",
                            supported_urls()
                        )
                        .into(),
                    )
                });
            }
        },
        Some(url) => {
            return Err(with_id(
                format!("Batch line url {url:?} must be a path starting with '/'").into(),
            ));
        }
        None => None,
    };
    // The body is parsed (once) only when its shape decides the route or it may ask for echo.
    let body_fields = if url_route.is_none_or(|r| r == Route::Completions) {
        serde_json::from_str::<ShapeFields>(body).unwrap_or_default()
    } else {
        ShapeFields::default()
    };
    let route = match url_route {
        Some(route) => route,
        None => {
            let shape = BodyShape::of(
                body_fields.messages.is_some(),
                body_fields.prompt.is_some(),
                body_fields.input.is_some(),
            );
            default_route.resolve(shape).map_err(with_id)?
        }
    };
    if route == Route::Completions {
        refuse_echo(body_fields.echo).map_err(with_id)?;
    }
    // Read only as a number of ms from the trace start; anything else is ignored here, as unknown
    // fields are (`bench --profile trace` then says which line has no usable timestamp).
    let timestamp = fields
        .timestamp
        .and_then(|raw| raw.get().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && (0.0..1e15).contains(ms))
        .map(|ms| std::time::Duration::from_nanos((ms * 1e6).round() as u64));
    // A Batch body's model is read only if the answer names none (see `request_model`): one scan per line.
    Ok(ParsedLine {
        custom_id,
        route,
        body,
        model: None,
        max_output_tokens: None,
        metadata: fields.metadata.map(RawValue::get).filter(|m| *m != "null"),
        timestamp,
        turns: fields.turns.map(RawValue::get),
        tool_outputs: fields.tool_outputs.map(RawValue::get),
    })
}

/// The `model` a request body names; for records whose answer names none.
pub fn request_model(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<BodyFields>(body)
        .ok()
        .and_then(|b| string_value(b.model))
}

/// The body with `"stream": true` (and for Chat `stream_options.include_usage: true`), keys kept in
/// order, and whether `stream_options` was added (a Chat body without one of its own).
pub fn with_stream(body: &str, route: &Route) -> Result<(String, bool), String> {
    let fields: OrderedFields =
        serde_json::from_str(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let mut out = String::with_capacity(body.len() + 64);
    out.push('{');
    let mut options: Option<&RawValue> = None;
    for (key, value) in &fields.0 {
        match key.as_str() {
            "stream" => continue,
            "stream_options" => {
                options = Some(value);
                continue;
            }
            _ => {}
        }
        push_field(&mut out, key, value.get());
    }
    push_field(&mut out, "stream", "true");
    let added = route.takes_stream_options() && options.is_none();
    match (route.takes_stream_options(), options) {
        (true, options) => {
            let mut merged = options
                .and_then(|o| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(o.get()).ok()
                })
                .unwrap_or_default();
            merged.insert("include_usage".to_string(), serde_json::Value::Bool(true));
            push_field(
                &mut out,
                "stream_options",
                &serde_json::Value::Object(merged).to_string(),
            );
        }
        (false, Some(options)) => push_field(&mut out, "stream_options", options.get()),
        (false, None) => {}
    }
    out.push('}');
    Ok((out, added))
}

/// The body without its `stream_options` field, keys kept in order (for a server that refuses
/// the field `--stream` added). A body that is not a JSON object is returned as it is.
pub fn without_stream_options(body: &[u8]) -> bytes::Bytes {
    let Ok(fields) = serde_json::from_slice::<OrderedFields>(body) else {
        return bytes::Bytes::copy_from_slice(body);
    };
    let mut out = String::with_capacity(body.len());
    out.push('{');
    for (key, value) in fields.0.iter().filter(|(key, _)| key != "stream_options") {
        push_field(&mut out, key, value.get());
    }
    out.push('}');
    bytes::Bytes::from(out)
}

fn push_field(out: &mut String, key: &str, raw_value: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    // A key is a plain string: serializing it cannot fail.
    out.push_str(&serde_json::to_string(key).unwrap_or_default());
    out.push(':');
    out.push_str(raw_value);
}

/// An object's fields in their original order, values left unparsed.
struct OrderedFields<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for OrderedFields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Fields<'a> {
            type Value = OrderedFields<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push((key, value));
                }
                Ok(OrderedFields(fields))
            }
        }
        deserializer.deserialize_map(Fields(std::marker::PhantomData))
    }
}

fn string_value(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_body_is_sent_as_is_to_the_route_its_shape_names() {
        let line = r#" {"model": "gpt-5.1", "input": "hi"} "#;
        let parsed = parse_line(line, &DefaultRoute::ByShape).unwrap();
        assert_eq!(parsed.body, line.trim());
        assert_eq!(parsed.route, Route::Responses);
        let chat = r#"{"model": "m", "messages": []}"#;
        assert_eq!(
            parse_line(chat, &DefaultRoute::ByShape).unwrap().route,
            Route::Chat
        );
        let batch = r#"{"custom_id": "a", "body": {"model": "m", "messages": []}}"#;
        assert_eq!(
            parse_line(batch, &DefaultRoute::ByShape).unwrap().route,
            Route::Chat
        );
        assert_eq!(parsed.model.as_deref(), Some("gpt-5.1"));
        assert_eq!(parsed.custom_id, None);
    }

    #[test]
    fn bare_body_answer_caps_are_read_in_the_same_pass() {
        let chat = r#"{"messages":[],"max_tokens":50,"max_completion_tokens":64}"#;
        assert_eq!(
            parse_line(chat, &DefaultRoute::ByShape)
                .unwrap()
                .max_output_tokens,
            Some(64)
        );
        let odd = r#"{"input":"x","max_output_tokens":null}"#;
        assert_eq!(
            parse_line(odd, &DefaultRoute::ByShape)
                .unwrap()
                .max_output_tokens,
            None
        );
    }

    #[test]
    fn batch_line_takes_body_url_and_custom_id() {
        let line = r#"{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#;
        let parsed = parse_line(line, &DefaultRoute::Forced(Route::Responses)).unwrap();
        assert_eq!(parsed.body, r#"{"model":"m","messages":[]}"#);
        assert_eq!(parsed.route, Route::Chat);
        assert_eq!(parsed.custom_id.as_deref(), Some("req-1"));
        assert_eq!(request_model(parsed.body.as_bytes()).as_deref(), Some("m"));
    }

    #[test]
    fn batch_urls_name_every_route_the_batch_api_takes_and_nothing_else() {
        assert_eq!(
            Route::from_batch_url("/v1/responses"),
            Some(Route::Responses)
        );
        assert_eq!(
            Route::from_batch_url("/chat/completions"),
            Some(Route::Chat)
        );
        assert_eq!(
            Route::from_batch_url("/v1/embeddings"),
            Some(Route::Embeddings)
        );
        assert_eq!(
            Route::from_batch_url("/v1/completions/"),
            Some(Route::Completions)
        );
        assert_eq!(Route::from_batch_url("/v1/images/generations"), None);
        assert_eq!(Route::from_batch_url("/v1/responses?x=1"), None);
    }

    #[test]
    fn stream_flag_is_set_in_place_keeping_key_order() {
        let body = r#"{"model":"m","stream":false,"input":"hi"}"#;
        assert_eq!(
            with_stream(body, &Route::Responses).unwrap().0,
            r#"{"model":"m","input":"hi","stream":true}"#
        );
        let chat = r#"{"model":"m","messages":[],"stream_options":{"x":1}}"#;
        assert_eq!(
            with_stream(chat, &Route::Chat).unwrap().0,
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true,"x":1}}"#
        );
        assert_eq!(
            with_stream(r#"{"a\"b":1}"#, &Route::Responses).unwrap().0,
            r#"{"a\"b":1,"stream":true}"#
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let err = |line: &str| {
            parse_line(line, &DefaultRoute::ByShape)
                .unwrap_err()
                .message
        };
        assert!(err("{\"model\": ").starts_with("invalid JSON"));
        assert!(err("[1,2]").contains("found an array"));
        assert!(err("42").contains("found a number"));
        assert!(err(r#"{"custom_id":"a","url":"/v1/responses"}"#).contains("no \"body\""));
        assert!(err(r#"{"custom_id":"a","body":[1]}"#).contains("must be a JSON object"));
        assert!(err(r#"{"custom_id":7,"body":{}}"#).contains("custom_id must be a string"));
        assert!(err(r#"{"custom_id":"a","method":"GET","body":{}}"#).contains("only POST"));
    }

    #[test]
    fn a_completions_body_with_echo_is_refused_naming_it() {
        for line in [
            r#"{"model":"m","prompt":"hi","echo":true}"#,
            r#"{"custom_id":"e","url":"/v1/completions","body":{"model":"m","prompt":"hi","echo":true}}"#,
        ] {
            let refused = parse_line(line, &DefaultRoute::ByShape).unwrap_err();
            assert!(refused.message.contains("drop echo"), "{refused:?}");
        }
        assert!(
            parse_line(
                r#"{"model":"m","prompt":"hi","echo":false}"#,
                &DefaultRoute::ByShape
            )
            .is_ok()
        );
    }

    #[test]
    fn a_refused_batch_line_keeps_its_readable_custom_id() {
        let refused = parse_line(
            r#"{"custom_id":"req-7","method":"GET","body":{}}"#,
            &DefaultRoute::ByShape,
        )
        .unwrap_err();
        assert_eq!(refused.custom_id.as_deref(), Some("req-7"));
        assert!(!refused.refuses_run);
    }

    #[test]
    fn a_body_of_the_other_shape_than_the_forced_api_is_refused() {
        let forced = |route, line| parse_line(line, &DefaultRoute::Forced(route)).unwrap_err();
        let chat_body = forced(Route::Responses, r#"{"model":"m","messages":[]}"#);
        assert!(chat_body.refuses_run);
        assert!(
            chat_body.message.contains("use --api chat"),
            "{chat_body:?}"
        );
        let responses_body = forced(
            Route::Chat,
            r#"{"custom_id":"x","body":{"model":"m","input":"hi"}}"#,
        );
        assert!(responses_body.message.contains("use --api responses"));
        assert_eq!(responses_body.custom_id.as_deref(), Some("x"));
        // A Batch line's url is the line's own choice, whatever --api says.
        let url = r#"{"custom_id":"y","url":"/v1/responses","body":{"model":"m","messages":[]}}"#;
        assert_eq!(
            parse_line(url, &DefaultRoute::Forced(Route::Chat))
                .unwrap()
                .route,
            Route::Responses
        );
    }
}
