//! Tool calls: what answers did with the tools their request offered (validity per call, summed
//! per model and tool, calls per answer).

use crate::common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A Responses answer whose function calls have every kind of defect, and one clean call.
fn faulty_answer() -> Value {
    let call = |id: &str, name: &str, arguments: &str| {
        json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": id, "name": name,
               "arguments": arguments, "status": "completed"})
    };
    json!({"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-4.1",
        "output": [
            call("good", "math_calculator", r#"{"operation": "add", "a": 123.5, "b": 456.7}"#),
            call("broken", "math_calculator", r#"{"operation": "add", "a": 1"#),
            call("typed", "random_generator", r#"{"min": "one", "max": 100, "count": 3}"#),
            call("ghost", "weather", r#"{"city": "Paris"}"#),
            call("twice", "math_calculator", r#"{"b":456.7,"a":123.5,"operation":"add"}"#),
        ],
        "usage": {"input_tokens": 300, "output_tokens": 60, "total_tokens": 360}})
}

#[tokio::test]
async fn faulty_tool_calls_are_named_on_their_record_and_summed_per_tool() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_json(faulty_answer()))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    // The seed's four-tool request, twice.
    let seed = std::fs::read_to_string(workspace_file("workloads/tools.jsonl")).unwrap();
    let workload = tmp.path().join("tools.jsonl");
    std::fs::write(&workload, format!("{seed}{seed}")).unwrap();
    let run = run_endpoint(
        &format!("{}/v1", server.uri()),
        &workload,
        &[],
        &tmp.path().join("out"),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let record = &run.records[0];
    let faults: Vec<(&str, &str)> = record["tool_call_problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["call_id"].as_str().unwrap(), p["fault"].as_str().unwrap()))
        .collect();
    assert_eq!(
        faults,
        [
            ("broken", "invalid_json"),
            ("typed", "schema"),
            ("ghost", "unknown_tool"),
            ("twice", "duplicate")
        ]
    );
    let tools = &run.summary["tool_calls"];
    assert_eq!(tools["answers_with_calls"], 2);
    assert_eq!(tools["calls"], 10);
    assert_eq!(tools["calls_per_answer"]["5"], 2);
    assert_eq!(
        tools["faults"],
        json!({"duplicate": 2, "invalid_json": 2, "schema": 2, "truncated": 0, "unknown_tool": 2})
    );
    let math = tools["by_tool"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"] == "math_calculator")
        .unwrap();
    assert_eq!(
        (&math["model"], &math["calls"]),
        (&json!("gpt-4.1"), &json!(6))
    );
    assert_eq!(math["faults"]["invalid_json"], 2);
    assert_eq!(math["faults"]["duplicate"], 2);
    assert!(
        run.stdout
            .contains("tool calls   2 answers with calls, 10 calls"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_mocks_parallel_calls_of_the_seed_request_are_all_valid() {
    let (run, _tmp) = run_workload("workloads/tools.jsonl", "--mock");
    let record = &run.records[0];
    assert_eq!(record["tool_calls"].as_array().unwrap().len(), 4);
    assert!(record.get("tool_call_problems").is_none(), "{record}");
    assert_eq!(run.summary["tool_calls"]["calls_per_answer"]["4"], 1);
    assert_eq!(run.summary["tool_calls"]["faults"]["schema"], 0);
}

#[test]
fn tool_call_faults_gate_every_run_even_one_without_calls() {
    let (run, _tmp) = run_workload(
        "workloads/unicorn.jsonl",
        "--mock --fail-on tool_calls.faults.schema>0,tool_calls.faults.unknown_tool>0",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["thresholds"][0]["failed"], false);
    assert_eq!(run.summary["tool_calls"]["calls"], 0);
    assert!(!run.stdout.contains("tool calls"), "{}", run.stdout);
}
