//! One engine drives `run` and `bench`: every gate (rate limits, ramp-up, budget, duration, open-loop
//! arrivals) works in both commands, end to end against the embedded mock.

use crate::common::{Run, assert_sent_on_schedule, bench, llmvolley, run, workspace_file};
use serde_json::Value;
use std::path::Path;

/// `n` small Responses bodies; line `invalid` (1-based), if any, is not JSON.
fn workload(dir: &Path, n: usize, invalid: Option<usize>) -> String {
    let path = dir.join("w.jsonl");
    let lines: Vec<String> = (1..=n)
        .map(|i| {
            if Some(i) == invalid {
                "{not json".to_string()
            } else {
                format!(r#"{{"model": "gpt-4o-mini", "input": "line {i}"}}"#)
            }
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.display().to_string()
}

fn offsets(run: &Run, field: &str) -> Vec<f64> {
    let mut at: Vec<f64> = run
        .records
        .iter()
        .filter_map(|r| r[field].as_f64())
        .collect();
    at.sort_by(f64::total_cmp);
    at
}

fn run_json(run: &Run) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn bench_rps_spaces_sends_evenly_as_run_does() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 5, None);
    let run = bench(
        &[&w, "--mock", "-c", "8", "--requests", "11", "--rps", "20"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records.len(), 11);
    // 8 slots would send 8 at once; 20 per second spaces 11 sends over at least 10 gaps of 50 ms.
    let sent = offsets(&run, "first_sent_at");
    let span = sent[10] - sent[0];
    assert!(span >= 480.0, "11 sends within {span} ms at --rps 20");
    // Evenly: the k-th send is no earlier than k spacings (less 10%) after the first, so no
    // burst anywhere; a late send (a loaded machine) cannot fail this, an early one does.
    for (k, at) in sent.iter().enumerate() {
        assert!(
            at - sent[0] >= k as f64 * 45.0,
            "send {k} at {at} ms: {sent:?}"
        );
    }
    let info = run_json(&run);
    assert_eq!(info["rps"], 20.0);
    // A benchmark keeps the load it was asked for: 429s do not slow it.
    assert_eq!(info["follow_server_pacing"], false);
}

#[test]
fn bench_max_cost_stops_the_load_within_the_budget_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workspace_file("workloads/varied-1000.jsonl");
    let run = bench(
        &[
            w.to_str().unwrap(),
            "--mock",
            "-c",
            "4",
            "--max-cost",
            "0.01",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(
        run.code, 1,
        "a budget stop is not a full run: {}",
        run.stderr
    );
    let cost = &run.summary["cost"];
    let spent = cost["total_usd"].as_f64().unwrap();
    assert!(spent <= 0.01 * 1.02, "spent {spent} of a $0.01 budget");
    assert_eq!(cost["budget_stopped"], true);
    assert!(run.records.len() < 1000, "{}", run.records.len());
    // A cycled workload owes no record for a request that was never due.
    assert!(run.records.iter().all(|r| r["status"] == "ok"));
}

#[test]
fn bench_ramp_up_spreads_the_first_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 4, None);
    let run = bench(
        &[
            &w,
            "--mock",
            "--mock-latency",
            "500ms",
            "-c",
            "4",
            "--requests",
            "4",
            "--ramp-up",
            "400ms",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_sent_on_schedule(&run);
    let scheduled = offsets(&run, "scheduled_at");
    let gaps: Vec<f64> = scheduled.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| (g - 100.0).abs() < 0.01),
        "due every 100 ms: {gaps:?}"
    );
}

#[test]
fn ramp_up_is_refused_for_open_loop_arrivals() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 2, None);
    let run = bench(
        &[
            &w,
            "--mock",
            "--profile",
            "constant",
            "--rate",
            "5",
            "--ramp-up",
            "1s",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--ramp-up applies to closed-loop"),
        "{}",
        run.stderr
    );
}

#[test]
fn run_rate_sends_lines_on_a_constant_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 10, Some(4));
    let run = run(
        llmvolley(),
        &[&w, "--mock", "-q", "-c", "4", "--rate", "50"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 1, "one line is invalid: {}", run.stderr);
    assert_eq!(run.records.len(), 10);
    assert_eq!(
        run.records.iter().filter(|r| r["status"] == "ok").count(),
        9
    );
    // The invalid line is recorded, not scheduled: nine arrivals, 20 ms apart, each sent when due.
    assert_sent_on_schedule(&run);
    let scheduled = offsets(&run, "scheduled_at");
    assert_eq!(scheduled.len(), 9);
    let gaps: Vec<f64> = scheduled.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| (g - 20.0).abs() < 0.01),
        "due every 20 ms: {gaps:?}"
    );
    // A workload file's records are known by line and id; a `seq` would restart with each resume.
    assert!(run.records.iter().all(|r| r["seq"].is_null()));
    let load = &run.summary["load"];
    assert_eq!(load["profile"], "constant");
    assert_eq!(load["rate_per_s"], 50.0);
    assert_eq!(run_json(&run)["rate_per_s"], 50.0);
}

#[test]
fn run_duration_stops_sending_and_resume_sends_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 40, None);
    let out = tmp.path().join("out");
    let first = run(
        llmvolley(),
        &[
            &w,
            "--mock",
            "--mock-latency",
            "100ms",
            "-q",
            "-c",
            "2",
            "--duration",
            "350ms",
        ],
        &out,
    );
    assert_eq!(
        first.code, 0,
        "lines left unsent are not failures: {}",
        first.stderr
    );
    assert_eq!(first.summary["requests"]["failed"], 0);
    assert_eq!(first.records.len(), 40, "every line ends as one record");
    let ok = first.records.iter().filter(|r| r["status"] == "ok").count();
    assert!(
        (2..=12).contains(&ok),
        "{ok} ok in 350 ms at -c 2 of 100 ms"
    );
    let unsent: Vec<&Value> = first
        .records
        .iter()
        .filter(|r| r["status"] == "not_sent")
        .collect();
    assert_eq!(ok + unsent.len(), 40);
    assert!(
        unsent
            .iter()
            .all(|r| r["error"]["kind"] == "limit" && r["attempts"] == 0)
    );
    assert_eq!(first.summary["interrupted"], false);

    let second = run(
        llmvolley(),
        &[&w, "--mock", "-q", "-c", "8", "--resume"],
        &out,
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.records.len(), 40);
    assert!(second.records.iter().all(|r| r["status"] == "ok"));
    assert_eq!(second.summary["resumed_kept"], ok as u64);
}

#[test]
fn a_sweep_ends_when_its_one_budget_is_spent() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let run = bench(
        &[
            w.to_str().unwrap(),
            "--mock",
            "--profile",
            "sweep",
            "--steps",
            "2",
            "--requests",
            "40",
            "--max-cost",
            "0.004",
        ],
        &out,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let steps = sweep["steps"].as_array().unwrap();
    // $0.004 is about 20 answers: the synchronous step's 40 spend it; no empty step follows.
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["profile"], "synchronous");
}

#[test]
fn run_requests_sends_the_first_lines_and_resume_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 30, None);
    let out = tmp.path().join("out");
    let first = run(llmvolley(), &[&w, "--mock", "-q", "--requests", "10"], &out);
    assert_eq!(
        first.code, 0,
        "lines left unsent are not failures: {}",
        first.stderr
    );
    assert_eq!(first.summary["requests"]["not_sent"], 20);
    assert_eq!(first.summary["not_sent_by_reason"]["limit"], 20);
    let ok: Vec<u64> = first
        .records
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(ok.len(), 10);
    assert!(ok.iter().all(|line| *line <= 10), "the first lines: {ok:?}");
    let second = run(llmvolley(), &[&w, "--mock", "-q", "--resume"], &out);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.records.iter().all(|r| r["status"] == "ok"));
}
