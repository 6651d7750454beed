//! Helpers shared by the integration tests: run the real binary, read its run folder, check invariants.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub dir: PathBuf,
    pub records: Vec<Value>,
    pub csv_rows: Vec<BTreeMap<String, String>>,
    pub summary: Value,
}

impl Run {
    pub fn by_id(&self, id: &str) -> &Value {
        self.records
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no record with id {id}"))
    }
}

/// The binary under test with a clean environment: no key and no base URL unless a test sets them.
pub fn llmvolley() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llmvolley"));
    cmd.env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env_remove(proxy).env_remove(proxy.to_lowercase());
    }
    cmd
}

pub fn output_text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `llmvolley run <args> --out <dir>` and reads what it wrote.
pub fn run(mut cmd: Command, args: &[&str], dir: &Path) -> Run {
    let output = cmd
        .arg("run")
        .args(args)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("binary runs");
    read_run(output, dir)
}

/// Runs `llmvolley bench <args> --out <dir> -q` and reads the folder it wrote.
pub fn bench(args: &[&str], dir: &Path) -> Run {
    let output = llmvolley()
        .arg("bench")
        .args(args)
        .arg("--out")
        .arg(dir)
        .arg("-q")
        .output()
        .expect("binary runs");
    let (stdout, stderr) = output_text(&output);
    Run {
        stdout,
        stderr,
        ..read_folder(dir, output.status.code().unwrap_or(-1))
    }
}

/// `llmvolley mock --port 0` in a child process, stopped when dropped (a failing test leaves no
/// server behind).
pub struct MockProcess(std::process::Child);

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `llmvolley mock --port 0` and returns it with the base URL it prints (ending in /v1).
pub fn mock_process() -> (MockProcess, String) {
    mock_process_with(&[])
}

/// `mock_process` with extra mock flags (`--mock-batch-time 1s`).
pub fn mock_process_with(extra: &[&str]) -> (MockProcess, String) {
    use std::io::BufRead;
    let mut child = llmvolley()
        .args(["mock", "--port", "0"])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let child = MockProcess(child);
    let base = first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("prints its URL")
        .to_string();
    (child, base)
}

/// `dir/w.jsonl`: `n` bare Responses bodies, `question 0` … (each its own line number as id).
pub fn questions(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join("w.jsonl");
    let lines: String = (0..n)
        .map(|i| format!("{{\"model\":\"gpt-4.1-mini\",\"input\":\"question {i}\"}}\n"))
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// `llmvolley run WORKLOAD ARGS --out <temp>/out` on a workload of this repository (`args` split on
/// spaces), checked against the run invariants; the temporary folder lives as long as the returned guard.
pub fn run_workload(workload: &str, args: &str) -> (Run, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file(workload);
    let mut all = vec![workload.to_str().unwrap()];
    all.extend(args.split_whitespace());
    let run = run(llmvolley(), &all, &tmp.path().join("out"));
    assert_run_invariants(&run, &workload);
    (run, tmp)
}

/// Same as `run`, off the async runtime so a server in this process keeps answering.
pub async fn run_async(cmd: Command, args: &[&str], dir: &Path) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(cmd, &args, &dir)
    })
    .await
    .unwrap()
}

pub fn read_run(output: Output, dir: &Path) -> Run {
    let (stdout, stderr) = output_text(&output);
    Run {
        stdout,
        stderr,
        ..read_folder(dir, output.status.code().unwrap_or(-1))
    }
}

/// What a run folder holds, for a process whose output was not captured.
///
/// A run that ended as a run does (exit 0, 1 or 3) must have written its folder (a sweep: its
/// `sweep.json`, the steps having theirs): a missing
/// `records.jsonl`, `records.csv` or `summary.json` fails the test here, so no assertion over an
/// empty folder passes by having nothing to check. A setup error (2) or an interrupt (130) may
/// leave no folder.
pub fn read_folder(dir: &Path, code: i32) -> Run {
    // A sweep's or search's records are in its step folders.
    let steps = dir.join("sweep.json").is_file() || dir.join("search.json").is_file();
    if matches!(code, 0 | 1 | 3) && !steps {
        for file in ["records.jsonl", "records.csv", "summary.json"] {
            assert!(
                dir.join(file).is_file(),
                "exit {code} but {} is missing",
                dir.join(file).display()
            );
        }
    }
    let (stdout, stderr) = (String::new(), String::new());
    let records = match std::fs::read_to_string(dir.join("records.jsonl")) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("every records.jsonl line is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    };
    let csv_rows = match csv::Reader::from_path(dir.join("records.csv")) {
        Ok(mut reader) => reader.deserialize().map(|r| r.expect("CSV row")).collect(),
        Err(_) => Vec::new(),
    };
    let summary = std::fs::read_to_string(dir.join("summary.json"))
        .map(|t| serde_json::from_str(&t).expect("summary.json is JSON"))
        .unwrap_or(Value::Null);
    Run {
        code,
        stdout,
        stderr,
        dir: dir.to_path_buf(),
        records,
        csv_rows,
        summary,
    }
}

/// Every file under `dir`, in its subfolders too (none when `dir` is missing).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

pub fn non_blank_lines(workload: &Path) -> usize {
    std::fs::read(workload)
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count()
}

/// The contract every run keeps: one final record per non-blank line (a conversation's is its last
/// turn's), unique ids, CSV rows equal to the JSONL rows, and summary counts equal to what the
/// records say.
pub fn assert_run_invariants(run: &Run, workload: &Path) {
    let expected = non_blank_lines(workload);
    let finals: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r.get("turn").is_none() || r["conversation_end"] == true)
        .collect();
    assert_eq!(
        finals.len(),
        expected,
        "one final record per non-blank line\nstderr: {}",
        run.stderr
    );
    let ids: HashSet<&str> = finals.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), expected, "ids are unique");
    let lines: HashSet<u64> = run
        .records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines.len(), expected, "each line is recorded once");

    assert_eq!(
        run.csv_rows.len(),
        run.records.len(),
        "CSV has the same rows"
    );
    for (json, csv) in run.records.iter().zip(&run.csv_rows) {
        for field in [
            "id",
            "line",
            "status",
            "http_status",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "finish",
            "model",
            "output_text",
        ] {
            let j = match &json[field] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                &j, &csv[field],
                "CSV and JSONL agree on {field} for {}",
                json["id"]
            );
        }
        let error_kind = json["error"]["kind"].as_str().unwrap_or("");
        assert_eq!(error_kind, csv["error_kind"]);
    }

    let summary = &run.summary;
    assert_eq!(summary["schema_version"], 2);
    // Requests: a conversation's turns are one request each.
    assert_eq!(
        summary["requests"]["total"].as_u64().unwrap() as usize,
        run.records.len()
    );
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for r in &run.records {
        *by_status
            .entry(r["status"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let summary_by_status: BTreeMap<String, u64> =
        serde_json::from_value(summary["requests"]["by_status"].clone()).unwrap();
    assert_eq!(
        summary_by_status, by_status,
        "summary counts equal the records'"
    );
    let ok = by_status.get("ok").copied().unwrap_or(0);
    assert_eq!(summary["requests"]["ok"].as_u64().unwrap(), ok);
    // Lines not sent (a limit, an interrupt, the budget) are neither ok nor failed.
    let not_sent = ["not_sent", "skipped_budget"]
        .iter()
        .map(|s| by_status.get(*s).copied().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(summary["requests"]["not_sent"].as_u64().unwrap(), not_sent);
    assert_eq!(
        summary["requests"]["failed"].as_u64().unwrap(),
        run.records.len() as u64 - ok - not_sent
    );
    // Token totals count ok requests only (a failed request's tokens are reported apart).
    let ok_output: Vec<u64> = run
        .records
        .iter()
        .filter(|r| r["status"] == "ok")
        .filter_map(|r| r["output_tokens"].as_u64())
        .collect();
    let expected_output = (!ok_output.is_empty()).then(|| ok_output.iter().sum::<u64>());
    assert_eq!(summary["tokens"]["output"].as_u64(), expected_output);
    if ok > 0 {
        assert_eq!(summary["latency_ms"]["count"].as_u64().unwrap(), ok);
    }
    let expected_code = if ok as usize == run.records.len() {
        0
    } else {
        1
    };
    assert_eq!(run.code, expected_code, "exit code\nstderr: {}", run.stderr);
}

pub fn workspace_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// `(input_tokens, output_tokens, total_tokens)` of a record.
pub fn token_counts(record: &Value) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        record["input_tokens"].as_u64(),
        record["output_tokens"].as_u64(),
        record["total_tokens"].as_u64(),
    )
}

/// `llmvolley run WORKLOAD --endpoint ENDPOINT ARGS --out DIR`, off the async runtime.
pub async fn run_endpoint(endpoint: &str, workload: &Path, args: &[&str], dir: &Path) -> Run {
    let workload = workload.to_str().expect("UTF-8 path");
    let mut all = vec![workload, "--endpoint", endpoint];
    all.extend_from_slice(args);
    run_async(llmvolley(), &all, dir).await
}

pub mod scripted;

/// The seed's four-tool request body (`workloads/tools.jsonl`).
pub fn seed_tools_request() -> Value {
    let text = std::fs::read_to_string(workspace_file("workloads/tools.jsonl")).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// A float field of a record, or a panic naming it.
pub fn ms(record: &Value, field: &str) -> f64 {
    record[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {record}"))
}

/// The 1,000-line example workload's path, as the CLI takes it.
pub fn varied_workload() -> String {
    workspace_file("workloads/varied-1000.jsonl")
        .display()
        .to_string()
}

/// Every sent record left no earlier than it was due (`first_sent_at` ≥ `scheduled_at`, to the
/// µs), and at least one was checked: a dispatcher that sent everything at once fails here, not
/// only one that planned the times wrong (`scheduled_at` is computed before sending).
pub fn assert_sent_on_schedule(run: &Run) {
    let mut checked = 0;
    for r in &run.records {
        let sent = r["first_sent_at"].as_f64().or(r["sent_at"].as_f64());
        if let (Some(sent), Some(due)) = (sent, r["scheduled_at"].as_f64()) {
            assert!(
                sent >= due - 0.001,
                "sent at {sent} ms, due at {due} ms: {r}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no record was sent");
}
