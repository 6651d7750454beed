//! Shards and merge: N copies of one job, each sending its own lines, merged into exactly what one
//! process records; a shard killed mid-run resumes and the merge loses and repeats nothing.

use crate::common::{llmvolley, output_text, read_folder, varied_workload};
use llmvolley::record::Record;
use llmvolley::stats::RunStats;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn shard_run(workload: &str, shard: &str, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = llmvolley();
    cmd.args(["run", workload, "--mock", "-q", "--shard", shard, "--out"])
        .arg(out)
        .args(extra);
    if !extra.contains(&"-c") {
        cmd.args(["-c", "16"]);
    }
    cmd.stdout(std::process::Stdio::null());
    cmd
}

/// Waits for a child, killing it after 120 s (a bounded test).
fn finish(mut child: Child) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("a shard did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn merge(dirs: &[PathBuf], out: &Path) -> (i32, String) {
    let output = llmvolley()
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    (output.status.code().unwrap_or(-1), stderr)
}

fn by_id(records: &[Value]) -> BTreeMap<String, &Value> {
    records
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect()
}

#[test]
fn four_shards_merge_to_what_one_process_records() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let single = tmp.path().join("single");
    let one = llmvolley()
        .args(["run", &w, "--mock", "-q", "-c", "16", "--out"])
        .arg(&single)
        .status()
        .unwrap();
    assert_eq!(one.code(), Some(0));
    // Four processes at once, as four pods would run.
    let dirs: Vec<PathBuf> = (0..4)
        .map(|i| tmp.path().join(format!("shard-{i}")))
        .collect();
    let children: Vec<Child> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| shard_run(&w, &format!("{i}/4"), dir, &[]).spawn().unwrap())
        .collect();
    for child in children {
        assert_eq!(finish(child), 0);
    }
    let merged_dir = tmp.path().join("merged");
    let (code, stderr) = merge(&dirs, &merged_dir);
    assert_eq!(code, 0, "{stderr}");
    let single = read_folder(&single, 0);
    let merged = read_folder(&merged_dir, 0);

    // The same lines, each exactly once, and the same answers (the mock's depend on the body only).
    assert_eq!(merged.records.len(), 1000);
    let (a, b) = (by_id(&single.records), by_id(&merged.records));
    assert_eq!(b.len(), 1000, "an id recorded twice");
    assert_eq!(
        a.keys().collect::<BTreeSet<_>>(),
        b.keys().collect::<BTreeSet<_>>()
    );
    for (id, r) in &a {
        for field in [
            "status",
            "output_tokens",
            "input_tokens",
            "cost_usd",
            "output_text",
        ] {
            assert_eq!(r[field], b[id][field], "{id}: {field}");
        }
        assert!(b[id]["shard"].as_u64().unwrap() < 4);
    }
    // Dollars are summed in another order: equal to the last few bits.
    let (x, y) = (
        single.summary["cost"]["total_usd"].as_f64().unwrap(),
        merged.summary["cost"]["total_usd"].as_f64().unwrap(),
    );
    assert!((x - y).abs() < 1e-9, "{x} vs {y}");
    for path in ["requests", "tokens"] {
        let (x, y) = (&single.summary[path], &merged.summary[path]);
        let strip = |v: &Value| {
            let mut v = v.clone();
            for rate in ["output_per_s", "total_per_s", "input_per_s"] {
                v.as_object_mut().map(|m| m.remove(rate));
            }
            v
        };
        assert_eq!(strip(x), strip(y), "summary.{path}");
    }
    assert_eq!(merged.csv_rows.len(), 1000);

    // Every merged histogram equals, bucket for bucket, the one built from the merged records.
    let mut rebuilt = RunStats::default();
    for r in &merged.records {
        let record: Record = serde_json::from_value(r.clone()).unwrap();
        rebuilt.add(&record);
    }
    for (name, histo) in llmvolley::stats::Histo::NAMED {
        let histogram = histo.of(&rebuilt);
        if name == "itl" {
            continue; // gaps between chunks are not in records: only the shards' histograms hold them
        }
        let bytes =
            std::fs::read(merged_dir.join("histograms").join(format!("{name}.hdr"))).unwrap();
        let saved: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .unwrap();
        let recorded = |h: &hdrhistogram::Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        assert_eq!(
            recorded(&saved),
            recorded(histogram.inner()),
            "histogram {name}"
        );
        assert_eq!(saved.len(), histogram.len(), "histogram {name}");
    }
    // The merged summary's percentiles come from those histograms, never from averaged shards.
    let p99 = merged.summary["latency_ms"]["p99"].as_f64().unwrap();
    let from_records = rebuilt.latency.inner().value_at_quantile(0.99) as f64 / 1000.0;
    assert_eq!(p99, from_records);
    // One time axis: the merged time series counts every request once.
    let series = std::fs::read_to_string(merged_dir.join("timeseries.csv")).unwrap();
    let sent: u64 = series
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sent, 1000, "{series}");
    // `report` and `compare` take the merged folder as any run folder.
    for args in [
        vec!["report".to_string(), merged_dir.display().to_string()],
        vec![
            "compare".to_string(),
            single.dir.display().to_string(),
            merged_dir.display().to_string(),
        ],
    ] {
        let output = llmvolley().args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            output_text(&output).1
        );
    }
    assert!(merged_dir.join("report.html").is_file());
}

#[test]
fn start_at_holds_the_load_until_the_wall_clock_instant() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let at = std::time::SystemTime::now() + Duration::from_millis(1500);
    let stamp = humantime::format_rfc3339_millis(at).to_string();
    let out = tmp.path().join("run");
    let status = llmvolley()
        .args([
            "run",
            &w,
            "--mock",
            "-q",
            "--requests",
            "20",
            "--start-at",
            &stamp,
            "--out",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "20 of 1000 lines sent, the rest left for --resume (not failures)"
    );
    let run_json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let epoch = run_json["epoch_unix_us"].as_u64().unwrap();
    let at_us = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    // Not before the instant (a millisecond for the timer's tick), and not long after it.
    assert!(epoch + 1_000 >= at_us, "started {} µs early", at_us - epoch);
    assert!(
        epoch < at_us + 5_000_000,
        "started {} µs late",
        epoch - at_us
    );
    let bad = llmvolley()
        .args(["run", &w, "--mock", "-q", "--start-at", "tomorrow", "--out"])
        .arg(tmp.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(output_text(&bad).1.contains("RFC 3339"));
}

#[test]
fn a_killed_shard_resumes_and_the_merge_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| tmp.path().join(format!("shard-{i}")))
        .collect();
    // The same command line starts a shard and restarts it, as a pod's restart would.
    let command = |i: usize| {
        shard_run(
            &w,
            &format!("{i}/2"),
            &dirs[i],
            &["--resume", "--mock-latency", "40ms", "-c", "4"],
        )
    };
    let other = command(1).spawn().unwrap();
    let mut victim = command(0).spawn().unwrap();
    // Killed (SIGKILL: no chance to flush or record anything) once it has written some records.
    let started = Instant::now();
    loop {
        let written = std::fs::read_to_string(dirs[0].join("records.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if written >= 40 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    let before = std::fs::read_to_string(dirs[0].join("records.jsonl")).unwrap();
    assert!(
        before.lines().count() < 500,
        "the shard finished before it was killed"
    );
    assert_eq!(
        finish(command(0).spawn().unwrap()),
        0,
        "the restarted shard completes"
    );
    assert_eq!(finish(other), 0);
    let merged_dir = tmp.path().join("merged");
    let (code, stderr) = merge(&dirs, &merged_dir);
    assert_eq!(code, 0, "{stderr}");
    let merged = read_folder(&merged_dir, 0);
    let ids: BTreeSet<&str> = merged
        .records
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000, "every line once");
    assert_eq!(merged.records.len(), 1000, "no line twice");
    assert!(merged.records.iter().all(|r| r["status"] == "ok"));
    assert_eq!(merged.summary["requests"]["ok"], 1000);
}

#[test]
fn merge_refuses_folders_that_are_not_one_whole_job() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let small = tmp.path().join("small.jsonl");
    std::fs::write(&small, "{\"model\":\"gpt-4.1-mini\",\"input\":\"a\"}\n{\"model\":\"gpt-4.1-mini\",\"input\":\"b\"}\n").unwrap();
    let make = |name: &str, workload: &str, shard: &str| {
        let dir = tmp.path().join(name);
        let status = shard_run(workload, shard, &dir, &[]).status().unwrap();
        assert!(status.code() == Some(0), "{name}");
        dir
    };
    let s0 = make("s0", &w, "0/3");
    let s1 = make("s1", &w, "1/3");
    let s2 = make("s2", &w, "2/3");
    let other = make("other", small.to_str().unwrap(), "2/3");
    let half = make("half", &w, "1/2");
    let streamed = tmp.path().join("streamed");
    let status = shard_run(&w, "2/3", &streamed, &["--stream"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let plain = tmp.path().join("plain");
    assert!(
        llmvolley()
            .args(["run", &w, "--mock", "-q", "--out"])
            .arg(&plain)
            .status()
            .unwrap()
            .success()
    );
    for (dirs, says) in [
        (
            vec![s0.clone(), s1.clone()],
            "shard 2/3 of the job is missing",
        ),
        (
            vec![s0.clone(), s1.clone(), s1.clone(), s2.clone()],
            "shard 1/3 is given twice",
        ),
        (vec![s0.clone(), s1.clone(), other], "share one workload"),
        (vec![s0.clone(), half], "one count"),
        (vec![s0.clone(), s1.clone(), streamed], "stream"),
        (
            vec![s0.clone(), s1.clone(), s2.clone(), plain],
            "was not run as a shard",
        ),
    ] {
        let (code, stderr) = merge(&dirs, &tmp.path().join("never"));
        assert_eq!(code, 2, "{says}: {stderr}");
        assert!(stderr.contains(says), "{says}: {stderr}");
        assert!(!tmp.path().join("never").join("records.jsonl").exists());
    }
}

#[test]
fn shards_take_their_share_of_the_jobs_totals() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    // --shards with no index anywhere: a setup error naming where the index comes from.
    let output = llmvolley()
        .args(["run", &w, "--mock", "-q", "--shards", "4", "--out"])
        .arg(tmp.path().join("x"))
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("JOB_COMPLETION_INDEX") && stderr.contains("SLURM_ARRAY_TASK_ID"),
        "{stderr}"
    );
    // The index from a Slurm array; the job's rate and concurrency split four ways.
    let out = tmp.path().join("b");
    let output = llmvolley()
        .args([
            "bench",
            &w,
            "--mock",
            "-q",
            "--shards",
            "4",
            "--profile",
            "constant",
            "--rate",
            "400",
            "--max-inflight",
            "10",
            "--requests",
            "50",
            "--out",
        ])
        .arg(&out)
        .env("SLURM_ARRAY_TASK_ID", "3")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output).1);
    let run_json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["shard"]["index"], 3);
    assert_eq!(run_json["shard"]["count"], 4);
    assert_eq!(run_json["rate_per_s"], 100.0);
    assert_eq!(run_json["max_inflight"], 2, "10 split as 3, 3, 2, 2");
    let summary = read_folder(&out, 0).summary;
    assert_eq!(summary["load"]["rate_per_s"], 100.0);
}

#[test]
fn merged_shards_keep_each_shards_server_metrics_on_the_jobs_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let w = varied_workload();
    let dirs: Vec<PathBuf> = (0..2).map(|i| tmp.path().join(format!("s{i}"))).collect();
    // Each shard scrapes its own mock, as shards of one job on N machines scrape their server.
    let children: Vec<Child> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            shard_run(
                &w,
                &format!("{i}/2"),
                dir,
                &[
                    "--mock-latency",
                    "20ms",
                    "--scrape",
                    "auto",
                    "--scrape-every",
                    "300ms",
                ],
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for child in children {
        assert_eq!(finish(child), 0);
    }
    let merged = tmp.path().join("merged");
    let (code, stderr) = merge(&dirs, &merged);
    assert_eq!(code, 0, "{stderr}");
    let mut reader = csv::Reader::from_path(merged.join("server_metrics.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(&header[..4], ["shard", "second", "from_s", "t_s"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let shards: BTreeSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(shards, BTreeSet::from(["0", "1"]), "{rows:?}");
    let starts: Vec<f64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]) && starts[0] >= 0.0,
        "in time order on the job's epoch: {starts:?}"
    );
    let running = header.iter().position(|h| h == "running").unwrap();
    assert!(
        rows.iter()
            .any(|r| r[running].parse::<f64>().unwrap_or(0.0) > 0.0),
        "{rows:?}"
    );
}
