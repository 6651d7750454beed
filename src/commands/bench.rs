//! `llmvolley bench`: one load profile, or a sweep of them, each step measured into its own run folder.

use super::drive::Driver;
use super::exit_code;
use super::measure::Bench;
use super::target::{RunJson, print_summary, start_target, watch_signals};
use crate::capacity::Watch;
use crate::cli::Profile;
use crate::config::BenchConfig;
use crate::cost::Budget;
use crate::run_folder::{self, HISTOGRAMS_DIR};
use crate::scheduler::{Shutdown, WhenFull};
use crate::workload::{Request, WorkItem, WorkloadReader};
use anyhow::{Context, bail};
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
    let mut run_json = RunJson::start(
        &dir,
        "bench",
        &config.workload,
        (&config.conn, &base_url),
        &config.load,
        bench_settings(&config, workload.len()),
        Vec::new(),
    )?;
    let shutdown = Shutdown::default();
    let signals = watch_signals(shutdown.clone(), config.load.grace, config.load.quiet);
    let scrape = super::drive::scrape_setup(&config.conn, &base_url).await?;
    super::identity::record(&mut run_json, &config.conn, &base_url).await?;
    let bench = Bench {
        config: &config,
        workload,
        driver: Driver {
            conn: &config.conn,
            load: &config.load,
            base_url,
            mock: mock.as_ref(),
            shutdown: &shutdown,
            budget: config.load.max_cost.map(|limit| {
                Arc::new(Budget::new(
                    limit,
                    Arc::new(config.conn.prices.clone()),
                    config.conn.tier,
                ))
            }),
            scrape,
        },
    };
    let summaries = match config.pace() {
        Some(pace) => {
            let summary = bench
                .measure(
                    &dir,
                    config.profile,
                    pace,
                    Some(&mut run_json),
                    None,
                    Watch::saturation(false),
                )
                .await?
                .summary;
            crate::export::print_line(&format!("run folder   {}", dir.display()))?;
            print_summary(&summary, &config.verdicts)?;
            vec![summary]
        }
        None if config.profile == Profile::Search => {
            let _ = std::fs::remove_dir(dir.join(HISTOGRAMS_DIR));
            let searched = super::search::search(&bench, &dir).await?;
            signals.abort();
            drop(mock);
            run_json.finish()?;
            // Probes fail by design (that is how the answer is found): the answer's gates and
            // how the search ended decide the exit code, not the probes' failed requests.
            return Ok(if shutdown.stop.is_cancelled() {
                exit_code(true, &[])
            } else if searched.summaries.iter().any(|s| s.gave_up.is_some()) {
                exit_code(false, &searched.summaries)
            } else if searched.gate_failed {
                ExitCode::from(super::EXIT_THRESHOLD)
            } else {
                ExitCode::SUCCESS
            });
        }
        None => {
            // A sweep's histograms are in its step folders.
            let _ = std::fs::remove_dir(dir.join(HISTOGRAMS_DIR));
            super::sweep::sweep(&bench, &dir).await?
        }
    };
    signals.abort();
    drop(mock);
    run_json.finish()?;
    Ok(exit_code(shutdown.stop.is_cancelled(), &summaries))
}

/// Reads the whole workload: it is cycled, so it must fit in memory, and every line must be usable
/// (a line that cannot be sent would fail again on every cycle).
fn load_workload(config: &BenchConfig) -> anyhow::Result<Vec<Request>> {
    let path = config.workload.display();
    crate::workload::check_format(&config.workload, config.conn.default_route())
        .map_err(|e| anyhow::anyhow!(e))?;
    let reader = WorkloadReader::open(&config.workload, config.conn.default_route())
        .with_context(|| format!("cannot read workload {path}"))?
        .force_stream(config.conn.stream);
    let mut requests = Vec::new();
    for item in reader {
        let item = item.with_context(|| format!("cannot read workload {path}"))?;
        // A bad line stops every shard, whichever shard it belongs to: the workload is one.
        match item {
            // Every shard checks every line: the trace is one.
            WorkItem::Send(request)
                if config.profile == Profile::Trace && request.timestamp.is_none() =>
            {
                bail!(
                    "{path}:{}: --profile trace needs a \"timestamp\" on every line: a number of ms from the trace start, 0 or more, beside \"body\" as in {{\"custom_id\": \"r1\", \"timestamp\": 1200, \"body\": {{...}}}}; `llmvolley generate --from mooncake` writes such lines",
                    request.line
                );
            }
            WorkItem::Send(request) if config.shard.is_none_or(|s| s.owns(&request.id)) => {
                requests.push(request)
            }
            WorkItem::Send(_) => {}
            WorkItem::Invalid(bad) => bail!("{path}:{}: {}", bad.line, bad.message),
        }
    }
    if matches!(config.profile, Profile::Sweep | Profile::Search)
        && (config.load.conversations.tool_loop
            || requests.iter().any(|r| r.conversation.is_some()))
    {
        bail!(
            "--profile sweep and search space their steps by requests per second, but a conversation is several requests started at one rate: bench conversations with --profile constant or poisson (--rate counts conversations started) or concurrent"
        );
    }
    if config.profile == Profile::Trace {
        // Sent in time order; lines with the same timestamp keep their order.
        requests.sort_by_key(|r| r.timestamp);
    }
    if requests.is_empty() {
        match config.shard {
            Some(shard) => bail!(
                "shard {shard} has no line of workload {path}: lines are split by id, and this workload has too few for {} shards",
                shard.count
            ),
            None => bail!("workload {path} has no requests"),
        }
    }
    let percentile_needs_stream = config.search.as_ref().is_some_and(|s| {
        s.percentiles
            .iter()
            .any(|p| p.time != crate::stats::SloTime::E2e)
    });
    if (percentile_needs_stream
        || config
            .load
            .slo
            .is_some_and(|slo| slo.ttft.is_some() || slo.tpot.is_some()))
        && !requests.iter().any(streams)
    {
        bail!(
            "--slo ttft/tpot need streamed answers (an answer read whole has no first token to time), and no line of {path} streams: add --stream"
        );
    }
    Ok(requests)
}

/// Whether a request body asks for a streamed answer (`"stream": true`).
fn streams(request: &Request) -> bool {
    serde_json::from_slice::<serde_json::Map<String, Value>>(&request.body)
        .is_ok_and(|body| body.get("stream") == Some(&Value::Bool(true)))
}

/// What only `bench` adds to run.json.
fn bench_settings(config: &BenchConfig, workload_lines: usize) -> Value {
    json!({
        "workload_lines": workload_lines,
        "profile": config.profile,
        "concurrency": (config.profile == Profile::Concurrent).then_some(config.concurrency),
        "rate_per_s": config.rate,
        "seed": config.seed,
        "max_inflight": config.max_inflight,
        "drop_when_full": config.when_full == WhenFull::Drop,
        "steps": (config.profile == Profile::Sweep && config.rates.is_empty()).then_some(config.steps),
        "rates": (!config.rates.is_empty()).then_some(&config.rates),
        "sweep_arrivals": matches!(config.profile, Profile::Sweep | Profile::Search).then_some(config.sweep_arrivals),
        "search": config.search.as_ref().map(|s| json!({
            "over": s.over,
            "precision": s.precision,
            "objectives": s.percentiles.iter().map(|p| format!("{}<={}ms", p.name(), p.limit_ms)).collect::<Vec<_>>(),
            "attainment": s.attainment,
            "probe_s": s.probe.as_secs_f64(),
            "max_extensions": s.extensions,
            "max_duration_s": s.max_duration.map(|d| d.as_secs_f64()),
        })),
        "trace_speed": (config.profile == Profile::Trace).then_some(config.trace_speed),
        "shard": config.shard,
        "workload_fingerprint": crate::workload::Fingerprint::of(&config.workload).ok(),
    })
}
