//! Interrupts: SIGINT stops dispatch, in-flight requests get `--grace`, every line still ends as one
//! record, exit 130; a second signal exits at once with every written line whole.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits at most `limit` for the child; kills it and fails the test past that.
fn wait_bounded(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the run did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 10 s) until the run has written at least one record: it is surely under way.
fn wait_for_first_record(out: &std::path::Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if std::fs::read_to_string(out.join("records.jsonl")).is_ok_and(|t| t.contains('\n')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the run wrote no record within 10 s");
}

fn start(args: &[&str]) -> Child {
    llmvolley()
        .arg("run")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn an_interrupt_records_every_line_once_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let mut child = start(&[
        workload.to_str().unwrap(),
        "--mock",
        "-c",
        "4",
        "--mock-latency",
        "400ms",
        "--grace",
        "100ms",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for_first_record(&out);
    signal(&child, "-INT");
    let code = wait_bounded(&mut child, Duration::from_secs(10));
    assert_eq!(code, 130);
    let run = read_folder(&out, code);
    assert_eq!(run.records.len(), 1000, "one record per line");
    assert_eq!(run.summary["interrupted"], true);
    let ok = run.records.iter().filter(|r| r["status"] == "ok").count();
    let cancelled = run
        .records
        .iter()
        .filter(|r| r["status"] == "cancelled")
        .count();
    assert!(
        ok > 0 && ok + cancelled == 1000,
        "ok {ok}, cancelled {cancelled}"
    );
    assert!(
        run.records.iter().any(|r| r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--grace"))),
        "in-flight requests were abandoned after the grace period"
    );

    let resumed = run_resumed(&workload, &out);
    assert_eq!(resumed.summary["requests"]["ok"], 1000);
}

fn run_resumed(workload: &std::path::Path, out: &std::path::Path) -> Run {
    let resumed = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-c", "64", "--resume"],
        out,
    );
    assert_run_invariants(&resumed, workload);
    resumed
}

#[test]
fn a_second_interrupt_exits_at_once_with_whole_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let mut child = start(&[
        workload.to_str().unwrap(),
        "--mock",
        "-c",
        "8",
        "--mock-latency",
        "50ms",
        "--mock-jitter",
        "400ms",
        "--grace",
        "60s",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for_first_record(&out);
    signal(&child, "-TERM");
    std::thread::sleep(Duration::from_millis(100));
    let second = Instant::now();
    signal(&child, "-INT");
    let code = wait_bounded(&mut child, Duration::from_secs(5));
    assert_eq!(code, 130);
    assert!(second.elapsed() < Duration::from_secs(5));
    let text = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "no torn last line");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every written line is whole JSON");
    }
    let resumed = run_resumed(&workload, &out);
    assert_eq!(resumed.summary["requests"]["ok"], 1000);
}

#[test]
fn an_interrupted_bench_records_every_scheduled_request_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("bench");
    let mut child = llmvolley()
        .args([
            "bench",
            workload.to_str().unwrap(),
            "--mock",
            "--mock-latency",
            "300ms",
        ])
        .args([
            "--profile",
            "constant",
            "--rate",
            "50",
            "--duration",
            "60s",
            "--grace",
            "5s",
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_first_record(&out);
    signal(&child, "-INT");
    let code = wait_bounded(&mut child, Duration::from_secs(15));
    assert_eq!(code, 130);
    let run = read_folder(&out, code);
    assert_eq!(run.summary["interrupted"], true);
    // The schedule stopped; every request it had sent finished within the grace period.
    let mut seqs: Vec<u64> = run
        .records
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(run.records.iter().all(|r| r["status"] == "ok"));
    assert!(
        seqs.len() < 1000,
        "stopped long before 60 s: {}",
        seqs.len()
    );
    assert!(out.join("timeseries.csv").is_file());
}
