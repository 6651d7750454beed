//! Crash safety: a run killed with SIGKILL at random moments and resumed each time ends with every
//! line answered exactly once, and no request was sent more often than kills + 1 times.

use crate::common::*;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers every request after a short delay and counts how often each body was sent.
struct CountingServer {
    sends: Arc<Mutex<HashMap<Vec<u8>, u32>>>,
}

impl Respond for CountingServer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        *self
            .sends
            .lock()
            .unwrap()
            .entry(request.body.clone())
            .or_default() += 1;
        let body = r#"{"object":"response","status":"completed","model":"gpt-4.1-mini","output":[{"type":"message","content":[{"type":"output_text","text":"done"}]}],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}"#;
        ResponseTemplate::new(200)
            .set_body_raw(body, "application/json")
            .set_delay(Duration::from_millis(15))
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_to_exactly_one_answer_per_line() {
    let sends = Arc::new(Mutex::new(HashMap::new()));
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(CountingServer {
            sends: sends.clone(),
        })
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    let lines: Vec<String> = (0..1500)
        .map(|i| format!(r#"{{"model":"gpt-4.1-mini","input":"prompt number {i}"}}"#))
        .collect();
    std::fs::write(&workload, lines.join("\n")).unwrap();
    let out = tmp.path().join("out");
    let endpoint = format!("{}/v1", server.uri());
    let mut rng = SmallRng::seed_from_u64(20261122);
    let mut kills = 0;
    let mut finished = false;
    let out_s = out.to_str().unwrap().to_string();
    let (workload_s, endpoint_s) = (workload.to_str().unwrap().to_string(), endpoint.clone());
    tokio::task::spawn_blocking(move || {
        for _ in 0..20 {
            let mut cmd = llmvolley();
            cmd.arg("run").args([
                &workload_s,
                "--endpoint",
                &endpoint_s,
                "-c",
                "8",
                "--out",
                &out_s,
                "-q",
            ]);
            // A kill that came before the run folder had its records (a very slow start) leaves
            // nothing to resume: start afresh then.
            if out.join("records.jsonl").is_file() {
                cmd.arg("--resume");
            } else {
                let _ = std::fs::remove_dir_all(&out);
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let alive_for = Duration::from_millis(rng.random_range(150..700));
            if let Some(code) = wait_bounded(&mut child, alive_for) {
                assert!(code == 0 || code == 1, "run exited with {code}");
                finished = true;
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
        }
        if !finished {
            let mut child = llmvolley()
                .arg("run")
                .args([
                    &workload_s,
                    "--endpoint",
                    &endpoint_s,
                    "-c",
                    "8",
                    "--out",
                    &out_s,
                    "-q",
                    "--resume",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            assert_eq!(
                wait_bounded(&mut child, Duration::from_secs(10)),
                Some(0),
                "the last resume completes"
            );
        }
        assert!(kills >= 2, "the test killed runs: {kills}");
        let run = read_folder(&out, 0);
        assert_run_invariants(&run, &workload);
        assert!(run.records.iter().all(|r| r["status"] == "ok"));
        let sends = sends.lock().unwrap();
        assert_eq!(sends.len(), 1500, "every line reached the server");
        let most = sends.values().copied().max().unwrap();
        assert!(
            most <= kills + 1,
            "a line was sent {most} times in {kills} kills"
        );
    })
    .await
    .unwrap();
}
