//! End to end: the real binary runs workloads against the embedded mock (`--mock`).

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;

#[test]
fn unicorn_seed_runs_against_the_mock() {
    let (run, _tmp) = run_workload("workloads/unicorn.jsonl", "--mock");
    let r = &run.records[0];
    assert_eq!(r["status"], "ok");
    assert_eq!(r["model"], "gpt-5.1");
    assert!(!r["output_text"].as_str().unwrap().is_empty());
    assert!(r["input_tokens"].as_u64().unwrap() > 0 && r["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r["token_source"], "server");
    assert!(
        run.stdout.contains("latency ms"),
        "summary table printed: {}",
        run.stdout
    );
    for file in [
        "run.json",
        "summary.json",
        "histograms/latency.hdr",
        "histograms/queue.hdr",
    ] {
        assert!(run.dir.join(file).is_file(), "{file} written");
    }
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["api_key"], "none");
    assert!(info["finished_at"].is_string());
}

#[test]
fn parallel_tool_calling_seed_gets_a_call_per_tool() {
    let (run, _tmp) = run_workload("workloads/tools.jsonl", "--mock");
    let calls = run.records[0]["tool_calls"].as_array().unwrap();
    let names: Vec<&str> = calls.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "random_generator",
            "system_info",
            "math_calculator",
            "current_time"
        ]
    );
    for call in calls {
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap())
            .expect("arguments are a JSON string");
        assert!(args.is_object());
        assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    }
    let math: Value = serde_json::from_str(calls[2]["arguments"].as_str().unwrap()).unwrap();
    assert!(math.get("operation").is_some() && math.get("a").is_some() && math.get("b").is_some());
}

#[test]
fn chat_workload_goes_to_chat_completions_with_api_chat() {
    let (run, _tmp) = run_workload("workloads/chat.jsonl", "--mock --api chat -c 2");
    for r in &run.records {
        assert!(
            r["response_id"].as_str().unwrap().starts_with("chatcmpl-"),
            "{r}"
        );
    }
    let capped = run.by_id("3");
    assert_eq!(capped["finish"], "length");
    assert_eq!(capped["output_tokens"], 12);
}

#[test]
fn responses_path_answered_in_chat_shape_is_read_from_the_body() {
    let (run, _tmp) = run_workload("workloads/unicorn.jsonl", "--mock --mock-chat-shape");
    let r = &run.records[0];
    assert_eq!(r["status"], "ok");
    assert_eq!(r["finish"], "stop");
    assert!(r["response_id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(!r["output_text"].as_str().unwrap().is_empty());
}

#[test]
fn batch_lines_use_custom_ids_and_their_urls() {
    let (run, _tmp) = run_workload("workloads/batch.jsonl", "--mock");
    let ids: BTreeSet<&str> = run
        .records
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["task-1", "task-2", "task-3", "task-4", "task-5"])
    );
    assert!(
        run.by_id("task-1")["response_id"]
            .as_str()
            .unwrap()
            .starts_with("resp_")
    );
    assert!(
        run.by_id("task-2")["response_id"]
            .as_str()
            .unwrap()
            .starts_with("chatcmpl-")
    );
}

#[test]
fn varied_thousand_line_workload_keeps_every_line_once() {
    let (run, _tmp) = run_workload(
        "workloads/varied-1000.jsonl",
        "--mock -c 32 --mock-latency 1ms --mock-jitter 2ms",
    );
    assert_eq!(run.summary["requests"]["ok"], 1000);
    let incomplete = run
        .records
        .iter()
        .filter(|r| r["finish"] == "incomplete")
        .count();
    let with_tools = run
        .records
        .iter()
        .filter(|r| !r["tool_calls"].as_array().unwrap().is_empty())
        .count();
    assert!(
        incomplete > 0 && with_tools > 0,
        "incomplete {incomplete}, tool calls {with_tools}"
    );
    assert!(
        run.summary["latency_ms"]["p50"].as_f64().unwrap() >= 1.0,
        "mock latency is applied"
    );
    let per_second: Vec<std::collections::BTreeMap<String, String>> =
        csv::Reader::from_path(run.dir.join("timeseries.csv"))
            .unwrap()
            .deserialize()
            .map(Result::unwrap)
            .collect();
    let column = |name: &str| -> u64 {
        per_second
            .iter()
            .map(|r| r[name].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        (column("sent"), column("completed"), column("ok")),
        (1000, 1000, 1000)
    );
    assert_eq!(per_second.last().unwrap()["in_flight"], "0");
}

#[test]
fn every_bad_input_kind_becomes_one_invalid_input_record() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("bad.jsonl");
    let mut text: Vec<u8> = b"\xEF\xBB\xBF{\"model\":\"m\",\"input\":\"hi\"}\r\n".to_vec(); // 1 ok (BOM, CRLF)
    text.extend_from_slice(b"{\"model\": \"m\", \"input\": \n"); // 2 invalid JSON
    text.extend_from_slice(b"\n   \n"); // 3, 4 blank
    text.extend_from_slice(b"[1, 2, 3]\n"); // 5 not an object
    text.extend_from_slice(b"{\"input\": \"caf\xe9\"}\n"); // 6 invalid UTF-8
    text.extend_from_slice(
        b"{\"custom_id\": \"a\", \"method\": \"POST\", \"url\": \"/v1/responses\"}\n",
    ); // 7 no body
    text.extend_from_slice(b"{\"custom_id\": \"b\", \"method\": \"POST\", \"url\": \"/v1/responses\", \"body\": {\"model\": \"m\", \"input\": \"x\"}}\n"); // 8 ok
    text.extend_from_slice(b"{\"custom_id\": \"b\", \"method\": \"POST\", \"url\": \"/v1/responses\", \"body\": {\"input\": \"y\"}}\n"); // 9 duplicate
    // 10-16 ok: a workload mostly invalid is refused before sending, so most lines here are good.
    for i in 10..=16 {
        text.extend_from_slice(format!("{{\"model\":\"m\",\"input\":\"{i}\"}}\n").as_bytes());
    }
    text.extend_from_slice(b"\"just a string\""); // 17 not an object, no final newline
    std::fs::write(&workload, &text).unwrap();

    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock"],
        &tmp.path().join("out"),
    );
    assert_run_invariants(&run, &workload);
    assert_eq!(run.code, 1);
    let by_line = |line: u64| run.records.iter().find(|r| r["line"] == line).unwrap();
    assert_eq!(by_line(1)["status"], "ok");
    assert_eq!(by_line(8)["status"], "ok");
    for (line, needle) in [
        (2, "invalid JSON"),
        (5, "found an array"),
        (6, "invalid UTF-8"),
        (7, "no \"body\""),
        (9, "duplicate custom_id \"b\" (first used on line 8)"),
        (17, "found a string"),
    ] {
        let r = by_line(line);
        assert_eq!(r["status"], "invalid_input", "line {line}");
        assert_eq!(r["attempts"], 0);
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("line {line}: ")), "{message}");
        assert!(message.contains(needle), "line {line}: {message}");
    }
    assert_eq!(run.summary["requests"]["by_status"]["invalid_input"], 6);
}

#[test]
fn strict_refuses_to_start_and_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(&workload, "{\"input\":\"a\"}\n\n{\"input\":\"b\"\n").unwrap();
    let out = tmp.path().join("out");
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "--strict"],
        &out,
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains(&format!("{}:3: invalid JSON", workload.display())),
        "{}",
        run.stderr
    );
    assert!(
        !out.exists(),
        "nothing is created when the run refuses to start"
    );
}

#[test]
fn unreadable_workload_is_a_setup_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = run(llmvolley(), &["does/not/exist.jsonl", "--mock"], &out);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("cannot read workload does/not/exist.jsonl"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}

#[test]
fn save_responses_keeps_each_full_body() {
    let (run, _tmp) = run_workload("workloads/unicorn.jsonl", "--mock --save-responses");
    let response = &run.records[0]["response"];
    assert_eq!(response["object"], "response");
    assert_eq!(
        response["usage"]["output_tokens"],
        run.records[0]["output_tokens"]
    );
}

#[test]
fn missing_endpoint_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap()],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no endpoint"), "{}", run.stderr);
}

#[test]
fn records_can_be_placed_on_the_wall_clock_from_the_run_epoch() {
    let unix_us = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as f64
    };
    let before = unix_us();
    let (run, _tmp) = run_workload("workloads/unicorn.jsonl", "--mock -q");
    let after = unix_us();
    let epoch = run.summary["epoch_unix_us"].as_u64().unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        info["epoch_unix_us"], epoch,
        "run.json and summary.json share the anchor"
    );
    let sent = epoch as f64 + run.records[0]["sent_at"].as_f64().unwrap() * 1000.0;
    assert!(
        before <= sent && sent <= after,
        "the send lies within the run on the wall clock"
    );
}

#[test]
fn each_seconds_histograms_are_an_interval_log_on_the_run_epoch() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let (run, _tmp) = run_workload(
        "workloads/varied-1000.jsonl",
        "--mock -c 32 --stream --mock-ttft 5ms --mock-itl 1ms -q",
    );
    let log = std::fs::read(run.dir.join("histograms/timeseries.hlog")).unwrap();
    let epoch = run.summary["epoch_unix_us"].as_u64().unwrap() as f64 / 1e6;
    let (mut latency, mut ttft, mut start) = (0u64, 0u64, None);
    let mut seconds = Vec::new();
    for entry in IntervalLogIterator::new(&log) {
        match entry.expect("a well-formed interval log") {
            LogEntry::StartTime(t) => start = Some(t.as_secs_f64()),
            LogEntry::Interval(h) => {
                let histogram: hdrhistogram::Histogram<u64> =
                    hdrhistogram::serialization::Deserializer::new()
                        .deserialize(&mut std::io::Cursor::new(
                            base64::Engine::decode(
                                &base64::engine::general_purpose::STANDARD,
                                h.encoded_histogram(),
                            )
                            .unwrap(),
                        ))
                        .unwrap();
                match h.tag().map(|t| t.as_str()) {
                    Some("latency") => {
                        latency += histogram.len();
                        seconds.push(h.start_timestamp());
                    }
                    Some("ttft") => ttft += histogram.len(),
                    other => panic!("unexpected tag {other:?}"),
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        latency, 1000,
        "every ok request is in its second's latency histogram"
    );
    assert_eq!(ttft, 1000);
    assert!(
        seconds.windows(2).all(|w| w[0] < w[1]),
        "in time order: {seconds:?}"
    );
    assert!(
        (start.unwrap() - epoch).abs() < 1e-3,
        "the log starts at the run's epoch"
    );
}
