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

/// A raw hostile server (bounded: each answer at most a few MB, each stream at most 1,000 events):
/// answers past `--max-answer-bytes` end as `answer_too_large`, an error page is read only as far
/// as its message needs, and a body of whitespace is an empty body.
#[tokio::test]
async fn answers_past_the_byte_cap_end_as_answer_too_large_and_hold_nothing_more() {
    use crate::common::scripted::*;
    let server = serve(|seen| match case_of(seen) {
        "big_body" => {
            let text = "x".repeat(3 << 20);
            let body = format!(
                r#"{{"object":"response","status":"completed","output":[{{"type":"message","content":[{{"type":"output_text","text":"{text}"}}]}}]}}"#
            );
            vec![whole(200, "application/json", "", &body)]
        }
        "endless" => {
            // 2 KB a delta every ms: a stream that would run for ever, cut at 1 MiB.
            let delta = format!(r#"{{"content":"{}"}}"#, "y".repeat(2048));
            let mut steps = vec![chunked_head("text/event-stream", "")];
            for _ in 0..1000 {
                steps.push(chat_chunk(&delta, "null"));
                steps.push(wait_ms(1));
            }
            steps
        }
        "big_error" => vec![whole(
            500,
            "text/plain",
            "",
            &format!("Internal error {}", "z".repeat(5 << 20)),
        )],
        _ => vec![whole(200, "application/json", "", &" ".repeat(4 << 20))],
    })
    .await;
    let body = r#"{"model":"m","input":"hi","stream":true}"#;
    let (run, _tmp) = run_cases(
        &server,
        &["big_body", "endless", "big_error", "blank"],
        body,
        &[
            "--max-retries",
            "0",
            "--max-answer-bytes",
            "1MiB",
            "-c",
            "4",
        ],
    )
    .await;
    for id in ["big_body", "endless"] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "invalid_response", "{id}: {}", r["error"]);
        assert_eq!(r["error"]["kind"], "answer_too_large", "{id}");
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--max-answer-bytes"),
            "{id}"
        );
        // Only the head of what arrived is kept: the record stays small.
        assert!(
            r.to_string().len() < 70_000,
            "{id}: {} bytes",
            r.to_string().len()
        );
    }
    let error = run.by_id("big_error");
    assert_eq!(error["status"], "http_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 500: Internal error")
    );
    assert!(error["error"]["message"].as_str().unwrap().len() < 1024);
    // Blank bytes are the 4 MiB the cap counts: past 1 MiB it is cut as well.
    assert_eq!(run.by_id("blank")["error"]["kind"], "answer_too_large");
    let records = std::fs::metadata(run.dir.join("records.jsonl"))
        .unwrap()
        .len();
    assert!(
        records < 200 * 1024,
        "records.jsonl holds no runaway answer: {records} bytes"
    );
}

#[tokio::test]
async fn an_error_body_is_read_no_further_than_its_bound() {
    use crate::common::scripted::*;
    // 32 MiB: more than loopback socket buffers hold, so the server sees its write fail when the
    // client drops the connection; a client reading the body to its end lets every write succeed.
    let server = serve(|_| {
        vec![whole(
            500,
            "text/plain",
            "",
            &format!("Internal error {}", "z".repeat(32 << 20)),
        )]
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["big_error"],
        r#"{"model":"m","input":"hi"}"#,
        &["--max-retries", "0"],
    )
    .await;
    let error = &run.records[0];
    assert_eq!(error["status"], "http_error", "{}", error["error"]);
    assert_eq!(
        server.cut_by_client(),
        1,
        "the client dropped the connection past the error-body bound instead of reading 32 MiB"
    );
}

#[tokio::test]
async fn a_body_of_whitespace_is_an_empty_body() {
    use crate::common::scripted::*;
    let server = serve(|_| vec![whole(200, "application/json", "", &" ".repeat(8 << 20))]).await;
    let (run, _tmp) = run_cases(
        &server,
        &["blank"],
        r#"{"model":"m","input":"hi"}"#,
        &["--max-retries", "0"],
    )
    .await;
    assert_eq!(
        run.records[0]["error"]["kind"], "empty_body",
        "{}",
        run.records[0]
    );
}

/// What a hostile server says reaches no spreadsheet formula, no live Markdown and no terminal
/// escape: CSV cells are neutralised, Markdown escaped, control characters replaced.
#[tokio::test]
async fn server_text_is_inert_in_csv_markdown_and_the_terminal() {
    use crate::common::scripted::*;
    let server = serve(|seen| match case_of(seen) {
        "formula" => vec![whole(
            200,
            "application/json",
            "",
            r#"{"object":"response","status":"completed","model":"@evil","output":[{"type":"message","content":[{"type":"output_text","text":"=HYPERLINK(\"http://x\",\"click\")"}]}],"usage":{"input_tokens":1,"output_tokens":1}}"#,
        )],
        _ => vec![whole(
            400,
            "application/json",
            "",
            r#"{"error":{"message":"bad \u001b]0;pwned\u0007\u001b[2J request","code":"x` | ![t](http://evil.example/p.png)"}}"#,
        )],
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = case_workload(
        tmp.path(),
        &["formula", "escape"],
        r#"{"model":"m","input":"hi"}"#,
    );
    let markdown = tmp.path().join("summary.md");
    let run = run_endpoint(
        &server.endpoint(),
        &workload,
        &[
            "--max-retries",
            "0",
            "--summary-markdown",
            markdown.to_str().unwrap(),
        ],
        &tmp.path().join("out"),
    )
    .await;
    let formula = run.csv_rows.iter().find(|r| r["id"] == "formula").unwrap();
    assert_eq!(
        formula["output_text"],
        "'=HYPERLINK(\"http://x\",\"click\")"
    );
    assert_eq!(formula["model"], "'@evil");
    // JSONL keeps the value as it came.
    assert_eq!(
        run.by_id("formula")["output_text"],
        "=HYPERLINK(\"http://x\",\"click\")"
    );
    assert!(
        !run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout.contains("bad \u{FFFD}]0;pwned"),
        "{}",
        run.stdout
    );
    let page = std::fs::read_to_string(&markdown).unwrap();
    assert!(!page.contains("![t](http"), "{page}");
    assert!(page.contains("x\\` \\| \\!\\[t\\]"), "{page}");
}

/// A server that echoes the credentials it received (in its error body, in its answer) gets them
/// written nowhere: records, CSV, summary, Batch files and stdout say `<redacted>`.
#[tokio::test]
async fn echoed_credentials_are_redacted_everywhere_they_would_be_written() {
    use crate::common::scripted::*;
    const KEY: &str = "sk-hostile-test-0123456789abcdef";
    const HEADER_SECRET: &str = "gateway-secret-value-42";
    let server = serve(|seen| match case_of(seen) {
        "error" => vec![whole(
            401,
            "application/json",
            "",
            &format!(
                r#"{{"error":{{"message":"Invalid key: Bearer {KEY}; x-api-key {HEADER_SECRET}","code":"invalid_api_key"}}}}"#
            ),
        )],
        _ => vec![whole(
            200,
            "application/json",
            "",
            &format!(
                r#"{{"object":"response","status":"completed","model":"{KEY}","output":[{{"type":"message","content":[{{"type":"output_text","text":"You sent {KEY}"}}]}}],"usage":{{"input_tokens":1,"output_tokens":3}}}}"#
            ),
        )],
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = case_workload(
        tmp.path(),
        &["error", "answer"],
        r#"{"model":"m","input":"hi"}"#,
    );
    let out = tmp.path().join("out");
    let mut cmd = llmvolley();
    cmd.env("OPENAI_API_KEY", KEY);
    let run = run_async(
        cmd,
        &[
            workload.to_str().unwrap(),
            "--endpoint",
            &server.endpoint(),
            "--max-retries",
            "0",
            "--give-up-after",
            "0",
            "--batch-output",
            "--save-responses",
            "-H",
            &format!("x-api-key: {HEADER_SECRET}"),
            "-v",
        ],
        &out,
    )
    .await;
    assert_eq!(run.records.len(), 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("attempt finished"),
        "-v logs each attempt, so its lines are checked too: {}",
        run.stderr
    );
    let mut written = format!("{}\n{}", run.stdout, run.stderr);
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            written.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(!written.contains(KEY), "the key was written");
    assert!(
        !written.contains(HEADER_SECRET),
        "the header's secret was written"
    );
    assert!(
        run.by_id("error")["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid key: <redacted>; x-api-key <redacted>"),
        "{}",
        run.by_id("error")
    );
    assert_eq!(run.by_id("answer")["output_text"], "You sent <redacted>");
}
