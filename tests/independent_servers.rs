//! Against a server nobody here wrote: llmock (PyPI, an OpenAI-compatible mock with stream faults
//! and rate limits), installed by `bash .ci/interop-setup`. The tests are `#[ignore]`d, so a plain
//! `cargo test` lists them as ignored, never as passed; `cargo test -- --include-ignored` runs them
//! (CI does), and then a missing llmock fails them.

use crate::common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An llmock server on a free 127.0.0.1 port, stopped when dropped.
struct Llmock {
    child: Child,
    endpoint: String,
}

impl Drop for Llmock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn llmock_bin() -> PathBuf {
    let dir = std::env::var_os("LLMVOLLEY_INTEROP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_file("target/interop-venv/bin"));
    let bin = dir.join("llmock");
    assert!(
        bin.is_file(),
        "llmock is not at {}: run `bash .ci/interop-setup` (or set LLMVOLLEY_INTEROP_BIN)",
        bin.display()
    );
    bin
}

/// Starts llmock with `args`; waits (at most 30 s) until it accepts connections.
fn start_llmock(args: &[&str]) -> Llmock {
    let bin = llmock_bin();
    let port = free_port();
    let child = Command::new(bin)
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--log-level", "warning"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llmock starts");
    listening(child, port, "llmock")
}

/// The server `child` once it accepts connections on `port` (at most 30 s).
fn listening(child: Child, port: u16, name: &str) -> Llmock {
    let server = Llmock {
        child,
        endpoint: format!("http://127.0.0.1:{port}/v1"),
    };
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A streamed and a whole request on each API.
fn mixed_workload(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("mixed.jsonl");
    std::fs::write(
        &path,
        [
            r#"{"custom_id":"chat_stream","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me a story"}],"stream":true,"stream_options":{"include_usage":true}}}"#,
            r#"{"custom_id":"chat_whole","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me a story"}]}}"#,
            r#"{"custom_id":"responses_stream","url":"/v1/responses","body":{"model":"gpt-4o-mini","input":"Tell me a story","stream":true}}"#,
            r#"{"custom_id":"responses_whole","url":"/v1/responses","body":{"model":"gpt-4o-mini","input":"Tell me a story"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    path
}

fn run_against(
    server: &Llmock,
    workload: &std::path::Path,
    args: &[&str],
    out: &std::path::Path,
) -> Run {
    let mut cmd = llmvolley();
    cmd.env("OPENAI_API_KEY", "sk-interop");
    let mut all = vec![workload.to_str().unwrap(), "--endpoint", &server.endpoint];
    all.extend_from_slice(args);
    let run = run(cmd, &all, out);
    assert_run_invariants(&run, workload);
    run
}

#[test]
#[ignore = "needs llmock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn an_independent_server_is_read_right_on_both_apis_streamed_or_whole() {
    let server = start_llmock(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let workload = mixed_workload(tmp.path());
    let run = run_against(
        &server,
        &workload,
        &["--max-retries", "0"],
        &tmp.path().join("out"),
    );
    for (id, streamed, finish) in [
        ("chat_stream", true, "stop"),
        ("chat_whole", false, "stop"),
        ("responses_stream", true, "completed"),
        ("responses_whole", false, "completed"),
    ] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "ok", "{id}: {r}");
        assert_eq!(r["token_source"], "server", "{id}");
        assert!(r["output_tokens"].as_u64().unwrap() > 0, "{id}");
        assert!(!r["output_text"].as_str().unwrap().is_empty(), "{id}");
        assert_eq!(r["finish"], finish, "{id}");
        if streamed {
            assert!(r["chunks"].as_u64().unwrap() > 0, "{id}");
            assert!(ms(r, "ttft_ms") <= ms(r, "latency_ms"), "{id}");
        } else {
            assert_eq!(r["chunks"], Value::Null, "{id}");
        }
    }
}

#[test]
#[ignore = "needs llmock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn an_independent_servers_broken_streams_end_as_the_right_failure_and_are_not_ok() {
    for (fault, status, kind) in [
        ("malformed", "invalid_response", "malformed_event"),
        ("truncate", "truncated", "stream_truncated"),
        ("disconnect", "truncated", "body_read"),
    ] {
        let server = start_llmock(&["--stream-fault", &format!("{fault}=1.0")]);
        let tmp = tempfile::tempdir().unwrap();
        let workload = mixed_workload(tmp.path());
        // Malformed events are not retried (the SDKs raise on them); broken streams are, and fail again.
        let run = run_against(
            &server,
            &workload,
            &["--max-retries", "1"],
            &tmp.path().join("out"),
        );
        for id in ["chat_stream", "responses_stream"] {
            let r = run.by_id(id);
            assert_eq!(r["status"], status, "{fault} {id}: {r}");
            assert_eq!(r["error"]["kind"], kind, "{fault} {id}");
            let attempts = if fault == "malformed" { 1 } else { 2 };
            assert_eq!(r["attempts"], attempts, "{fault} {id}");
            assert_eq!(
                r["output_tokens"],
                Value::Null,
                "{fault} {id}: no tokens on a failed record"
            );
        }
        for id in ["chat_whole", "responses_whole"] {
            assert_eq!(
                run.by_id(id)["status"],
                "ok",
                "{fault}: whole bodies are not faulted"
            );
        }
        assert!(
            run.summary["tokens"]["output"].as_u64().unwrap()
                == run.by_id("chat_whole")["output_tokens"].as_u64().unwrap()
                    + run.by_id("responses_whole")["output_tokens"]
                        .as_u64()
                        .unwrap(),
            "{fault}: only ok requests' tokens are in the totals"
        );
    }
}

#[test]
#[ignore = "needs llmock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn an_independent_servers_429s_are_retried_after_its_wait_and_slow_the_run() {
    // llmock draws each 429 at random and takes no seed. With 8 lines a run saw none once in CI
    // (p = 2^-8); with 24 the chance is 2^-24, and one line needing more than 40 retries 24 * 2^-41.
    let server = start_llmock(&["--error-rate", "429=0.5"]);
    let tmp = tempfile::tempdir().unwrap();
    let workload = questions(tmp.path(), 24);
    let run = run_against(
        &server,
        &workload,
        &["-c", "2", "--max-retries", "40", "--max-server-wait", "1s"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.summary["requests"]["ok"], 24);
    assert!(
        run.summary["retries"].as_u64().unwrap() > 0,
        "half the answers were 429s"
    );
    for r in run
        .records
        .iter()
        .filter(|r| r["attempts"].as_u64().unwrap() > 1)
    {
        // llmock asks for retry-after-ms: 1000 with every 429. (queue_ms may hold a run-wide pause
        // another request's 429 began before this one was first sent: that is dispatch lag.)
        assert!(ms(r, "retry_wait_ms") >= 950.0, "{r}");
        assert!(
            ms(r, "sent_at") - ms(r, "first_sent_at") >= ms(r, "retry_wait_ms"),
            "{r}"
        );
    }
    let pacing = &run.summary["server_pacing"];
    assert!(pacing["pauses"].as_u64().unwrap() > 0, "{pacing}");
    assert_eq!(pacing["longest_wait_source"], "retry-after-ms: 1s");
}

#[test]
#[ignore = "needs llmock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn a_generated_trace_replays_on_schedule_against_an_independent_server() {
    let server = start_llmock(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("trace.jsonl");
    let output = llmvolley()
        .args([
            "generate",
            "--model",
            "gpt-4o-mini",
            "--api",
            "chat",
            "--stream",
        ])
        .args(["--ignore-eos", "--from", "mooncake"])
        .arg(workspace_file("tests/fixtures/mooncake-trace.jsonl"))
        .arg("--out")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output).1);
    let run = bench(
        &[
            trace.to_str().unwrap(),
            "--endpoint",
            &server.endpoint,
            "--profile",
            "trace",
            "--trace-speed",
            "4",
        ],
        &tmp.path().join("run"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let timestamps: Vec<f64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["timestamp"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(run.records.len(), timestamps.len());
    assert_sent_on_schedule(&run);
    for (i, t) in timestamps.iter().enumerate() {
        let record = run.by_id(&format!("trace-{}", i + 1));
        // The server took the vLLM sampling fields without complaint, and the schedule held.
        assert_eq!(record["status"], "ok", "{record}");
        assert_eq!(record["scheduled_at"].as_f64(), Some(t / 4.0));
    }
    assert!(run.summary["output_length"]["count"].as_u64().unwrap() > 0);
}

#[test]
#[ignore = "needs llmock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn the_seeds_tool_loop_closes_against_an_independent_server_on_both_apis() {
    let server = start_llmock(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let seed = seed_tools_request();
    // The same four tools in Chat's shape.
    let chat_tools: Vec<Value> = seed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serde_json::json!({"type": "function", "function": {"name": t["name"], "description": t["description"], "parameters": t["parameters"]}}))
        .collect();
    let chat = serde_json::json!({"custom_id": "chat", "url": "/v1/chat/completions", "body": {
        "model": "gpt-4o-mini", "messages": seed["input"], "tools": chat_tools}, "tool_outputs": {"current_time": "09:30"}});
    let responses = serde_json::json!({"custom_id": "responses", "url": "/v1/responses", "body": seed,
        "tool_outputs": {"current_time": "09:30"}});
    let workload = tmp.path().join("loops.jsonl");
    std::fs::write(&workload, format!("{responses}\n{chat}\n")).unwrap();
    let run = run_against(&server, &workload, &[], &tmp.path().join("out"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    for id in ["responses", "chat"] {
        let mut turns: Vec<&Value> = run.records.iter().filter(|r| r["id"] == id).collect();
        turns.sort_by_key(|r| r["turn"].as_u64());
        assert!(turns.len() >= 2, "{id}: {turns:?}");
        assert!(
            !turns[0]["tool_calls"].as_array().unwrap().is_empty(),
            "{id}"
        );
        // llmock's arguments are valid against the tools' schemas, and its last answer is text.
        assert!(
            turns.iter().all(|t| t.get("tool_call_problems").is_none()),
            "{id}: {turns:?}"
        );
        let last = turns.last().unwrap();
        assert_eq!(last["conversation_end"], true);
        assert!(
            last["tool_calls"].as_array().unwrap().is_empty(),
            "{id}: {last}"
        );
        assert!(
            last["output_text"].as_str().is_some_and(|t| !t.is_empty()),
            "{id}: {last}"
        );
    }
}

#[test]
#[ignore = "needs llmock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn an_independent_servers_embeddings_are_read_as_items_and_dimensions() {
    // llmock 0.2.2 serves /v1/embeddings (1536-dimension vectors, usage with completion_tokens
    // 0), but neither /v1/completions nor /v1/moderations.
    let server = start_llmock(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("embed.jsonl");
    std::fs::write(
        &workload,
        r#"{"custom_id":"docs","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["first document","second document","third"]}}
"#,
    )
    .unwrap();
    let run = run_against(&server, &workload, &["-q"], &tmp.path().join("out"));
    let r = run.by_id("docs");
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(
        (r["items"].as_u64(), r["dimensions"].as_u64()),
        (Some(3), Some(1536))
    );
    assert!(r["input_tokens"].as_u64().unwrap() > 0, "{r}");
    assert!(
        r["output_tokens"].is_null(),
        "its completion_tokens 0 is not an output: {r}"
    );
    assert!(r["cost_usd"].as_f64().is_some());
}

/// aimock (npm `@copilotkit/aimock` 1.43.0, its `llmock` server) on a free port with no fixtures:
/// it answers embeddings and moderations by itself. Stopped when dropped.
fn start_aimock(fixtures: &std::path::Path) -> Llmock {
    let bin = workspace_file("target/interop-node/node_modules/.bin/llmock");
    assert!(
        bin.is_file(),
        "aimock is not at {}: run `bash .ci/interop-setup`",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(bin)
        .args([
            "-p",
            &port.to_string(),
            "-h",
            "127.0.0.1",
            "--log-level",
            "warn",
            "-f",
        ])
        .arg(fixtures)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aimock starts");
    listening(child, port, "aimock")
}

#[test]
#[ignore = "needs aimock: bash .ci/interop-setup, then cargo test -- --include-ignored"]
fn another_independent_servers_embeddings_and_moderations_are_read() {
    // aimock 1.43.0 serves /v1/embeddings and /v1/moderations without fixtures; /v1/completions
    // is not one of its routes (404).
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = tmp.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    let server = start_aimock(&fixtures);
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(
        &workload,
        [
            r#"{"custom_id":"embed","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["one","two"]}}"#,
            r#"{"custom_id":"moderate","url":"/v1/moderations","body":{"model":"omni-moderation-latest","input":"hello"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let run = run_against(
        &server,
        &workload,
        &["-q", "--max-retries", "0"],
        &tmp.path().join("out"),
    );
    let embed = run.by_id("embed");
    assert_eq!(embed["status"], "ok", "{embed}");
    assert_eq!(embed["items"], 2);
    assert!(embed["dimensions"].as_u64().unwrap() > 0, "{embed}");
    assert!(embed["output_tokens"].is_null(), "{embed}");
    let moderate = run.by_id("moderate");
    assert_eq!(moderate["status"], "ok", "{moderate}");
    assert_eq!(moderate["items"], 1);
    assert_eq!(moderate["cost_usd"], 0.0);
}
