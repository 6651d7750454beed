//! The OpenAI Batch API path: the mock's `/v1/files` and `/v1/batches` (in memory, answered by
//! its own answer engine), its faults, and the object shapes clients rely on.

use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A batch input file of `n` Responses lines.
fn batch_file(n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"custom_id": format!("line-{i}"), "method": "POST", "url": "/v1/responses",
                   "body": {"model": "gpt-4.1-mini", "input": format!("question {i}")}})
            .to_string()
                + "\n"
        })
        .collect()
}

/// Uploads `content`, creates a batch of it and polls it (at most 20 s) until it ends.
async fn run_batch(base: &str, content: String) -> Value {
    let http = reqwest::Client::new();
    let form = reqwest::multipart::Form::new()
        .text("purpose", "batch")
        .part(
            "file",
            reqwest::multipart::Part::text(content).file_name("in.jsonl"),
        );
    let file: Value = http
        .post(format!("{base}/files"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(file["object"], "file", "{file}");
    assert_eq!(file["purpose"], "batch");
    let created: Value = http
        .post(format!("{base}/batches"))
        .json(
            &json!({"input_file_id": file["id"], "endpoint": "/v1/responses",
                      "completion_window": "24h", "metadata": {"run": "test"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["object"], "batch", "{created}");
    assert_eq!(created["metadata"]["run"], "test");
    let id = created["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    loop {
        let batch: Value = http
            .get(format!("{base}/batches/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = batch["status"].as_str().unwrap().to_string();
        if ["completed", "failed", "expired", "cancelled"].contains(&status.as_str()) {
            return batch;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{batch}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn lines_of(base: &str, file: &Value) -> Vec<Value> {
    let Some(id) = file.as_str() else {
        return Vec::new();
    };
    reqwest::get(format!("{base}/files/{id}/content"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_mock_answers_a_batch_through_files_and_batches_with_every_line_once() {
    let (_mock, base) = mock_process_with(&["--mock-batch-time", "500ms"]);
    let batch = run_batch(&base, batch_file(20)).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    assert_eq!(
        batch["request_counts"],
        json!({"total": 20, "completed": 20, "failed": 0})
    );
    for at in ["in_progress_at", "finalizing_at", "completed_at"] {
        assert!(batch[at].is_u64(), "{at}: {batch}");
    }
    let output = lines_of(&base, &batch["output_file_id"]).await;
    let mut ids: Vec<&str> = output
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let first = &output[0];
    assert_eq!(first["response"]["status_code"], 200);
    assert!(
        first["response"]["body"]["usage"]["output_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(first["error"].is_null());
    assert!(batch["error_file_id"].is_null());
    // Both are listed: one batch, its input and output files.
    let listed: Value = reqwest::get(format!("{base}/batches"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let files: Value = reqwest::get(format!("{base}/files"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_mocks_batch_faults_fail_lines_expire_half_done_and_refuse_a_file() {
    let (_mock, base) = mock_process_with(&[
        "--mock-batch-time",
        "300ms",
        "--mock-batch-faults",
        "failed_lines",
    ]);
    let batch = run_batch(&base, batch_file(14)).await;
    assert_eq!(batch["status"], "completed");
    assert_eq!(
        batch["request_counts"],
        json!({"total": 14, "completed": 12, "failed": 2})
    );
    let errors = lines_of(&base, &batch["error_file_id"]).await;
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["error"]["code"], "server_error");

    let (_mock, base) = mock_process_with(&[
        "--mock-batch-time",
        "300ms",
        "--mock-batch-faults",
        "expire",
    ]);
    let batch = run_batch(&base, batch_file(10)).await;
    assert_eq!(batch["status"], "expired", "{batch}");
    assert!(batch["expired_at"].is_u64());
    assert_eq!(
        lines_of(&base, &batch["output_file_id"]).await.len(),
        5,
        "half done"
    );

    let (_mock, base) = mock_process_with(&["--mock-batch-faults", "invalid"]);
    let batch = run_batch(&base, batch_file(3)).await;
    assert_eq!(batch["status"], "failed", "{batch}");
    assert_eq!(batch["errors"]["data"][0]["line"], 1);
    assert!(batch["output_file_id"].is_null());
}

#[tokio::test]
async fn the_mock_refuses_a_batch_whose_lines_do_not_match_its_endpoint() {
    let (_mock, base) = mock_process_with(&[]);
    let mut content = batch_file(2);
    content.push_str(
        &json!({"custom_id": "chat", "method": "POST", "url": "/v1/chat/completions", "body": {}})
            .to_string(),
    );
    content.push_str("\nnot json\n");
    let batch = run_batch(&base, content).await;
    assert_eq!(batch["status"], "failed");
    let lines: Vec<u64> = batch["errors"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4], "{batch}");
}

/// `llmvolley batch WORKLOAD ARGS --out DIR`, its output, and the folder.
fn batch_run(
    workload: &std::path::Path,
    args: &[&str],
    out: &std::path::Path,
) -> (Option<i32>, String, String) {
    let output = llmvolley()
        .arg("batch")
        .arg(workload)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    (output.status.code(), stdout, stderr)
}

/// The folder's records, read as every test reads a run folder.
fn records(dir: &std::path::Path) -> Vec<Value> {
    read_folder(dir, 0).records
}

#[test]
fn ten_thousand_lines_go_through_the_batch_api_in_three_parts_with_the_records_a_live_run_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 10_000);
    let out = tmp.path().join("batch");
    let (code, stdout, stderr) = batch_run(
        &w,
        &[
            "--mock",
            "--mock-batch-time",
            "2s",
            "--max-batch-lines",
            "4000",
            "--poll-every",
            "500ms",
        ],
        &out,
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("batch        3 parts (3 completed)"),
        "{stdout}"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("batches.json")).unwrap()).unwrap();
    let lines: Vec<u64> = state["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lines"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4000, 4000, 2000]);
    let batch = records(&out);
    assert_eq!(batch.len(), 10_000);
    // The same workload live against the same mock: the same ids, statuses and tokens.
    let live_out = tmp.path().join("live");
    let live = run(
        llmvolley(),
        &[w.to_str().unwrap(), "--mock", "-q", "-c", "64"],
        &live_out,
    );
    let key = |r: &Value| {
        (
            r["id"].as_str().unwrap().to_string(),
            r["status"].as_str().unwrap().to_string(),
            r["input_tokens"].as_u64(),
            r["output_tokens"].as_u64(),
        )
    };
    let mut a: Vec<_> = batch.iter().map(key).collect();
    let mut b: Vec<_> = live.records.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a.len(), b.len());
    assert!(
        a == b,
        "first difference: {:?}",
        a.iter().zip(&b).find(|(x, y)| x != y)
    );
    // Half the live price, and both said.
    let summary = read_folder(&out, 0).summary;
    let (cost, live_cost) = (
        summary["batch"]["cost_usd"].as_f64().unwrap(),
        summary["batch"]["live_cost_usd"].as_f64().unwrap(),
    );
    assert!(
        (live_cost / cost - 2.0).abs() < 0.01,
        "{cost} against {live_cost}"
    );
    let live_total = live.summary["cost"]["total_usd"].as_f64().unwrap();
    assert!(
        (live_total - live_cost).abs() < 1e-6,
        "{live_total} against {live_cost}"
    );
}

#[test]
fn a_client_killed_while_it_polls_re_attaches_with_resume_and_submits_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let (_mock, base) = mock_process_with(&["--mock-batch-time", "4s"]);
    let w = questions(tmp.path(), 300);
    let out = tmp.path().join("batch");
    let args = [
        "--endpoint",
        base.as_str(),
        "--max-batch-lines",
        "100",
        "--poll-every",
        "200ms",
        "-q",
    ];
    let mut child = llmvolley()
        .arg("batch")
        .arg(&w)
        .args(args)
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once every part has its batch, while it polls.
    let started = Instant::now();
    loop {
        let state = std::fs::read_to_string(out.join("batches.json")).unwrap_or_default();
        if state.matches("\"batch_id\": \"batch_").count() == 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{state}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, stdout, stderr) = batch_run(&w, &[args.as_slice(), &["--resume"]].concat(), &out);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let list = |what: &str| -> Vec<Value> {
        let answer: Value = rt.block_on(async {
            reqwest::get(format!("{base}/{what}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        answer["data"].as_array().unwrap().clone()
    };
    assert_eq!(list("batches").len(), 3, "no batch created twice");
    let inputs = list("files")
        .iter()
        .filter(|f| f["purpose"] == "batch")
        .count();
    assert_eq!(inputs, 3, "no part uploaded twice");
    let recs = records(&out);
    let mut ids: Vec<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((recs.len(), ids.len()), (300, 300), "every line once");
    assert!(recs.iter().all(|r| r["status"] == "ok"));
}

#[test]
fn an_expired_batch_leaves_its_rest_not_done_and_resume_submits_only_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 40);
    let out = tmp.path().join("batch");
    let (_mock, base) = mock_process_with(&[
        "--mock-batch-time",
        "400ms",
        "--mock-batch-faults",
        "expire",
    ]);
    let args = ["--endpoint", base.as_str(), "--poll-every", "200ms", "-q"];
    let (code, stdout, stderr) = batch_run(&w, &args, &out);
    assert_eq!(code, Some(1), "lines not done: {stdout}{stderr}");
    let first = records(&out);
    let not_done: Vec<&Value> = first.iter().filter(|r| r["status"] == "not_sent").collect();
    assert_eq!(not_done.len(), 20, "half done");
    assert_eq!(not_done[0]["error"]["kind"], "batch_expired");
    let (_, _, stderr) = batch_run(&w, &[args.as_slice(), &["--resume"]].concat(), &out);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("batches.json")).unwrap()).unwrap();
    let parts = state["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{stderr}{state}");
    assert_eq!(parts[0]["rest_in"], 2);
    assert_eq!(parts[1]["lines"], 20, "only the rest went in again");
    let second = records(&out);
    assert_eq!(second.len(), 40);
    // That part expired half-done too: 10 more answered, 10 still to do.
    assert_eq!(second.iter().filter(|r| r["status"] == "ok").count(), 30);
}

#[test]
fn a_refused_key_and_a_refused_batch_each_give_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 3);
    for (upload, says) in [
        (401, ["uploading", "HTTP 401", "check the API key"]),
        (
            200,
            [
                "creating the batch of part 1",
                "HTTP 400",
                "completion_window",
            ],
        ),
    ] {
        let server = refusing(upload);
        let out = tmp.path().join(format!("b{upload}"));
        let (code, _, stderr) = batch_run(&w, &["--endpoint", &server, "-q"], &out);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(says.iter().all(|s| stderr.contains(s)), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// A raw server on 127.0.0.1: `POST /v1/files` answered `upload` (401: a refused key; 200: a
/// file object), `POST /v1/batches` 400, `GET /v1/batches` an empty list.
fn refusing(upload: u16) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = vec![0u8; 1 << 20];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let (status, body) = if head.starts_with("POST /v1/files") {
                if upload == 401 {
                    (
                        401,
                        r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                    )
                } else {
                    (
                        200,
                        r#"{"id":"file-1","object":"file","bytes":10,"created_at":1,"filename":"x.jsonl","purpose":"batch","status":"processed"}"#,
                    )
                }
            } else if head.starts_with("POST /v1/batches") {
                (
                    400,
                    r#"{"error":{"message":"Invalid value for 'completion_window'.","type":"invalid_request_error","param":"completion_window"}}"#,
                )
            } else {
                (200, r#"{"object":"list","data":[],"has_more":false}"#)
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/v1")
}

#[test]
fn cancel_stops_a_runs_batches_and_their_lines_not_done_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (_mock, base) = mock_process_with(&["--mock-batch-time", "6s"]);
    let w = questions(tmp.path(), 60);
    let out = tmp.path().join("batch");
    let child = llmvolley()
        .arg("batch")
        .arg(&w)
        .args([
            "--endpoint",
            base.as_str(),
            "--poll-every",
            "200ms",
            "-q",
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(out.join("batches.json"))
        .unwrap_or_default()
        .contains("\"batch_id\": \"batch_")
    {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let cancelled = llmvolley()
        .arg("batch")
        .arg("--cancel")
        .arg(&out)
        .args(["--endpoint", base.as_str()])
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&cancelled);
    assert_eq!(cancelled.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("cancelling") && stdout.contains("1 batches cancelled"),
        "{stdout}"
    );
    let finished = child.wait_with_output().unwrap();
    assert_eq!(
        finished.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 60);
    let ok = recs.iter().filter(|r| r["status"] == "ok").count();
    let rest: Vec<&Value> = recs.iter().filter(|r| r["status"] == "not_sent").collect();
    assert!(ok > 0 && ok < 60 && ok + rest.len() == 60, "{ok} ok");
    assert_eq!(rest[0]["error"]["kind"], "batch_cancelled");
}

#[test]
fn the_api_key_goes_with_every_batch_call_and_is_written_nowhere() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let heard = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = vec![0u8; 1 << 16];
            let n = stream.read(&mut buf).unwrap_or(0);
            heard
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).to_string());
            let body = r#"{"error":{"message":"Incorrect API key provided: sk-test-****cret.","type":"invalid_request_error"}}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let out = tmp.path().join("b");
    let output = llmvolley()
        .arg("batch")
        .arg(&w)
        .args(["--endpoint", &format!("http://{addr}/v1"), "--out"])
        .arg(&out)
        .env("OPENAI_API_KEY", "sk-test-secret")
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let heard = seen.lock().unwrap().join("\n");
    assert!(
        heard
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-test-secret"),
        "the key went with the upload: {heard}"
    );
    assert!(!stderr.contains("sk-test-secret") && !stdout.contains("sk-test-secret"));
    for entry in files_under(&out) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            !text.contains("sk-test-secret"),
            "{} holds the key",
            entry.display()
        );
    }
}

#[test]
fn a_batch_that_fails_validation_answers_nothing_and_shows_why() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 5);
    let out = tmp.path().join("b");
    let (code, stdout, stderr) = batch_run(
        &w,
        &[
            "--mock",
            "--mock-batch-faults",
            "invalid",
            "--poll-every",
            "100ms",
            "-q",
        ],
        &out,
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("part 1 failed validation, nothing of it answered: Line 1: refused"),
        "{stdout}"
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 5);
    assert!(
        recs.iter()
            .all(|r| r["status"] == "not_sent" && r["error"]["kind"] == "batch_failed")
    );
}

#[test]
fn a_crash_inside_the_upload_or_the_create_call_is_found_again_not_repeated() {
    let tmp = tempfile::tempdir().unwrap();
    let (_mock, base) = mock_process_with(&["--mock-batch-time", "300ms"]);
    let w = questions(tmp.path(), 20);
    let out = tmp.path().join("batch");
    let args = ["--endpoint", base.as_str(), "--poll-every", "100ms", "-q"];
    let (code, stdout, stderr) = batch_run(&w, &args, &out);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // As a client killed after the API answered both calls, before it saved their ids.
    let path = out.join("batches.json");
    let mut state: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let part = &mut state["parts"][0];
    for key in [
        "file_id",
        "batch_id",
        "status",
        "output_file_id",
        "error_file_id",
    ] {
        part[key] = Value::Null;
    }
    part["downloaded"] = false.into();
    assert_eq!(part["upload_started"], true);
    assert_eq!(part["create_started"], true);
    std::fs::write(&path, state.to_string()).unwrap();
    let (code, stdout, stderr) = batch_run(&w, &[args.as_slice(), &["--resume"]].concat(), &out);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = |what: &str| -> usize {
        let answer: Value = rt.block_on(async {
            reqwest::get(format!("{base}/{what}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["purpose"].is_null() || o["purpose"] == "batch")
            .count()
    };
    assert_eq!(count("batches"), 1, "found, not created again");
    assert_eq!(count("files"), 1, "found, not uploaded again");
    assert_eq!(
        records(&out).iter().filter(|r| r["status"] == "ok").count(),
        20
    );
}

#[test]
fn resume_refuses_another_workload_and_a_batch_refuses_duplicate_ids_and_streaming_bodies() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 4);
    let out = tmp.path().join("batch");
    let args = [
        "--mock",
        "--mock-batch-time",
        "100ms",
        "--poll-every",
        "100ms",
        "-q",
    ];
    assert_eq!(batch_run(&w, &args, &out).0, Some(0));
    let other = tmp.path().join("other.jsonl");
    std::fs::write(&other, "{\"model\":\"gpt-4.1-mini\",\"input\":\"else\"}\n").unwrap();
    let (code, _, stderr) = batch_run(&other, &[args.as_slice(), &["--resume"]].concat(), &out);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not the workload"), "{stderr}");
    let twice = tmp.path().join("twice.jsonl");
    let line = |id: &str| {
        json!({"custom_id": id, "method": "POST", "url": "/v1/responses", "body": {"model": "gpt-4.1-mini", "input": "x"}})
            .to_string()
    };
    // A Batch line naming itself "2" and a bare body on line 2 (its id: its line number).
    std::fs::write(
        &twice,
        format!(
            "{}\n{{\"model\":\"gpt-4.1-mini\",\"input\":\"y\"}}\n",
            line("2")
        ),
    )
    .unwrap();
    let (code, _, stderr) = batch_run(&twice, &args, &tmp.path().join("t"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("twice.jsonl:2: custom_id \"2\" is also line 1's"),
        "{stderr}"
    );
    let streams = tmp.path().join("streams.jsonl");
    std::fs::write(
        &streams,
        "{\"model\":\"gpt-4.1-mini\",\"input\":\"x\",\"stream\":true}\n",
    )
    .unwrap();
    let (code, _, stderr) = batch_run(&streams, &args, &tmp.path().join("s"));
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("streams.jsonl:1: the body asks to stream"),
        "{stderr}"
    );
}
