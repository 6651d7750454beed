//! Retries against an independent HTTP mock (wiremock): what is retried, what is not, and what the
//! records and summary say about it.

use crate::common::*;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const OK: &str = r#"{"object":"response","status":"completed","model":"gpt-4.1","output":[{"type":"message","content":[{"type":"output_text","text":"fine"}]}],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}"#;

fn fails(status: u16, body: &str) -> ResponseTemplate {
    // A short server-asked wait keeps the test fast and shows it is honoured.
    ResponseTemplate::new(status)
        .set_body_raw(body.as_bytes().to_vec(), "application/json")
        .insert_header("retry-after-ms", "5")
}

/// `case` answers `failures` times with `first`, then OK.
async fn flaky(server: &MockServer, case: &str, first: ResponseTemplate, failures: u64) {
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(format!(
            r#""case":"{case}""#
        )))
        .respond_with(first)
        .up_to_n_times(failures)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(format!(
            r#""case":"{case}""#
        )))
        .respond_with(ResponseTemplate::new(200).set_body_raw(OK, "application/json"))
        .with_priority(2)
        .mount(server)
        .await;
}

#[tokio::test]
async fn retryable_failures_are_retried_and_others_are_not() {
    let server = MockServer::start().await;
    let rate_limited = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
    let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
    let bad =
        r#"{"error":{"message":"Unknown parameter","type":"invalid_request_error","code":null}}"#;
    flaky(&server, "503", fails(503, ""), 2).await;
    flaky(&server, "429", fails(429, rate_limited), 1).await;
    flaky(&server, "quota", fails(429, quota), 1).await;
    flaky(&server, "400", fails(400, bad), 1).await;
    flaky(
        &server,
        "no_retry_header",
        fails(500, "").insert_header("x-should-retry", "false"),
        1,
    )
    .await;
    flaky(
        &server,
        "retry_header",
        fails(400, bad).insert_header("x-should-retry", "true"),
        1,
    )
    .await;
    flaky(&server, "always_500", fails(500, ""), 100).await;
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        "503",
        "429",
        "quota",
        "400",
        "no_retry_header",
        "retry_header",
        "always_500",
    ];
    let workload = tmp.path().join("w.jsonl");
    let lines: Vec<String> = cases
        .iter()
        .map(|c| format!(r#"{{"custom_id":"{c}","url":"/v1/responses","body":{{"case":"{c}","model":"gpt-4.1","input":"hi"}}}}"#))
        .collect();
    std::fs::write(&workload, lines.join("\n")).unwrap();
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "3"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);

    let expect = |id: &str, status: &str, attempts: u64, errors: &[&str]| {
        let r = run.by_id(id);
        assert_eq!(r["status"], status, "{id}: {r}");
        assert_eq!(r["attempts"], attempts, "{id}: {r}");
        let got: Vec<&str> = r["attempt_errors"]
            .as_array()
            .map(|a| a.iter().map(|e| e.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(got, errors, "{id}");
    };
    expect("503", "ok", 3, &["http_503", "http_503"]);
    expect("429", "ok", 2, &["rate_limit_exceeded"]);
    expect("quota", "http_error", 1, &[]);
    expect("400", "http_error", 1, &[]);
    expect("no_retry_header", "http_error", 1, &[]);
    expect("retry_header", "ok", 2, &["invalid_request_error"]);
    expect(
        "always_500",
        "http_error",
        4,
        &["http_500", "http_500", "http_500"],
    );

    assert_eq!(run.summary["retries"], 2 + 1 + 1 + 3);
    assert_eq!(run.summary["retried_errors_by_kind"]["http_500"], 3);
    assert_eq!(run.summary["retried_errors_by_kind"]["http_503"], 2);
    let csv = run.csv_rows.iter().find(|r| r["id"] == "503").unwrap();
    assert_eq!(csv["attempt_errors"], "http_503;http_503");
}

#[tokio::test]
async fn broken_streams_and_timeouts_are_retried() {
    let server = MockServer::start().await;
    let truncated = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Cut\"}\n\n";
    flaky(
        &server,
        "stream",
        ResponseTemplate::new(200).set_body_raw(truncated, "text/event-stream"),
        1,
    )
    .await;
    flaky(
        &server,
        "slow",
        ResponseTemplate::new(200)
            .set_body_raw(OK, "application/json")
            .set_delay(std::time::Duration::from_secs(5)),
        1,
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(
        &workload,
        "{\"custom_id\":\"stream\",\"url\":\"/v1/responses\",\"body\":{\"case\":\"stream\",\"input\":\"hi\",\"stream\":true}}\n{\"custom_id\":\"slow\",\"url\":\"/v1/responses\",\"body\":{\"case\":\"slow\",\"input\":\"hi\"}}\n",
    )
    .unwrap();
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--timeout", "300ms"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.by_id("stream")["attempt_errors"][0], "stream_truncated");
    assert_eq!(run.by_id("stream")["status"], "ok");
    assert_eq!(run.by_id("slow")["attempt_errors"][0], "timeout");
    assert_eq!(run.by_id("slow")["status"], "ok");
}
