//! The Slurm array script as users run it, under a real Slurm (`deploy/slurm/ci-cluster.sh start`:
//! munge, slurmctld and slurmd on this machine): four tasks, one requeued while it runs, the
//! merge as a job depending on the array, every line exactly once.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A Slurm command's stdout; panics with its stderr when it fails.
fn slurm(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let (stdout, stderr) = output_text(&output);
    assert!(output.status.success(), "{program} {args:?}: {stderr}");
    stdout.trim().to_string()
}

/// Whether a cluster answers; CI (LLMVOLLEY_SLURM=required) fails instead of skipping.
fn cluster_up() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(
            std::env::var("LLMVOLLEY_SLURM").as_deref() != Ok("required"),
            "LLMVOLLEY_SLURM=required but no Slurm answers: bash deploy/slurm/ci-cluster.sh start"
        );
        println!("skipped: no Slurm cluster (bash deploy/slurm/ci-cluster.sh start as root)");
    }
    up
}

fn wait_gone(jobs: &str, limit: Duration) {
    let started = Instant::now();
    while !slurm("squeue", &["-h", "-j", jobs]).is_empty() {
        assert!(
            started.elapsed() < limit,
            "jobs {jobs} still queued: {}",
            slurm("squeue", &["-j", jobs])
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
#[ignore = "needs a Slurm cluster: bash deploy/slurm/ci-cluster.sh start (root), then cargo test -- --include-ignored"]
fn the_array_script_runs_under_slurm_with_a_requeued_task_and_a_dependent_merge() {
    if !cluster_up() {
        return;
    }
    let started = Instant::now();
    // Answers of 100 ms at -c 2: a task runs for seconds, long enough to be requeued mid-run.
    let (_mock, endpoint) = mock_process_with(&["--mock-latency", "100ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let lines: String = (0..400)
        .map(|i| format!("{{\"model\":\"gpt-4.1-mini\",\"input\":\"question {i}\"}}\n"))
        .collect();
    std::fs::write(work.join("w.jsonl"), lines).unwrap();
    let script = workspace_file("deploy/slurm/llmvolley-array.sbatch");
    // How llmvolley is found on the compute node: on the PATH sbatch passes on (--export=ALL).
    let bin = Path::new(env!("CARGO_BIN_EXE_llmvolley")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let chdir = format!("--chdir={}", work.display());
    let export = format!("--export=ALL,PATH={path}");
    let array = slurm(
        "sbatch",
        &[
            "--parsable",
            &chdir,
            &export,
            "--array=0-3",
            script.to_str().unwrap(),
            "w.jsonl",
            &endpoint,
            "-c",
            "2",
        ],
    );
    println!("slurm: array job {array} submitted (tasks 0-3)");
    // Requeue the first task seen running, once it has written records.
    let task = loop {
        let running = slurm("squeue", &["-h", "-j", &array, "-t", "R", "-o", "%i"]);
        if let Some(task) = running.lines().next().map(str::to_string) {
            let shard = task.rsplit('_').next().unwrap().to_string();
            let records = work.join(format!("results/shard-{shard}/records.jsonl"));
            if std::fs::metadata(&records).is_ok_and(|m| m.len() > 0) {
                break task;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no task ran");
        std::thread::sleep(Duration::from_millis(50));
    };
    slurm("scontrol", &["requeue", &task]);
    // Slurm holds a requeued task for its node's clean-up (a begin time minutes away): now.
    let _ = Command::new("scontrol")
        .args(["update", &format!("JobId={task}"), "StartTime=now"])
        .output();
    let restarts = slurm("scontrol", &["show", "job", &task, "-o"]);
    assert!(restarts.contains("Restarts=1"), "{restarts}");
    println!("slurm: task {task} requeued while running (Restarts=1)");
    let merge = slurm(
        "sbatch",
        &[
            "--parsable",
            &chdir,
            &export,
            &format!("--dependency=afterok:{array}"),
            "--output=merge-%j.log",
            "--wrap",
            "llmvolley merge results/shard-0 results/shard-1 results/shard-2 results/shard-3 --out results/merged",
        ],
    );
    println!("slurm: merge job {merge} submitted, after the array (afterok:{array})");
    wait_gone(&format!("{array},{merge}"), Duration::from_secs(240));
    let merged = work.join("results/merged");
    let records: Vec<Value> = std::fs::read_to_string(merged.join("records.jsonl"))
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(work.join(format!("merge-{merge}.log")))
                .unwrap_or_default();
            panic!("no merged records ({e}): {log}")
        })
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: BTreeSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        (records.len(), ids.len()),
        (400, 400),
        "every line exactly once"
    );
    assert!(records.iter().all(|r| r["status"] == "ok"));
    // The tokens and cost of the same workload in one process.
    let one = run(
        llmvolley(),
        &[
            work.join("w.jsonl").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "-q",
            "-c",
            "8",
        ],
        &work.join("one"),
    );
    let (job, single) = (summary(&merged), &one.summary);
    for key in ["input", "output"] {
        assert_eq!(job["tokens"][key], single["tokens"][key], "{key} tokens");
    }
    let (a, b) = (
        job["cost"]["total_usd"].as_f64().unwrap(),
        single["cost"]["total_usd"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-9, "cost {a} against {b}");
    println!(
        "slurm: merged {} records, {} ids, {} input and {} output tokens, ${a:.6}: as one process; {:.1} s in all",
        records.len(),
        ids.len(),
        job["tokens"]["input"],
        job["tokens"]["output"],
        started.elapsed().as_secs_f64()
    );
}
