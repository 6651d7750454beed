//! Conversations: a workload line's following user turns and canned tool results, and the next
//! request of each turn, carrying the history the API expects (Responses `input` items or
//! `previous_response_id`; Chat `messages`).

use crate::record::Record;
pub use crate::workload::ConversationSpec;
use crate::workload::Route;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// How conversations run (`--tool-loop`, `--max-turns`, `--think-time`, `--responses-state`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConversationSettings {
    /// Every line is a conversation whose calls are answered.
    pub tool_loop: bool,
    pub max_turns: u32,
    pub think_time: ThinkTime,
    pub responses_state: ResponsesState,
}

/// How a Responses conversation carries its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponsesState {
    /// Each request carries the whole history in `input`.
    #[default]
    Client,
    /// Each request carries only its new items and the previous answer's `previous_response_id`
    /// (the server keeps the history; it must store responses).
    Server,
}

/// `--think-time`: the pause before each following user turn (not before tool results, which a
/// client sends as soon as its tools return).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThinkTime {
    #[default]
    None,
    Fixed(Duration),
    /// Uniform between the two, drawn per turn from the line's id and the turn.
    Uniform(Duration, Duration),
}

impl ThinkTime {
    /// `2s`, or `1s..3s` for a uniform draw.
    pub fn parse(text: &str) -> Result<ThinkTime, String> {
        match text.split_once("..") {
            None => crate::duration::parse_duration(text).map(ThinkTime::Fixed),
            Some((low, high)) => {
                let (low, high) = (
                    crate::duration::parse_duration(low)?,
                    crate::duration::parse_duration(high)?,
                );
                if low > high {
                    return Err(format!(
                        "{text:?}: the first time must not exceed the second"
                    ));
                }
                Ok(ThinkTime::Uniform(low, high))
            }
        }
    }

    /// The pause before turn `turn` of conversation `id`.
    pub fn before(&self, id: &str, turn: u32) -> Duration {
        match *self {
            ThinkTime::None => Duration::ZERO,
            ThinkTime::Fixed(d) => d,
            ThinkTime::Uniform(low, high) => {
                let draw = xxhash_rust::xxh3::xxh3_64_with_seed(id.as_bytes(), u64::from(turn));
                let share = (draw >> 11) as f64 / (1u64 << 53) as f64;
                low + (high - low).mul_f64(share)
            }
        }
    }
}

/// What comes after an answer.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Send this body: the tool results for the answer's calls.
    ToolResults(String),
    /// Send this body, after the think time: the next user turn.
    UserTurn(String),
    /// The conversation is over.
    Done,
}

/// One conversation under way: the body of its latest request, and which user turn is next.
pub struct Conversation<'a> {
    spec: &'a ConversationSpec,
    route: Route,
    state: ResponsesState,
    body: Map<String, Value>,
    next_user_turn: usize,
    /// The `previous_response_id` the latest request sent (server state), and the input tokens
    /// the server reported for the answer before it: what shows whether it kept the history.
    sent_pointer: Option<String>,
    input_before: Option<u64>,
}

impl<'a> Conversation<'a> {
    /// From the first request's body (a JSON object; anything else has no history to carry).
    pub fn start(
        spec: &'a ConversationSpec,
        route: Route,
        state: ResponsesState,
        first_body: &[u8],
    ) -> Option<Self> {
        // A conversation carries a history: only the Responses and Chat APIs have one.
        if !matches!(route, Route::Responses | Route::Chat) {
            return None;
        }
        let body = serde_json::from_slice::<Map<String, Value>>(first_body).ok()?;
        Some(Conversation {
            spec,
            route,
            state,
            body,
            next_user_turn: 0,
            sent_pointer: None,
            input_before: None,
        })
    }

    /// User turns not sent yet.
    pub fn turns_left(&self) -> usize {
        self.spec.turns.len().saturating_sub(self.next_user_turn)
    }

    /// With `--responses-state server`, whether the server dropped the `previous_response_id`
    /// the latest request sent: it echoed another one, or the input it counted did not grow over
    /// the answer before (a server that keeps the history counts it as input). Then the
    /// conversation falls back to carrying the whole history itself, and this says why.
    pub fn server_state_ignored(&mut self, answer: &Record) -> Option<String> {
        let sent = self.sent_pointer.as_deref()?;
        let why = match (
            &answer.previous_response_id,
            answer.input_tokens,
            self.input_before,
        ) {
            (Some(echoed), _, _) if echoed != sent => {
                format!("the server echoed previous_response_id {echoed:?}, not the {sent:?} sent")
            }
            (_, Some(input), Some(before))
                if answer.token_source == Some(crate::record::TokenSource::Server)
                    && input <= before =>
            {
                format!(
                    "the server counted {input} input tokens, not more than the {before} of the turn before: it did not use previous_response_id {sent:?}"
                )
            }
            _ => return None,
        };
        self.state = ResponsesState::Client;
        self.sent_pointer = None;
        Some(why)
    }

    /// The request after `answer` (the record of the latest request, ok): its calls answered, or
    /// the next user turn, or nothing. With `--responses-state server`, an answer without an id
    /// (nothing for `previous_response_id` to name) is followed by a request carrying the whole
    /// history instead.
    pub fn next(&mut self, answer: &Record) -> Next {
        let calls = !answer.tool_calls.is_empty();
        if !calls && self.next_user_turn >= self.spec.turns.len() {
            return Next::Done;
        }
        let mut new_items = Vec::new();
        // The answer's own items (Responses), which `previous_response_id` stands for.
        let mut carried = Vec::new();
        let history_key = match self.route {
            Route::Chat => "messages",
            _ => "input",
        };
        // The answer, as the history carries it: its text and its calls. The whole history is
        // kept in either state, for that fallback.
        let server_state = self.route != Route::Chat
            && self.state == ResponsesState::Server
            && answer.response_id.is_some();
        self.sent_pointer = answer.response_id.clone().filter(|_| server_state);
        self.input_before = answer
            .input_tokens
            .filter(|_| answer.token_source == Some(crate::record::TokenSource::Server));
        match self.route {
            Route::Chat => {
                let mut message = json!({"role": "assistant", "content": answer.output_text});
                if calls {
                    message["tool_calls"] = answer
                        .tool_calls
                        .iter()
                        .map(|c| json!({"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                }
                new_items.push(message);
            }
            _ => {
                if let Some(text) = answer.output_text.as_deref().filter(|t| !t.is_empty()) {
                    carried.push(json!({"role": "assistant", "content": text}));
                }
                for c in &answer.tool_calls {
                    carried.push(json!({"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}));
                }
            }
        }
        let next = if calls {
            for c in &answer.tool_calls {
                let output = self.spec.output_for(&c.name);
                new_items.push(match self.route {
                    Route::Chat => {
                        json!({"role": "tool", "tool_call_id": c.call_id, "content": output})
                    }
                    _ => json!({"type": "function_call_output", "call_id": c.call_id, "output": output}),
                });
            }
            Next::ToolResults
        } else {
            let turn = self.spec.turns[self.next_user_turn].clone();
            self.next_user_turn += 1;
            new_items.push(match turn {
                Value::String(text) => json!({"role": "user", "content": text}),
                message => message,
            });
            Next::UserTurn
        };
        let history = self
            .body
            .entry(history_key)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::String(text) = history {
            *history = json!([{"role": "user", "content": text}]);
        }
        if let Value::Array(items) = history {
            items.extend(carried);
            items.extend(new_items.iter().cloned());
        }
        // The client state sends the kept body as it is; the server state only its new items,
        // swapped in for the serialization and back.
        let body = if server_state {
            let history = self
                .body
                .insert("input".into(), Value::Array(new_items))
                .unwrap_or_default();
            let pointer = self.body.insert(
                "previous_response_id".into(),
                answer
                    .response_id
                    .clone()
                    .map_or(Value::Null, Value::String),
            );
            let body = serde_json::to_string(&self.body).unwrap_or_default();
            match pointer {
                Some(earlier) => self.body.insert("previous_response_id".into(), earlier),
                None => self.body.remove("previous_response_id"),
            };
            self.body.insert("input".into(), history);
            body
        } else {
            serde_json::to_string(&self.body).unwrap_or_default()
        };
        next(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Status, ToolCall};

    fn answer(text: Option<&str>, calls: &[(&str, &str)]) -> Record {
        let mut record = Record::empty("c".into(), 1, Status::Ok);
        record.output_text = text.map(str::to_string);
        record.response_id = Some("resp_1".into());
        record.tool_calls = calls
            .iter()
            .map(|(name, id)| ToolCall {
                name: name.to_string(),
                call_id: id.to_string(),
                arguments: "{}".into(),
            })
            .collect();
        record
    }

    fn body(next: Next) -> Value {
        match next {
            Next::ToolResults(b) | Next::UserTurn(b) => serde_json::from_str(&b).unwrap(),
            Next::Done => panic!("done"),
        }
    }

    fn spec() -> ConversationSpec {
        ConversationSpec::parse(
            Some(r#"["And tomorrow?", {"role": "user", "content": [{"type": "input_text", "text": "Thanks"}]}]"#),
            Some(r#"{"current_time": "2026-12-01T09:00:00Z", "dice": {"rolled": 4}}"#),
        )
        .unwrap()
    }

    #[test]
    fn responses_history_carries_input_answer_items_and_tool_outputs_then_user_turns() {
        let spec = spec();
        let first = br#"{"model":"m","input":"What time is it?","tools":[{"type":"function","name":"current_time"}]}"#;
        let mut c =
            Conversation::start(&spec, Route::Responses, ResponsesState::Client, first).unwrap();
        let tools = body(c.next(&answer(
            None,
            &[("current_time", "call_1"), ("dice", "call_2")],
        )));
        assert_eq!(
            tools["input"],
            json!([
                {"role": "user", "content": "What time is it?"},
                {"type": "function_call", "call_id": "call_1", "name": "current_time", "arguments": "{}"},
                {"type": "function_call", "call_id": "call_2", "name": "dice", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "2026-12-01T09:00:00Z"},
                {"type": "function_call_output", "call_id": "call_2", "output": "{\"rolled\":4}"}
            ])
        );
        assert_eq!(
            tools["tools"][0]["name"], "current_time",
            "the rest of the body stays"
        );
        let user = body(c.next(&answer(Some("It is nine."), &[])));
        let items = user["input"].as_array().unwrap();
        assert_eq!(
            items[5],
            json!({"role": "assistant", "content": "It is nine."})
        );
        assert_eq!(
            items[6],
            json!({"role": "user", "content": "And tomorrow?"})
        );
        let last = body(c.next(&answer(Some("Also nine."), &[])));
        assert_eq!(
            last["input"].as_array().unwrap()[8]["content"][0]["text"],
            "Thanks"
        );
        assert_eq!(c.next(&answer(Some("Bye."), &[])), Next::Done);
    }

    #[test]
    fn server_state_sends_only_new_items_and_the_previous_response_id() {
        let spec = spec();
        let first = br#"{"model":"m","input":[{"role":"user","content":"time?"}]}"#;
        let mut c =
            Conversation::start(&spec, Route::Responses, ResponsesState::Server, first).unwrap();
        let next = body(c.next(&answer(None, &[("unknown_tool", "call_9")])));
        assert_eq!(next["previous_response_id"], "resp_1");
        assert_eq!(next["input"].as_array().unwrap().len(), 1);
        assert_eq!(next["input"][0]["type"], "function_call_output");
        assert!(
            next["input"][0]["output"]
                .as_str()
                .unwrap()
                .contains("default result")
        );
    }

    #[test]
    fn server_state_without_a_response_id_carries_the_whole_history_instead() {
        let spec = spec();
        let first = br#"{"model":"m","input":"time?"}"#;
        let mut c =
            Conversation::start(&spec, Route::Responses, ResponsesState::Server, first).unwrap();
        let mut anonymous = answer(Some("Noon."), &[]);
        anonymous.response_id = None;
        let next = body(c.next(&anonymous));
        assert!(next.get("previous_response_id").is_none());
        assert_eq!(
            next["input"].as_array().unwrap().len(),
            3,
            "question, answer, next turn"
        );
        assert_eq!(c.turns_left(), 1);
    }

    #[test]
    fn chat_history_appends_the_assistant_message_and_tool_messages() {
        let spec = spec();
        let first = br#"{"model":"m","messages":[{"role":"user","content":"time?"}]}"#;
        let mut c = Conversation::start(&spec, Route::Chat, ResponsesState::Client, first).unwrap();
        let next = body(c.next(&answer(None, &[("current_time", "call_1")])));
        let messages = next["messages"].as_array().unwrap();
        assert_eq!(messages[1]["role"], "assistant");
        assert_eq!(messages[1]["tool_calls"][0]["id"], "call_1");
        assert_eq!(
            messages[1]["tool_calls"][0]["function"]["name"],
            "current_time"
        );
        assert_eq!(
            messages[2],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "2026-12-01T09:00:00Z"})
        );
    }

    #[test]
    fn bad_conversation_fields_and_think_times_are_refused_with_what_is_expected() {
        assert!(
            ConversationSpec::parse(Some("\"hi\""), None)
                .unwrap_err()
                .contains("array")
        );
        assert!(
            ConversationSpec::parse(Some("[1]"), None)
                .unwrap_err()
                .contains("[0]")
        );
        assert!(
            ConversationSpec::parse(None, Some("[]"))
                .unwrap_err()
                .contains("object")
        );
        assert_eq!(
            ThinkTime::parse("2s"),
            Ok(ThinkTime::Fixed(Duration::from_secs(2)))
        );
        let uniform = ThinkTime::parse("1s..3s").unwrap();
        let d = uniform.before("conv-1", 2);
        assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(3));
        assert_eq!(d, uniform.before("conv-1", 2));
        assert!(ThinkTime::parse("3s..1s").is_err());
    }
}
