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
