//! Capacity: the mock's generation slots queue answers as a real server's scheduler does, so a
//! server's capacity (slots ÷ service time) can be found and shown without a GPU.

use crate::common::*;

fn workload(dir: &std::path::Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("w.jsonl");
    let lines: String = (0..n)
        .map(|i| format!("{{\"model\":\"gpt-4.1-mini\",\"input\":\"question {i}\"}}\n"))
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn the_mock_queues_answers_beyond_its_slots_and_the_wait_shows_in_ttft() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 8);
    // Each answer holds a slot 90 ms (first token at 50 ms, four more 10 ms apart): 8 at once on
    // 2 slots go in four waves, the last starting about 270 ms in.
    let pace = [
        "--mock-ttft",
        "50ms",
        "--mock-itl",
        "10ms",
        "--mock-output-tokens",
        "5",
        "--mock-slots",
        "2",
        "-c",
        "8",
    ];
    let mut streamed = vec![w.to_str().unwrap(), "--mock", "-q", "--stream"];
    streamed.extend(pace);
    let run_streamed = run(llmvolley(), &streamed, &tmp.path().join("streamed"));
    assert_eq!(run_streamed.code, 0, "{}", run_streamed.stdout);
    let mut ttft: Vec<f64> = run_streamed
        .records
        .iter()
        .map(|r| ms(r, "ttft_ms"))
        .collect();
    ttft.sort_by(f64::total_cmp);
    assert!(
        ttft[7] >= 300.0,
        "the last wave waited for three before it: {ttft:?}"
    );
    assert!(ttft[4] >= 210.0, "the third wave waited for two: {ttft:?}");
    assert!(ttft[2] >= 130.0, "the second wave waited for one: {ttft:?}");

    let mut whole = vec![w.to_str().unwrap(), "--mock", "-q"];
    whole.extend(pace);
    let run_whole = run(llmvolley(), &whole, &tmp.path().join("whole"));
    let mut latency: Vec<f64> = run_whole
        .records
        .iter()
        .map(|r| ms(r, "latency_ms"))
        .collect();
    latency.sort_by(f64::total_cmp);
    assert!(latency[7] >= 340.0, "whole answers queue too: {latency:?}");
}

fn sweep(
    dir: &std::path::Path,
    w: &std::path::Path,
    extra: &[&str],
) -> (serde_json::Value, String) {
    let out = dir.join("sweep");
    let output = llmvolley()
        .args([
            "bench",
            w.to_str().unwrap(),
            "--mock",
            "--profile",
            "sweep",
            "--requests",
            "12",
        ])
        .args(["--mock-ttft", "40ms", "--mock-output-tokens", "1"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let sweep = std::fs::read_to_string(out.join("sweep.json")).unwrap();
    (serde_json::from_str(&sweep).unwrap(), stderr)
}

#[test]
fn the_sweeps_rate_steps_reach_past_the_throughput_so_the_knee_is_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 12);
    let (sweep, _) = sweep(tmp.path(), &w, &["--steps", "3", "--mock-slots", "4"]);
    let steps = sweep["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{sweep}");
    let throughput = steps[1]["requests_per_s"].as_f64().unwrap();
    let top = steps[4]["rate_per_s"].as_f64().unwrap();
    assert!(
        (top - 1.1 * throughput).abs() < 1e-6 * top,
        "the last rate is 1.1× the throughput step's {throughput}: {top}"
    );
}

#[test]
fn explicit_rates_are_the_sweeps_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 12);
    let (sweep, _) = sweep(tmp.path(), &w, &["--rates", "20,40"]);
    let rates: Vec<f64> = sweep["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rate_per_s"].as_f64().unwrap())
        .collect();
    assert_eq!(rates, [20.0, 40.0]);
}

#[test]
fn a_throughput_step_no_faster_than_the_synchronous_one_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), 12);
    // One slot: the server takes one request at a time, however many are in flight.
    let (_, stderr) = sweep(tmp.path(), &w, &["--steps", "1", "--mock-slots", "1"]);
    assert!(
        stderr.contains("the server takes about one request at a time"),
        "{stderr}"
    );
}
