//! The traps a new user meets, each refused or explained: closed pipes, dead endpoints, wrong files,
//! resume that just works.

use crate::common::{bench, llmvolley, mock_process, output_text, run, run_async, workspace_file};
use std::process::Stdio;

#[test]
fn a_closed_stdout_pipe_ends_quietly_with_the_runs_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    for command in ["run", "bench"] {
        let out = tmp.path().join(command);
        let mut child = llmvolley()
            .arg(command)
            .arg(&workload)
            .args(["--mock", "-q", "--out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // `| head -0`: the reader is gone before the first line is printed.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(0), "{command}: {stderr}");
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert!(
            out.join("summary.json").is_file(),
            "{command}: results are written"
        );
    }
}

/// A port nothing listens on (connections are refused), and its base URL.
fn refused_endpoint() -> (u16, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (port, format!("http://127.0.0.1:{port}/v1"))
}

/// `n` small Responses bodies.
/// A workload file `name` in `dir` holding `lines`, one per line.
fn workload_of(dir: &std::path::Path, name: &str, lines: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn lines(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("w.jsonl");
    let body: String = (1..=n)
        .map(|i| format!("{{\"model\": \"gpt-4o-mini\", \"input\": \"line {i}\"}}\n"))
        .collect();
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn a_dead_endpoint_stops_the_run_with_one_line_and_resume_sends_every_line_that_never_reached_it() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 200);
    let (port, endpoint) = refused_endpoint();
    let out = tmp.path().join("out");
    let w = workload.to_str().unwrap();
    let first = run(
        llmvolley(),
        &[w, "--endpoint", &endpoint, "-q", "-c", "4"],
        &out,
    );
    assert_eq!(first.code, 2, "{}", first.stderr);
    let said: Vec<&str> = first
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(said.len(), 1, "{}", first.stderr);
    assert!(
        said[0].contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && said[0].contains("is the server running"),
        "{}",
        said[0]
    );
    assert_eq!(first.records.len(), 200, "every line ends as one record");
    let gave_up = first
        .records
        .iter()
        .filter(|r| r["error"]["kind"] == "gave_up")
        .count();
    assert!(
        gave_up >= 190,
        "only the first attempts were sent: {gave_up}"
    );
    assert!(
        first.summary["gave_up"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );

    let refused = first
        .records
        .iter()
        .filter(|r| r["status"] == "connect_error")
        .count();
    assert!(refused > 0, "the first attempts were refused");
    // No attempt reached a server, so plain --resume sends every line: no --retry-failed needed.
    let second = run(llmvolley(), &[w, "--mock", "-q", "--resume"], &out);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.records.len(), 200);
    assert!(second.records.iter().all(|r| r["status"] == "ok"));
}

async fn refusing(status: u16) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn an_endpoint_refusing_every_request_stops_the_run_and_says_what_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 100);
    let w = workload.to_str().unwrap().to_string();
    for (status, base, says) in [
        (401, "/v1", "check the API key"),
        (403, "/v1", "lacks access"),
        (404, "", "has no /v1 at its end"),
        (404, "/v1", "check --endpoint and --api"),
    ] {
        let server = refusing(status).await;
        let endpoint = format!("{}{base}", server.uri());
        let out = tmp.path().join(format!("out-{status}{}", base.len()));
        let mut cmd = llmvolley();
        cmd.env("OPENAI_API_KEY", "sk-wrong-key-for-this-test");
        let run = run_async(cmd, &[&w, "--endpoint", &endpoint, "-q"], &out).await;
        assert_eq!(run.code, 2, "{status}{base}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{status}{base}: {}", run.stderr);
        assert_eq!(run.records.len(), 100);
        let sent = server.received_requests().await.unwrap().len();
        assert!(sent < 30, "{status}{base}: {sent} requests sent");
    }
}

#[test]
fn give_up_after_zero_never_gives_up() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 12);
    let (_, endpoint) = refused_endpoint();
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "-q",
            "--max-retries",
            "0",
            "--give-up-after",
            "0",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.records.iter().all(|r| r["status"] == "connect_error"));
}

#[test]
fn slos_need_a_unit_and_ttft_needs_a_streamed_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 4);
    let w = workload.to_str().unwrap();
    for (slo, says) in [
        ("ttft=500", "500 what? give a unit, e.g. ttft=500ms"),
        ("e2e=2", "2 what?"),
        ("ttft=500ms", "add --stream"),
        ("tpot=50ms", "add --stream"),
    ] {
        let run = bench(&[w, "--mock", "--slo", slo], &tmp.path().join("refused"));
        assert_eq!(run.code, 2, "{slo}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{slo}: {}", run.stderr);
        assert!(run.records.is_empty(), "{slo}: nothing is sent");
    }
    let streamed = bench(
        &[w, "--mock", "--stream", "--slo", "ttft=500ms,tpot=50ms"],
        &tmp.path().join("streamed"),
    );
    assert_eq!(streamed.code, 0, "{}", streamed.stderr);
    assert_eq!(streamed.summary["slo"]["share_ttft"], 1.0);
}

#[test]
fn files_that_are_not_jsonl_are_refused_before_sending_with_how_to_convert() {
    let tmp = tempfile::tempdir().unwrap();
    let body = r#"{"model": "gpt-4o-mini", "input": "hi"}"#;
    let mostly_bad: String = (0..10)
        .map(|i| {
            if i % 3 == 0 {
                format!("{body}\n")
            } else {
                format!("prompt {i}\n")
            }
        })
        .collect();
    for (name, text, says) in [
        ("array.json", format!("[{body}, {body}]\n"), "jq -c '.[]'"),
        (
            "array-pretty.json",
            format!("[\n  {body},\n  {body}\n]\n"),
            "jq -c '.[]'",
        ),
        (
            "pretty.json",
            "{\n  \"model\": \"gpt-4o-mini\",\n  \"input\": \"hi\"\n}\n".to_string(),
            "jq -c .",
        ),
        (
            "prompts.csv",
            "id,prompt\n1,hello\n2,bye\n".to_string(),
            "csv.DictReader",
        ),
        (
            "mostly-bad.jsonl",
            mostly_bad,
            "6 of its first 10 lines cannot be sent",
        ),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        let shown = path.display().to_string();
        for command in ["run", "bench", "estimate"] {
            let out = tmp.path().join(format!("{name}-{command}"));
            let mut cmd = llmvolley();
            cmd.arg(command).arg(&path);
            if command != "estimate" {
                cmd.args(["--mock", "--out"]).arg(&out);
            }
            let output = cmd.output().unwrap();
            let (_, stderr) = output_text(&output);
            assert_eq!(output.status.code(), Some(2), "{command} {name}: {stderr}");
            assert!(
                stderr.contains(&format!("{shown}:")) && stderr.contains("is not a JSONL workload"),
                "{command} {name}: {stderr}"
            );
            assert!(stderr.contains(says), "{command} {name}: {stderr}");
            assert!(
                !out.exists(),
                "{command} {name}: nothing is written or sent"
            );
        }
    }
}

#[test]
fn the_summary_names_the_top_errors_with_one_message_each() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "--max-retries",
            "0",
            "--mock-fault-rate",
            "0.3",
            "--mock-faults",
            "server_error,html_page",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let top = run.summary["top_errors"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert!(top[0]["count"].as_u64() >= top[1]["count"].as_u64());
    for e in top {
        let line = format!(
            "{} ×{}: {}",
            e["kind"].as_str().unwrap(),
            e["count"],
            e["example"].as_str().unwrap()
        );
        assert!(run.stdout.contains(&line), "{line} not in\n{}", run.stdout);
    }
    assert!(
        run.stdout.contains("HTML page \"502 Bad Gateway\""),
        "{}",
        run.stdout
    );
}

#[test]
fn the_mock_serves_under_v1_only_and_refuses_bodies_the_route_cannot_take() {
    let tmp = tempfile::tempdir().unwrap();
    let (mock, base) = mock_process();
    let without_v1 = base.trim_end_matches("/v1").to_string();
    let workload = lines(tmp.path(), 20);
    let missing_v1 = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--endpoint", &without_v1, "-q"],
        &tmp.path().join("no-v1"),
    );
    let cases = tmp.path().join("cases.jsonl");
    std::fs::write(
        &cases,
        [
            r#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#,
            r#"{"input": "no model"}"#,
            r#"{"custom_id": "chat-with-input", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini", "input": "hi"}}"#,
            r#"{"model": "gpt-4o-mini", "input": "fine"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let refused = run(
        llmvolley(),
        &[
            cases.to_str().unwrap(),
            "--endpoint",
            &base,
            "-q",
            "--give-up-after",
            "0",
        ],
        &tmp.path().join("cases"),
    );
    drop(mock);

    // A base URL without /v1 fails against the mock as it would against the real API.
    assert_eq!(missing_v1.code, 2, "{}", missing_v1.stderr);
    assert!(
        missing_v1.stderr.contains("has no /v1 at its end"),
        "{}",
        missing_v1.stderr
    );

    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let message = |id: &str| {
        let r = refused.by_id(id);
        assert_eq!(
            (r["status"].as_str(), r["http_status"].as_u64()),
            (Some("http_error"), Some(400)),
            "{id}"
        );
        r["error"]["message"].as_str().unwrap().to_string()
    };
    // A bare Chat body goes to Chat by its shape; a Batch line's url is its own, and the mock
    // refuses a body the route cannot take as the API does.
    assert_eq!(refused.by_id("1")["status"], "ok", "{}", refused.by_id("1"));
    assert!(message("2").contains("you must provide a model parameter"));
    assert!(message("chat-with-input").contains("Missing required parameter: 'messages'"));
    assert_eq!(refused.by_id("4")["status"], "ok");
}

#[test]
fn mock_faults_by_default_never_stall_and_a_huge_answer_counts_as_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 200);
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "-c",
            "16",
            "--mock-fault-rate",
            "0.5",
            "--mock-seed",
            "3",
            "--timeout",
            "2s",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.records.len(), 200);
    let kinds: Vec<&str> = run
        .records
        .iter()
        .flat_map(|r| {
            r["attempt_errors"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(std::iter::once(&r["error"]["kind"]))
        })
        .filter_map(|k| k.as_str())
        .collect();
    assert!(
        !kinds.contains(&"timeout"),
        "a stall was drawn by default: {kinds:?}"
    );
    let huge: Vec<&serde_json::Value> = run
        .records
        .iter()
        .filter(|r| r["error"]["kind"] == "huge_answer")
        .collect();
    assert!(!huge.is_empty(), "the seed draws huge answers");
    assert!(huge.iter().all(|r| r["status"] == "api_error"));
    // The ok answers' figures, not 800,000 tokens per huge answer.
    let output = run.summary["tokens"]["output"].as_u64().unwrap();
    assert!(output < 20_000, "{output}");
}

#[test]
fn max_cost_at_c32_overshoots_at_most_the_requests_in_flight_and_counts_priced_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let limit = 0.05;
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "-c",
            "32",
            "--max-cost",
            "0.05",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cost = &run.summary["cost"];
    assert_eq!(cost["budget_stopped"], true);
    let spent = cost["total_usd"].as_f64().unwrap();
    // Every finished request is spent before its reservation is given back, so what the budget
    // can miss is only what was still in flight when it ran out: at most the 32 last to finish.
    let mut sent: Vec<(f64, f64)> = run
        .records
        .iter()
        .filter_map(|r| {
            let end = r["sent_at"].as_f64()? + r["latency_ms"].as_f64()?;
            Some((end, r["cost_usd"].as_f64().unwrap_or(0.0)))
        })
        .collect();
    sent.sort_by(|a, b| b.0.total_cmp(&a.0));
    let in_flight_at_most: f64 = sent.iter().take(32).map(|(_, cost)| cost).sum();
    assert!(
        spent - limit <= in_flight_at_most,
        "spent {spent}: more than the last 32 requests ({in_flight_at_most}) past {limit}"
    );
    // Per model, `requests` counts the priced answers, not the lines skipped unsent.
    let by_model: u64 = cost["by_model"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(by_model, cost["priced_requests"].as_u64().unwrap());
    let skipped = run.summary["requests"]["by_status"]["skipped_budget"]
        .as_u64()
        .unwrap();
    assert!(skipped > 500, "{skipped}");
}

#[test]
fn lines_left_unsent_are_counted_with_the_command_that_sends_them() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 30);
    let first = llmvolley()
        .arg("run")
        .arg(&workload)
        .args([
            "--mock",
            "-q",
            "--requests",
            "10",
            "-H",
            "Authorization: Bearer sk-not-for-files",
        ])
        .arg("-Hx-api-key: sk-joined-to-the-flag")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&first);
    // Lines a limit left unsent are not failures: exit 0, and the summary says what is left.
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("30 total, 10 ok, 0 failed, 20 not sent (not failures)"),
        "{stdout}"
    );
    // The default run folder: named in the first line.
    let dir = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run folder   "))
        .expect("run folder line")
        .to_string();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join(&dir).join("summary.json")).unwrap(),
    )
    .unwrap();
    let command = summary["resume_command"].as_str().unwrap();
    assert!(
        stdout.contains(&format!(
            "not done (--duration/--requests): 20 — `{command}` continues with the next of them"
        )),
        "{stdout}"
    );
    assert!(
        command.ends_with("--resume") && command.contains(&format!("--out {dir}")),
        "{command}"
    );
    assert!(command.contains("'Authorization: <redacted>'"), "{command}");
    for secret in ["sk-not-for-files", "sk-joined-to-the-flag"] {
        assert!(
            !stdout.contains(secret) && !command.contains(secret),
            "{command}"
        );
    }
    // The printed command, run as printed, sends the next 10, then the last 10.
    let words = shlex::split(command).unwrap();
    for expected in [0, 0] {
        let next = llmvolley()
            .args(&words[1..])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let (_, stderr) = output_text(&next);
        assert_eq!(next.status.code(), Some(expected), "{stderr}");
    }
}

#[test]
fn progress_is_printed_as_plain_lines_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 40);
    let w = workload.to_str().unwrap();
    // 40 answers of 50 ms, 2 at a time: about a second, a line every 200 ms.
    let args = [
        w,
        "--mock",
        "--mock-latency",
        "50ms",
        "-c",
        "2",
        "--progress-every",
        "200ms",
    ];
    let shown = run(llmvolley(), &args, &tmp.path().join("shown"));
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let lines: Vec<&str> = shown
        .stderr
        .lines()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(lines.len() >= 2, "{}", shown.stderr);
    for line in &lines {
        assert!(
            line.contains("/40 done") && line.contains("req/s") && line.contains("errors 0"),
            "{line}"
        );
        assert!(line.contains("ETA"), "{line}");
    }
    let mut quiet_args = args.to_vec();
    quiet_args.push("-q");
    let quiet = run(llmvolley(), &quiet_args, &tmp.path().join("quiet"));
    assert!(!quiet.stderr.contains("progress "), "{}", quiet.stderr);
}

#[test]
fn csv_numbers_are_plain_decimals_and_costs_carry_no_float_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 20);
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-q"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for row in &run.csv_rows {
        for (column, value) in row {
            let numeric = value.parse::<f64>().is_ok();
            assert!(
                !(numeric && value.contains(['e', 'E'])),
                "{column} = {value}: not plain decimal"
            );
        }
        let cost = &row["cost_usd"];
        let decimals = cost.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            decimals <= 9 && cost.parse::<f64>().unwrap() > 0.0,
            "cost {cost}"
        );
        let latency = &row["latency_ms"];
        assert!(
            latency.split_once('.').map_or(0, |(_, d)| d.len()) <= 3,
            "{latency}"
        );
    }
    for r in &run.records {
        let cost = r["cost_usd"].as_f64().unwrap();
        assert_eq!(
            (cost * 1e9).round() / 1e9,
            cost,
            "{cost}: to the nano-dollar"
        );
    }
}

#[test]
fn batch_output_writes_the_openai_batch_output_and_error_files() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workload_of(
        tmp.path(),
        "batch.jsonl",
        &[
            r#"{"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-4.1-mini", "input": "one"}}"#,
            r#"{"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "two"}]}}"#,
            r#"{"custom_id": "c", "method": "POST", "url": "/v1/responses", "body": {"input": "no model"}}"#,
        ],
    );
    let out = tmp.path().join("out");
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "--batch-output",
            "--give-up-after",
            "0",
        ],
        &out,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("output.jsonl: 2 answers, errors.jsonl: 1 errors"),
        "{}",
        run.stdout
    );
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let output = read("output.jsonl");
    let by_id = |id: &str| {
        output
            .iter()
            .find(|l| l["custom_id"] == id)
            .unwrap()
            .clone()
    };
    let a = by_id("a");
    assert_eq!(a["response"]["status_code"], 200);
    assert_eq!(a["response"]["body"]["object"], "response");
    assert!(a["error"].is_null());
    assert!(a["id"].as_str().unwrap().starts_with("batch_req_"));
    assert_eq!(by_id("b")["response"]["body"]["object"], "chat.completion");
    let errors = read("errors.jsonl");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["custom_id"], "c");
    assert_eq!(errors[0]["response"]["status_code"], 400);
    assert!(
        errors[0]["response"]["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model")
    );
    assert_eq!(errors[0]["error"]["code"], "invalid_request_error");
}

#[test]
fn help_reads_in_the_order_a_user_needs_and_folds_the_mock_knobs_out_of_short_help() {
    let help = |args: &[&str]| output_text(&llmvolley().args(args).output().unwrap()).0;
    for command in ["run", "bench"] {
        let long = help(&[command, "--help"]);
        let at = |needle: &str| {
            long.find(needle)
                .unwrap_or_else(|| panic!("{command} --help has no {needle:?}:\n{long}"))
        };
        // First the options every run needs, then the groups in the order they are needed.
        let order = [
            "--endpoint <URL>",
            "--mock\n",
            "--concurrency",
            "--out <DIR>",
            "--stream\n",
            "--verbose",
            "\nEndpoint and API key:",
            "\nLoad:",
            "\nLimits and retries:",
            "\nOutput:",
            "\nCost:",
            "\nGates:",
            "\nShards:",
            "\nMock (with --mock; listed by --help):",
            "\nExamples:\n",
        ];
        let places: Vec<usize> = order.iter().map(|n| at(n)).collect();
        assert!(
            places.windows(2).all(|w| w[0] < w[1]),
            "{command}: {order:?} at {places:?}"
        );
        let examples = &long[at("\nExamples:\n") + "\nExamples:\n".len()..];
        let lines: Vec<&str> = examples.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 2, "{examples}");
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with(&format!("  llmvolley {command} ")))
        );
        // Every option taking a value states its default once, or says why there is none.
        assert!(long.contains("[default: 10s]") && long.contains("[default: 10]"));
        assert!(
            long.lines().all(|l| l.matches("[default:").count() <= 1),
            "{command}: an option with two defaults"
        );
        // -h leaves the mock's knobs (a third of the options) to --help.
        let short = help(&[command, "-h"]);
        assert!(!short.contains("--mock-latency"), "{short}");
        assert!(
            short.contains("--mock ") && short.contains("listed by --help")
                || short.contains("--mock")
        );
    }
    // The mock command's knobs are its answers, not "with --mock".
    let mock = help(&["mock", "--help"]);
    assert!(
        mock.contains("\nAnswers and faults:") && !mock.contains("with --mock"),
        "{mock}"
    );
    assert!(mock.contains("--host <HOST>"), "{mock}");
    // -v is offered only where it logs something.
    for (command, has) in [
        ("run", true),
        ("bench", true),
        ("estimate", false),
        ("report", false),
        ("generate", false),
    ] {
        assert_eq!(
            help(&[command, "-h"]).contains("--verbose"),
            has,
            "{command}"
        );
    }
    let guide = std::fs::read_to_string(workspace_file("docs/run.md")).unwrap();
    let help = output_text(&llmvolley().args(["run", "--help"]).output().unwrap()).0;
    for tpm in ["else 256", "beyond its estimate"] {
        assert!(
            guide.contains(tpm) && help.contains(tpm),
            "--tpm: docs/run.md and --help agree on {tpm:?}"
        );
    }
}

#[test]
fn estimate_gives_a_real_middle_a_total_row_and_says_when_it_is_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workload_of(
        tmp.path(),
        "w.jsonl",
        &[
            r#"{"model": "gpt-4.1-mini", "input": "capped", "max_output_tokens": 100}"#,
            r#"{"model": "gpt-4o-mini", "input": "capped too", "max_output_tokens": 200}"#,
            r#"{"model": "gpt-4o-mini", "input": "no cap"}"#,
            r#"{"model": "gpt-5-nano", "input": "a newer model", "max_output_tokens": 10}"#,
        ],
    );
    let w = workload.to_str().unwrap();
    let json = llmvolley()
        .args(["estimate", w, "--json"])
        .output()
        .unwrap();
    let estimate: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for m in estimate["models"].as_array().unwrap() {
        let (low, expected, high) = (
            m["cost_usd"]["low"].as_f64().unwrap(),
            m["cost_usd"]["expected"].as_f64().unwrap(),
            m["cost_usd"]["high"].as_f64().unwrap(),
        );
        assert!(low < expected && expected < high, "a real middle: {m}");
    }
    let total = &estimate["total"];
    assert_eq!(total["requests"], 4);
    assert_eq!(total["requests_without_output_estimate"], 1);
    assert_eq!(total["output_tokens"]["expected"], 155.0);
    // Every current OpenAI text model is priced (LiteLLM's table).
    let nano = estimate["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "gpt-5-nano");
    assert!(nano.unwrap()["cost_usd"]["high"].as_f64().unwrap() > 0.0);
    let table = output_text(&llmvolley().args(["estimate", w]).output().unwrap()).0;
    assert!(table.lines().any(|l| l.starts_with("total ")), "{table}");
    assert!(
        table.contains("partial: 1 of 4 requests have no output estimate")
            && table.contains("--assume-output N or --from-run DIR"),
        "{table}"
    );
    let complete = output_text(
        &llmvolley()
            .args(["estimate", w, "--assume-output", "50"])
            .output()
            .unwrap(),
    )
    .0;
    assert!(!complete.contains("partial"), "{complete}");
}

#[test]
fn bench_progress_names_the_step_the_warm_up_and_the_time_left() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 10);
    let output = llmvolley()
        .arg("bench")
        .arg(&workload)
        .args([
            "--mock",
            "--mock-latency",
            "20ms",
            "--profile",
            "sweep",
            "--steps",
            "1",
        ])
        .args([
            "--duration",
            "800ms",
            "--warmup",
            "300ms",
            "--progress-every",
            "150ms",
        ])
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("progress "))
        .collect();
    assert!(
        progress
            .iter()
            .any(|l| l.contains("step 1/3 synchronous warm-up")),
        "{stderr}"
    );
    assert!(
        progress.iter().any(|l| l.contains("step 2/3 throughput")),
        "{stderr}"
    );
    assert!(progress.iter().all(|l| l.contains("s left |")), "{stderr}");
}

#[test]
fn a_batch_lines_metadata_is_carried_into_its_record() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workload_of(
        tmp.path(),
        "batch.jsonl",
        &[
            r#"{"custom_id": "a", "method": "POST", "url": "/v1/responses", "metadata": {"customer": "acme", "row": 7}, "body": {"model": "gpt-4.1-mini", "input": "one"}}"#,
            r#"{"custom_id": "b", "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-4.1-mini", "input": "two"}}"#,
        ],
    );
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-q"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.by_id("a")["metadata"],
        serde_json::json!({"customer": "acme", "row": 7})
    );
    assert!(run.by_id("b").get("metadata").is_none());
    let row = run.csv_rows.iter().find(|r| r["id"] == "a").unwrap();
    assert_eq!(row["metadata"], r#"{"customer": "acme", "row": 7}"#);
}

#[test]
fn export_ordered_writes_the_records_in_workload_order() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("out");
    // 32 in flight with jittered answers: records.jsonl is in completion order, not line order.
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "-q",
            "-c",
            "32",
            "--mock-jitter",
            "20ms",
        ],
        &out,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let completion: Vec<u64> = run
        .records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert!(
        completion.windows(2).any(|w| w[0] > w[1]),
        "the run finished out of order"
    );
    let output = llmvolley()
        .args(["export", out.to_str().unwrap(), "--ordered"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let ordered: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = ordered
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, (1..=1000).collect::<Vec<_>>());
    assert_eq!(
        ordered[41],
        *run.records.iter().find(|r| r["line"] == 42).unwrap()
    );
    let none = llmvolley()
        .args(["export", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
}

#[test]
fn the_readme_says_how_to_install_and_links_nothing_outside_the_repository() {
    let readme = std::fs::read_to_string(workspace_file("README.md")).unwrap();
    assert!(readme.contains("cargo install --path ."));
    assert!(
        !readme.contains("../"),
        "a link or path outside the repository"
    );
}

#[test]
fn the_latest_error_kind_shows_in_the_progress_line_and_resumed_rates_are_labelled() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 40);
    let w = workload.to_str().unwrap();
    let out = tmp.path().join("out");
    let first = run(
        llmvolley(),
        &[
            w,
            "--mock",
            "--mock-latency",
            "30ms",
            "-c",
            "2",
            "--max-retries",
            "0",
            "--mock-fault-rate",
            "0.5",
            "--mock-faults",
            "html_page",
            "--progress-every",
            "150ms",
        ],
        &out,
    );
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first
            .stderr
            .lines()
            .any(|l| l.starts_with("progress ") && l.contains("(latest http_502)")),
        "{}",
        first.stderr
    );
    assert!(!first.stdout.contains("this session's"), "{}", first.stdout);
    let resumed = run(
        llmvolley(),
        &[w, "--mock", "-q", "--resume", "--retry-failed"],
        &out,
    );
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        resumed.stdout.contains("ok req/s over this session's"),
        "{}",
        resumed.stdout
    );
}

#[test]
fn a_workload_that_is_not_a_regular_file_or_has_a_few_bad_lines_is_judged_right() {
    let tmp = tempfile::tempdir().unwrap();
    // A pipe would be read up by the checks before the run: refused, nothing sent.
    let output = llmvolley()
        .args(["run", "/dev/stdin", "--mock", "--out"])
        .arg(tmp.path().join("pipe"))
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a regular file"), "{stderr}");
    // A first line that looks like CSV, then good lines: a few bad lines, not a CSV file.
    let workload = tmp.path().join("w.jsonl");
    let mut text = "# prompts, batch 3\n".to_string();
    for i in 0..5 {
        text.push_str(&format!(
            "{{\"model\": \"gpt-4o-mini\", \"input\": \"line {i}\"}}\n"
        ));
    }
    std::fs::write(&workload, text).unwrap();
    let run = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-q"],
        &tmp.path().join("mostly-good"),
    );
    assert_eq!(run.code, 1, "one invalid line: {}", run.stderr);
    assert_eq!(run.records.len(), 6);
}

#[tokio::test]
async fn a_404_about_the_model_is_not_a_dead_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = lines(tmp.path(), 20);
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(404).set_body_raw(
            r#"{"error": {"message": "The model `gpt-4o-mini` does not exist or you do not have access to it.", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let endpoint = format!("{}/v1", server.uri());
    let w = workload.to_str().unwrap().to_string();
    let run = run_async(
        llmvolley(),
        &[&w, "--endpoint", &endpoint, "-q"],
        &tmp.path().join("out"),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.summary["gave_up"].is_null(), "{}", run.stdout);
    assert!(run.records.iter().all(|r| r["http_status"] == 404));
}
