//! `llmvolley run`: a workload file, streamed once through the engine (closed loop, or `--rate`),
//! into a run folder; `--resume` continues one.

use super::drive::{Driver, Folder};
use super::exit_code;
use super::target::{RunJson, create_record_files, print_summary, start_target, watch_signals};
use crate::batch_output::{self, ERRORS_JSONL, OUTPUT_JSONL};
use crate::cli::RunArgs;
use crate::client::redacted_url;
use crate::config::{RunConfig, is_secret_header};
use crate::cost::Budget;
use crate::record::Status;
use crate::resume::{self, Decision, PriorOutcomes, TornTail};
use crate::run_folder::{self, HISTOGRAMS_DIR, RECORDS_CSV, RECORDS_JSONL};
use crate::scheduler::{Shutdown, Streamed};
use crate::sink::{JsonlSink, RecordSink};
use crate::workload::{self, Fingerprint, WorkItem, WorkloadReader};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = RunConfig::from_args(args, |name| std::env::var(name).ok())?;
    let shutdown = Shutdown::default();
    let signals = watch_signals(shutdown.clone(), config.load.grace, config.load.quiet);
    let workload_path = config.workload.display().to_string();
    workload::check_format(&config.workload, config.conn.default_route())
        .map_err(|e| anyhow!(e))?;
    let reader = WorkloadReader::open(&config.workload, config.conn.default_route())
        .with_context(|| format!("cannot read workload {workload_path}"))?
        .force_stream(config.conn.stream);
    if config.strict {
        workload::validate_strict(&config.workload, config.conn.default_route())
            .map_err(|e| anyhow!(e))?;
    }
    // The progress bar, or the plain lines written when stderr is not a terminal, show an ETA.
    let show_progress = !config.load.quiet;
    let fingerprint = Fingerprint::of(&config.workload)
        .with_context(|| format!("cannot read workload {workload_path}"))?;
    // The same command line starts a run in a missing or empty folder and continues one otherwise,
    // so a restarted job needs no second command.
    let resuming = config.resume && config.out.as_deref().is_some_and(has_entries);
    let OpenedFolder {
        dir,
        sinks,
        prior,
        earlier_sessions,
    } = if resuming {
        open_for_resume(&config, &fingerprint)?
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
            earlier_sessions: Vec::new(),
        }
    };
    // A resumed run, or a shard, sends an unknown share of the lines: no total, no ETA. A
    // `--requests` cap is this session's total.
    let total = (show_progress && prior.is_none() && config.shard.is_none()).then(|| {
        config
            .load
            .requests
            .map_or(fingerprint.lines, |cap| cap.min(fingerprint.lines))
    });

    let (base_url, mock) = start_target(&config.conn.target)?;
    let mut run_json = RunJson::start(
        &dir,
        "run",
        &config.workload,
        (&config.conn, &base_url),
        &config.load,
        json!({
            "concurrency": config.concurrency,
            "rate_per_s": config.rate,
            "strict": config.strict,
            "resume": resuming,
            "retry_failed": config.retry_failed,
            "batch_output": config.batch_output,
            "workload_fingerprint": fingerprint,
            "shard": config.shard,
        }),
        earlier_sessions,
    )?;
    // The budget is the job's: what earlier sessions spent counts against it (their records'
    // cost, and what their compactions dropped).
    let prior_spend = prior.as_ref().map(|prior| {
        let (in_records, priced, dearest) = prior.spent();
        let compacted: f64 = run_json
            .earlier_sessions()
            .iter()
            .filter_map(|s| s["compacted_cost_usd"].as_f64())
            .sum();
        (in_records + compacted, priced, dearest)
    });
    let budget = config.load.max_cost.map(|limit| {
        let budget = Budget::new(
            limit,
            Arc::new(config.conn.prices.clone()),
            config.conn.tier,
        );
        let (usd, priced, dearest) = prior_spend.unwrap_or_default();
        Arc::new(budget.with_prior_spend(usd, priced, dearest))
    });
    let scrape = super::drive::scrape_setup(&config.conn, &base_url).await?;
    super::identity::record(&mut run_json, &config.conn, &base_url).await?;
    let driver = Driver {
        conn: &config.conn,
        load: &config.load,
        base_url,
        mock: mock.as_ref(),
        shutdown: &shutdown,
        budget,
        scrape,
    };
    let pace = config.pace();
    // Another shard's lines are not this run's: not sent, not recorded, not counted as kept.
    let shard = config.shard;
    let prior = prior.map(std::sync::Arc::new);
    let turns_of = prior.clone();
    let lines = reader
        .filter(move |item| match (item, shard) {
            (Ok(item), Some(shard)) => shard.owns(item.id()),
            _ => true,
        })
        // A conversation sent again goes on after its recorded ok turns.
        .map(move |item| match (item, &turns_of) {
            (Ok(WorkItem::Send(mut request)), Some(prior)) => {
                request.prior_turns = prior.prior_turns(&request.id);
                Ok(WorkItem::Send(request))
            }
            (item, _) => item,
        });
    let (source, reading) = Streamed::read(lines, pace.slots().max(64) * 2, move |item| {
        prior
            .as_ref()
            .is_some_and(|prior| prior.decide(item.id()) == Decision::Keep)
    });
    let folder = Folder {
        dir: &dir,
        sinks,
        total,
        timeseries: !resuming,
        label: None,
        run_json: Some(&mut run_json),
        watch: crate::capacity::Watch::default(),
    };
    let driven = driver
        .drive(folder, source, config.profile(), pace, None)
        .await?;
    signals.abort();
    drop(mock);
    let kept = reading
        .await?
        .with_context(|| format!("workload {workload_path}"))?;
    let interrupted = shutdown.stop.is_cancelled();
    let (whole, mut summary) = if resuming {
        let jsonl = dir.join(RECORDS_JSONL);
        let compacted = resume::compact(&jsonl)
            .with_context(|| format!("cannot compact {}", jsonl.display()))?;
        if compacted.dropped_cost_usd > 0.0 {
            run_json.set(
                "compacted_cost_usd",
                serde_json::json!(compacted.dropped_cost_usd),
            )?;
        }
        let mut full = resume::rebuild_csv_and_stats(&jsonl, &dir.join(RECORDS_CSV))
            .with_context(|| format!("cannot rebuild {}", dir.join(RECORDS_CSV).display()))?;
        // Gaps between chunks are not kept in records: ITL covers this session's streams.
        full.itl = driven.stats.itl.clone();
        full.chunk_gap = driven.stats.chunk_gap.clone();
        let session = driven.summary(&driven.stats, &config.load, interrupted);
        let mut summary = driven.summary(&full, &config.load, interrupted);
        summary.window_s = session.window_s;
        summary.requests_per_s = session.requests_per_s;
        summary.tokens.output_per_s = session.tokens.output_per_s;
        summary.tokens.total_per_s = session.tokens.total_per_s;
        summary.resumed_kept = Some(kept);
        let (prior_usd, ..) = prior_spend.unwrap_or_default();
        let session_usd = session.cost.total_usd.unwrap_or(0.0);
        summary.cost.session_usd = Some(session_usd);
        summary.cost.job_spent_usd = Some(prior_usd + session_usd);
        (Some(full), summary)
    } else {
        (
            None,
            driven.summary(&driven.stats, &config.load, interrupted),
        )
    };
    let stats = whole.as_ref().unwrap_or(&driven.stats);
    if stats.count(Status::Cancelled)
        + stats.count(Status::SkippedBudget)
        + stats.count(Status::NotSent)
        > 0
    {
        summary.resume_command = Some(resume_command(&dir));
    }
    summary.thresholds = config.verdicts.fail_on.judge(&summary, stats);
    driven.write(&dir, whole.as_ref(), &summary)?;
    let batch = if config.batch_output {
        let records = dir.join(RECORDS_JSONL);
        Some(
            batch_output::write(&dir, &records)
                .with_context(|| format!("cannot write the Batch output in {}", dir.display()))?,
        )
    } else {
        None
    };
    run_json.finish()?;
    crate::export::print_line(&format!("run folder   {}", dir.display()))?;
    if let Some(batch) = batch {
        crate::export::print_line(&format!(
            "batch output {OUTPUT_JSONL}: {} answers, {ERRORS_JSONL}: {} errors (OpenAI Batch output format){}",
            batch.output,
            batch.errors,
            super::export::not_sent_note(batch.not_sent)
        ))?;
    }
    print_summary(&summary, &config.verdicts)?;
    Ok(exit_code(interrupted, &[summary]))
}

/// A run folder ready for records: its sinks, and what an earlier run there finished and how it was
/// run (`--resume`).
struct OpenedFolder {
    dir: PathBuf,
    sinks: Vec<Box<dyn RecordSink>>,
    prior: Option<PriorOutcomes>,
    earlier_sessions: Vec<Value>,
}

/// This command line with `--out DIR --resume`, for the summary to show how to send what is left:
/// secret header values and URL credentials redacted, each word shell-quoted.
fn resume_command(dir: &Path) -> String {
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = args
        .next()
        .as_deref()
        .and_then(|p| Path::new(p).file_name())
        .map_or("llmvolley".to_string(), |p| {
            p.to_string_lossy().into_owned()
        });
    let mut words = vec![program];
    let (mut has_out, mut has_resume) = (false, false);
    let mut next_is = None;
    for arg in args {
        let shown = match (next_is.take(), arg.as_str()) {
            (Some("header"), _) => redact_header(&arg),
            (Some("endpoint"), _) => redact_url(&arg),
            (None, "-H" | "--header") => {
                next_is = Some("header");
                arg
            }
            // A metrics URL may carry a token in its query, as an endpoint may.
            (None, "--endpoint" | "--scrape") => {
                next_is = Some("endpoint");
                arg
            }
            (None, flag) if flag.starts_with("--scrape=") => {
                format!("--scrape={}", redact_url(&flag["--scrape=".len()..]))
            }
            (None, flag) if flag.starts_with("--header=") => {
                format!("--header={}", redact_header(&flag["--header=".len()..]))
            }
            // `-H'Name: value'` and `-H=Name: value`: the value joined to the short flag.
            (None, flag) if flag.starts_with("-H") => {
                let value = flag[2..].strip_prefix('=').unwrap_or(&flag[2..]);
                format!("-H{}", redact_header(value))
            }
            (None, flag) if flag.starts_with("--endpoint=") => {
                format!("--endpoint={}", redact_url(&flag["--endpoint=".len()..]))
            }
            (None, flag) => {
                has_out |= flag == "--out" || flag.starts_with("--out=");
                has_resume |= flag == "--resume";
                arg
            }
            (Some(_), _) => arg,
        };
        words.push(shown);
    }
    if !has_out {
        words.push("--out".into());
        words.push(dir.display().to_string());
    }
    if !has_resume {
        words.push("--resume".into());
    }
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// `Name: value` with the value hidden when the name looks like a secret's.
fn redact_header(header: &str) -> String {
    match header.split_once(':') {
        Some((name, _)) if is_secret_header(name.trim()) => format!("{}: <redacted>", name.trim()),
        _ => header.to_string(),
    }
}

/// A URL without user, password or query (which may carry credentials).
fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) => redacted_url(&url).to_string(),
        // Not a URL we can take apart: it may still hold a credential.
        Err(_) => "<redacted>".to_string(),
    }
}

/// A folder that exists and holds something.
fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Reopens an earlier run folder: its records say which lines are done; new records are appended to
/// `records.jsonl` (after cutting a torn last line) and `records.csv` is rebuilt at the end.
/// Refuses a workload whose bytes differ from the one the folder was made from: its records' line
/// numbers and ids would mean other lines.
fn open_for_resume(config: &RunConfig, workload: &Fingerprint) -> anyhow::Result<OpenedFolder> {
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
    let repaired = resume::repair_torn_tail(&jsonl)
        .with_context(|| format!("cannot repair {}", jsonl.display()))?;
    // Said even with --quiet: the file was changed.
    match repaired {
        TornTail::None => {}
        TornTail::Completed { line } => eprintln!(
            "note: {}:{line} was a whole record missing its final newline (an interrupted write); the newline was added",
            jsonl.display()
        ),
        TornTail::Cut { line, start } => eprintln!(
            "note: {}:{line} was a torn line (an interrupted write; it started {start:?}); it was cut, and its workload line is sent again",
            jsonl.display()
        ),
    }
    let earlier_sessions = RunJson::sessions_in(&dir)?;
    let made_from = earlier_sessions.iter().rev().find_map(|s| {
        serde_json::from_value::<Fingerprint>(s["workload_fingerprint"].clone()).ok()
    });
    if let Some(made_from) = made_from
        && !made_from.same_content(workload)
    {
        bail!(
            "--resume: workload {} ({} bytes, xxh3 {}) is not the one {} was made from ({}: {} bytes, xxh3 {}); give that file, or start a new run with another --out",
            workload.path,
            workload.bytes,
            workload.xxh3,
            dir.display(),
            made_from.path,
            made_from.bytes,
            made_from.xxh3
        );
    }
    let prior = PriorOutcomes::read(&jsonl, config.retry_failed)
        .with_context(|| format!("--resume cannot read {}", jsonl.display()))?;
    let sink = JsonlSink::append(&jsonl)
        .with_context(|| format!("cannot append to {}", jsonl.display()))?;
    std::fs::create_dir_all(dir.join(HISTOGRAMS_DIR))?;
    Ok(OpenedFolder {
        dir,
        sinks: vec![Box::new(sink)],
        prior: Some(prior),
        earlier_sessions,
    })
}
