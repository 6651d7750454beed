//! Structured-output validity: an ok answer to a body that asked for JSON — `response_format`
//! (Chat, Completions) or `text.format` (Responses) of type `json_schema` or `json_object` —
//! checked on the collector's thread: valid JSON, valid against the schema, or a refusal, or cut.

use crate::record::{OutputFault, OutputProblem, Record};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;

/// Whether a request body may ask for structured output: a byte scan, cheaper than a parse, so
/// only such bodies travel to the collector to be read.
pub fn asks_for_json(body: &[u8]) -> bool {
    // One SIMD scan (memchr) for the shared prefix, then a look at what follows each hit.
    memchr::memmem::find_iter(body, b"\"json_").any(|at| {
        let rest = &body[at + 6..];
        rest.starts_with(b"schema\"") || rest.starts_with(b"object\"")
    })
}

/// The format a request asked for, compiled.
enum Asked {
    /// No structured output (a body that only mentions the words).
    Nothing,
    JsonObject,
    /// The schema's validator; None when it does not compile (the answer is then checked as JSON).
    Schema(Option<jsonschema::Validator>),
}

impl Asked {
    fn name(&self) -> Option<&'static str> {
        match self {
            Asked::Nothing => None,
            Asked::JsonObject => Some("json_object"),
            Asked::Schema(_) => Some("json_schema"),
        }
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    response_format: Option<&'a RawValue>,
    #[serde(borrow, default)]
    text: Option<TextParam<'a>>,
}

#[derive(Deserialize)]
struct TextParam<'a> {
    #[serde(borrow, default)]
    format: Option<&'a RawValue>,
}

/// Checks structured answers, compiling each distinct format (schema) once.
#[derive(Default)]
pub struct OutputChecker {
    cache: HashMap<u64, Arc<Asked>>,
}

/// Distinct formats kept compiled; beyond this many the cache starts over.
const CACHED_FORMATS: usize = 1024;

impl OutputChecker {
    /// Fills `record.structured_output` and `record.output_problems` for an ok answer whose request
    /// (`request_body`, left on the record by the requester) asked for JSON. Leaves the body for
    /// the tool-call check.
    pub fn check(&mut self, record: &mut Record) {
        if record.status != crate::record::Status::Ok {
            return;
        }
        let Some(body) = record.request_body.as_ref() else {
            return;
        };
        let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
            return;
        };
        // Chat and Completions: `response_format`; Responses: `text.format`.
        let Some(format) = parsed
            .response_format
            .or(parsed.text.and_then(|t| t.format))
        else {
            return;
        };
        let key = xxhash_rust::xxh3::xxh3_64(format.get().as_bytes());
        if !self.cache.contains_key(&key) {
            if self.cache.len() >= CACHED_FORMATS {
                self.cache.clear();
            }
            self.cache.insert(key, Arc::new(compile(format.get())));
        }
        let Some(asked) = self.cache.get(&key).cloned() else {
            return;
        };
        let Some(name) = asked.name() else {
            return;
        };
        record.structured_output = Some(name.to_string());
        record.output_problems = problems(&asked, record);
    }
}

/// Reads a format object: `{"type": "json_schema", "json_schema": {"schema": ...}}` (Chat),
/// `{"type": "json_schema", "schema": ...}` (Responses) or `{"type": "json_object"}`.
fn compile(format: &str) -> Asked {
    let Ok(format) = serde_json::from_str::<Value>(format) else {
        return Asked::Nothing;
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_object") => Asked::JsonObject,
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .or_else(|| format.get("schema"));
            Asked::Schema(schema.and_then(|s| jsonschema::validator_for(s).ok()))
        }
        _ => Asked::Nothing,
    }
}

fn problems(asked: &Asked, record: &Record) -> Vec<OutputProblem> {
    let mut found = Vec::new();
    let problem = |fault, message: String| OutputProblem { fault, message };
    if let Some(refusal) = record.refusal.as_deref().filter(|r| !r.is_empty()) {
        let shown: String = refusal.chars().take(200).collect();
        found.push(problem(OutputFault::Refusal, shown));
    }
    if let Some(reason) = record.cut_short() {
        found.push(problem(
            OutputFault::Truncated,
            format!("the answer was cut short ({reason}): its JSON may end early"),
        ));
    }
    let text = record.output_text.as_deref().unwrap_or("");
    if text.is_empty() && !found.is_empty() {
        return found;
    }
    match serde_json::from_str::<Value>(text) {
        Err(e) => found.push(problem(OutputFault::InvalidJson, format!("not JSON: {e}"))),
        Ok(value) => match asked {
            Asked::JsonObject if !value.is_object() => found.push(problem(
                OutputFault::InvalidJson,
                "JSON, but not an object (json_object asks for one)".to_string(),
            )),
            Asked::Schema(Some(schema)) => {
                if let Err(e) = schema.validate(&value) {
                    let at = e.instance_path().to_string();
                    let at = if at.is_empty() { "/".to_string() } else { at };
                    found.push(problem(OutputFault::Schema, format!("{at}: {e}")));
                }
            }
            _ => {}
        },
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Status;

    fn answered(body: &str, text: &str, finish: &str) -> Record {
        let mut r = Record::empty("1".into(), 1, Status::Ok);
        r.output_text = Some(text.to_string());
        r.finish = Some(finish.to_string());
        r.request_body = Some(bytes::Bytes::from(body.to_string()));
        r
    }

    const CHAT_SCHEMA: &str = r#"{"model":"m","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"p","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}}}}"#;

    #[test]
    fn answers_are_checked_against_the_schema_they_asked_for() {
        let mut checker = OutputChecker::default();
        let mut valid = answered(CHAT_SCHEMA, r#"{"name":"Ada","age":36}"#, "stop");
        checker.check(&mut valid);
        assert_eq!(valid.structured_output.as_deref(), Some("json_schema"));
        assert!(
            valid.output_problems.is_empty(),
            "{:?}",
            valid.output_problems
        );
        let mut missing = answered(CHAT_SCHEMA, r#"{"name":"Ada"}"#, "stop");
        checker.check(&mut missing);
        assert_eq!(missing.output_problems[0].fault, OutputFault::Schema);
        assert!(missing.output_problems[0].message.contains("age"));
        let mut wrong_type = answered(CHAT_SCHEMA, r#"{"name":"Ada","age":"old"}"#, "stop");
        checker.check(&mut wrong_type);
        assert!(wrong_type.output_problems[0].message.starts_with("/age"));
        let mut cut = answered(CHAT_SCHEMA, r#"{"name":"Ad"#, "length");
        checker.check(&mut cut);
        let faults: Vec<OutputFault> = cut.output_problems.iter().map(|p| p.fault).collect();
        assert_eq!(faults, [OutputFault::Truncated, OutputFault::InvalidJson]);
    }

    #[test]
    fn responses_text_format_and_json_object_are_read_too() {
        let mut checker = OutputChecker::default();
        let responses = r#"{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n","schema":{"type":"object","required":["ok"]}}}}"#;
        let mut r = answered(responses, r#"{"nope":1}"#, "completed");
        checker.check(&mut r);
        assert_eq!(r.output_problems[0].fault, OutputFault::Schema);
        let object = r#"{"model":"m","messages":[],"response_format":{"type":"json_object"}}"#;
        let mut r = answered(object, "[1,2]", "stop");
        checker.check(&mut r);
        assert_eq!(r.structured_output.as_deref(), Some("json_object"));
        assert_eq!(r.output_problems[0].fault, OutputFault::InvalidJson);
        // A body that only mentions the words asked for nothing.
        let mut r = answered(
            r#"{"model":"m","input":"what is \"json_object\"?"}"#,
            "prose",
            "stop",
        );
        checker.check(&mut r);
        assert!(r.structured_output.is_none() && r.output_problems.is_empty());
    }

    #[test]
    fn only_bodies_naming_a_json_format_are_carried_to_the_check() {
        assert!(asks_for_json(
            br#"{"response_format":{"type":"json_schema"}}"#
        ));
        assert!(asks_for_json(
            br#"{"text":{"format":{"type":"json_object"}}}"#
        ));
        assert!(!asks_for_json(br#"{"input":"json_ is not "json_other""}"#));
        assert!(!asks_for_json(b"\"json_"));
    }

    #[test]
    fn a_refusal_is_noted_as_such() {
        let mut checker = OutputChecker::default();
        let mut r = answered(CHAT_SCHEMA, "", "stop");
        r.output_text = None;
        r.refusal = Some("I can't help with that.".into());
        checker.check(&mut r);
        let faults: Vec<OutputFault> = r.output_problems.iter().map(|p| p.fault).collect();
        assert_eq!(faults, [OutputFault::Refusal]);
    }
}
