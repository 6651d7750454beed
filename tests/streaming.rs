//! Streamed answers end to end: SSE transcripts served by an independent HTTP mock (wiremock), and the
//! embedded mock's streams.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const CASES: [&str; 14] = [
    "responses_text",
    "responses_parallel_calls",
    "responses_reasoning",
    "responses_incomplete",
    "responses_failed",
    "responses_error_event",
    "responses_truncated",
    "responses_done_marker",
    "responses_response_done",
    "chat_with_usage",
    "chat_without_usage",
    "chat_tool_calls",
    "chat_reasoning",
    "chat_truncated",
];

/// Serves every transcript to the requests whose body names it and runs one streamed request per
/// transcript.
async fn run_transcripts() -> (Run, tempfile::TempDir) {
    let server = MockServer::start().await;
    for case in CASES {
        let transcript =
            std::fs::read(workspace_file(&format!("tests/transcripts/{case}.sse"))).unwrap();
        Mock::given(method("POST"))
            .and(wiremock::matchers::body_string_contains(format!(
                r#""case":"{case}""#
            )))
            .respond_with(ResponseTemplate::new(200).set_body_raw(transcript, "text/event-stream"))
            .mount(&server)
            .await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("cases.jsonl");
    let lines: Vec<String> = CASES
        .iter()
        .map(|case| format!(r#"{{"custom_id":"{case}","url":"/v1/responses","body":{{"case":"{case}","model":"gpt-4o-mini","input":"hi","stream":true}}}}"#))
        .collect();
    std::fs::write(&workload, lines.join("\n")).unwrap();
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "0", "-c", "4"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    (run, tmp)
}

fn assert_timed(r: &Value) {
    let latency = r["latency_ms"].as_f64().unwrap();
    if let Some(ttft) = r["ttft_ms"].as_f64() {
        assert!(ttft <= latency, "TTFT {ttft} ≤ latency {latency}: {r}");
        assert!(r["ttfo_ms"].as_f64().unwrap() >= ttft, "{r}");
    }
}

fn calls(r: &Value) -> Vec<(String, String, String)> {
    r["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["call_id"].as_str().unwrap().into(),
                c["arguments"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sse_transcripts_are_assembled_into_records() {
    let (run, _tmp) = run_transcripts().await;
    for r in &run.records {
        assert_timed(r);
    }

    let text = run.by_id("responses_text");
    assert_eq!(text["status"], "ok");
    assert_eq!(text["output_text"], "Once upon a time");
    assert_eq!(token_counts(text), (Some(36), Some(4), Some(40)));
    assert_eq!(text["cached_tokens"], 8);
    assert_eq!(text["finish"], "completed");
    assert_eq!(text["chunks"], 2);
    assert_eq!(text["token_source"], "server");
    assert_eq!(text["response_id"], "resp_1");

    let parallel = run.by_id("responses_parallel_calls");
    assert_eq!(parallel["status"], "ok");
    assert_eq!(
        calls(parallel),
        vec![
            ("current_time".into(), "call_a".into(), "{}".into()),
            (
                "math_calculator".into(),
                "call_b".into(),
                r#"{"a":123.5,"b":456.7,"operation":"add"}"#.into()
            )
        ]
    );
    assert_eq!(token_counts(parallel), (Some(120), Some(40), Some(160)));

    let reasoning = run.by_id("responses_reasoning");
    assert_eq!(
        reasoning["output_text"], "Answer: 42",
        "reasoning text is not output"
    );
    assert_eq!(reasoning["reasoning_tokens"], 25);
    assert_eq!(reasoning["chunks"], 3);
    assert!(reasoning["ttfo_ms"].as_f64().unwrap() >= reasoning["ttft_ms"].as_f64().unwrap());

    let incomplete = run.by_id("responses_incomplete");
    assert_eq!(incomplete["status"], "ok");
    assert_eq!(incomplete["finish"], "incomplete");
    assert_eq!(incomplete["incomplete_reason"], "max_output_tokens");
    assert_eq!(incomplete["output_text"], "The story goes");

    let failed = run.by_id("responses_failed");
    assert_eq!(failed["status"], "api_error");
    assert_eq!(failed["error"]["kind"], "server_error");
    assert_eq!(failed["error"]["message"], "The model crashed");

    let error_event = run.by_id("responses_error_event");
    assert_eq!(error_event["status"], "api_error");
    assert_eq!(error_event["error"]["kind"], "rate_limit_exceeded");
    assert_eq!(error_event["error"]["message"], "Too many tokens");

    let truncated = run.by_id("responses_truncated");
    assert_eq!(
        truncated["status"], "truncated",
        "a stream without a terminal event is never ok"
    );
    assert_eq!(truncated["error"]["kind"], "stream_truncated");
    assert_eq!(truncated["output_text"], "Cut off");

    for id in ["responses_done_marker", "responses_response_done"] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "ok", "{id}");
        assert_eq!(token_counts(r), (Some(10), Some(2), Some(12)), "{id}");
    }

    let chat = run.by_id("chat_with_usage");
    assert_eq!(chat["status"], "ok");
    assert_eq!(chat["output_text"], "Hello there");
    assert_eq!(token_counts(chat), (Some(9), Some(12), Some(21)));
    assert_eq!(chat["finish"], "stop");
    assert_eq!(chat["token_source"], "server");

    let estimated = run.by_id("chat_without_usage");
    assert_eq!(estimated["status"], "ok");
    assert_eq!(estimated["output_text"], "Hello there, friend");
    assert_eq!(estimated["token_source"], "estimated");
    assert_eq!(estimated["tokenizer"], "o200k_base");
    assert_eq!(
        estimated["output_tokens"], 4,
        "o200k_base: Hello| there|,| friend"
    );
    assert!(estimated["input_tokens"].is_null());

    let tools = run.by_id("chat_tool_calls");
    assert_eq!(tools["finish"], "tool_calls");
    assert_eq!(
        calls(tools),
        vec![
            (
                "get_weather".into(),
                "call_x".into(),
                r#"{"city":"Paris"}"#.into()
            ),
            ("current_time".into(), "call_y".into(), "{}".into())
        ]
    );

    let chat_reasoning = run.by_id("chat_reasoning");
    assert_eq!(chat_reasoning["output_text"], "Yes.");
    assert_eq!(chat_reasoning["chunks"], 2);

    let chat_truncated = run.by_id("chat_truncated");
    assert_eq!(chat_truncated["status"], "truncated");
    assert_eq!(chat_truncated["output_text"], "Half an ans");

    assert_eq!(run.summary["requests"]["ok"], 10);
    assert!(run.summary["ttft_ms"]["count"].as_u64().unwrap() >= 9);
}

#[test]
fn embedded_mock_streams_with_the_configured_pace() {
    let (run, _tmp) = run_workload(
        "workloads/unicorn.jsonl",
        "--mock --stream --mock-ttft 40ms --mock-itl 5ms --mock-output-tokens 20 --mock-reasoning-tokens 4",
    );
    let r = &run.records[0];
    assert_eq!(r["status"], "ok");
    assert_eq!(r["chunks"], 24);
    assert_eq!(r["output_tokens"], 24);
    assert_eq!(r["reasoning_tokens"], 4);
    assert_eq!(r["output_text"].as_str().unwrap().split(' ').count(), 20);
    let (ttft, ttfo, latency) = (
        r["ttft_ms"].as_f64().unwrap(),
        r["ttfo_ms"].as_f64().unwrap(),
        r["latency_ms"].as_f64().unwrap(),
    );
    assert!(
        // The mock fires at the millisecond tick nearest each deadline: up to 0.5 ms early.
        ttft >= 39.5,
        "the first token never comes before the configured TTFT: {ttft}"
    );
    assert!(
        ttfo > ttft,
        "visible output follows four reasoning tokens: {ttfo} vs {ttft}"
    );
    assert!(latency >= 40.0 + 23.0 * 5.0 - 0.5, "{latency}");
    let tpot = r["tpot_ms"].as_f64().unwrap();
    assert!(
        (tpot - (latency - ttft) / 23.0).abs() < 0.002,
        "TPOT = (e2e - TTFT) / (output_tokens - 1): {tpot}"
    );
    let summary = &run.summary;
    for key in [
        "ttft_ms",
        "ttfo_ms",
        "tpot_ms",
        "itl_ms",
        "output_tokens_per_s",
    ] {
        assert!(summary[key]["count"].as_u64().unwrap() > 0, "{key}");
    }
    assert_eq!(summary["itl_ms"]["count"], 23);
    assert!(Path::new(&run.dir).join("histograms/itl.hdr").is_file());
}

#[test]
fn stream_flag_asks_chat_servers_for_usage() {
    let (run, _tmp) = run_workload("workloads/chat.jsonl", "--mock --api chat --stream");
    for r in &run.records {
        assert_eq!(
            r["token_source"], "server",
            "the usage chunk was requested and read: {r}"
        );
        assert!(r["chunks"].as_u64().unwrap() > 0);
        assert_timed(r);
    }
    assert_eq!(run.by_id("3")["finish"], "length");
}

#[test]
fn streamed_function_call_arguments_are_assembled() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/tools.jsonl");
    for api_args in [vec![], vec!["--mock-chat-shape"]] {
        let out = tmp.path().join(format!("out{}", api_args.len()));
        let mut args = vec![workload.to_str().unwrap(), "--mock", "--stream"];
        args.extend(api_args.iter().copied());
        let run = run(llmvolley(), &args, &out);
        assert_run_invariants(&run, &workload);
        let names: Vec<String> = calls(&run.records[0]).into_iter().map(|c| c.0).collect();
        assert_eq!(
            names,
            [
                "random_generator",
                "system_info",
                "math_calculator",
                "current_time"
            ]
        );
        let math: Value = serde_json::from_str(&calls(&run.records[0])[2].2).unwrap();
        assert_eq!(math["operation"], "add");
    }
}

#[tokio::test]
async fn streams_without_usage_are_counted_with_the_given_tokenizer() {
    let server = MockServer::start().await;
    let transcript =
        std::fs::read(workspace_file("tests/transcripts/chat_without_usage.sse")).unwrap();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(transcript, "text/event-stream"))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/chat.jsonl");
    let tokenizer = workspace_file("tests/fixtures/tokenizer.json");
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &[
            "--api",
            "chat",
            "--stream",
            "--tokenizer",
            tokenizer.to_str().unwrap(),
        ],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    for r in &run.records {
        assert_eq!(r["token_source"], "estimated");
        assert_eq!(r["tokenizer"], "hf:tokenizer.json");
        assert_eq!(r["output_tokens"], 4, "hello| there|,| friend");
    }
}

#[test]
fn events_split_across_every_read_give_the_same_answers() {
    let args = "--mock -c 16 --stream --mock-itl 1ms --mock-seed 3 --max-retries 0";
    let (whole, _a) = run_workload("workloads/varied-1000.jsonl", args);
    let (split, _b) = run_workload(
        "workloads/varied-1000.jsonl",
        &format!("{args} --mock-split-events"),
    );
    assert_eq!(split.summary["requests"]["ok"], 1000);
    let texts = |run: &Run| -> Vec<(String, Value, Value)> {
        let mut rows: Vec<_> = run
            .records
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["output_text"].clone(),
                    r["chunks"].clone(),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    };
    assert_eq!(
        texts(&split),
        texts(&whole),
        "same text and chunks, however the bytes were cut"
    );
    for field in ["input", "output", "total"] {
        assert_eq!(
            split.summary["tokens"][field], whole.summary["tokens"][field],
            "{field}"
        );
    }
}
