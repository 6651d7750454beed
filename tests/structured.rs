//! Structured outputs checked: every ok answer to a body that asked for `json_schema` or
//! `json_object` is valid JSON, valid against its schema, or says what is wrong with it.

use crate::common::*;

const SCHEMA: &str = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}"#;

fn workload(dir: &std::path::Path) -> std::path::PathBuf {
    let chat = format!(
        r#"{{"custom_id":"chat","body":{{"model":"gpt-4.1-mini","messages":[{{"role":"user","content":"Extract the person"}}],"response_format":{{"type":"json_schema","json_schema":{{"name":"person","strict":true,"schema":{SCHEMA}}}}}}}}}"#
    );
    let responses = format!(
        r#"{{"custom_id":"responses","body":{{"model":"gpt-4.1-mini","input":"Extract the person","text":{{"format":{{"type":"json_schema","name":"person","strict":true,"schema":{SCHEMA}}}}}}}}}"#
    );
    let object = r#"{"custom_id":"object","body":{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"Answer in JSON"}],"response_format":{"type":"json_object"}}}"#;
    let plain =
        r#"{"custom_id":"plain","body":{"model":"gpt-4.1-mini","input":"no format asked"}}"#;
    let path = dir.join("w.jsonl");
    std::fs::write(
        &path,
        [chat.as_str(), &responses, object, plain].join("\n") + "\n",
    )
    .unwrap();
    path
}

#[test]
fn answers_valid_against_their_requested_schema_are_counted_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path());
    for stream in [false, true] {
        let mut args = vec![w.to_str().unwrap(), "--mock", "-q"];
        if stream {
            args.push("--stream");
        }
        let run = run(llmvolley(), &args, &tmp.path().join(format!("out{stream}")));
        assert_eq!(run.code, 0, "{}", run.stdout);
        for id in ["chat", "responses", "object"] {
            let r = run.by_id(id);
            assert!(r["structured_output"].is_string(), "{id}: {r}");
            assert!(r.get("output_problems").is_none(), "{id}: {r}");
        }
        assert!(run.by_id("plain").get("structured_output").is_none());
        let s = &run.summary["structured_output"];
        assert_eq!(
            (s["checked"].as_u64(), s["valid"].as_f64()),
            (Some(3), Some(1.0)),
            "{s}"
        );
        assert!(
            run.stdout.contains("3 of 3 answers valid"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn broken_json_and_schema_violations_are_found_and_gated() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path());
    let w = w.to_str().unwrap();
    let bad = run(
        llmvolley(),
        &[
            w,
            "--mock",
            "-q",
            "--mock-fault-rate",
            "1",
            "--mock-faults",
            "bad_json",
            "--fail-on",
            "structured_output.valid<99%",
        ],
        &tmp.path().join("bad"),
    );
    assert_eq!(bad.code, 3, "the gate fails: {}", bad.stdout);
    for id in ["chat", "responses", "object"] {
        let r = bad.by_id(id);
        assert_eq!(r["status"], "ok", "a broken answer is still an answer: {r}");
        assert_eq!(
            r["output_problems"][0]["fault"], "invalid_json",
            "{id}: {r}"
        );
    }
    assert!(
        bad.by_id("plain").get("output_problems").is_none(),
        "untouched"
    );
    assert_eq!(
        bad.summary["structured_output"]["by_problem"]["invalid_json"],
        3
    );
    let row = bad.csv_rows.iter().find(|r| r["id"] == "chat").unwrap();
    assert!(row["output_problems"].contains("invalid_json"), "{row:?}");

    let violated = run(
        llmvolley(),
        &[
            w,
            "--mock",
            "-q",
            "--mock-fault-rate",
            "1",
            "--mock-faults",
            "schema_violation",
        ],
        &tmp.path().join("violated"),
    );
    let chat = violated.by_id("chat");
    assert_eq!(chat["output_problems"][0]["fault"], "schema", "{chat}");
    assert!(
        chat["output_problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("name"),
        "the failing field is named: {chat}"
    );
    let per_model = &violated.summary["structured_output"]["by_model"]["gpt-4.1-mini"];
    assert_eq!(per_model["checked"], 3, "{per_model}");
}
