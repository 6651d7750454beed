//! The mock's Batch API: `/v1/files` and `/v1/batches` in memory, every line answered by the
//! mock's own answer engine, a batch finishing in `--mock-batch-time`, and its faults (a line that
//! fails, a batch that expires half-done, a file that fails validation). Object shapes follow the
//! API reference's File and Batch objects (PROTOCOL.md §3).

use super::{ApiShape, MockState};
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A batch's fault (`--mock-batch-faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum BatchFault {
    /// Every seventh line fails (in the error file), the rest are answered.
    FailedLines,
    /// The batch expires when half its lines are done: those are in its output file.
    Expire,
    /// The input file fails validation: the batch fails, nothing is answered.
    Invalid,
}

/// The urls a batch may target (PROTOCOL.md §3).
const ENDPOINTS: [&str; 5] = [
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/moderations",
];

/// Files and batches, in memory.
#[derive(Default)]
pub(super) struct Store {
    files: std::sync::Mutex<BTreeMap<String, (Value, Bytes)>>,
    batches: std::sync::Mutex<BTreeMap<String, Value>>,
    cancels: std::sync::Mutex<BTreeMap<String, Arc<AtomicBool>>>,
    next: AtomicU64,
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn api_error(status: StatusCode, message: &str, param: Option<&str>) -> Response {
    (
        status,
        axum::Json(json!({"error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": null,
        }})),
    )
        .into_response()
}

impl Store {
    fn id(&self, prefix: &str) -> String {
        format!(
            "{prefix}{:024x}",
            self.next.fetch_add(1, Ordering::Relaxed) + 1
        )
    }

    fn put_file(&self, filename: &str, purpose: &str, content: Bytes) -> Value {
        let id = self.id("file-");
        let object = json!({
            "id": id,
            "object": "file",
            "bytes": content.len(),
            "created_at": now_s(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": null,
            "expires_at": null,
        });
        if let Ok(mut files) = self.files.lock() {
            files.insert(id, (object.clone(), content));
        }
        object
    }

    /// A stored file: its object and content (`Bytes`: a cheap clone).
    fn file(&self, id: &str) -> Option<(Value, Bytes)> {
        self.files.lock().ok().and_then(|f| f.get(id).cloned())
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Value)) {
        if let Ok(mut batches) = self.batches.lock()
            && let Some(batch) = batches.get_mut(id)
        {
            change(batch);
        }
    }
}

/// `POST /v1/files`: multipart, a `purpose` field and a `file` field.
pub(super) async fn upload(State(state): State<Arc<MockState>>, mut form: Multipart) -> Response {
    let (mut purpose, mut file) = (None, None);
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("purpose") => purpose = field.text().await.ok(),
                Some("file") => {
                    let name = field.file_name().unwrap_or("upload.jsonl").to_string();
                    match field.bytes().await {
                        Ok(bytes) => file = Some((name, bytes)),
                        Err(e) => {
                            return api_error(
                                StatusCode::BAD_REQUEST,
                                &e.to_string(),
                                Some("file"),
                            );
                        }
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(e) => return api_error(StatusCode::BAD_REQUEST, &e.to_string(), None),
        }
    }
    let Some(purpose) = purpose else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'purpose'.",
            Some("purpose"),
        );
    };
    let Some((name, bytes)) = file else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'file'.",
            Some("file"),
        );
    };
    axum::Json(state.batch.put_file(&name, &purpose, bytes)).into_response()
}

/// `GET /v1/files`: every file, newest first, as a list.
pub(super) async fn files(State(state): State<Arc<MockState>>) -> Response {
    let data: Vec<Value> = state
        .batch
        .files
        .lock()
        .map(|f| f.values().rev().map(|(object, _)| object.clone()).collect())
        .unwrap_or_default();
    axum::Json(json!({"object": "list", "data": data, "has_more": false})).into_response()
}

/// `GET /v1/files/{id}`.
pub(super) async fn file(State(state): State<Arc<MockState>>, Path(id): Path<String>) -> Response {
    match state.batch.file(&id) {
        Some((object, _)) => axum::Json(object).into_response(),
        None => no_such("file", &id),
    }
}

/// `GET /v1/files/{id}/content`.
pub(super) async fn content(
    State(state): State<Arc<MockState>>,
    Path(id): Path<String>,
) -> Response {
    match state.batch.file(&id) {
        Some((_, bytes)) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => no_such("file", &id),
    }
}

fn no_such(what: &str, id: &str) -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        &format!("No such {what}: '{id}'"),
        Some("id"),
    )
}

/// `POST /v1/batches`: `{input_file_id, endpoint, completion_window, metadata}`; the batch then
/// runs on a task of its own.
pub(super) async fn create(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return api_error(StatusCode::BAD_REQUEST, "the body must be JSON", None);
    };
    let text = |key: &str| request.get(key).and_then(Value::as_str).map(String::from);
    let Some(input) = text("input_file_id") else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: 'input_file_id'.",
            Some("input_file_id"),
        );
    };
    let endpoint = text("endpoint").unwrap_or_default();
    if !ENDPOINTS.contains(&endpoint.as_str()) {
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!("Invalid value for 'endpoint': {endpoint:?}; expected one of {ENDPOINTS:?}"),
            Some("endpoint"),
        );
    }
    if text("completion_window").as_deref() != Some("24h") {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Invalid value for 'completion_window': expected '24h'.",
            Some("completion_window"),
        );
    }
    let content = match state.batch.file(&input) {
        Some((_, content)) => content,
        None => return no_such("file", &input),
    };
    let id = state.batch.id("batch_");
    let created = now_s();
    let batch = json!({
        "id": id,
        "object": "batch",
        "endpoint": endpoint,
        "errors": null,
        "input_file_id": input,
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": null,
        "error_file_id": null,
        "created_at": created,
        "in_progress_at": null,
        "expires_at": created + 24 * 3600,
        "finalizing_at": null,
        "completed_at": null,
        "failed_at": null,
        "expired_at": null,
        "cancelling_at": null,
        "cancelled_at": null,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": request.get("metadata").cloned().unwrap_or(Value::Null),
    });
    let cancel = Arc::new(AtomicBool::new(false));
    if let Ok(mut batches) = state.batch.batches.lock() {
        batches.insert(id.clone(), batch.clone());
    }
    if let Ok(mut cancels) = state.batch.cancels.lock() {
        cancels.insert(id.clone(), cancel.clone());
    }
    tokio::spawn(run(state.clone(), id, endpoint, content, cancel));
    axum::Json(batch).into_response()
}

/// `GET /v1/batches`: every batch, newest first.
pub(super) async fn batches(State(state): State<Arc<MockState>>) -> Response {
    let data: Vec<Value> = state
        .batch
        .batches
        .lock()
        .map(|b| b.values().rev().cloned().collect())
        .unwrap_or_default();
    axum::Json(json!({"object": "list", "data": data, "has_more": false})).into_response()
}

/// `GET /v1/batches/{id}`.
pub(super) async fn batch(State(state): State<Arc<MockState>>, Path(id): Path<String>) -> Response {
    match state
        .batch
        .batches
        .lock()
        .ok()
        .and_then(|b| b.get(&id).cloned())
    {
        Some(batch) => axum::Json(batch).into_response(),
        None => no_such("batch", &id),
    }
}

/// `POST /v1/batches/{id}/cancel`: `cancelling` at once, `cancelled` when the lines in hand end.
pub(super) async fn cancel(
    State(state): State<Arc<MockState>>,
    Path(id): Path<String>,
) -> Response {
    let flag = state
        .batch
        .cancels
        .lock()
        .ok()
        .and_then(|c| c.get(&id).cloned());
    let Some(flag) = flag else {
        return no_such("batch", &id);
    };
    let mut refused = None;
    state.batch.update(&id, |b| {
        let status = b["status"].as_str().unwrap_or("");
        if ["completed", "failed", "expired", "cancelled"].contains(&status) {
            refused = Some(status.to_string());
        } else {
            b["status"] = "cancelling".into();
            b["cancelling_at"] = now_s().into();
        }
    });
    if let Some(status) = refused {
        return api_error(
            StatusCode::CONFLICT,
            &format!("Cannot cancel a batch with status '{status}'."),
            None,
        );
    }
    flag.store(true, Ordering::SeqCst);
    batch(State(state), Path(id)).await
}

/// A line that validation refuses, with its 1-based line number.
fn invalid(line: usize, message: String) -> Value {
    json!({"code": "invalid_request", "message": message, "param": null, "line": line})
}

/// The batch's life: validation, every line answered (paced so the whole takes
/// `--mock-batch-time`), the output and error files, and its ending.
async fn run(
    state: Arc<MockState>,
    id: String,
    endpoint: String,
    content: Bytes,
    cancel: Arc<AtomicBool>,
) {
    let store = &state.batch;
    let config = &state.config;
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, raw) in content.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let n = i + 1;
        // The body is kept as its bytes: answered as if sent live, byte for byte (the answer
        // engine draws each answer from its body's bytes).
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            body: Option<&'a serde_json::value::RawValue>,
        }
        let (line, body): (Value, Option<Bytes>) = match (
            serde_json::from_slice::<Value>(raw),
            serde_json::from_slice::<Raw>(raw),
        ) {
            (Ok(line @ Value::Object(_)), Ok(r)) => {
                let body = r.body.map(|b| Bytes::copy_from_slice(b.get().as_bytes()));
                (line, body)
            }
            _ => {
                errors.push(invalid(n, format!("Line {n} is not a JSON object.")));
                continue;
            }
        };
        let custom_id = line["custom_id"].as_str().unwrap_or("").to_string();
        if custom_id.is_empty() || !seen.insert(custom_id.clone()) {
            errors.push(invalid(
                n,
                format!("Line {n}: custom_id must be a string unique in the file."),
            ));
        } else if line["url"].as_str() != Some(endpoint.as_str()) {
            errors.push(invalid(
                n,
                format!("Line {n}: its url does not match the batch's endpoint {endpoint}."),
            ));
        } else if line["method"].as_str() != Some("POST") || !line["body"].is_object() {
            errors.push(invalid(
                n,
                format!("Line {n}: method must be POST and body an object."),
            ));
        } else {
            lines.push((custom_id, body.unwrap_or_default()));
        }
    }
    if config.batch_faults.contains(&BatchFault::Invalid) && errors.is_empty() {
        errors.push(invalid(
            1,
            "Line 1: refused by --mock-batch-faults invalid.".into(),
        ));
    }
    if lines.is_empty() && errors.is_empty() {
        errors.push(invalid(1, "The input file holds no request.".into()));
    }
    if !errors.is_empty() {
        store.update(&id, |b| {
            b["status"] = "failed".into();
            b["failed_at"] = now_s().into();
            b["errors"] = json!({"object": "list", "data": errors});
        });
        return;
    }
    let total = lines.len();
    store.update(&id, |b| {
        // A cancel during validation stands.
        if b["status"] != "cancelling" {
            b["status"] = "in_progress".into();
        }
        b["in_progress_at"] = now_s().into();
        b["request_counts"]["total"] = total.into();
    });
    let started = tokio::time::Instant::now();
    let (mut output, mut error_lines) = (Vec::new(), Vec::new());
    let (mut completed, mut failed) = (0usize, 0usize);
    let expire_at = config
        .batch_faults
        .contains(&BatchFault::Expire)
        .then_some(total / 2);
    let mut ending = "completed";
    let mut undone: &[(String, Bytes)] = &[];
    for (i, (custom_id, body)) in lines.iter().cloned().enumerate() {
        if cancel.load(Ordering::SeqCst) {
            ending = "cancelled";
            undone = &lines[i..];
            break;
        }
        if expire_at == Some(i) {
            ending = "expired";
            undone = &lines[i..];
            break;
        }
        let request_id = format!("req_{:016x}", store.next.fetch_add(1, Ordering::Relaxed));
        let line_id = format!(
            "batch_req_{:024x}",
            store.next.fetch_add(1, Ordering::Relaxed)
        );
        let fails = config.batch_faults.contains(&BatchFault::FailedLines) && i % 7 == 3;
        if fails {
            error_lines.push(json!({
                "id": line_id, "custom_id": custom_id, "response": null,
                "error": {"code": "server_error", "message": "The mock failed this line (--mock-batch-faults failed_lines)."},
            }));
            failed += 1;
        } else {
            let (status, answer) = answer_line(&state, &endpoint, body).await;
            let line = json!({
                "id": line_id, "custom_id": custom_id,
                "response": {"status_code": status, "request_id": request_id, "body": answer},
                "error": null,
            });
            if (200..300).contains(&status) {
                output.push(line);
                completed += 1;
            } else {
                error_lines.push(line);
                failed += 1;
            }
        }
        store.update(&id, |b| {
            b["request_counts"]["completed"] = completed.into();
            b["request_counts"]["failed"] = failed.into();
        });
        // Paced so the batch takes `batch_time` in all, however fast each line is.
        let due = started + config.batch_time.mul_f64((i + 1) as f64 / total as f64);
        if due > tokio::time::Instant::now() + Duration::from_millis(1) {
            tokio::time::sleep_until(due).await;
        }
    }
    if ending == "completed" && cancel.load(Ordering::SeqCst) {
        ending = "cancelled";
    }
    // As the API does: the lines not done are in the error file, with why.
    for (custom_id, _) in undone {
        error_lines.push(json!({
            "id": format!("batch_req_{:024x}", store.next.fetch_add(1, Ordering::Relaxed)),
            "custom_id": custom_id,
            "response": null,
            "error": {"code": format!("batch_{ending}"), "message": format!("This line was not executed because the batch {ending}.")},
        }));
    }
    if ending == "completed" {
        store.update(&id, |b| {
            b["status"] = "finalizing".into();
            b["finalizing_at"] = now_s().into();
        });
    }
    let file_of = |lines: &[Value], name: &str| {
        (!lines.is_empty()).then(|| {
            let mut text = String::new();
            for line in lines {
                text.push_str(&line.to_string());
                text.push('\n');
            }
            store.put_file(name, "batch_output", Bytes::from(text))["id"].clone()
        })
    };
    let output_id = file_of(&output, &format!("{id}_output.jsonl"));
    let error_id = file_of(&error_lines, &format!("{id}_error.jsonl"));
    store.update(&id, |b| {
        b["output_file_id"] = output_id.unwrap_or(Value::Null);
        b["error_file_id"] = error_id.unwrap_or(Value::Null);
        b["status"] = ending.into();
        let at = match ending {
            "expired" => "expired_at",
            "cancelled" => "cancelled_at",
            _ => "completed_at",
        };
        b[at] = now_s().into();
    });
}

/// One line through the mock's answer engine, as if it had been sent live.
async fn answer_line(state: &MockState, endpoint: &str, bytes: Bytes) -> (u16, Value) {
    let asks_to_stream = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|b| b.get("stream").and_then(Value::as_bool))
        == Some(true);
    if asks_to_stream {
        return (
            400,
            json!({"error": {"message": "Streaming is not supported in batch requests.", "type": "invalid_request_error", "param": "stream", "code": null}}),
        );
    }
    let response = match endpoint {
        "/v1/chat/completions" => super::answer(state, bytes, ApiShape::Chat, ApiShape::Chat).await,
        "/v1/completions" => {
            super::answer(state, bytes, ApiShape::Completions, ApiShape::Completions).await
        }
        "/v1/embeddings" => super::classified(state, bytes, super::vectors::Kind::Embeddings).await,
        "/v1/moderations" => {
            super::classified(state, bytes, super::vectors::Kind::Moderations).await
        }
        _ => super::answer(state, bytes, ApiShape::Responses, ApiShape::Responses).await,
    };
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}
