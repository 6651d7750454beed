//! `llmvolley bench`: one load profile, or a sweep of them, each step measured into its own run folder.

use super::measure::Bench;
use super::target::{print_summary, run_json, start_target, watch_signals};
use super::{EXIT_INTERRUPTED, EXIT_SOME_FAILED};
use crate::cli::Profile;
use crate::config::BenchConfig;
use crate::record::millis;
use crate::run_folder::{self, HISTOGRAMS_DIR, RUN_JSON};
use crate::scheduler::{Shutdown, Warmup, WhenFull};
use crate::workload::{Request, WorkItem, WorkloadReader};
use anyhow::{Context, bail};
use reqwest::Url;
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn bench(args: crate::cli::BenchArgs) -> anyhow::Result<ExitCode> {
    let config = BenchConfig::from_args(args, |name| std::env::var(name).ok())?;
    let workload: Arc<[Request]> = load_workload(&config)?.into();
    let dir = run_folder::create(
        config.out.as_deref(),
        &config.workload,
        Path::new("results"),
    )?;
    let (base_url, mock) = start_target(&config.conn.target)?;
    let mut info = bench_info(&config, &base_url, &dir, workload.len());
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    tracing::debug!(settings = %info, "bench starts");

    let shutdown = Shutdown::default();
    let signals = watch_signals(shutdown.clone(), config.grace, config.quiet);
    let bench = Bench {
        config: &config,
        workload,
        base_url,
        mock: mock.as_ref(),
        shutdown: &shutdown,
    };
    let summaries = match config.pace() {
        Some(pace) => {
            let summary = bench.measure(&dir, config.profile, pace).await?;
            println!("run folder   {}", dir.display());
            print_summary(&summary)?;
            vec![summary]
        }
        None => {
            // A sweep's histograms are in its step folders.
            let _ = std::fs::remove_dir(dir.join(HISTOGRAMS_DIR));
            super::sweep::sweep(&bench, &dir).await?
        }
    };
    signals.abort();
    drop(mock);
    info["finished_at"] = Value::String(run_folder::now_rfc3339());
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    Ok(if shutdown.stop.is_cancelled() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if summaries.iter().all(|s| s.requests.failed == 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SOME_FAILED)
    })
}

/// Reads the whole workload: it is cycled, so it must fit in memory, and every line must be usable
/// (a line that cannot be sent would fail again on every cycle).
fn load_workload(config: &BenchConfig) -> anyhow::Result<Vec<Request>> {
    let path = config.workload.display();
    let reader = WorkloadReader::open(&config.workload, config.conn.default_route())
        .with_context(|| format!("cannot read workload {path}"))?
        .force_stream(config.conn.stream);
    let mut requests = Vec::new();
    for item in reader {
        match item.with_context(|| format!("cannot read workload {path}"))? {
            WorkItem::Send(request) => requests.push(request),
            WorkItem::Invalid(bad) => bail!("{path}:{}: {}", bad.line, bad.message),
        }
    }
    if requests.is_empty() {
        bail!("workload {path} has no requests");
    }
    Ok(requests)
}

/// The effective bench configuration for run.json (secrets never appear).
fn bench_info(config: &BenchConfig, base_url: &Url, dir: &Path, workload_lines: usize) -> Value {
    let warmup = match config.warmup {
        Warmup::None => Value::Null,
        Warmup::Requests(n) => json!({ "requests": n }),
        Warmup::Time(t) => json!({ "seconds": t.as_secs_f64() }),
    };
    let slo = config.slo.map(|slo| {
        json!({
            "ttft_ms": slo.ttft.map(millis),
            "tpot_ms": slo.tpot.map(millis),
            "e2e_ms": slo.e2e.map(millis),
        })
    });
    let settings = json!({
        "tool": "llmvolley",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "bench",
        "workload": config.workload.display().to_string(),
        "workload_lines": workload_lines,
        "run_folder": dir.display().to_string(),
        "profile": config.profile,
        "concurrency": (config.profile == Profile::Concurrent).then_some(config.concurrency),
        "rate_per_s": config.rate,
        "seed": config.seed,
        "max_inflight": config.max_inflight,
        "drop_when_full": config.when_full == WhenFull::Drop,
        "steps": (config.profile == Profile::Sweep).then_some(config.steps),
        "sweep_arrivals": (config.profile == Profile::Sweep).then_some(config.sweep_arrivals),
        "requests": config.requests,
        "duration_s": config.duration.map(|d| d.as_secs_f64()),
        "warmup": warmup,
        "slo": slo,
        "max_retries": config.max_retries,
        "started_at": run_folder::now_rfc3339(),
        "finished_at": null,
    });
    run_json(&config.conn, base_url, settings)
}
