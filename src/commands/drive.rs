//! One load driven into a run folder, the pipeline every command uses: client, requester and gates,
//! the collector, the engine's dispatch (on a pacer thread of its own for open loops), the client's
//! self-check, and the run's figures. `run` drives once, `bench` once per step.

use super::target::{RunJson, new_timeseries};
use crate::capacity::{Cut, Saturation, SaturationSettings, SaturationWatch, StoppedEarly, Watch};
use crate::client::Client;
use crate::collector::{Checkpoints, Collected, Collector, Progress, ProgressMode};
use crate::config::{Connection, Load, ScrapeTarget};
use crate::cost::{Budget, Pricer};
use crate::cpu;
use crate::export::{Destination, Exports, Json};
use crate::mock::MockThread;
use crate::modes::Profile;
use crate::record::Status;
use crate::run_folder::{self, HISTOGRAMS_DIR, SUMMARY_JSON, TIMESERIES_CSV};
use crate::scheduler::{
    Dispatched, Ended, Gates, GiveUp, Pace, Pacer, Plan, RequestLauncher, Requester, Shutdown,
    Source, ThreadPacer, Throttle, TokioPacer, Warmup, WhenFull, dispatch,
};
use crate::sink::RecordSink;
use crate::stats::{
    ClientCheck, Distribution, LoadSummary, RunStats, ScaledHistogram, ServerPacing, Summary,
    TimeSeries, WindowEnd,
};
use crate::tokenize::Estimator;
use anyhow::Context;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use url::Url;

/// The client's CPU use (share of one core) above which its timing may be off.
const CPU_WARNING_CORES: f64 = 0.9;
/// Scheduler lag p99 above which arrivals were not sent on time, when it is also more than
/// `LAG_WARNING_SHARE` of the median latency (a lag of 2 ms skews a 40 ms answer, not a 2 s one).
const LAG_WARNING_MS: f64 = 1.0;
const LAG_WARNING_SHARE: f64 = 0.05;
/// A run shorter than this is too short for its CPU share to say anything (start-up, the
/// tokenizer's load and the last answers' drain weigh more than the load itself).
const SELF_CHECK_MIN_WALL: Duration = Duration::from_secs(2);
/// Share of CPU time stolen by a hypervisor above which timings include its stalls.
const STEAL_WARNING: f64 = 0.05;

/// What every drive of a command shares.
pub(super) struct Driver<'a> {
    pub conn: &'a Connection,
    pub load: &'a Load,
    pub base_url: Url,
    pub mock: Option<&'a MockThread>,
    pub shutdown: &'a Shutdown,
    /// `--max-cost`: one budget for the whole command, every sweep step included.
    pub budget: Option<Arc<Budget>>,
    /// `--scrape`, its targets resolved once for every step.
    pub scrape: Option<ScrapeSetup>,
}

/// The `--scrape` targets (an `auto` one kept only when it answered) and the side pool that
/// reads them.
pub(super) struct ScrapeSetup {
    http: crate::client::Http,
    targets: Vec<http::Uri>,
    every: Duration,
}

/// Resolves `--scrape`: `auto` becomes the endpoint's origin + `/metrics` when a page is there,
/// and says what it found (stderr); explicit URLs are kept whatever their first answer, as a
/// scrape that fails is retried every tick.
pub(super) async fn scrape_setup(
    conn: &Connection,
    base_url: &Url,
) -> anyhow::Result<Option<ScrapeSetup>> {
    if conn.scrape.is_empty() {
        return Ok(None);
    }
    let http = crate::client::side_http(conn.insecure)?;
    let mut targets = Vec::new();
    for target in &conn.scrape {
        match target {
            ScrapeTarget::Url(uri) => targets.push(uri.clone()),
            ScrapeTarget::Auto => {
                let origin = base_url.origin().ascii_serialization();
                let uri: http::Uri = format!("{origin}/metrics").parse()?;
                match super::scraper::probe(
                    &http,
                    uri.clone(),
                    conn.scrape_every.max(Duration::from_secs(2)),
                )
                .await
                {
                    Ok(families) => {
                        eprintln!(
                            "--scrape auto: {origin}/metrics answers with {families} metric families; scraping it every {}",
                            humantime::format_duration(conn.scrape_every)
                        );
                        targets.push(uri);
                    }
                    Err(e) => eprintln!(
                        "--scrape auto: nothing usable at {origin}/metrics ({e}); not scraping it (give --scrape URL for a metrics port of its own)"
                    ),
                }
            }
        }
    }
    Ok((!targets.is_empty()).then_some(ScrapeSetup {
        http,
        targets,
        every: conn.scrape_every,
    }))
}

/// Where one drive writes.
pub(super) struct Folder<'a> {
    pub dir: &'a Path,
    pub sinks: Vec<Box<dyn RecordSink>>,
    /// Records expected, for the progress bar (None: unknown, no ETA).
    pub total: Option<u64>,
    /// A fresh folder gets a time series; a resumed one keeps its first session's (seconds of two
    /// sessions don't add up).
    pub timeseries: bool,
    /// run.json, stamped with the epoch as the load starts when this drive is its folder's only one.
    pub run_json: Option<&'a mut RunJson>,
    /// What the progress line calls this load (a sweep's "step 2/7 throughput").
    pub label: Option<String>,
    /// Over-saturation, and a search probe's judgements, watched along the way.
    pub watch: Watch,
}

/// What one drive did, beyond its records.
pub(super) struct Driven {
    pub stats: RunStats,
    pub timeseries: Option<TimeSeries>,
    pub unpriced_models: Vec<String>,
    pub wall_time_s: f64,
    pub epoch_unix_us: u64,
    pub ended: Ended,
    pub scheduler_lag: Option<ScaledHistogram>,
    pub load: LoadSummary,
    pub server_pacing: Option<ServerPacing>,
    /// Why the load gave up on a dead endpoint (`--give-up-after`), if it did.
    pub gave_up: Option<String>,
    /// Why the step ended before its plan did, if it did.
    pub stopped_early: Option<StoppedEarly>,
    /// An open loop's over-saturation, with its evidence.
    pub saturation: Option<Saturation>,
    /// A watched open loop's offered rate and saturation tolerance, for the check at its end.
    pub open_loop_watch: Option<(f64, f64)>,
    /// `--scrape`: the server's figures over this drive.
    pub server: Option<crate::scrape::ServerSummary>,
}

impl Driver<'_> {
    /// Drives `source` into `folder` as `pace` says, until the load's limits (else
    /// `default_requests`, else the source's end), the budget or an interrupt stop it.
    pub async fn drive(
        &self,
        folder: Folder<'_>,
        source: impl Source + 'static,
        profile: Profile,
        pace: Pace,
        default_requests: Option<u64>,
    ) -> anyhow::Result<Driven> {
        let load = self.load;
        let conn = self.conn;
        let dir = folder.dir;
        let estimator = Estimator::new(conn.tokenizer.clone());
        let slots = pace.slots();
        let throttle = load.throttled().then(|| {
            let throttle = Throttle::new(load.rps, load.rpm, load.tpm, slots, conn.max_server_wait);
            Arc::new(if load.follow_server {
                throttle
            } else {
                throttle.limits_only()
            })
        });
        // The load's own stop: an interrupt fires it, and so does giving up on a dead endpoint.
        let stop = self.shutdown.stop.child_token();
        let give_up = (load.give_up_after > 0).then(|| {
            Arc::new(GiveUp::new(
                load.give_up_after,
                &self.base_url,
                stop.clone(),
                conn.sends_no_credential(&self.base_url),
            ))
        });
        let mut gates = Gates {
            throttle: throttle.clone(),
            budget: self.budget.clone(),
            give_up: give_up.clone(),
            cut: None,
        };
        if let Some(at) = load.start_at
            && let Ok(wait) = at.duration_since(std::time::SystemTime::now())
        {
            // Said even with --quiet: a silent wait of hours looks like a hang.
            eprintln!(
                "waiting {} for --start-at",
                humantime::format_duration(Duration::from_millis(wait.as_millis() as u64))
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => {}
            }
        }
        let (records_tx, records_rx) = mpsc::channel(slots.max(64) * 2);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let pricer = Pricer::new(conn.prices.clone(), conn.tier, !load.quiet)
            .with_budget(self.budget.clone());
        let mut progress = Progress::new(
            folder.total,
            ProgressMode::for_stderr(load.quiet, conn.progress_every),
            in_flight.clone(),
        );
        if let Some(throttle) = &throttle {
            progress = progress.with_pacing(throttle.clone());
        }
        let warmup_time = match load.warmup {
            Warmup::Time(t) => t,
            _ => Duration::ZERO,
        };
        progress = progress.with_phase(
            folder.label,
            load.warmup != Warmup::None,
            load.duration.map(|d| d + warmup_time),
        );
        let window_end = WindowEnd::default();
        let mut collector = Collector::new(folder.sinks, progress, pricer, estimator)
            .with_stats(RunStats::with_slo(load.slo))
            .with_window_end(window_end.clone())
            .with_secrets(conn.secrets(&self.base_url));
        // A probe runs until decided, or for its span and every extension.
        let limit = match &folder.watch.probe {
            Some(probe) => crate::scheduler::Limit {
                requests: None,
                duration: Some(probe.every * (probe.extensions + 1)),
            },
            None => load.limit(default_requests),
        };
        let plan = Plan::new(load.warmup, limit);
        let cpu_before = self.cpu_times();
        // The epoch as late as setup allows: a trace's first arrivals are due at it.
        let epoch = std::time::Instant::now();
        let epoch_unix_us = run_folder::unix_micros_now();
        let requester = Requester::new(
            Client::new(&conn.client_config(self.base_url.clone(), slots), epoch)?,
            conn.retry_policy(load.max_retries),
            throttle.clone(),
        )
        .with_give_up(give_up.clone());
        if folder.timeseries {
            collector = collector.with_timeseries(new_timeseries(dir, epoch_unix_us)?);
        }
        // On the epoch, as timeseries.csv; a resumed folder keeps its first session's, as that.
        let scrape_stop = CancellationToken::new();
        // Any early return below stops the scrape too.
        let _scrape_stopped = scrape_stop.clone().drop_guard();
        let scraping = match &self.scrape {
            Some(_) if !folder.timeseries => {
                eprintln!(
                    "--scrape: a resumed run keeps its first session's server_metrics.csv, as its timeseries.csv; this session is not scraped"
                );
                None
            }
            Some(setup) => Some(super::scraper::start(
                setup.targets.clone(),
                setup.every,
                setup.http.clone(),
                epoch,
                dir,
                scrape_stop.clone(),
            )?),
            _ => None,
        };
        let cut = Arc::new(Cut::new(stop.clone(), epoch, window_end.clone()));
        gates.cut = Some(cut.clone());
        if let Some(probe) = &folder.watch.probe {
            collector = collector.with_checkpoints(Checkpoints::new(
                probe.criteria.clone(),
                cut.clone(),
                epoch + warmup_time,
                probe.every,
                probe.extensions,
            ));
        }
        let folder_watch_saturation = folder.watch.saturation;
        let saturation = match (folder.watch.saturation, pace) {
            (
                Some(settings),
                Pace::Open {
                    arrivals,
                    max_inflight,
                    ..
                },
            ) => arrivals.rate().map(|rate| {
                watch_saturation(rate, max_inflight, settings, in_flight.clone(), cut.clone())
            }),
            _ => None,
        };
        let collecting = tokio::task::spawn_blocking(move || collector.run(records_rx));
        if let Some(run_json) = folder.run_json {
            run_json.set("epoch_unix_us", Value::from(epoch_unix_us))?;
        }

        let launcher = RequestLauncher::new(
            requester,
            records_tx,
            in_flight,
            self.shutdown.abandon.clone(),
            gates.clone(),
            slots,
        )
        .with_conversations(load.conversations, stop.clone())
        .with_window_end(window_end);
        let dispatched = match pace {
            Pace::Closed { .. } => {
                let pacer = TokioPacer { stop: stop.clone() };
                dispatch_all(source, plan, pace, gates, pacer, launcher, stop).await
            }
            Pace::Open { .. } => {
                dispatch_on_pacer_thread(source, plan, pace, gates, launcher, stop).await?
            }
        };
        let saturation = match saturation {
            Some((task, found)) => {
                task.abort();
                found.lock().map(|mut f| f.take()).unwrap_or(None)
            }
            None => None,
        };
        let Collected {
            stats,
            timeseries,
            unpriced_models,
        } = collecting
            .await?
            .with_context(|| format!("cannot write records in {}", dir.display()))?;
        let wall = epoch.elapsed();
        let cpu_after = self.cpu_times();
        scrape_stop.cancel();
        // A scrape that failed (its CSV unwritable) costs the server view, never the run's.
        let server = match scraping {
            Some(task) => match task.await.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(server) => Some(server),
                Err(e) => {
                    eprintln!(
                        "warning: --scrape stopped: {e:#}; summary.json has no server section"
                    );
                    None
                }
            },
            None => None,
        };
        let lag = dispatched.scheduler_lag.as_ref().and_then(Distribution::of);
        let latency_p50 = Distribution::of(&stats.latency).map(|d| d.p50);
        let client = self_check(cpu_before, cpu_after, wall, lag.as_ref(), latency_p50);
        Ok(Driven {
            load: load_summary(profile, pace, &stats, lag, client),
            stats,
            timeseries,
            unpriced_models,
            wall_time_s: wall.as_secs_f64(),
            epoch_unix_us,
            ended: dispatched.ended,
            scheduler_lag: dispatched.scheduler_lag,
            server_pacing: throttle.and_then(|t| t.report()),
            gave_up: give_up.and_then(|g| g.verdict().map(str::to_string)),
            stopped_early: cut.reason(),
            saturation,
            server,
            open_loop_watch: match (folder_watch_saturation, pace) {
                (Some(settings), Pace::Open { arrivals, .. }) => {
                    arrivals.rate().map(|rate| (rate, settings.tolerance))
                }
                _ => None,
            },
        })
    }

    /// CPU time of the whole process and of the in-process mock's thread, and the machine's counters.
    fn cpu_times(&self) -> CpuSample {
        CpuSample {
            process: cpu::process_cpu_time(),
            mock: self.mock.and_then(MockThread::cpu_time),
            machine: cpu::MachineTicks::now(),
        }
    }
}

impl Driven {
    /// The summary of `stats` (this drive's, or a resumed run's whole workload) with what this
    /// drive saw: its load, the server's pacing, the budget.
    pub fn summary(&self, stats: &RunStats, load: &Load, interrupted: bool) -> Summary {
        let mut summary =
            Summary::from_stats(stats, self.wall_time_s, self.unpriced_models.clone());
        summary.interrupted = interrupted;
        summary.epoch_unix_us = Some(self.epoch_unix_us);
        summary.load = Some(self.load.clone());
        summary.server_pacing = self.server_pacing.clone();
        summary.cost.budget_usd = load.max_cost;
        summary.cost.budget_stopped = self.ended == Ended::Budget;
        summary.gave_up = self.gave_up.clone();
        summary.stopped_early = self.stopped_early;
        summary.saturation = self.saturation.clone();
        summary.server = self.server.clone().map(|mut server| {
            let p =
                |d: &Option<crate::stats::Distribution>,
                 q: fn(&crate::stats::Distribution) -> f64| { d.as_ref().map(q) };
            server.against(&crate::scrape::ClientFigures {
                ttft_mean_ms: p(&summary.ttft_ms, |d| d.mean),
                ttft_p50_ms: p(&summary.ttft_ms, |d| d.p50),
                ttft_p99_ms: p(&summary.ttft_ms, |d| d.p99),
                e2e_mean_ms: p(&summary.latency_ms, |d| d.mean),
                e2e_p50_ms: p(&summary.latency_ms, |d| d.p50),
                e2e_p99_ms: p(&summary.latency_ms, |d| d.p99),
                output_tokens_per_s: summary.tokens.output_per_s,
                input_tokens_per_s: summary.tokens.input_per_s,
                output_tokens: summary.tokens.output.map(|t| t as f64),
            });
            server
        });
        // Only a step that ran its plan: a budget or an interrupt stops sending early while the
        // window still counts its planned end, so completions would look short of the arrivals.
        if summary.saturation.is_none()
            && matches!(self.ended, Ended::Limit | Ended::Cut)
            && let Some((offered, tolerance)) = self.open_loop_watch
        {
            summary.saturation = crate::capacity::saturation_at_end(
                offered,
                summary.load.as_ref().and_then(|l| l.achieved_rate_per_s),
                summary.steady_state.as_ref().map(|s| s.requests_per_s),
                tolerance,
                self.wall_time_s,
            );
        }
        summary
    }

    /// Writes the run's histograms (of `whole` when given: a resumed run's whole workload; else
    /// this drive's), the open loop's scheduler lag, the time series and the summary.
    pub fn write(
        self,
        dir: &Path,
        whole: Option<&RunStats>,
        summary: &Summary,
    ) -> anyhow::Result<()> {
        let histograms = dir.join(HISTOGRAMS_DIR);
        std::fs::create_dir_all(&histograms)?;
        whole.unwrap_or(&self.stats).save_histograms(&histograms)?;
        if let Some(lag) = &self.scheduler_lag {
            lag.save(&histograms.join("scheduler_lag.hdr"))?;
        }
        // The same histograms as percentile text (`.hgrm`), for HdrHistogram's plotter and people.
        crate::report::hgrm::write_all(&histograms)?;
        if let Some(series) = self.timeseries {
            let path = dir.join(TIMESERIES_CSV);
            series
                .write_csv(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Exports::new()
            .to(Json, Destination::File(dir.join(SUMMARY_JSON)))
            .write(summary)
    }
}

fn load_summary(
    profile: Profile,
    pace: Pace,
    stats: &RunStats,
    scheduler_lag_ms: Option<Distribution>,
    client: ClientCheck,
) -> LoadSummary {
    let (rate_per_s, drop_when_full) = match pace {
        Pace::Open {
            arrivals,
            when_full,
            ..
        } => (arrivals.rate(), when_full == WhenFull::Drop),
        Pace::Closed { .. } => (None, false),
    };
    LoadSummary {
        profile,
        rate_per_s,
        max_in_flight: pace.slots(),
        drop_when_full,
        sent: stats.sent,
        achieved_rate_per_s: stats.achieved_send_rate(),
        dropped: stats.count(Status::Dropped),
        scheduler_lag_ms,
        client,
    }
}

/// Samples the requests in flight of an open loop offered `rate` until aborted; the evidence of
/// over-saturation once seen (the step cut then, when the settings say so).
#[allow(clippy::type_complexity)]
fn watch_saturation(
    rate: f64,
    max_inflight: usize,
    settings: SaturationSettings,
    in_flight: Arc<AtomicUsize>,
    cut: Arc<Cut>,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::Mutex<Option<Saturation>>>,
) {
    let found = Arc::new(std::sync::Mutex::new(None));
    let slot = found.clone();
    let task = tokio::spawn(async move {
        let mut watch = SaturationWatch::new(rate, max_inflight, settings.tolerance);
        cut.set_flat(false);
        let mut every =
            tokio::time::interval(Duration::from_secs_f64(crate::capacity::SAMPLE_EVERY_S));
        loop {
            every.tick().await;
            let now = cut.elapsed_s();
            let found = watch.observe(now, in_flight.load(std::sync::atomic::Ordering::Relaxed));
            cut.set_flat(watch.flat());
            let Some(mut saturation) = found else {
                continue;
            };
            saturation.stopped = settings.stop;
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(saturation);
            }
            if settings.stop {
                cut.stop(StoppedEarly::Saturated { after_s: now });
            }
            return;
        }
    });
    (task, found)
}

/// The whole dispatch, then the launcher dropped: it holds the last records sender, so the
/// collector ends once every record is in.
async fn dispatch_all(
    mut source: impl Source,
    mut plan: Plan,
    pace: Pace,
    gates: Gates,
    mut pacer: impl Pacer,
    launcher: RequestLauncher,
    stop: CancellationToken,
) -> Dispatched {
    dispatch(
        &mut source,
        &mut plan,
        pace,
        &gates,
        &mut pacer,
        &launcher,
        &stop,
    )
    .await
}

/// Runs an open-loop schedule on a thread of its own, which sleeps with the OS timer (tens of
/// microseconds late) instead of tokio's millisecond wheel; requests still run on the main runtime.
async fn dispatch_on_pacer_thread(
    source: impl Source + 'static,
    plan: Plan,
    pace: Pace,
    gates: Gates,
    launcher: RequestLauncher,
    stop: CancellationToken,
) -> anyhow::Result<Dispatched> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("llmvolley-pacer".into())
        .spawn(move || {
            // Timers for the gates' waits (the throttle); arrivals are paced by the OS timer.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = done_tx.send(Err(e));
                    return;
                }
            };
            let rate = match pace {
                // A trace's bursts are unknown: a short spin (0.1 ms) before each arrival.
                Pace::Open { arrivals, .. } => arrivals.rate().unwrap_or(1000.0),
                Pace::Closed { .. } => 1.0,
            };
            let pacer = ThreadPacer::for_this_thread(stop.clone(), rate);
            let dispatched = runtime.block_on(dispatch_all(
                source, plan, pace, gates, pacer, launcher, stop,
            ));
            let _ = done_tx.send(Ok(dispatched));
        })
        .context("cannot start the pacer thread")?;
    done_rx
        .await
        .context("the pacer thread stopped before the schedule ended")?
        .context("cannot start the pacer thread's runtime")
}

/// CPU counters read before and after a measurement.
struct CpuSample {
    process: Option<Duration>,
    mock: Option<Duration>,
    machine: Option<cpu::MachineTicks>,
}

/// CPU use of the client (the in-process mock's thread left out), and warnings when the client
/// rather than the server may have set the pace.
fn self_check(
    before: CpuSample,
    after: CpuSample,
    wall: Duration,
    lag: Option<&Distribution>,
    latency_p50_ms: Option<f64>,
) -> ClientCheck {
    let cores_available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let steal_share = before
        .machine
        .zip(after.machine)
        .and_then(|(start, end)| start.steal_share_until(&end));
    let cpu_cores_used = match (before.process, after.process) {
        (Some(start), Some(end)) if !wall.is_zero() => {
            let mock = match (before.mock, after.mock) {
                (Some(start), Some(end)) => end.saturating_sub(start),
                _ => Duration::ZERO,
            };
            // CPU time counted before the clock started (threads already at work) can exceed
            // what the cores could give over a short wall time: never more than there are.
            let used =
                end.saturating_sub(start).saturating_sub(mock).as_secs_f64() / wall.as_secs_f64();
            Some(used.min(cores_available as f64))
        }
        _ => None,
    };
    let judged = wall >= SELF_CHECK_MIN_WALL;
    let mut warnings = Vec::new();
    if let Some(cores) = cpu_cores_used.filter(|c| judged && *c > CPU_WARNING_CORES) {
        warnings.push(format!(
            "the client used {:.0}% of a core: it may be the bottleneck (latencies include its own delays)",
            cores * 100.0
        ));
    }
    if let Some(lag) = lag.filter(|l| {
        l.p99 > LAG_WARNING_MS && latency_p50_ms.is_none_or(|p50| l.p99 > LAG_WARNING_SHARE * p50)
    }) {
        warnings.push(format!(
            "scheduler lag p99 {:.2} ms (> {LAG_WARNING_MS} ms and > {:.0}% of the median latency): arrivals left late; the achieved rate may fall short",
            lag.p99,
            LAG_WARNING_SHARE * 100.0
        ));
    }
    if let Some(steal) = steal_share.filter(|s| *s > STEAL_WARNING) {
        warnings.push(format!(
            "the hypervisor took {:.1}% of this machine's CPU time (steal): timings include its stalls",
            steal * 100.0
        ));
    }
    ClientCheck {
        cpu_cores_used,
        cores_available,
        steal_share,
        warnings,
    }
}
