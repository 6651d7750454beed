//! CI gates: `--fail-on` thresholds judged at the end of `run` and `bench` (exit 3, verdicts in
//! summary.json and on stdout) and `--summary-markdown` for a CI job's summary page.

use crate::common::{bench, llmvolley, output_text, run, varied_workload};

#[test]
fn a_failed_threshold_exits_3_and_every_verdict_is_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let markdown = tmp.path().join("summary.md");
    let w = varied_workload();
    let run = bench(
        &[
            &w,
            "--mock",
            "--stream",
            "--requests",
            "60",
            "-c",
            "6",
            "--mock-ttft",
            "30ms",
            "--mock-itl",
            "1ms",
            "--fail-on",
            "ttft.p99>5ms, latency.p50>1m, error_rate>1%, itl.p99.9<0.01ms",
            "--summary-markdown",
            markdown.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let verdicts = run.summary["thresholds"].as_array().unwrap();
    let failed: Vec<(&str, bool)> = verdicts
        .iter()
        .map(|v| {
            (
                v["expression"].as_str().unwrap(),
                v["failed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            ("ttft.p99>5ms", true),
            ("latency.p50>1m", false),
            ("error_rate>1%", false),
            ("itl.p99.9<0.01ms", false),
        ]
    );
    // The mock's TTFT is 30 ms: the measured p99 is at least that, in ms.
    assert!(
        verdicts[0]["value"].as_f64().unwrap() >= 29.0,
        "{verdicts:?}"
    );
    assert_eq!(verdicts[0]["unit"], "ms");
    assert_eq!(verdicts[2]["value"], 0.0);
    assert!(run.stdout.contains("ttft.p99 > 5.00 ms"), "{}", run.stdout);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        md.contains("| requests | 60 total, 60 ok, 0 failed |"),
        "{md}"
    );
    assert!(md.contains("| `ttft.p99>5ms` |"), "{md}");
    assert!(
        md.contains("**FAILED**") && md.contains("| passed |"),
        "{md}"
    );
    assert!(md.contains("| ttft |"), "{md}");
}

#[test]
fn passing_thresholds_keep_the_runs_own_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let ok = run(
        llmvolley(),
        &[
            &w,
            "--mock",
            "-q",
            "-c",
            "16",
            "--fail-on",
            "latency.p99>30s,requests_per_s<0.1",
        ],
        &tmp.path().join("ok"),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(ok.summary["thresholds"].as_array().unwrap().len(), 2);
    // Some requests fail (exit 1) but the gate on the error rate allows it: still 1, not 3.
    let faulty = run(
        llmvolley(),
        &[
            &w,
            "--mock",
            "-q",
            "-c",
            "16",
            "--mock-fault-rate",
            "0.05",
            "--mock-faults",
            "server_error",
            "--max-retries",
            "0",
            "--fail-on",
            "error_rate>50%",
        ],
        &tmp.path().join("faulty"),
    );
    assert_eq!(faulty.code, 1, "{}", faulty.stderr);
    assert_eq!(faulty.summary["thresholds"][0]["failed"], false);
}

#[test]
fn a_threshold_with_nothing_to_judge_fails_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    // Not streamed: no TTFT was measured, so a TTFT gate cannot pass.
    let run = bench(
        &[
            &w,
            "--mock",
            "--requests",
            "20",
            "--fail-on",
            "ttft.p99>10s",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let verdict = &run.summary["thresholds"][0];
    assert_eq!(verdict["value"], serde_json::Value::Null);
    assert!(
        verdict["note"].as_str().unwrap().contains("--stream"),
        "{verdict}"
    );
}

#[test]
fn bad_fail_on_expressions_are_setup_errors_sent_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    for (expression, says) in [
        ("ttft>500ms", "say which figure"),
        ("latncy.p99>1s", "not a figure of the summary"),
        ("ttft.p99>fast", "expected a time"),
        ("error_rate=1%", "expected METRIC>LIMIT"),
        ("goodput<10/s", "needs --slo"),
    ] {
        let out = tmp.path().join("never");
        let output = llmvolley()
            .args([
                "bench",
                &w,
                "--mock",
                "--requests",
                "5",
                "--fail-on",
                expression,
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{expression}: {stderr}");
        assert!(stderr.contains(says), "{expression}: {stderr}");
        assert!(
            !out.join("records.jsonl").exists(),
            "{expression}: something was sent"
        );
    }
}

#[test]
fn a_sweep_names_the_steps_that_failed_a_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let markdown = tmp.path().join("sweep.md");
    let w = varied_workload();
    let run = bench(
        &[
            &w,
            "--mock",
            "--profile",
            "sweep",
            "--steps",
            "1",
            "--requests",
            "30",
            "--mock-latency",
            "20ms",
            // Every step fails it (the mock takes 20 ms), so every row names it.
            "--fail-on",
            "latency.p50>1ms",
            "--summary-markdown",
            markdown.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",failed_gates,interrupted,saturated,stopped_after_s"),
        "{csv}"
    );
    assert_eq!(
        csv.lines()
            .skip(1)
            .filter(|l| l.ends_with(",latency.p50>1ms,false,,"))
            .count(),
        3,
        "{csv}"
    );
    assert!(
        run.stdout.contains("step 1 failed latency.p50>1ms"),
        "{}",
        run.stdout
    );
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert_eq!(md.matches("`latency.p50>1ms`").count(), 3, "{md}");
}

#[test]
fn summary_markdown_appends_and_an_unwritable_path_stops_before_sending() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let markdown = tmp.path().join("step-summary.md");
    std::fs::write(&markdown, "## earlier step\n").unwrap();
    let first = bench(
        &[
            &w,
            "--mock",
            "--requests",
            "10",
            "--summary-markdown",
            markdown.to_str().unwrap(),
        ],
        &tmp.path().join("one"),
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let text = std::fs::read_to_string(&markdown).unwrap();
    assert!(
        text.starts_with("## earlier step\n### llmvolley summary"),
        "{text}"
    );
    let out = tmp.path().join("never");
    let output = llmvolley()
        .args([
            "bench",
            &w,
            "--mock",
            "--requests",
            "10",
            "--summary-markdown",
        ])
        .arg(tmp.path().join("no-such-folder/summary.md"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--summary-markdown"), "{stderr}");
    assert!(!out.join("records.jsonl").exists(), "nothing was sent");
}
