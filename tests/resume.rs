//! `--resume`: a run folder continues where it stopped, and ends with one final record per line.

use crate::common::*;
use std::collections::HashSet;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[test]
fn a_budget_stopped_run_resumes_to_one_ok_record_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let first = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-c",
            "8",
            "--max-cost",
            "0.05",
        ],
        &out,
    );
    let sent_first = first.summary["requests"]["ok"].as_u64().unwrap();
    assert!(sent_first > 0 && sent_first < 1000);

    let resumed = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-c", "8", "--resume"],
        &out,
    );
    assert_run_invariants(&resumed, &workload);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        resumed.summary["requests"]["ok"], 1000,
        "the summary covers the whole workload"
    );
    assert_eq!(resumed.summary["resumed_kept"], sent_first);
    let first_ids: HashSet<String> = first
        .records
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let kept_unchanged = resumed
        .records
        .iter()
        .filter(|r| first_ids.contains(r["id"].as_str().unwrap()))
        .filter(|r| {
            first.records.iter().any(|f| {
                f["id"] == r["id"]
                    && f["response_id"] == r["response_id"]
                    && f["sent_at"] == r["sent_at"]
            })
        })
        .count();
    assert_eq!(
        kept_unchanged as u64, sent_first,
        "ok lines were not sent again"
    );
    let total = resumed.summary["cost"]["total_usd"].as_f64().unwrap();
    let summed: f64 = resumed
        .records
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap())
        .sum();
    assert!((total - summed).abs() < 1e-9);
}

#[test]
fn a_torn_last_line_from_a_crash_is_cut_and_the_rest_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let complete = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-c", "8"],
        &out,
    );
    assert_eq!(complete.code, 0);
    // Simulate a crash: only 300 records made it to disk, the 301st half written.
    let text = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut torn = lines[..300].join("\n");
    torn.push('\n');
    torn.push_str(&lines[300][..lines[300].len() / 2]);
    std::fs::write(out.join("records.jsonl"), torn).unwrap();

    let resumed = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-c", "8", "--resume"],
        &out,
    );
    assert_run_invariants(&resumed, &workload);
    assert_eq!(resumed.summary["resumed_kept"], 300);
    assert_eq!(resumed.summary["requests"]["ok"], 1000);
    assert!(
        resumed.stderr.contains("records.jsonl:301 was a torn line"),
        "the note names the line: {}",
        resumed.stderr
    );
}

#[test]
fn a_damaged_record_in_the_middle_stops_resume_with_exit_2_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    let first = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "--requests",
            "20",
        ],
        &out,
    );
    assert_eq!(first.summary["requests"]["ok"], 20);
    let path = out.join("records.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[6] = lines[6][..lines[6].len() / 2].to_string();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let before = std::fs::read(&path).unwrap();

    let output = llmvolley()
        .args([
            "run",
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "--resume",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("records.jsonl:7 is damaged") && stderr.contains("delete it"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing was sent or written"
    );
}

#[test]
fn the_budget_is_the_jobs_so_a_resumed_run_counts_what_earlier_sessions_spent() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let w = workload.to_str().unwrap();
    let out = tmp.path().join("out");
    let first = run(
        llmvolley(),
        &[w, "--mock", "-q", "-c", "1", "--max-cost", "0.01"],
        &out,
    );
    let first_spent = first.summary["cost"]["total_usd"].as_f64().unwrap();
    assert!(first_spent <= 0.01, "{first_spent}");
    let resumed = run(
        llmvolley(),
        &[w, "--mock", "-c", "1", "--max-cost", "0.02", "--resume"],
        &out,
    );
    assert_run_invariants(&resumed, &workload);
    let cost = &resumed.summary["cost"];
    let job = cost["job_spent_usd"].as_f64().unwrap();
    let session = cost["session_usd"].as_f64().unwrap();
    // Before: the second session spent its own $0.02 on top, and the job ended at $0.0296.
    assert!(job <= 0.02, "the job spent {job} of a $0.02 budget");
    assert!(job >= 0.019, "the budget is used: {job}");
    assert!((job - first_spent - session).abs() < 1e-9, "{cost}");
    assert!((cost["total_usd"].as_f64().unwrap() - job).abs() < 1e-9);
    assert!(
        resumed.stdout.contains(&format!(
            "${session:.4} this session; ${job:.4} spent by the job over all its sessions of the --max-cost $0.02 budget"
        )),
        "{}",
        resumed.stdout
    );
}

#[tokio::test]
async fn failed_lines_are_sent_again_only_with_retry_failed() {
    let server = MockServer::start().await;
    let failing = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_raw("", "text/plain"))
        .mount_as_scoped(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/chat.jsonl");
    let out = tmp.path().join("out");
    let endpoint = format!("{}/v1", server.uri());
    let args = [
        workload.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--api",
        "chat",
        "--max-retries",
        "0",
    ];
    let first = run_async(llmvolley(), &args, &out).await;
    assert!(first.records.iter().all(|r| r["status"] == "http_error"));
    drop(failing);
    let ok = r#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ok, "application/json"))
        .mount(&server)
        .await;

    let kept = run_async(llmvolley(), &[&args[..], &["--resume"]].concat(), &out).await;
    assert_run_invariants(&kept, &workload);
    assert!(
        kept.records.iter().all(|r| r["status"] == "http_error"),
        "failures stand without --retry-failed"
    );
    assert_eq!(kept.summary["resumed_kept"], 5);

    let retried = run_async(
        llmvolley(),
        &[&args[..], &["--resume", "--retry-failed"]].concat(),
        &out,
    )
    .await;
    assert_run_invariants(&retried, &workload);
    assert!(
        retried
            .records
            .iter()
            .all(|r| r["status"] == "ok" && r["output_text"] == "fine")
    );
    assert_eq!(retried.code, 0);
    let csv_ids: HashSet<&str> = retried.csv_rows.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(csv_ids.len(), 5);
}

#[test]
fn the_same_resume_command_starts_a_run_in_a_missing_folder_and_continues_it_after() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let out = tmp.path().join("missing");
    let args = [workload.to_str().unwrap(), "--mock", "-q", "--resume"];
    let first = run(llmvolley(), &args, &out);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.records.len(), 1);
    assert!(first.summary["resumed_kept"].is_null());
    let again = run(llmvolley(), &args, &out);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.summary["resumed_kept"], 1, "nothing sent twice");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let sessions = info["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "run.json keeps every session");
    assert_eq!(sessions[0]["resume"], false);
    assert_eq!(sessions[1]["resume"], true);
    assert_ne!(sessions[0]["epoch_unix_us"], sessions[1]["epoch_unix_us"]);
}

#[test]
fn resume_refuses_a_folder_that_is_not_a_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let out = tmp.path().join("other");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "--resume"],
        &out,
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("has no records.jsonl to continue"),
        "{}",
        run.stderr
    );
}

#[test]
fn resume_refuses_a_workload_other_than_the_one_the_folder_was_made_from() {
    let tmp = tempfile::tempdir().unwrap();
    let first_file = tmp.path().join("a.jsonl");
    std::fs::write(
        &first_file,
        "{\"model\": \"gpt-4o-mini\", \"input\": \"one\"}\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let first = run(
        llmvolley(),
        &[first_file.to_str().unwrap(), "--mock", "-q"],
        &out,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let other = tmp.path().join("b.jsonl");
    std::fs::write(&other, "{\"model\": \"gpt-4o-mini\", \"input\": \"two\"}\n").unwrap();
    let refused = run(
        llmvolley(),
        &[other.to_str().unwrap(), "--mock", "-q", "--resume"],
        &out,
    );
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("b.jsonl") && refused.stderr.contains("a.jsonl"),
        "names both files: {}",
        refused.stderr
    );
    // The same bytes under another name are the same workload.
    let moved = tmp.path().join("moved.jsonl");
    std::fs::copy(&first_file, &moved).unwrap();
    let continued = run(
        llmvolley(),
        &[moved.to_str().unwrap(), "--mock", "-q", "--resume"],
        &out,
    );
    assert_eq!(continued.code, 0, "{}", continued.stderr);
}
