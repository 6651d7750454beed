//! `--scrape`: the server's own Prometheus metrics beside the client's figures, from the mock's
//! vLLM-format `/metrics` and from a scripted server whose page misbehaves.

use crate::common::scripted::*;
use crate::common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// `server_metrics.csv` as rows of header → cell.
fn csv_rows(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[test]
fn the_mocks_server_view_agrees_with_the_client_and_gates_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workspace_file("workloads/varied-1000.jsonl");
    let out = tmp.path().join("run");
    let output = llmvolley()
        .args(["run", w.to_str().unwrap(), "--mock", "--stream"])
        .args(["--mock-ttft", "30ms", "--mock-itl", "5ms", "-c", "8"])
        .args([
            "--requests",
            "240",
            "--scrape",
            "auto",
            "--scrape-every",
            "250ms",
        ])
        .args(["--fail-on", "server.running.max>2"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    // The gate read the server's figure: 8 requests ran at once.
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("--scrape auto: http://127.0.0.1:")
            && stderr.contains("/metrics answers with 9 metric families"),
        "{stderr}"
    );
    let run = read_folder(&out, 3);
    let server = &run.summary["server"];
    assert_eq!(server["targets"][0]["failed"], 0, "{server}");
    // Every answer was complete before the last scrape: the server's token counters hold
    // exactly what the client's records do.
    assert_eq!(
        server["prompt_tokens"]["total"].as_f64().unwrap(),
        run.summary["tokens"]["input"].as_f64().unwrap(),
        "{server}"
    );
    assert_eq!(
        server["generation_tokens"]["total"].as_f64().unwrap(),
        run.summary["tokens"]["output"].as_f64().unwrap()
    );
    assert_eq!(server["ttft_ms"]["count"], 240.0);
    assert_eq!(server["running"]["max"], 8.0, "{server}");
    // Figures no target exposes are null, never 0.
    assert!(server["gpu_util"].is_null() && server["preemptions"].is_null());
    assert!(server["series"]["vllm:request_success"]["increase"] == 240.0);
    // The server's running requests per interval against the client's in flight per second.
    let rows = csv_rows(&out.join("server_metrics.csv"));
    assert!(rows.len() >= 4, "{rows:?}");
    let running: Vec<f64> = rows
        .iter()
        .filter_map(|r| r["running"].parse().ok())
        .collect();
    let timeseries = csv_rows(&out.join("timeseries.csv"));
    let in_flight: Vec<f64> = timeseries
        .iter()
        .filter_map(|r| r["in_flight"].parse().ok())
        .collect();
    // Closed loop at 8: both sides see about 8 at once, but for the drain at the end.
    let (server_mean, client_mean) = (mean(&running), mean(&in_flight));
    assert!(
        (server_mean - client_mean).abs() <= 2.0 && server_mean > 5.0,
        "server running {running:?} against client in flight {in_flight:?}"
    );
    assert!(
        stdout.contains("server       http://127.0.0.1:") && stdout.contains("running"),
        "{stdout}"
    );
    // What it ran on: the server's identity (asked because --scrape was given), the client's
    // machine and the path between them.
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let identity = &run_json["server_identity"];
    assert!(
        identity["version"]
            .as_str()
            .unwrap()
            .starts_with("llmvolley-mock"),
        "{identity}"
    );
    assert!(
        identity["models"]["count"].as_u64().unwrap() > 0,
        "{identity}"
    );
    assert!(run_json["client_machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(run_json["client_machine"]["kernel"].is_string());
    assert_eq!(run_json["network"]["via"], "direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_that_fails_stalls_or_resets_is_recorded_and_never_stops_the_load() {
    // Scrape 0 is the baseline (100), 1 adds 50, 2 is a 500, 3 answers long after its tick, and
    // from 4 on the server has restarted: its counter counts again from 10, and a gauge appears.
    let last = Arc::new(AtomicU64::new(0));
    let served = last.clone();
    let metrics = serve(move |seen| {
        let value = match seen.n {
            0 => 100,
            1 => 150,
            2 => return vec![whole(500, "text/plain", "", "boom")],
            3 => {
                return vec![
                    wait_ms(2000),
                    whole(200, "text/plain", "", "# TYPE t counter\nt_total 160\n"),
                ];
            }
            n => 10 * (n as u64 - 3),
        };
        served.store(value, Ordering::SeqCst);
        let late = if seen.n >= 4 {
            format!("# TYPE late gauge\nlate {}\n", seen.n)
        } else {
            String::new()
        };
        let page = format!("# TYPE t counter\nt_total {value}\n{late}");
        vec![whole(200, "text/plain; version=0.0.4", "", &page)]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let w = workspace_file("workloads/varied-1000.jsonl");
    let scrape = format!("http://{}/metrics", metrics.addr);
    let args = [
        "--mock",
        "--mock-latency",
        "100ms",
        "-c",
        "2",
        "--requests",
        "40",
        "--scrape",
        &scrape,
        "--scrape-every",
        "300ms",
        "-q",
    ];
    let mut all = vec![w.to_str().unwrap()];
    all.extend(args);
    let run = run_async(llmvolley(), &all, &tmp.path().join("run")).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.summary["requests"]["ok"], 40,
        "the load is untouched by its scrapes"
    );
    let server = &run.summary["server"];
    let target = &server["targets"][0];
    assert_eq!(target["failed"], 2, "{server}");
    assert_eq!(target["slow"], 1, "{server}");
    let last = last.load(Ordering::SeqCst) as f64;
    assert!(
        last >= 20.0,
        "the scrape went on after its failures: {server}"
    );
    // 50 before the restart, then every count since it, from 0.
    assert_eq!(
        server["series"]["t"]["increase"].as_f64().unwrap(),
        50.0 + last,
        "{server}"
    );
    assert!(server["series"]["late"]["max"].as_f64().unwrap() >= 4.0);
    // A figure the page never had: null.
    assert!(server["running"].is_null(), "{server}");
}
