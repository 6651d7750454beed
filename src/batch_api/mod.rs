//! The OpenAI Batch API path's own state: a workload split into parts (one url each, at most
//! `--max-batch-lines` lines and 200 MB each), `batches.json` (each part's file and batch ids,
//! written the moment they exist), and the output and error files joined back by `custom_id` into
//! one record per workload line.

use crate::client::{read_error_body, read_success_body};
use crate::record::{Record, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The run folder's record of the batches, rewritten whole after every change.
pub const BATCHES_JSON: &str = "batches.json";
/// The documented per-batch limits (API reference, "Create batch": 50,000 requests, 200 MB).
pub const MAX_LINES: usize = 50_000;
pub const MAX_BYTES: usize = 200 * 1024 * 1024;
/// The statuses after which a batch changes no more.
pub const ENDED: [&str; 4] = ["completed", "failed", "expired", "cancelled"];

/// One part: its input file in the run folder, and what the API said of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Part {
    pub index: usize,
    pub url: String,
    pub lines: usize,
    /// The part's input file, relative to the run folder (`batch/part-001.jsonl`).
    pub file: String,
    pub file_id: Option<String>,
    pub batch_id: Option<String>,
    pub status: Option<String>,
    pub request_counts: Option<Value>,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
    /// Its output and error files are in the run folder.
    pub downloaded: bool,
    /// A `failed` batch's validation errors, as the API gave them.
    pub errors: Option<Value>,
    /// An expired or cancelled part: the part its lines not done were submitted again as.
    pub rest_in: Option<usize>,
    /// Set (and saved) before its upload and before its batch's creation: a crash inside either
    /// leaves the API's answer unknown, so `--resume` looks for the file or batch first.
    #[serde(default)]
    pub upload_started: bool,
    #[serde(default)]
    pub create_started: bool,
}

impl Part {
    pub fn ended(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| ENDED.contains(&s.to_ascii_lowercase().as_str()))
    }

    pub fn output_path(&self) -> String {
        self.file.replace(".jsonl", ".output.jsonl")
    }

    pub fn errors_path(&self) -> String {
        self.file.replace(".jsonl", ".errors.jsonl")
    }
}

/// `batches.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Batches {
    pub workload: String,
    /// The workload's size and xxh3 hash: `--resume` refuses another file (its line numbers,
    /// the ids of bare bodies, would name other lines).
    #[serde(default)]
    pub workload_hash: String,
    /// Where the batches are (no credentials): `--resume` refuses another endpoint.
    #[serde(default)]
    pub endpoint: String,
    /// This run's own id, in every file name and batch's metadata: how a restarted client finds
    /// what it made, and only that.
    #[serde(default)]
    pub run_id: String,
    pub max_lines: usize,
    pub parts: Vec<Part>,
}

impl Batches {
    /// Errors: the file is missing or not one this llmvolley wrote; both say what to do.
    pub fn load(dir: &Path) -> anyhow::Result<Batches> {
        let path = dir.join(BATCHES_JSON);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (is {} a folder `llmvolley batch` wrote?)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))
    }

    /// Written whole (a temporary file renamed over it): a crash leaves the old or the new.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        crate::run_folder::write_whole(&dir.join(BATCHES_JSON), &serde_json::to_vec_pretty(self)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dir.join(BATCHES_JSON).display()))
    }
}

/// One Batch input line: `{"custom_id", "method": "POST", "url", "body"}`, the body as given.
pub fn input_line(custom_id: &str, url: &str, body: &[u8]) -> String {
    let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
    format!(
        "{{\"custom_id\":{},\"method\":\"POST\",\"url\":{},\"body\":{}}}\n",
        text(custom_id),
        text(url),
        String::from_utf8_lossy(body)
    )
}

/// Groups lines (their url and input line's length, in workload order) into parts: one url per
/// part, in order of first appearance, each at most `max_lines` lines and `max_bytes` bytes.
/// Returns each part's url and the indexes of its lines.
pub fn plan(
    lines: &[(&str, usize)],
    max_lines: usize,
    max_bytes: usize,
) -> Vec<(String, Vec<usize>)> {
    let mut urls: Vec<&str> = Vec::new();
    for (url, _) in lines {
        if !urls.contains(url) {
            urls.push(url);
        }
    }
    let mut parts = Vec::new();
    for url in urls {
        let mut current: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for (i, (u, len)) in lines.iter().enumerate() {
            if *u != url {
                continue;
            }
            if !current.is_empty() && (current.len() >= max_lines || bytes + len > max_bytes) {
                parts.push((url.to_string(), std::mem::take(&mut current)));
                bytes = 0;
            }
            current.push(i);
            bytes += len;
        }
        if !current.is_empty() {
            parts.push((url.to_string(), current));
        }
    }
    parts
}

/// One line of an output or error file.
#[derive(Debug, Clone)]
pub struct Answered {
    pub line: Value,
    /// It came from an error file.
    pub from_errors: bool,
}

/// What the output and error files held, by `custom_id`, and what did not fit.
#[derive(Debug, Default)]
pub struct Results {
    pub by_id: HashMap<String, Answered>,
    /// Ids with more than one line (an output and an error line, or two of either): the first
    /// output line is kept.
    pub twice: Vec<String>,
    /// Lines whose `custom_id` no workload line has.
    pub unknown: Vec<String>,
    /// Lines that are not JSON objects with a `custom_id`.
    pub unreadable: usize,
}

impl Results {
    /// Reads one output or error file (lines in any order).
    pub fn read(&mut self, text: &str, from_errors: bool, known: &dyn Fn(&str) -> bool) {
        for raw in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(line) = serde_json::from_str::<Value>(raw) else {
                self.unreadable += 1;
                continue;
            };
            // An expired or cancelled batch lists the lines it did not do in its error file
            // (`batch_expired`, `batch_cancelled`): not done, so not answered.
            let code = line
                .get("error")
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str);
            if from_errors && matches!(code, Some("batch_expired" | "batch_cancelled")) {
                continue;
            }
            let Some(id) = line
                .get("custom_id")
                .and_then(Value::as_str)
                .map(String::from)
            else {
                self.unreadable += 1;
                continue;
            };
            if !known(&id) {
                self.unknown.push(id);
                continue;
            }
            let answered = Answered { line, from_errors };
            match self.by_id.get(&id) {
                None => {
                    self.by_id.insert(id, answered);
                }
                Some(kept) => {
                    self.twice.push(id.clone());
                    if kept.from_errors && !from_errors {
                        self.by_id.insert(id, answered);
                    }
                }
            }
        }
    }
}

/// A workload line's record from its output or error line; `ending` is its part's batch status
/// when there is none (`expired`, `cancelled`: not done, `--resume` submits it again; `failed`:
/// refused by validation, `why` says so; `completed`: the files lack it).
pub fn record_of(
    id: &str,
    line: u64,
    answered: Option<&Answered>,
    ending: &str,
    why: Option<&str>,
) -> Record {
    let mut record = Record::empty(id.to_string(), line, Status::Ok);
    record.attempts = 1;
    let Some(answered) = answered else {
        match ending {
            "expired" | "cancelled" => record.fail(
                Status::NotSent,
                format!("batch_{ending}"),
                format!("not done: its batch {ending} first; `llmvolley batch --resume` submits it again"),
            ),
            "not created" => record.fail(
                Status::NotSent,
                "batch_not_created",
                "not submitted: its part never became a batch; `llmvolley batch --resume` submits it",
            ),
            "pending" => record.fail(
                Status::NotSent,
                "batch_pending",
                "its batch is still running; `llmvolley batch --resume` re-attaches",
            ),
            "failed" => record.fail(
                Status::NotSent,
                "batch_failed",
                format!(
                    "not answered: its batch failed validation{}",
                    why.map(|w| format!(" ({w})")).unwrap_or_default()
                ),
            ),
            _ => record.fail(
                Status::InvalidResponse,
                "batch_missing_line",
                format!("its batch {ending}, but neither its output nor its error file holds this line"),
            ),
        }
        return record;
    };
    let response = answered.line.get("response").filter(|r| r.is_object());
    match response {
        Some(response) => {
            let status = response
                .get("status_code")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0);
            record.http_status = Some(status);
            record.request_id = response
                .get("request_id")
                .and_then(Value::as_str)
                .map(String::from);
            let body = response
                .get("body")
                .map(Value::to_string)
                .unwrap_or_default();
            if (200..300).contains(&status) {
                read_success_body(body.as_bytes(), &mut record);
            } else {
                read_error_body(status, body.as_bytes(), &mut record);
            }
        }
        None => {
            let error = answered.line.get("error");
            let text = |key: &str| {
                error
                    .and_then(|e| e.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let code = Some(text("code")).filter(|c| !c.is_empty());
            record.fail(
                Status::ApiError,
                code.unwrap_or_else(|| "batch_error".into()),
                Some(text("message"))
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "the error file's line gives no message".into()),
            );
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_hold_one_url_each_and_split_at_the_line_and_byte_limits() {
        let lines: Vec<(&str, usize)> = (0..7)
            .map(|i| {
                (
                    if i == 3 {
                        "/v1/embeddings"
                    } else {
                        "/v1/responses"
                    },
                    10,
                )
            })
            .collect();
        let parts = plan(&lines, 2, 1000);
        assert_eq!(
            parts,
            [
                ("/v1/responses".to_string(), vec![0, 1]),
                ("/v1/responses".to_string(), vec![2, 4]),
                ("/v1/responses".to_string(), vec![5, 6]),
                ("/v1/embeddings".to_string(), vec![3]),
            ]
        );
        // 25 bytes a part: two lines of 10 fit, a third does not.
        assert_eq!(plan(&lines[..3], 100, 25).len(), 2);
    }

    #[test]
    fn an_input_line_carries_the_body_as_given() {
        let line = input_line("a\"b", "/v1/responses", br#"{"model":"m","input":"hi"}"#);
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["custom_id"], "a\"b");
        assert_eq!(parsed["body"]["input"], "hi");
        assert_eq!(parsed["method"], "POST");
    }

    #[test]
    fn output_and_error_lines_become_records_and_oddities_are_counted() {
        let mut results = Results::default();
        let known = |id: &str| id != "stranger";
        results.read(
            r#"{"custom_id":"a","response":{"status_code":200,"request_id":"req_1","body":{"object":"response","status":"completed","model":"gpt-4.1-mini","output":[],"usage":{"input_tokens":5,"output_tokens":7}}},"error":null}
{"custom_id":"stranger","response":null,"error":null}
not json"#,
            false,
            &known,
        );
        results.read(
            r#"{"custom_id":"b","response":{"status_code":400,"body":{"error":{"message":"bad","type":"invalid_request_error"}}},"error":null}
{"custom_id":"c","response":null,"error":{"code":"server_error","message":"boom"}}
{"custom_id":"a","response":null,"error":{"code":"x","message":"y"}}"#,
            true,
            &known,
        );
        assert_eq!(results.unknown, ["stranger"]);
        assert_eq!(results.unreadable, 1);
        assert_eq!(results.twice, ["a"]);
        let a = record_of("a", 1, results.by_id.get("a"), "completed", None);
        assert_eq!(a.status, Status::Ok, "the output line wins: {a:?}");
        assert_eq!((a.input_tokens, a.output_tokens), (Some(5), Some(7)));
        assert_eq!(a.request_id.as_deref(), Some("req_1"));
        let b = record_of("b", 2, results.by_id.get("b"), "completed", None);
        assert_eq!((b.status, b.http_status), (Status::HttpError, Some(400)));
        let c = record_of("c", 3, results.by_id.get("c"), "completed", None);
        assert_eq!(c.status, Status::ApiError);
        assert_eq!(c.error.as_ref().unwrap().kind, "server_error");
        let d = record_of("d", 4, None, "expired", None);
        assert_eq!(d.status, Status::NotSent);
        let e = record_of("e", 5, None, "completed", None);
        assert_eq!(e.status, Status::InvalidResponse);
    }
}
