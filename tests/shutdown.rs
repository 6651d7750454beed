//! Interrupts: SIGINT stops dispatch, in-flight requests get `--grace`, every line still ends as one
//! record, exit 130; an interrupt delivered twice at once is one; a second one later stops the
//! requests in flight and still writes every record and the summary.

use crate::common::*;
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
    // Lines never sent are `not_sent`; requests in flight past the grace are `cancelled`.
    let cancelled = run
        .records
        .iter()
        .filter(|r| r["status"] == "cancelled" || r["status"] == "not_sent")
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

/// Waits (at most 10 s) until the run has written run.json and had a moment to send requests.
fn wait_until_sending(out: &std::path::Path) {
    let start = Instant::now();
    while !out.join("run.json").is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
}

/// Two SIGINTs microseconds apart, as `timeout -s INT` delivers them (to the child, then to its
/// process group).
fn interrupt_twice_at_once(child: &Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGINT), 0);
        assert_eq!(libc::kill(pid, libc::SIGINT), 0);
    }
}

#[test]
fn one_interrupt_delivered_twice_is_still_one_interrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let mut child = start(&[
        workload.to_str().unwrap(),
        "--mock",
        "-c",
        "10",
        "--mock-latency",
        "1s",
        "--grace",
        "20s",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_until_sending(&out);
    interrupt_twice_at_once(&child);
    // A third copy a little later (a terminal's repeat) is still the same interrupt.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    let code = wait_bounded(&mut child, Duration::from_secs(15));
    assert_eq!(code, 130);
    let run = read_folder(&out, code);
    assert_eq!(run.records.len(), 1000, "one record per line");
    assert_eq!(run.summary["interrupted"], true, "the summary was written");
    let ok = run.records.iter().filter(|r| r["status"] == "ok").count();
    assert!(
        ok >= 10,
        "the requests in flight finished within the grace period: {ok} ok"
    );
    assert!(
        !run.records.iter().any(|r| r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("still in flight"))),
        "the duplicate signal abandoned nothing"
    );
}

#[test]
fn a_second_interrupt_a_second_later_stops_requests_in_flight_and_keeps_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let mut child = start(&[
        workload.to_str().unwrap(),
        "--mock",
        "-c",
        "8",
        "--mock-latency",
        "30s",
        "--grace",
        "60s",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_until_sending(&out);
    signal(&child, "-TERM");
    std::thread::sleep(Duration::from_millis(1200));
    signal(&child, "-INT");
    let code = wait_bounded(&mut child, Duration::from_secs(20));
    assert_eq!(code, 130);
    let text = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "no torn last line");
    let run = read_folder(&out, code);
    assert_eq!(run.records.len(), 1000, "one record per line");
    assert_eq!(run.summary["interrupted"], true, "the summary was written");
    let stopped = run
        .records
        .iter()
        .filter(|r| {
            r["status"] == "cancelled"
                && r["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("still in flight"))
        })
        .count();
    assert_eq!(
        stopped, 8,
        "the 8 requests in flight were stopped and recorded"
    );
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

#[test]
fn an_interrupted_sweep_step_is_marked_as_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    // Explicit rates of 4 s each: the interrupt lands inside the first step.
    let mut child = llmvolley()
        .args(["bench", workload.to_str().unwrap(), "--mock", "-q"])
        .args([
            "--profile",
            "sweep",
            "--rates",
            "20,40",
            "--duration",
            "4s",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_first_record(&out.join("steps/01-rate-20.00"));
    signal(&child, "-INT");
    let code = wait_bounded(&mut child, Duration::from_secs(20));
    assert_eq!(code, 130);
    let sweep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let steps = sweep["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "no step after the interrupt: {sweep}");
    assert_eq!(steps[0]["interrupted"], true, "{sweep}");
}
