//! `llmvolley compare`: verdicts against the noise on constructed run folders, end to end.

use crate::common::{llmvolley, output_text};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// A run folder of `n` ok records whose latencies are log-normal around `median` ms (spread 0.4),
/// drawn from `seed`, completing evenly over `n / 100` seconds.
fn constructed_run(root: &Path, name: &str, n: usize, median: f64, seed: u64) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    // A small xorshift and Box–Muller: the test's data must not depend on a library's streams.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut lines = String::new();
    for i in 0..n {
        let z = (-2.0 * uniform().max(1e-12).ln()).sqrt()
            * (2.0 * std::f64::consts::PI * uniform()).cos();
        let latency = median * (0.4 * z).exp();
        let record = json!({
            "id": (i + 1).to_string(), "line": i + 1, "attempts": 1, "status": "ok",
            "sent_at": i as f64 * 10.0, "latency_ms": latency, "output_tokens": 20,
            "cost_usd": 0.0002,
        });
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("records.jsonl"), lines).unwrap();
    let window = n as f64 / 100.0;
    let summary = json!({"requests_per_s": n as f64 / window, "tokens": {"output_per_s": 20.0 * n as f64 / window}});
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    dir
}

fn compare(args: &[&Path], extra: &[&str]) -> (i32, Value, String) {
    let output = llmvolley()
        .arg("compare")
        .args(args)
        .args([
            "--json",
            "--metric",
            "latency.p50",
            "--metric",
            "latency.p90",
            "--metric",
            "latency.p99",
        ])
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, stderr)
}

fn verdicts(json: &Value) -> Vec<String> {
    json["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {json}"))
        .iter()
        .map(|r| r["verdict"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn identical_runs_compare_within_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let a = constructed_run(tmp.path(), "a", 2000, 100.0, 1);
    let b = constructed_run(tmp.path(), "b", 2000, 100.0, 1);
    let (code, json, stderr) = compare(&[&a, &b], &["--fail-if-worse", "0"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(verdicts(&json), ["within_noise"; 3]);
    assert!(
        json["method"].as_str().unwrap().contains("bootstrap"),
        "{json}"
    );
    assert_eq!(json["confidence"], 0.95);
}

#[test]
fn a_20_percent_latency_shift_over_2000_requests_is_worse() {
    let tmp = tempfile::tempdir().unwrap();
    let base = constructed_run(tmp.path(), "base", 2000, 100.0, 1);
    let new = constructed_run(tmp.path(), "new", 2000, 120.0, 2);
    let (code, json, stderr) = compare(&[&base, &new], &["--fail-if-worse", "10"]);
    assert_eq!(verdicts(&json), ["worse"; 3], "{json}");
    assert_eq!(code, 3, "worse by more than 10%: {stderr}");
    assert!(stderr.contains("latency.p50"), "{stderr}");
    let change = json["rows"][0]["change_pct"].as_f64().unwrap();
    assert!((10.0..30.0).contains(&change), "{json}");
    // Worse, but not by more than 50%: the gate passes.
    let (code, _, _) = compare(&[&base, &new], &["--fail-if-worse", "50"]);
    assert_eq!(code, 0);
    // The other way round it is better.
    let (_, json, _) = compare(&[&new, &base], &[]);
    assert_eq!(verdicts(&json), ["better"; 3], "{json}");
}

#[test]
fn the_same_shift_over_20_requests_is_within_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let base = constructed_run(tmp.path(), "base", 20, 100.0, 1);
    let new = constructed_run(tmp.path(), "new", 20, 120.0, 2);
    let (code, json, stderr) = compare(&[&base, &new], &["--fail-if-worse", "0"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(verdicts(&json), ["within_noise"; 3], "{json}");
    // p90 and p99 cannot be judged from 20 requests at all, and the table says so.
    assert!(
        json["rows"][2]["note"]
            .as_str()
            .unwrap()
            .contains("too few"),
        "{json}"
    );
    let table = llmvolley()
        .args(["compare"])
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    let (stdout, _) = output_text(&table);
    assert!(
        stdout.contains("latency p99 ms") && stdout.contains("within noise"),
        "{stdout}"
    );
    assert!(stdout.contains("method: bootstrap"), "{stdout}");
}

#[test]
fn several_runs_per_side_count_the_run_to_run_spread() {
    let tmp = tempfile::tempdir().unwrap();
    // Runs of one set-up that differ by ±20% from run to run (a noisy machine), 2,000 requests each.
    let base: Vec<PathBuf> = [(80.0, 1), (100.0, 2), (120.0, 3)]
        .iter()
        .map(|(m, s)| constructed_run(tmp.path(), &format!("base{s}"), 2000, *m, *s))
        .collect();
    let new: Vec<PathBuf> = [(88.0, 4), (110.0, 5), (132.0, 6)]
        .iter()
        .map(|(m, s)| constructed_run(tmp.path(), &format!("new{s}"), 2000, *m, *s))
        .collect();
    // One run per side: 10% slower is far beyond the noise of 2,000 requests.
    let (_, json, _) = compare(&[&base[1], &new[1]], &[]);
    assert_eq!(verdicts(&json)[0], "worse", "{json}");
    // Three runs per side: the same 10% is within the run-to-run spread.
    let mut args: Vec<&Path> = base.iter().map(PathBuf::as_path).collect();
    args.push(Path::new("vs"));
    args.extend(new.iter().map(PathBuf::as_path));
    let (code, json, stderr) = compare(&args, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["base"].as_array().unwrap().len(), 3);
    assert_eq!(verdicts(&json)[0], "within_noise", "{json}");
}

#[test]
fn compare_refuses_what_is_not_two_sides_of_run_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let a = constructed_run(tmp.path(), "a", 10, 100.0, 1);
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for (args, says) in [
        (vec![a.clone(), empty.clone()], "has no records.jsonl"),
        (vec![a.clone(), a.clone(), a.clone()], "BASE... vs NEW..."),
        (vec![a.clone(), PathBuf::from("vs")], "say both sides"),
    ] {
        let output = llmvolley().arg("compare").args(&args).output().unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Two identical constant-rate benches: every second holds exactly the same completions, so the
/// bootstrap interval has zero width and a few ms of window decided. Before: `ok req/s 20.10 20.10
/// -0.0% [-0.0%, -0.0%] worse`.
#[test]
fn a_zero_change_between_identical_runs_is_no_change_whatever_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let w = crate::common::workspace_file("workloads/varied-1000.jsonl");
    let bench = |name: &str| {
        let dir = tmp.path().join(name);
        let run = crate::common::bench(
            &[
                w.to_str().unwrap(),
                "--mock",
                "--profile",
                "constant",
                "--rate",
                "20",
                "--requests",
                "200",
            ],
            &dir,
        );
        assert_eq!(run.summary["requests"]["ok"], 200);
        dir
    };
    let (base, new) = (bench("base"), bench("new"));
    let output = llmvolley()
        .args([
            "compare",
            "--json",
            "--metric",
            "requests_per_s",
            "--fail-if-worse",
            "0",
        ])
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let rate = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "requests_per_s")
        .unwrap();
    assert_eq!(rate["verdict"], "no_change", "{rate}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
