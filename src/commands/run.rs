//! `llmvolley run`: workload → closed loop → records, summary and histograms in a run folder.

use super::target::{
    create_record_files, new_timeseries, print_summary, run_json, start_target, watch_signals,
    write_results,
};
use super::{EXIT_INTERRUPTED, EXIT_SOME_FAILED};
use crate::cli::RunArgs;
use crate::client::Client;
use crate::collector::{Collector, Progress};
use crate::config::RunConfig;
use crate::cost::Budget;
use crate::cost::Pricer;
use crate::record::Status;
use crate::resume::{self, Decision, PriorOutcomes};
use crate::run_folder::{self, HISTOGRAMS_DIR, RECORDS_CSV, RECORDS_JSONL, RUN_JSON};
use crate::scheduler::{ClosedLoop, Requester, Shutdown, Throttle, run_closed_loop};
use crate::sink::{JsonlSink, RecordSink};
use crate::stats::Summary;
use crate::tokenize::Estimator;
use crate::workload::{self, WorkItem, WorkloadReader};
use anyhow::{Context, anyhow, bail};
use reqwest::Url;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;
use tokio::sync::mpsc;

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = RunConfig::from_args(args, |name| std::env::var(name).ok())?;
    let shutdown = Shutdown::default();
    let signals = watch_signals(shutdown.clone(), config.grace, config.quiet);
    let workload_path = config.workload.display().to_string();
    let reader = WorkloadReader::open(&config.workload, config.conn.default_route())
        .with_context(|| format!("cannot read workload {workload_path}"))?
        .force_stream(config.conn.stream);
    if config.strict {
        workload::validate_strict(&config.workload, config.conn.default_route())
            .map_err(|e| anyhow!(e))?;
    }
    let show_progress = !config.quiet && std::io::stderr().is_terminal();
    let OpenedFolder { dir, sinks, prior } = if config.resume {
        open_for_resume(&config)?
    } else {
        let dir = run_folder::create(
            config.out.as_deref(),
            &config.workload,
            Path::new("results"),
        )?;
        let sinks = create_record_files(&dir)?;
        OpenedFolder {
            dir,
            sinks,
            prior: None,
        }
    };
    // A resumed run sends an unknown share of the lines: no total, no ETA.
    let total = if show_progress && prior.is_none() {
        Some(
            workload::count_lines(&config.workload)
                .with_context(|| format!("cannot read workload {workload_path}"))?,
        )
    } else {
        None
    };

    let (base_url, mock) = start_target(&config.conn.target)?;
    let started_at = run_folder::now_rfc3339();
    let mut info = run_info(&config, &base_url, &dir, &started_at);
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    tracing::debug!(settings = %info, "run starts");

    let estimator = Estimator::ready(config.conn.tokenizer.clone(), config.conn.stream).await?;
    let epoch = Instant::now();
    let epoch_unix_us = run_folder::unix_micros_now();
    info["epoch_unix_us"] = Value::from(epoch_unix_us);
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    let throttle = Arc::new(Throttle::new(
        config.rps,
        config.rpm,
        config.tpm,
        config.concurrency,
        config.conn.max_server_wait,
    ));
    let requester = Arc::new(Requester::new(
        Client::new(&config.client_config(base_url), epoch)?,
        config.conn.retry_policy(config.max_retries),
        Some(throttle.clone()),
    ));
    let queue = config.concurrency.max(64) * 2;
    let (items_tx, items_rx) = mpsc::channel(queue);
    let reading = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut kept = 0;
        for item in reader {
            let item = item?;
            if let Some(prior) = &prior {
                let id = match &item {
                    WorkItem::Send(request) => &request.id,
                    WorkItem::Invalid(bad) => &bad.id,
                };
                if prior.decide(id) == Decision::Keep {
                    kept += 1;
                    continue;
                }
            }
            if items_tx.blocking_send(item).is_err() {
                break;
            }
        }
        Ok(kept)
    });
    let (records_tx, records_rx) = mpsc::channel(queue);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let budget = config.max_cost.map(|limit| {
        Arc::new(Budget::new(
            limit,
            Arc::new(config.conn.prices.clone()),
            config.conn.tier,
        ))
    });
    let pricer = Pricer::new(config.conn.prices.clone(), config.conn.tier, !config.quiet)
        .with_budget(budget.clone());
    let progress =
        Progress::new(total, show_progress, in_flight.clone()).with_pacing(throttle.clone());
    let mut collector = Collector::new(sinks, progress, pricer, estimator);
    // A resumed run keeps the first session's time series: seconds of two sessions don't add up.
    if !config.resume {
        collector = collector.with_timeseries(new_timeseries(&dir, epoch_unix_us)?);
    }
    let collecting = tokio::task::spawn_blocking(move || collector.run(records_rx));

    let shape = ClosedLoop {
        concurrency: config.concurrency,
        ramp_up: config.ramp_up,
        budget,
        throttle: Some(throttle.clone()),
    };
    run_closed_loop(
        items_rx, requester, &shape, records_tx, in_flight, &shutdown,
    )
    .await;
    signals.abort();
    let crate::collector::Collected {
        stats,
        unpriced_models,
        timeseries,
    } = collecting
        .await?
        .with_context(|| format!("cannot write records in {}", dir.display()))?;
    let wall_time_s = epoch.elapsed().as_secs_f64();
    drop(mock);

    let kept = reading
        .await?
        .with_context(|| format!("workload {workload_path}"))?;
    let (stats, mut summary) = if config.resume {
        let jsonl = dir.join(RECORDS_JSONL);
        resume::compact(&jsonl).with_context(|| format!("cannot compact {}", jsonl.display()))?;
        let mut full = resume::rebuild_csv_and_stats(&jsonl, &dir.join(RECORDS_CSV))
            .with_context(|| format!("cannot rebuild {}", dir.join(RECORDS_CSV).display()))?;
        // Gaps between chunks are not kept in records: ITL covers this session's streams.
        full.itl = stats.itl.clone();
        let session = Summary::from_stats(&stats, wall_time_s, Vec::new());
        let mut summary = Summary::from_stats(&full, wall_time_s, unpriced_models);
        summary.window_s = session.window_s;
        summary.requests_per_s = session.requests_per_s;
        summary.tokens.output_per_s = session.tokens.output_per_s;
        summary.tokens.total_per_s = session.tokens.total_per_s;
        summary.resumed_kept = Some(kept);
        (full, summary)
    } else {
        let summary = Summary::from_stats(&stats, wall_time_s, unpriced_models);
        (stats, summary)
    };
    summary.interrupted = shutdown.stop.is_cancelled();
    summary.epoch_unix_us = Some(epoch_unix_us);
    summary.server_pacing = throttle.report();
    summary.cost.budget_usd = config.max_cost;
    summary.cost.budget_stopped =
        config.max_cost.is_some() && stats.count(Status::SkippedBudget) > 0;
    write_results(&dir, &stats, timeseries, &summary)?;
    info["finished_at"] = Value::String(run_folder::now_rfc3339());
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    println!("run folder   {}", dir.display());
    print_summary(&summary)?;
    Ok(if summary.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if summary.requests.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SOME_FAILED)
    })
}

/// A run folder ready for records: its sinks, and what an earlier run there finished (`--resume`).
struct OpenedFolder {
    dir: PathBuf,
    sinks: Vec<Box<dyn RecordSink>>,
    prior: Option<PriorOutcomes>,
}

/// Reopens an earlier run folder: its records say which lines are done; new records are appended to
/// `records.jsonl` (after cutting a torn last line) and `records.csv` is rebuilt at the end.
fn open_for_resume(config: &RunConfig) -> anyhow::Result<OpenedFolder> {
    let dir = config
        .out
        .clone()
        .context("--resume needs --out DIR: the run folder to continue")?;
    let jsonl = dir.join(RECORDS_JSONL);
    if !jsonl.is_file() {
        bail!(
            "--resume: {} has no {RECORDS_JSONL} to continue",
            dir.display()
        );
    }
    if resume::cut_torn_tail(&jsonl)
        .with_context(|| format!("cannot repair {}", jsonl.display()))?
        && !config.quiet
    {
        eprintln!(
            "note: {} ended with a torn line (an interrupted write); it was cut",
            jsonl.display()
        );
    }
    let prior = PriorOutcomes::read(&jsonl, config.retry_failed)
        .with_context(|| format!("cannot read {}", jsonl.display()))?;
    let sink = JsonlSink::append(&jsonl)
        .with_context(|| format!("cannot append to {}", jsonl.display()))?;
    std::fs::create_dir_all(dir.join(HISTOGRAMS_DIR))?;
    Ok(OpenedFolder {
        dir,
        sinks: vec![Box::new(sink)],
        prior: Some(prior),
    })
}

/// The effective configuration for run.json: secrets never appear, only where they came from.
fn run_info(config: &RunConfig, base_url: &Url, dir: &Path, started_at: &str) -> Value {
    let settings = json!({
        "tool": "llmvolley",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "run",
        "workload": config.workload.display().to_string(),
        "run_folder": dir.display().to_string(),
        "concurrency": config.concurrency,
        "ramp_up_s": config.ramp_up.as_secs_f64(),
        "rps": config.rps,
        "rpm": config.rpm,
        "tpm": config.tpm,
        "max_retries": config.max_retries,
        "max_cost_usd": config.max_cost,
        "strict": config.strict,
        "resume": config.resume,
        "retry_failed": config.retry_failed,
        "started_at": started_at,
        "finished_at": null,
    });
    run_json(&config.conn, base_url, settings)
}
