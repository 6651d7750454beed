//! `llmvolley run`: workload → closed loop → records, summary and histograms in a run folder.

use super::{EXIT_INTERRUPTED, EXIT_SOME_FAILED};
use crate::cli::RunArgs;
use crate::client::Client;
use crate::collector::{Collector, Progress};
use crate::config::{RunConfig, Target, is_secret_header};
use crate::cost::Pricer;
use crate::mock::MockThread;
use crate::record::Status;
use crate::resume::{self, Decision, PriorOutcomes};
use crate::run_folder::{self, HISTOGRAMS_DIR, RECORDS_CSV, RECORDS_JSONL, RUN_JSON, SUMMARY_JSON};
use crate::scheduler::{Budget, ClosedLoop, Shutdown, Throttle, run_closed_loop};
use crate::sink::{CsvSink, JsonlSink, RecordSink};
use crate::stats::Summary;
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
    let workload_path = config.workload.display().to_string();
    let reader = WorkloadReader::open(&config.workload, config.default_route())
        .with_context(|| format!("cannot read workload {workload_path}"))?
        .force_stream(config.stream);
    if config.strict {
        workload::validate_strict(&config.workload, config.default_route())
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
        let create = |e: std::io::Error| {
            anyhow!(e).context(format!("cannot create records in {}", dir.display()))
        };
        let sinks: Vec<Box<dyn RecordSink>> = vec![
            Box::new(JsonlSink::create(&dir.join(RECORDS_JSONL)).map_err(create)?),
            Box::new(CsvSink::create(&dir.join(RECORDS_CSV)).map_err(create)?),
        ];
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

    let (base_url, mock) = start_target(&config.target)?;
    let started_at = run_folder::now_rfc3339();
    let mut info = run_info(&config, &base_url, &dir, &started_at);
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    tracing::debug!(settings = %info, "run starts");

    let epoch = Instant::now();
    let throttle = Arc::new(Throttle::new(
        config.rps,
        config.rpm,
        config.tpm,
        config.concurrency,
    ));
    let client = Arc::new(Client::new(
        &config.client_config(base_url, Some(throttle.clone())),
        epoch,
    )?);
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
            Arc::new(config.prices.clone()),
            config.tier,
        ))
    });
    let pricer =
        Pricer::new(config.prices.clone(), config.tier, !config.quiet).with_budget(budget.clone());
    let progress = Progress::new(total, show_progress, in_flight.clone());
    let collector = Collector::new(sinks, progress, pricer);
    let collecting = tokio::task::spawn_blocking(move || collector.run(records_rx));

    let shape = ClosedLoop {
        concurrency: config.concurrency,
        ramp_up: config.ramp_up,
        budget,
        throttle: Some(throttle),
    };
    let shutdown = Shutdown::default();
    let signals = tokio::spawn(watch_signals(shutdown.clone(), config.grace, config.quiet));
    run_closed_loop(items_rx, client, &shape, records_tx, in_flight, &shutdown).await;
    signals.abort();
    let (stats, unpriced_models) = collecting
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
    summary.cost.budget_usd = config.max_cost;
    summary.cost.budget_stopped =
        config.max_cost.is_some() && stats.count(Status::SkippedBudget) > 0;
    stats.save_histograms(&dir.join(HISTOGRAMS_DIR))?;
    run_folder::write_json(&dir, SUMMARY_JSON, &summary)?;
    info["finished_at"] = Value::String(run_folder::now_rfc3339());
    run_folder::write_json(&dir, RUN_JSON, &info)?;
    println!("run folder   {}", dir.display());
    print!("{}", summary.render());
    Ok(if summary.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if summary.requests.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SOME_FAILED)
    })
}

/// First SIGINT or SIGTERM: stop dispatch and give in-flight requests `grace` to finish, then
/// abandon them (recorded as cancelled). A second signal exits at once: records already written are
/// whole lines, and `--resume` continues from them.
async fn watch_signals(shutdown: Shutdown, grace: std::time::Duration, quiet: bool) {
    if next_signal().await.is_err() {
        return;
    }
    shutdown.stop.cancel();
    if !quiet {
        eprintln!(
            "interrupted: no new requests; waiting up to {grace:?} for those in flight (interrupt again to exit now)"
        );
    }
    tokio::select! {
        () = tokio::time::sleep(grace) => shutdown.abandon.cancel(),
        _ = next_signal() => std::process::exit(i32::from(EXIT_INTERRUPTED)),
    }
    let _ = next_signal().await;
    std::process::exit(i32::from(EXIT_INTERRUPTED));
}

async fn next_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
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

/// The base URL to send to; for `--mock`, starts the mock on a free loopback port first.
fn start_target(target: &Target) -> anyhow::Result<(Url, Option<MockThread>)> {
    match target {
        Target::Endpoint(url) => Ok((url.clone(), None)),
        Target::Mock(mock) => {
            let mock =
                MockThread::start(mock.clone(), 0).context("cannot start the mock on 127.0.0.1")?;
            Ok((Url::parse(&format!("http://{}/v1", mock.addr))?, Some(mock)))
        }
    }
}

/// The effective configuration for run.json: secrets never appear, only where they came from.
fn run_info(config: &RunConfig, base_url: &Url, dir: &Path, started_at: &str) -> Value {
    let mut endpoint = base_url.clone();
    let _ = endpoint.set_username("");
    let _ = endpoint.set_password(None);
    if endpoint.query().is_some() {
        endpoint.set_query(Some("<redacted>"));
    }
    let headers: serde_json::Map<String, Value> = config
        .headers
        .iter()
        .map(|(name, value)| {
            let shown = if is_secret_header(name.as_str()) {
                "<redacted>".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.to_string(), Value::String(shown))
        })
        .collect();
    let mock = match &config.target {
        Target::Mock(m) => json!({
            "latency_ms": m.latency.as_secs_f64() * 1000.0,
            "jitter_ms": m.jitter.as_secs_f64() * 1000.0,
            "seed": m.seed,
            "chat_shape_for_responses": m.chat_shape_for_responses,
            "ttft_ms": m.ttft.as_secs_f64() * 1000.0,
            "itl_ms": m.itl.as_secs_f64() * 1000.0,
            "tokens_per_chunk": m.tokens_per_chunk,
            "reasoning_tokens": m.reasoning_tokens,
            "output_tokens": m.output_tokens,
            "fault_rate": m.fault_rate,
            "faults": m.faults,
        }),
        Target::Endpoint(_) => Value::Null,
    };
    json!({
        "tool": "llmvolley",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "run",
        "workload": config.workload.display().to_string(),
        "run_folder": dir.display().to_string(),
        "endpoint": endpoint.as_str(),
        "mock": mock,
        "api": config.api,
        "concurrency": config.concurrency,
        "ramp_up_s": config.ramp_up.as_secs_f64(),
        "rps": config.rps,
        "rpm": config.rpm,
        "tpm": config.tpm,
        "timeout_s": config.timeout.as_secs_f64(),
        "max_retries": config.max_retries,
        "insecure": config.insecure,
        "api_key": config.key_source.to_string(),
        "headers": headers,
        "save_responses": config.save_responses,
        "stream": config.stream,
        "http2": config.http2,
        "prices": config.prices_file.as_ref().map(|p| p.display().to_string()),
        "tier": config.tier,
        "max_cost_usd": config.max_cost,
        "strict": config.strict,
        "resume": config.resume,
        "retry_failed": config.retry_failed,
        "started_at": started_at,
        "finished_at": null,
    })
}
