//! `llmvolley bench` end to end against the embedded mock: profiles, warm-up, drops, SLOs, sweeps.

use crate::common::{
    Run, assert_sent_on_schedule, bench, llmvolley, output_text, read_folder, workspace_file,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `bench` on the 1,000-line example workload; `args` are split on spaces.
fn bench_seeds(args: &str, dir: &Path) -> Run {
    let workload = seeds();
    let args: Vec<&str> = std::iter::once(workload.as_str())
        .chain(args.split_whitespace())
        .collect();
    bench(&args, dir)
}

fn seeds() -> String {
    workspace_file("workloads/varied-1000.jsonl")
        .display()
        .to_string()
}

/// What every bench step folder keeps: one record per scheduled request (seq 1..=n, each once),
/// CSV rows equal to JSONL rows, and a summary whose counts are the measured (non-warm-up) records.
fn assert_bench_invariants(run: &Run) -> usize {
    let seqs: BTreeSet<u64> = run
        .records
        .iter()
        .map(|r| r["seq"].as_u64().expect("bench records carry seq"))
        .collect();
    let n = run.records.len();
    assert_eq!(seqs.len(), n, "each scheduled request is recorded once");
    assert_eq!(
        seqs.iter().copied().collect::<Vec<_>>(),
        (1..=n as u64).collect::<Vec<_>>()
    );
    assert_eq!(run.csv_rows.len(), n, "CSV has the same rows");
    let warmup = run.records.iter().filter(|r| r["warmup"] == true).count();
    assert_eq!(
        run.summary["warmup_requests"].as_u64().unwrap() as usize,
        warmup
    );
    assert_eq!(
        run.summary["requests"]["total"].as_u64().unwrap() as usize,
        n - warmup
    );
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for r in run.records.iter().filter(|r| r["warmup"] != true) {
        *by_status
            .entry(r["status"].as_str().unwrap().into())
            .or_default() += 1;
    }
    let summary: BTreeMap<String, u64> =
        serde_json::from_value(run.summary["requests"]["by_status"].clone()).unwrap();
    assert_eq!(by_status, summary, "summary counts = measured records");
    let timeseries = std::fs::read_to_string(run.dir.join("timeseries.csv")).unwrap();
    let sent: u64 = csv::Reader::from_reader(timeseries.as_bytes())
        .deserialize::<BTreeMap<String, String>>()
        .map(|row| row.unwrap()["sent"].parse::<u64>().unwrap())
        .sum();
    let sent_records = run
        .records
        .iter()
        .filter(|r| !r["sent_at"].is_null())
        .count();
    assert_eq!(
        sent as usize, sent_records,
        "the time series counts every send"
    );
    n
}

#[test]
fn constant_rate_bench_sends_warmup_then_the_measured_requests_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = bench_seeds(
        "--mock --mock-latency 5ms --profile constant --rate 100 --requests 30 --warmup 5",
        &out,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(assert_bench_invariants(&run), 35);
    for r in &run.records {
        let seq = r["seq"].as_u64().unwrap();
        assert_eq!(
            r["warmup"] == true,
            seq <= 5,
            "the first 5 are warm-up: {r}"
        );
    }
    // Arrivals are 10 ms apart on the schedule, and none was sent before it was due.
    assert_sent_on_schedule(&run);
    let mut scheduled: Vec<(u64, f64)> = run
        .records
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["scheduled_at"].as_f64().unwrap(),
            )
        })
        .collect();
    scheduled.sort_by_key(|s| s.0);
    for pair in scheduled.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!((gap - 10.0).abs() < 0.01, "gap {gap} ms");
    }
    for r in &run.records {
        let (queue, latency) = (
            r["queue_ms"].as_f64().unwrap(),
            r["latency_ms"].as_f64().unwrap(),
        );
        let from_schedule = r["latency_from_schedule_ms"].as_f64().unwrap();
        assert!((from_schedule - queue - latency).abs() < 0.002, "{r}");
    }
    let load = &run.summary["load"];
    assert_eq!(load["profile"], "constant");
    assert_eq!(load["rate_per_s"], 100.0);
    assert_eq!(load["sent"], 30);
    assert!(load["scheduler_lag_ms"]["count"].as_u64().unwrap() > 0);
    assert!(load["client"]["cores_available"].as_u64().unwrap() >= 1);
    assert!(run.summary["latency_from_schedule_ms"]["count"] == 30);
    assert!(run.stdout.contains("from sched ms"), "{}", run.stdout);
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["command"], "bench");
    assert_eq!(info["warmup"]["requests"], 5);
}

#[test]
fn poisson_bench_repeats_its_schedule_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = |name: &str, seed: &str| -> Vec<f64> {
        let run = bench_seeds(
            &format!("--mock --profile poisson --rate 400 --seed {seed} --requests 40"),
            &dir.path().join(name),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_bench_invariants(&run);
        let mut at: Vec<(u64, f64)> = run
            .records
            .iter()
            .map(|r| {
                (
                    r["seq"].as_u64().unwrap(),
                    r["scheduled_at"].as_f64().unwrap(),
                )
            })
            .collect();
        at.sort_by_key(|a| a.0);
        // Offsets from the first arrival: the run's own start time drops out.
        at.iter().map(|a| a.1 - at[0].1).collect()
    };
    let first = schedule("a", "7");
    let again = schedule("b", "7");
    let other = schedule("c", "8");
    for (x, y) in first.iter().zip(&again) {
        assert!((x - y).abs() < 0.002, "{x} vs {y}");
    }
    assert!(first.iter().zip(&other).any(|(x, y)| (x - y).abs() > 1.0));
}

#[test]
fn drop_when_full_records_arrivals_as_dropped_and_counts_them() {
    // Two slots, each held 400 ms; arrivals every 10 ms for 200 ms: the first two are sent and the
    // other eighteen find no slot.
    let dir = tempfile::tempdir().unwrap();
    let run = bench_seeds(
        "--mock --mock-latency 400ms --profile constant --rate 100 --requests 20 --max-inflight 2 --drop-when-full",
        &dir.path().join("run"),
    );
    assert_eq!(run.code, 1, "dropped requests are failures\n{}", run.stderr);
    assert_bench_invariants(&run);
    let dropped: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["status"] == "dropped")
        .collect();
    assert_eq!(dropped.len(), 18);
    for r in &dropped {
        assert!(
            r["sent_at"].is_null() && !r["scheduled_at"].is_null(),
            "{r}"
        );
        assert_eq!(r["error"]["kind"], "dropped");
    }
    assert_eq!(run.summary["load"]["dropped"], 18);
    assert_eq!(run.summary["requests"]["by_status"]["dropped"], 18);
    assert_eq!(run.summary["requests"]["ok"], 2);
    assert!(
        run.stdout.contains("18 dropped when full"),
        "{}",
        run.stdout
    );
}

#[test]
fn arrivals_wait_for_a_slot_and_their_queue_time_shows_it() {
    // Same load without --drop-when-full: nothing is skipped, the waiting shows in queue_ms and in
    // latency_from_schedule, while the server's latency stays ~100 ms.
    let dir = tempfile::tempdir().unwrap();
    let run = bench_seeds(
        "--mock --mock-latency 100ms --profile constant --rate 100 --requests 12 --max-inflight 2",
        &dir.path().join("run"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_bench_invariants(&run);
    assert_eq!(run.summary["requests"]["ok"], 12);
    let last = run.records.iter().find(|r| r["seq"] == 12).unwrap();
    // Due at 110 ms, sent once five pairs of 100 ms requests have finished (~500 ms).
    assert!(last["queue_ms"].as_f64().unwrap() > 300.0, "{last}");
    let latency_p99 = run.summary["latency_ms"]["p99"].as_f64().unwrap();
    let from_schedule_p99 = run.summary["latency_from_schedule_ms"]["p99"]
        .as_f64()
        .unwrap();
    assert!(
        from_schedule_p99 > latency_p99 + 300.0,
        "{from_schedule_p99} vs {latency_p99}"
    );
}

#[test]
fn concurrent_bench_runs_for_the_duration_and_cycles_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("two.jsonl");
    std::fs::write(
        &workload,
        "{\"model\":\"gpt-4.1-mini\",\"input\":\"a\"}\n{\"model\":\"gpt-4.1-mini\",\"input\":\"b\"}\n",
    )
    .unwrap();
    let run = bench(
        &[
            workload.to_str().unwrap(),
            "--mock",
            "--mock-latency",
            "20ms",
            "--profile",
            "concurrent",
            "-c",
            "4",
            "--duration",
            "600ms",
            "--warmup",
            "200ms",
        ],
        &dir.path().join("run"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let n = assert_bench_invariants(&run);
    // 4 in flight for 800 ms at ~20 ms each: far more requests than the two lines.
    assert!(n > 20, "{n}");
    let lines: BTreeSet<u64> = run
        .records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, BTreeSet::from([1, 2]));
    assert!(run.summary["warmup_requests"].as_u64().unwrap() > 0);
    assert_eq!(run.summary["load"]["max_in_flight"], 4);
    assert!(
        run.summary["load"]["scheduler_lag_ms"].is_null(),
        "closed loop has no timer"
    );
}

#[test]
fn sweep_measures_synchronous_throughput_and_rates_up_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let run = bench_seeds(
        "--mock --mock-latency 10ms --profile sweep --steps 2 --requests 20 --max-inflight 16 --slo e2e=5s",
        &out,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let steps = table["steps"].as_array().unwrap();
    let profiles: Vec<&str> = steps
        .iter()
        .map(|s| s["profile"].as_str().unwrap())
        .collect();
    assert_eq!(
        profiles,
        ["synchronous", "throughput", "constant", "constant"]
    );
    let ok_rate = |i: usize| steps[i]["requests_per_s"].as_f64().unwrap();
    let (low, high) = (ok_rate(0), ok_rate(1));
    assert!(high > low, "{low} {high}");
    // Evenly above the synchronous rate, up to 1.1× the throughput: the knee is inside.
    for (i, fraction) in [(2, 1.0 / 2.0), (3, 1.0)] {
        let rate = steps[i]["rate_per_s"].as_f64().unwrap();
        assert!(
            (rate - (low + (1.1 * high - low) * fraction)).abs() < 1e-6,
            "{rate}"
        );
    }
    for step in steps {
        let folder = out.join(step["folder"].as_str().unwrap());
        let step_run = read_folder(&folder, 0);
        assert_eq!(assert_bench_invariants(&step_run), 20);
        assert_eq!(step_run.summary["slo"]["share_all"], 1.0);
        assert!(step["goodput_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(step["slo_e2e_share"], 1.0);
        assert!(
            step["slo_ttft_share"].is_null(),
            "only the SLOs given are judged"
        );
        assert_eq!(step["error_rate"], 0.0);
    }
    let csv_rows = csv::Reader::from_path(out.join("sweep.csv"))
        .unwrap()
        .records()
        .count();
    assert_eq!(csv_rows, 4);
    assert!(run.stdout.contains("goodput"), "{}", run.stdout);
    assert!(
        run.stdout.contains("e2e ok") && !run.stdout.contains("ttft ok"),
        "{}",
        run.stdout
    );
}

#[test]
fn bench_refuses_bad_settings_and_bad_lines_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"model\":\"m\",\"input\":\"ok\"}\n{not json\n").unwrap();
    for (args, message) in [
        (
            vec![seeds(), "--profile".into(), "constant".into()],
            "needs --rate",
        ),
        (
            vec![
                seeds(),
                "--profile".into(),
                "concurrent".into(),
                "--rate".into(),
                "5".into(),
            ],
            "--rate applies",
        ),
        (
            vec![
                seeds(),
                "--profile".into(),
                "poisson".into(),
                "--rate".into(),
                "5".into(),
                "-c".into(),
                "3".into(),
            ],
            "-c applies",
        ),
        (
            vec![
                seeds(),
                "--profile".into(),
                "throughput".into(),
                "--drop-when-full".into(),
            ],
            "--drop-when-full applies",
        ),
        (
            vec![seeds(), "--slo".into(), "itl=5ms".into()],
            "SLOs are ttft, tpot and e2e",
        ),
        (
            vec![seeds(), "--warmup".into(), "1.5".into()],
            "a duration with a unit",
        ),
        (vec![bad.to_str().unwrap().into()], "bad.jsonl:2:"),
    ] {
        let out = dir.path().join("never");
        let output = llmvolley()
            .arg("bench")
            .args(&args)
            .args(["--mock", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            !out.join("records.jsonl").exists(),
            "{args:?} sent requests"
        );
    }
}
