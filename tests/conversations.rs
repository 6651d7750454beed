//! Conversations and tool loops: turns sent one after the other with the history each API
//! expects, tool results answered from the line's canned outputs, records and stats per turn,
//! and a conversation as one unit for resume.

use crate::common::*;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn write(dir: &std::path::Path, name: &str, lines: &[Value]) -> std::path::PathBuf {
    let file = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    file
}

fn turns_of<'a>(run: &'a Run, id: &str) -> Vec<&'a Value> {
    let mut turns: Vec<&Value> = run.records.iter().filter(|r| r["id"] == id).collect();
    turns.sort_by_key(|r| r["turn"].as_u64());
    turns
}

#[test]
fn the_seeds_tool_loop_runs_to_an_answer_that_uses_the_tool_results() {
    let tmp = tempfile::tempdir().unwrap();
    // The seed's four-tool request as a conversation line with two canned results (the other two
    // get the documented default).
    let seed = seed_tools_request();
    let line = json!({"custom_id": "seed", "body": seed,
        "tool_outputs": {"current_time": "2026-12-01T09:30:00Z", "math_calculator": {"result": 580.2}}});
    let workload = write(tmp.path(), "loop.jsonl", &[line]);
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let turns = turns_of(&run, "seed");
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["tool_calls"].as_array().unwrap().len(), 4);
    assert!(turns[0].get("conversation_end").is_none());
    assert_eq!(turns[1]["conversation_end"], true);
    assert_eq!(turns[1]["conversation_id"], "seed");
    let answer = turns[1]["output_text"].as_str().unwrap();
    assert!(
        answer.contains("current_time returned 2026-12-01T09:30:00Z")
            && answer.contains("math_calculator returned {\"result\":580.2}")
            && answer.contains("llmvolley default result"),
        "{answer}"
    );
    // The second request carried the first's input, the four calls and their four outputs.
    let (first, second) = (
        turns[0]["input_tokens"].as_u64().unwrap(),
        turns[1]["input_tokens"].as_u64().unwrap(),
    );
    assert!(second > first + 40, "{first} -> {second}");
    let summary = &run.summary;
    assert_eq!(summary["conversations"]["count"], 1);
    assert_eq!(summary["conversations"]["ok"], 1);
    assert_eq!(summary["conversations"]["turns"]["max"], 2);
    assert_eq!(summary["turns"][1]["turn"], 2);
    assert_eq!(summary["turns"][1]["input_tokens_mean"], second as f64);
    assert!(run.stdout.contains("by turn"), "{}", run.stdout);

    // --tool-loop makes the plain seed workload a loop too; --max-turns 1 stops before the results.
    let (looped, _t) = run_workload("workloads/tools.jsonl", "--mock --tool-loop");
    assert_eq!(looped.records.len(), 2);
    let (capped, _t) = run_workload("workloads/tools.jsonl", "--mock --tool-loop --max-turns 1");
    assert_eq!(capped.records.len(), 1);
    assert!(
        capped.records[0]["notes"][0]
            .as_str()
            .unwrap()
            .contains("4 function calls left unanswered")
    );
}

/// A server that answers the first request of each conversation with a call and every later one
/// with text, and keeps what it was sent.
async fn scripted_server(route: &str, first: Value, later: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(move |request: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            let history = body
                .get("input")
                .or_else(|| body.get("messages"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let answer = if history <= 1 && body.get("previous_response_id").is_none() {
                first.clone()
            } else {
                later.clone()
            };
            ResponseTemplate::new(200).set_body_json(answer)
        })
        .mount(&server)
        .await;
    server
}

async fn sent_bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn each_turn_carries_the_history_its_api_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let responses_call = json!({"id": "resp_a", "object": "response", "status": "completed", "model": "m",
        "output": [{"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "clock", "arguments": "{}"}],
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}});
    let responses_text = json!({"id": "resp_b", "object": "response", "status": "completed", "model": "m",
        "output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is noon."}]}],
        "usage": {"input_tokens": 20, "output_tokens": 4, "total_tokens": 24}});
    let line = json!({"custom_id": "c1", "body": {"model": "m", "input": "Time?", "tools": [{"type": "function", "name": "clock"}]},
        "turns": ["And in Tokyo?"], "tool_outputs": {"clock": "12:00"}});
    let workload = write(tmp.path(), "r.jsonl", std::slice::from_ref(&line));

    // Responses, client state: each request carries the whole history in `input`.
    let server = scripted_server(
        "/v1/responses",
        responses_call.clone(),
        responses_text.clone(),
    )
    .await;
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(&endpoint, &workload, &[], &tmp.path().join("client")).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = sent_bodies(&server).await;
    assert_eq!(sent.len(), 3, "call, results, next user turn");
    assert_eq!(
        sent[1]["input"],
        json!([
            {"role": "user", "content": "Time?"},
            {"type": "function_call", "call_id": "call_1", "name": "clock", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "12:00"}
        ])
    );
    let third = sent[2]["input"].as_array().unwrap();
    assert_eq!(third.len(), 5);
    assert_eq!(
        third[3],
        json!({"role": "assistant", "content": "It is noon."})
    );
    assert_eq!(
        third[4],
        json!({"role": "user", "content": "And in Tokyo?"})
    );
    assert_eq!(
        sent[2]["tools"][0]["name"], "clock",
        "the rest of the body is kept"
    );
    let turns: Vec<u64> = run
        .records
        .iter()
        .map(|r| r["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, [1, 2, 3]);

    // Responses, server state: only the new items, with the previous answer's id.
    let server = scripted_server("/v1/responses", responses_call, responses_text).await;
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--responses-state", "server"],
        &tmp.path().join("server"),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = sent_bodies(&server).await;
    assert_eq!(sent[1]["previous_response_id"], "resp_a");
    assert_eq!(sent[1]["input"].as_array().unwrap().len(), 1);
    assert_eq!(sent[2]["previous_response_id"], "resp_b");
    assert_eq!(
        sent[2]["input"],
        json!([{"role": "user", "content": "And in Tokyo?"}])
    );

    // Chat: the assistant message with its tool_calls, then a tool message per call.
    let chat_call = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "clock", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
    let chat_text = json!({"id": "chatcmpl-2", "object": "chat.completion", "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": "Noon."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}});
    let server = scripted_server("/v1/chat/completions", chat_call, chat_text).await;
    let chat_line = json!({"custom_id": "c2", "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "Time?"}]}, "tool_outputs": {"clock": "12:00"}});
    let workload = write(tmp.path(), "c.jsonl", &[chat_line]);
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(&endpoint, &workload, &[], &tmp.path().join("chat")).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = sent_bodies(&server).await;
    let messages = sent[1]["messages"].as_array().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["id"], "call_9");
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_9", "content": "12:00"})
    );
}

#[test]
fn conversations_run_side_by_side_with_think_time_between_user_turns() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (0..6)
        .map(|i| {
            json!({"custom_id": format!("c{i}"), "body": {"model": "gpt-4.1-mini", "input": format!("Hello {i}")},
                "turns": ["Go on.", "Finish."]})
        })
        .collect();
    let workload = write(tmp.path(), "chats.jsonl", &lines);
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-c",
            "3",
            "--think-time",
            "100ms",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records.len(), 18);
    for i in 0..6 {
        let turns = turns_of(&run, &format!("c{i}"));
        assert_eq!(turns.len(), 3);
        for pair in turns.windows(2) {
            // The next turn leaves after the answer and the think time.
            let done = ms(pair[0], "sent_at") + ms(pair[0], "latency_ms");
            assert!(ms(pair[1], "sent_at") >= done + 100.0, "c{i}: {pair:?}");
        }
    }
    // Three conversations at a time: the first turns of c0..c2 leave together.
    let first_sends: Vec<f64> = (0..3)
        .map(|i| ms(turns_of(&run, &format!("c{i}"))[0], "sent_at"))
        .collect();
    // Together: each left before any of them sent its second turn (which waits for an answer and
    // the 100 ms think time); one conversation at a time, c1 would leave after c0's last turn.
    let second_turn = (0..3)
        .map(|i| ms(turns_of(&run, &format!("c{i}"))[1], "sent_at"))
        .fold(f64::INFINITY, f64::min);
    assert!(
        first_sends.iter().all(|s| *s < second_turn),
        "{first_sends:?} vs the first second turn at {second_turn}"
    );
    assert_eq!(run.summary["conversations"]["count"], 6);
    assert_eq!(run.summary["turns"].as_array().unwrap().len(), 3);
}

#[test]
fn an_unfinished_conversation_goes_on_from_its_first_turn_not_done_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (0..3)
        .map(|i| {
            json!({"custom_id": format!("c{i}"), "body": {"model": "gpt-4.1-mini", "input": format!("Hi {i}")},
                "turns": ["More.", "Last."]})
        })
        .collect();
    let workload = write(tmp.path(), "chats.jsonl", &lines);
    let out = tmp.path().join("out");
    let args = [workload.to_str().unwrap(), "--mock", "--resume"];
    let first = run(llmvolley(), &args, &out);
    assert_eq!(first.records.len(), 9);
    let original: Vec<Value> = turns_of(&first, "c1").into_iter().cloned().collect();
    // As a crash after c1's second turn would leave it: its last turn is gone.
    let records = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    let cut: String = records
        .lines()
        .filter(|l| !(l.contains("\"c1\"") && l.contains("\"turn\":3")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(out.join("records.jsonl"), cut).unwrap();
    let again = run(llmvolley(), &args, &out);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.records.len(), 9);
    let c1 = turns_of(&again, "c1");
    assert_eq!(c1.len(), 3);
    // Turns 1 and 2 are the first session's records; turn 3 was sent with the history rebuilt
    // from them: the same input as the first time.
    assert_eq!((c1[0], c1[1]), (&original[0], &original[1]));
    assert_ne!(c1[2]["sent_at"], original[2]["sent_at"]);
    assert_eq!(c1[2]["input_tokens"], original[2]["input_tokens"]);
    assert_eq!(c1[2]["conversation_end"], true);
    assert_eq!(again.summary["conversations"]["count"], 3);
    assert_eq!(again.summary["conversations"]["ok"], 3);
}

#[test]
fn shards_split_conversations_whole_and_merge_counts_them_once() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<Value> = (0..8)
        .map(|i| {
            json!({"custom_id": format!("c{i}"), "body": {"model": "gpt-4.1-mini", "input": format!("Hi {i}")},
                "turns": ["More.", "Last."]})
        })
        .collect();
    let workload = write(tmp.path(), "chats.jsonl", &lines);
    let mut dirs = Vec::new();
    for shard in ["0/2", "1/2"] {
        let dir = tmp.path().join(format!("shard-{}", &shard[..1]));
        let part = run(
            llmvolley(),
            &[workload.to_str().unwrap(), "--mock", "--shard", shard],
            &dir,
        );
        assert_eq!(part.code, 0, "{}", part.stderr);
        // Every conversation of a shard is whole there: three turns, the last its end.
        let ids: std::collections::HashSet<&str> = part
            .records
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        for id in ids {
            let turns = turns_of(&part, id);
            assert_eq!(turns.len(), 3, "{id}");
            assert_eq!(turns[2]["conversation_end"], true);
        }
        dirs.push(dir);
    }
    let merged = tmp.path().join("merged");
    let output = llmvolley()
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output).1);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["requests"]["total"], 24);
    assert_eq!(summary["conversations"]["count"], 8);
    assert_eq!(summary["turns"][2]["requests"], 8);
}

#[test]
fn a_bench_duration_ends_conversations_under_way_with_a_limit_record() {
    let tmp = tempfile::tempdir().unwrap();
    let line = json!({"custom_id": "long", "body": {"model": "gpt-4.1-mini", "input": "Hi"},
        "turns": ["One.", "Two.", "Three.", "Four."]});
    let workload = write(tmp.path(), "long.jsonl", &[line]);
    let run = bench(
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-c",
            "2",
            "--duration",
            "300ms",
            "--think-time",
            "200ms",
        ],
        &tmp.path().join("out"),
    );
    // Every conversation ends: ok at its last turn, or cut with a `limit` record for the turn
    // the duration left unsent (never sent, so not a request of the by-turn table).
    let ends: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["conversation_end"] == true)
        .collect();
    assert!(!ends.is_empty());
    let cut: Vec<&&Value> = ends.iter().filter(|r| r["status"] == "not_sent").collect();
    assert!(!cut.is_empty(), "{:?}", run.records);
    assert!(
        cut.iter()
            .all(|r| r["error"]["kind"] == "limit" && r["sent_at"].is_null())
    );
    let sent_turns: u64 = run.summary["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(sent_turns as usize, run.records.len() - cut.len());

    let sweep = bench(
        &[workload.to_str().unwrap(), "--mock", "--profile", "sweep"],
        &tmp.path().join("sweep"),
    );
    assert_eq!(sweep.code, 2);
    assert!(sweep.stderr.contains("--profile sweep"), "{}", sweep.stderr);
}

#[test]
fn conversation_fields_in_a_bare_body_are_refused_not_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = write(
        tmp.path(),
        "bare.jsonl",
        &[
            json!({"model": "gpt-4.1-mini", "input": "Hi"}),
            json!({"model": "gpt-4.1-mini", "input": "Hi", "turns": ["Then?"]}),
            json!({"model": "gpt-4.1-mini", "input": "Hello"}),
        ],
    );
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock"],
        &tmp.path().join("out"),
    );
    let bad = run.by_id("2");
    assert_eq!(bad["status"], "invalid_input");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"body\""),
        "{bad}"
    );
}
