//! What `run` and `bench` share around a drive: starting the target, creating the record files,
//! run.json, the summary table, watching signals.

use super::EXIT_INTERRUPTED;
use crate::client::redacted_url;
use crate::config::{Connection, Load, Target, Verdicts, is_secret_header};
use crate::export::{Destination, Exports, SummaryMarkdown, SummaryText};
use crate::mock::MockThread;
use crate::record::millis;
use crate::run_folder::{
    self, HISTOGRAMS_DIR, RECORDS_CSV, RECORDS_JSONL, RUN_JSON, TIMESERIES_CSV, TIMESERIES_HLOG,
};
use crate::scheduler::{Shutdown, Warmup};
use crate::sink::{CsvSink, JsonlSink, RecordSink};
use crate::stats::{Summary, TimeSeries};
use anyhow::{Context, anyhow};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use url::Url;

/// The base URL to send to; for `--mock`, starts the mock on a free loopback port first.
pub fn start_target(target: &Target) -> anyhow::Result<(Url, Option<MockThread>)> {
    match target {
        Target::Endpoint(url) => Ok((url.clone(), None)),
        Target::Mock(mock) => {
            let mock =
                MockThread::start(mock.clone(), 0).context("cannot start the mock on 127.0.0.1")?;
            Ok((Url::parse(&format!("http://{}/v1", mock.addr))?, Some(mock)))
        }
    }
}

/// Creates a run folder's record files (and its time series) before any request is sent, so an
/// unwritable folder fails the run at once.
pub fn create_record_files(dir: &Path) -> anyhow::Result<Vec<Box<dyn RecordSink>>> {
    let create = |e: std::io::Error| {
        anyhow!(e).context(format!("cannot create records in {}", dir.display()))
    };
    let sinks: Vec<Box<dyn RecordSink>> = vec![
        Box::new(JsonlSink::create(&dir.join(RECORDS_JSONL)).map_err(create)?),
        Box::new(CsvSink::create(&dir.join(RECORDS_CSV)).map_err(create)?),
    ];
    std::fs::File::create(dir.join(TIMESERIES_CSV)).map_err(create)?;
    std::fs::create_dir_all(dir.join(HISTOGRAMS_DIR)).map_err(create)?;
    Ok(sinks)
}

/// The time series of a fresh run, its interval log in `histograms/`.
pub fn new_timeseries(dir: &Path, epoch_unix_us: u64) -> anyhow::Result<TimeSeries> {
    let path = dir.join(HISTOGRAMS_DIR).join(TIMESERIES_HLOG);
    TimeSeries::with_interval_log(&path, epoch_unix_us)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// run.json: what was run, where and how, written before the first request and again as the run
/// goes (its epoch) and ends (`finished_at`). Secrets never appear, only where they came from.
///
/// Its top-level fields describe the latest session; `sessions` lists every session of the folder
/// in order (a `--resume` adds one), so no session's settings or epoch are ever overwritten.
pub struct RunJson {
    dir: PathBuf,
    info: Value,
    earlier: Vec<Value>,
}

impl RunJson {
    /// Writes run.json: the command and workload, the endpoint, the load's plan and gates, then the
    /// command's own `settings`.
    pub fn start(
        dir: &Path,
        command: &str,
        workload: &Path,
        (conn, base_url): (&Connection, &Url),
        load: &Load,
        settings: Value,
        earlier_sessions: Vec<Value>,
    ) -> anyhow::Result<RunJson> {
        let mut info = json!({
            "tool": "llmvolley",
            "version": env!("CARGO_PKG_VERSION"),
            "command": command,
            "workload": workload.display().to_string(),
            "run_folder": dir.display().to_string(),
        });
        for part in [endpoint_info(conn, base_url), load_info(load), settings] {
            if let (Value::Object(info), Value::Object(part)) = (&mut info, part) {
                info.extend(part);
            }
        }
        info["started_at"] = Value::String(run_folder::now_rfc3339());
        info["finished_at"] = Value::Null;
        tracing::debug!(settings = %info, "{command} starts");
        let run_json = RunJson {
            dir: dir.to_path_buf(),
            info,
            earlier: earlier_sessions,
        };
        run_json.write()?;
        Ok(run_json)
    }

    /// Sets one field and writes the file again.
    pub fn set(&mut self, key: &str, value: Value) -> anyhow::Result<()> {
        self.info[key] = value;
        self.write()
    }

    /// The earlier sessions of a resumed folder, in order.
    pub fn earlier_sessions(&self) -> &[Value] {
        &self.earlier
    }

    /// Stamps `finished_at`.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.set("finished_at", Value::String(run_folder::now_rfc3339()))
    }

    /// The sessions an earlier run.json in `dir` lists (one, for a file from before sessions were
    /// kept); none when there is no run.json.
    pub fn sessions_in(dir: &Path) -> anyhow::Result<Vec<Value>> {
        let path = dir.join(RUN_JSON);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
        };
        let mut info: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Ok(match info.get_mut("sessions").map(Value::take) {
            Some(Value::Array(sessions)) => sessions,
            _ => vec![info],
        })
    }

    fn write(&self) -> anyhow::Result<()> {
        let mut sessions = self.earlier.clone();
        sessions.push(self.info.clone());
        let mut file = self.info.clone();
        file["sessions"] = Value::Array(sessions);
        run_folder::write_json(&self.dir, RUN_JSON, &file)
    }
}

/// The load's plan and gates, the same keys for every command (null when unset).
fn load_info(load: &Load) -> Value {
    let warmup = match load.warmup {
        Warmup::None => Value::Null,
        Warmup::Requests(n) => json!({ "requests": n }),
        Warmup::Time(t) => json!({ "seconds": t.as_secs_f64() }),
    };
    let slo = load.slo.map(|slo| {
        json!({
            "ttft_ms": slo.ttft.map(millis),
            "tpot_ms": slo.tpot.map(millis),
            "e2e_ms": slo.e2e.map(millis),
        })
    });
    json!({
        "requests": load.requests,
        "duration_s": load.duration.map(|d| d.as_secs_f64()),
        "warmup": warmup,
        "ramp_up_s": load.ramp_up.as_secs_f64(),
        "rps": load.rps,
        "rpm": load.rpm,
        "tpm": load.tpm,
        "follow_server_pacing": load.follow_server,
        "max_cost_usd": load.max_cost,
        "slo": slo,
        "max_retries": load.max_retries,
        "grace_s": load.grace.as_secs_f64(),
        "start_at": load.start_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
    })
}

/// Prints the summary, and appends it as Markdown where `--summary-markdown` says: a file that
/// cannot be written then is a warning, not a change of the run's exit code.
pub fn print_summary(summary: &Summary, verdicts: &Verdicts) -> anyhow::Result<()> {
    Exports::new()
        .to(SummaryText, Destination::Stdout)
        .write(summary)?;
    if let Some(path) = &verdicts.summary_markdown
        && let Err(e) = Exports::new()
            .to(SummaryMarkdown, Destination::Append(path.clone()))
            .write(summary)
    {
        eprintln!("warning: {e:#}");
    }
    Ok(())
}

fn endpoint_info(conn: &Connection, base_url: &Url) -> Value {
    let endpoint = redacted_url(base_url);
    let headers: serde_json::Map<String, Value> = conn
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
    let mock = match &conn.target {
        Target::Mock(m) => json!({
            "latency_ms": millis(m.latency),
            "jitter_ms": millis(m.jitter),
            "seed": m.seed,
            "chat_shape_for_responses": m.chat_shape_for_responses,
            "ttft_ms": millis(m.ttft),
            "itl_ms": millis(m.itl),
            "tokens_per_chunk": m.tokens_per_chunk,
            "reasoning_tokens": m.reasoning_tokens,
            "output_tokens": m.output_tokens,
            "fault_rate": m.fault_rate,
            "faults": m.faults,
            "stall_at_ms": millis(m.stall_at),
            "stall_for_ms": millis(m.stall_for),
            "split_events": m.split_events,
        }),
        Target::Endpoint(_) => Value::Null,
    };
    json!({
        "endpoint": endpoint.as_str(),
        "mock": mock,
        "api": conn.api.map_or(json!("by_shape"), |api| json!(api)),
        "timeout_s": conn.timeout.as_secs_f64(),
        "insecure": conn.insecure,
        "api_key": conn.key_source.to_string(),
        "headers": headers,
        "save_responses": conn.save_responses,
        "stream": conn.stream,
        "http2": conn.http2,
        "prices": conn.prices_file.as_ref().map(|p| p.display().to_string()),
        "tier": conn.tier,
    })
}

/// Signals closer together than this are one interrupt delivered twice: `timeout -s INT` and
/// terminals signal the child and then its process group within microseconds.
pub const SAME_INTERRUPT: Duration = Duration::from_secs(1);

/// First SIGINT or SIGTERM: stop dispatch and give in-flight requests `grace` to finish, then
/// abandon them. A second interrupt (at least `SAME_INTERRUPT` after the first) abandons them at
/// once; either way they are recorded as `cancelled` and the summary is written. A third one exits
/// the process at once (records already written are whole lines, and `--resume` continues).
///
/// The handlers are installed before this returns, so no signal after it takes the default action.
pub fn watch_signals(
    shutdown: Shutdown,
    grace: Duration,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    let signals = Signals::new();
    tokio::spawn(async move {
        if let Ok(signals) = signals {
            on_signals(signals, shutdown, grace, quiet).await;
        }
    })
}

async fn on_signals(mut signals: Signals, shutdown: Shutdown, grace: Duration, quiet: bool) {
    signals.next().await;
    let mut last = Instant::now();
    shutdown.stop.cancel();
    if !quiet {
        eprintln!(
            "interrupted: no new requests; waiting up to {grace:?} for those in flight (interrupt again to stop them now)"
        );
    }
    let grace_over = tokio::time::sleep(grace);
    tokio::pin!(grace_over);
    let mut interrupts = 1;
    loop {
        tokio::select! {
            () = &mut grace_over, if !shutdown.abandon.is_cancelled() => shutdown.abandon.cancel(),
            () = signals.next() => {
                if last.elapsed() < SAME_INTERRUPT {
                    continue;
                }
                last = Instant::now();
                interrupts += 1;
                if interrupts >= 3 {
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                shutdown.abandon.cancel();
                if !quiet {
                    eprintln!(
                        "interrupted again: requests in flight are recorded as cancelled; writing the summary (interrupt once more to exit at once)"
                    );
                }
            }
        }
    }
}

/// SIGINT and SIGTERM, listened to for the whole run (a listener made per signal would miss one
/// that arrives between two of them).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
