//! What a run prints and writes says what happened: lines not sent are not failures, an empty
//! workload is an error, exports refuse what they cannot write, comparisons say when the sides
//! were made differently, and the self-check warns only when it can judge.

use crate::common::*;

fn workload(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("w.jsonl");
    let lines: String = (0..n)
        .map(|i| format!("{{\"custom_id\":\"q{i}\",\"body\":{{\"model\":\"gpt-4.1-mini\",\"input\":\"question {i}\"}}}}\n"))
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn lines_a_limit_left_unsent_are_in_neither_batch_file_and_the_eta_counts_this_sessions_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 30);
    let out = tmp.path().join("out");
    let run = run(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--mock",
            "--mock-latency",
            "40ms",
            "-c",
            "1",
            "--requests",
            "10",
            "--batch-output",
            "--progress-every",
            "100ms",
        ],
        &out,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records.len(), 30, "every line still ends as one record");
    let lines = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines("output.jsonl"), 10);
    assert_eq!(lines("errors.jsonl"), 0, "nothing failed");
    assert!(
        run.stdout
            .contains("20 lines not sent are in neither (--resume sends them)"),
        "{}",
        run.stdout
    );
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(!progress.is_empty(), "{}", run.stderr);
    assert!(
        progress.iter().all(|l| l.contains("/10 done")),
        "the total is this session's 10 lines: {progress:?}"
    );
}

#[test]
fn a_gate_can_still_fail_a_run_that_left_lines_unsent() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 20);
    let run = run(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--mock",
            "-q",
            "--requests",
            "5",
            "--fail-on",
            "requests.not_sent>0",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.summary["requests"]["not_sent"], 15);
}

#[test]
fn an_empty_workload_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "\n  \n").unwrap();
    for command in ["run", "bench"] {
        let output = llmvolley()
            .args([command, empty.to_str().unwrap(), "--mock", "--out"])
            .arg(tmp.path().join(command))
            .output()
            .unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("{} has no requests", empty.display())),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn export_batch_without_saved_bodies_refuses_and_names_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 3);
    let out = tmp.path().join("out");
    let run = run(llmvolley(), &[w.to_str().unwrap(), "--mock", "-q"], &out);
    assert_eq!(run.code, 0);
    let export = llmvolley()
        .args(["export", "--batch"])
        .arg(&out)
        .output()
        .unwrap();
    let (_, stderr) = output_text(&export);
    assert_eq!(export.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--save-responses"), "{stderr}");
    assert!(!out.join("output.jsonl").exists());
}

#[test]
fn compare_lists_the_settings_that_differ_between_the_sides() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 40);
    let w = w.to_str().unwrap();
    let base = tmp.path().join("base");
    let new = tmp.path().join("new");
    let same = tmp.path().join("same");
    for (dir, extra) in [
        (&base, vec!["-c", "2"]),
        (&new, vec!["-c", "8", "--stream"]),
        (&same, vec!["-c", "2"]),
    ] {
        let mut args = vec![w, "--mock", "-q"];
        args.extend(extra);
        assert_eq!(run(llmvolley(), &args, dir).code, 0);
    }
    let compare = |a: &std::path::Path, b: &std::path::Path| {
        let output = llmvolley().arg("compare").args([a, b]).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        output_text(&output).0
    };
    let differ = compare(&base, &new);
    assert!(
        differ.contains("WARNING the sides differ in concurrency (2 vs 8), stream (false vs true)"),
        "{differ}"
    );
    let alike = compare(&base, &same);
    assert!(!alike.contains("WARNING"), "{alike}");
}

#[test]
fn a_run_too_short_to_judge_gets_no_self_check_warning_and_never_more_cores_than_there_are() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 3);
    let run = run(
        llmvolley(),
        &[w.to_str().unwrap(), "--mock"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0);
    let client = &run.summary["load"]["client"];
    let cores = client["cores_available"].as_f64().unwrap();
    assert!(
        client["cpu_cores_used"].as_f64().unwrap() <= cores,
        "{client}"
    );
    assert_eq!(client["warnings"], serde_json::json!([]), "{client}");
    assert!(!run.stdout.contains("WARNING"), "{}", run.stdout);
}
