//! A hostile server: the embedded mock answers 20% of 2,000 requests with faults; every line still
//! ends as exactly one record, retryable faults end ok, and the rest end with the right status.

use crate::common::*;
use std::collections::BTreeSet;

fn workload(dir: &std::path::Path) -> std::path::PathBuf {
    // 2,000 lines: the varied workload twice (bare bodies: ids are line numbers).
    let text = std::fs::read_to_string(workspace_file("workloads/varied-1000.jsonl")).unwrap();
    let path = dir.join("w2000.jsonl");
    std::fs::write(&path, format!("{text}{text}")).unwrap();
    path
}

#[test]
fn retryable_faults_all_end_ok() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workload(tmp.path());
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-c",
            "64",
            "--mock-fault-rate",
            "0.2",
            "--mock-faults",
            "rate_limit,server_error,unavailable,html_page,reset,reset_mid_body,stall",
            "--timeout",
            "300ms",
            "--max-retries",
            "12",
        ],
        &tmp.path().join("out"),
    );
    assert_run_invariants(&run, &workload);
    assert_eq!(run.summary["requests"]["ok"], 2000, "{}", run.stdout);
    let kinds: BTreeSet<&str> = run
        .records
        .iter()
        .flat_map(|r| r["attempt_errors"].as_array().into_iter().flatten())
        .map(|k| k.as_str().unwrap())
        .collect();
    for kind in [
        "rate_limit_exceeded",
        "server_error",
        "http_503",
        "http_502",
        "timeout",
    ] {
        assert!(
            kinds.contains(kind),
            "{kind} was met and retried: {kinds:?}"
        );
    }
    assert!(run.summary["retries"].as_u64().unwrap() >= 300);
}

#[test]
fn every_fault_kind_ends_as_one_record_with_the_right_status() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workload(tmp.path());
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-c",
            "64",
            "--stream",
            "--mock-fault-rate",
            "0.2",
            "--timeout",
            "1s",
            "--max-retries",
            "12",
        ],
        &tmp.path().join("out"),
    );
    assert_run_invariants(&run, &workload);
    for r in &run.records {
        match r["status"].as_str().unwrap() {
            "ok" => {}
            // Not retryable: a 200 whose body is broken JSON or an error object.
            "invalid_response" => assert!(
                ["truncated_json", "invalid_json"].contains(&r["error"]["kind"].as_str().unwrap()),
                "{r}"
            ),
            // An error object, or a huge answer that says it failed.
            "api_error" => assert!(
                ["overloaded", "huge_answer"].contains(&r["error"]["kind"].as_str().unwrap()),
                "{r}"
            ),
            other => panic!("a retryable fault did not end ok ({other}): {r}"),
        }
    }
    let failed = run.summary["requests"]["failed"].as_u64().unwrap();
    assert!(failed > 0 && failed < 400, "{failed}");
    let huge = run
        .records
        .iter()
        .filter(|r| r["error"]["kind"] == "huge_answer")
        .count();
    assert!(huge > 0, "huge answers were read whole");
    // A fault's tokens are a failure's: the throughput figures stay those of the real answers.
    let output = run.summary["tokens"]["output"].as_u64().unwrap();
    assert!(output < 100_000, "output tokens of ok answers: {output}");
}
