//! Tool-call validity: each answer's function calls checked against the tools its request offered:
//! arguments that are not JSON or break the tool's JSON Schema, unknown tool names, duplicate calls.

use crate::record::{Record, ToolCallFault, ToolCallProblem};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// The function tools one request offered: each name with its compiled `parameters` schema (None
/// when the tool has none, or one the JSON-Schema library cannot compile).
struct Offered {
    tools: HashMap<String, Option<jsonschema::Validator>>,
}

/// Checks records on the collector's thread (never on the async runtime), compiling each distinct
/// `tools` array once.
#[derive(Default)]
pub struct ToolChecker {
    cache: HashMap<u64, Arc<Offered>>,
}

/// Distinct tool sets kept compiled; beyond this many the cache starts over.
const CACHED_TOOL_SETS: usize = 1024;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
}

impl ToolChecker {
    /// Fills `record.tool_call_problems` from its tool calls and the request body the requester
    /// left on it (`request_body`, present only when the answer made calls), then drops the body.
    pub fn check(&mut self, record: &mut Record) {
        let Some(body) = record.request_body.take() else {
            return;
        };
        if record.tool_calls.is_empty() {
            return;
        }
        let tools = serde_json::from_slice::<Body>(&body)
            .ok()
            .and_then(|b| b.tools)
            .map_or("[]", RawValue::get);
        let key = xxhash_rust::xxh3::xxh3_64(tools.as_bytes());
        if !self.cache.contains_key(&key) {
            if self.cache.len() >= CACHED_TOOL_SETS {
                self.cache.clear();
            }
            self.cache.insert(key, Arc::new(Offered::read(tools)));
        }
        let Some(offered) = self.cache.get(&key).cloned() else {
            return;
        };
        record.tool_call_problems = problems(&offered, record);
    }
}

impl Offered {
    /// Function tools in either API's shape: Responses `{"type": "function", "name", "parameters"}`,
    /// Chat `{"type": "function", "function": {"name", "parameters"}}`. Other tool types (web
    /// search, custom tools) have no JSON Schema and are not function calls.
    fn read(tools: &str) -> Offered {
        let tools: Vec<Value> = serde_json::from_str(tools).unwrap_or_default();
        let tools = tools
            .iter()
            .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
            .filter_map(|t| {
                let def = t.get("function").unwrap_or(t);
                let name = def.get("name")?.as_str()?.to_string();
                let schema = def
                    .get("parameters")
                    .and_then(|p| jsonschema::validator_for(p).ok());
                Some((name, schema))
            })
            .collect();
        Offered { tools }
    }
}

fn problems(offered: &Offered, record: &Record) -> Vec<ToolCallProblem> {
    let mut problems = Vec::new();
    let mut seen: Vec<(&str, Option<Value>, &str)> = Vec::new();
    // Cut by a length limit, not a content filter (`Record::cut_short` names why).
    let cut_by_limit = matches!(
        record.cut_short(),
        Some("length" | "max_output_tokens" | "unknown")
    );
    for call in &record.tool_calls {
        let mut problem = |fault: ToolCallFault, message: String| {
            problems.push(ToolCallProblem {
                call_id: call.call_id.clone(),
                name: call.name.clone(),
                fault,
                message,
            });
        };
        let arguments: Option<Value> = match serde_json::from_str(&call.arguments) {
            Ok(value) => Some(value),
            // Arguments that end mid-JSON in an answer its length limit cut are the limit's.
            Err(e) if e.is_eof() && cut_by_limit => {
                problem(
                    ToolCallFault::Truncated,
                    format!(
                        "arguments end mid-JSON: the answer was cut by its length limit ({})",
                        record.cut_short().unwrap_or("incomplete")
                    ),
                );
                None
            }
            Err(e) => {
                problem(
                    ToolCallFault::InvalidJson,
                    format!("arguments are not JSON: {e}"),
                );
                None
            }
        };
        match offered.tools.get(&call.name) {
            None => problem(
                ToolCallFault::UnknownTool,
                format!(
                    "the request offered no function tool named {:?}{}",
                    call.name,
                    if offered.tools.is_empty() {
                        String::new()
                    } else {
                        let mut names: Vec<&str> =
                            offered.tools.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        format!(" (it offered {})", names.join(", "))
                    }
                ),
            ),
            Some(Some(schema)) => {
                if let Some(args) = &arguments
                    && let Err(e) = schema.validate(args)
                {
                    let at = e.instance_path().to_string();
                    let at = if at.is_empty() {
                        "arguments".to_string()
                    } else {
                        format!("arguments{at}")
                    };
                    problem(ToolCallFault::Schema, format!("{at}: {e}"));
                }
            }
            Some(None) => {}
        }
        // The same call twice in one answer: same name and equal arguments (JSON equality, so
        // key order and spacing do not matter), or a reused call_id.
        let duplicate = seen.iter().any(|(name, args, id)| {
            (!call.call_id.is_empty() && *id == call.call_id)
                || (*name == call.name
                    && match (args, &arguments) {
                        (Some(a), Some(b)) => a == b,
                        _ => false,
                    })
        });
        if duplicate {
            problem(
                ToolCallFault::Duplicate,
                "the same call (name and arguments, or call_id) came earlier in this answer"
                    .to_string(),
            );
        }
        seen.push((&call.name, arguments, &call.call_id));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Status, ToolCall};
    use bytes::Bytes;

    fn answer(body: &str, calls: &[(&str, &str, &str)]) -> Record {
        let mut record = Record::empty("1".into(), 1, Status::Ok);
        record.request_body = Some(Bytes::copy_from_slice(body.as_bytes()));
        record.tool_calls = calls
            .iter()
            .map(|(name, id, arguments)| ToolCall {
                name: name.to_string(),
                call_id: id.to_string(),
                arguments: arguments.to_string(),
            })
            .collect();
        record
    }

    const RESPONSES_TOOLS: &str = r#"{"model":"m","input":"x","tools":[
        {"type":"function","name":"math_calculator","parameters":{"type":"object","properties":{"expression":{"type":"string"}},"required":["expression"],"additionalProperties":false}},
        {"type":"function","name":"current_time","parameters":{"type":"object","properties":{}}},
        {"type":"web_search"}]}"#;

    fn faults(record: &Record) -> Vec<(String, ToolCallFault)> {
        record
            .tool_call_problems
            .iter()
            .map(|p| (p.call_id.clone(), p.fault))
            .collect()
    }

    #[test]
    fn each_kind_of_bad_call_is_found_and_named() {
        let mut checker = ToolChecker::default();
        let mut record = answer(
            RESPONSES_TOOLS,
            &[
                ("math_calculator", "ok", r#"{"expression":"2+2"}"#),
                ("math_calculator", "not-json", r#"{"expression":"2+2""#),
                ("math_calculator", "wrong-type", r#"{"expression":4}"#),
                ("math_calculator", "missing", r#"{}"#),
                ("math_calculator", "extra", r#"{"expression":"1","x":2}"#),
                ("weather", "unknown", r#"{"city":"Paris"}"#),
                ("math_calculator", "again", r#"{ "expression" : "2+2" }"#),
                ("current_time", "ok2", "{}"),
                ("current_time", "ok2", "{}"),
            ],
        );
        checker.check(&mut record);
        assert_eq!(
            faults(&record),
            [
                ("not-json".into(), ToolCallFault::InvalidJson),
                ("wrong-type".into(), ToolCallFault::Schema),
                ("missing".into(), ToolCallFault::Schema),
                ("extra".into(), ToolCallFault::Schema),
                ("unknown".into(), ToolCallFault::UnknownTool),
                ("again".into(), ToolCallFault::Duplicate),
                ("ok2".into(), ToolCallFault::Duplicate),
            ]
        );
        let unknown = &record.tool_call_problems[4].message;
        assert!(
            unknown.contains("current_time, math_calculator"),
            "{unknown}"
        );
        assert!(record.tool_call_problems[1].message.contains("/expression"));
        assert!(
            record.request_body.is_none(),
            "the body is dropped once checked"
        );
    }

    #[test]
    fn chat_tools_are_read_and_a_clean_answer_has_no_problems() {
        let chat = r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"random_generator","parameters":{"type":"object","properties":{"max":{"type":"integer"}}}}}]}"#;
        let mut checker = ToolChecker::default();
        let mut clean = answer(chat, &[("random_generator", "a", r#"{"max":10}"#)]);
        checker.check(&mut clean);
        assert!(clean.tool_call_problems.is_empty());
        let mut bad = answer(chat, &[("random_generator", "b", r#"{"max":"ten"}"#)]);
        checker.check(&mut bad);
        assert_eq!(faults(&bad), [("b".into(), ToolCallFault::Schema)]);
        assert_eq!(checker.cache.len(), 1, "one tool set compiled once");
    }
}
