//! One measurement of `bench`: a load profile driven into its own run folder (records, time series,
//! histograms, summary) with the client's self-check. `bench` runs one; a sweep runs several.

use super::target::{create_record_files, new_timeseries, write_results};
use crate::cli::Profile;
use crate::client::Client;
use crate::collector::{Collected, Collector, Progress};
use crate::config::BenchConfig;
use crate::cost::Pricer;
use crate::cpu;
use crate::mock::MockThread;
use crate::record::{Record, Status, millis};
use crate::run_folder::HISTOGRAMS_DIR;
use crate::scheduler::{
    Launcher, Pace, Plan, Planned, Requester, Shutdown, ThreadPacer, TokioPacer, Warmup, WhenFull,
    dispatch, dropped_record,
};
use crate::stats::{ClientCheck, Distribution, LoadSummary, RunStats, Summary};
use crate::tokenize::Estimator;
use crate::workload::Request;
use anyhow::Context;
use reqwest::Url;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The client's CPU use (share of one core) above which its timing may be off.
const CPU_WARNING_CORES: f64 = 0.9;
/// Scheduler lag p99 above which arrivals were not sent on time.
const LAG_WARNING_MS: f64 = 1.0;
/// Share of CPU time stolen by a hypervisor above which timings include its stalls.
const STEAL_WARNING: f64 = 0.05;

/// What every step of a bench shares.
pub(super) struct Bench<'a> {
    pub config: &'a BenchConfig,
    pub workload: Arc<[Request]>,
    pub base_url: Url,
    pub mock: Option<&'a MockThread>,
    pub shutdown: &'a Shutdown,
}

impl Bench<'_> {
    /// One full measurement into `dir`: records, time series, histograms and summary.
    pub async fn measure(
        &self,
        dir: &Path,
        profile: Profile,
        pace: Pace,
    ) -> anyhow::Result<Summary> {
        let config = self.config;
        let sinks = create_record_files(dir)?;
        let limit = config.limit(self.workload.len() as u64);
        let planned_total = match (limit.requests, config.warmup) {
            (Some(n), Warmup::Requests(w)) => Some(n + w),
            (Some(n), Warmup::None) => Some(n),
            _ => None,
        };
        let show_progress = !config.quiet && std::io::stderr().is_terminal();
        let estimator = Estimator::ready(config.conn.tokenizer.clone(), config.conn.stream).await?;
        let epoch = std::time::Instant::now();
        let epoch_unix_us = crate::run_folder::unix_micros_now();
        let slots = pace.slots();
        let requester = Arc::new(Requester::new(
            Client::new(
                &config.conn.client_config(self.base_url.clone(), slots),
                epoch,
            )?,
            config.conn.retry_policy(config.max_retries),
            None,
        ));
        let (records_tx, records_rx) = mpsc::channel(slots.max(64) * 2);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let pricer = Pricer::new(config.conn.prices.clone(), config.conn.tier, !config.quiet);
        let progress = Progress::new(planned_total, show_progress, in_flight.clone());
        let collector = Collector::new(sinks, progress, pricer, estimator)
            .with_stats(RunStats::with_slo(config.slo))
            .with_timeseries(new_timeseries(dir, epoch_unix_us)?);
        let collecting = tokio::task::spawn_blocking(move || collector.run(records_rx));

        let launcher = ClientLauncher(Arc::new(Shared {
            requester,
            workload: self.workload.clone(),
            records: records_tx,
            in_flight,
            abandon: self.shutdown.abandon.clone(),
            epoch,
            max_in_flight: slots,
            runtime: tokio::runtime::Handle::current(),
        }));
        let mut plan = Plan::new(config.warmup, limit);
        let cpu_before = self.cpu_times();
        let scheduler_lag = match pace {
            Pace::Closed { .. } => {
                let lag = dispatch(
                    &mut plan,
                    pace,
                    &mut TokioPacer {
                        stop: self.shutdown.stop.clone(),
                    },
                    &launcher,
                    &self.shutdown.stop,
                )
                .await;
                drop(launcher);
                lag
            }
            Pace::Open { .. } => {
                dispatch_on_pacer_thread(plan, pace, launcher, self.shutdown.stop.clone()).await?
            }
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

        let mut summary = Summary::from_stats(&stats, wall.as_secs_f64(), unpriced_models);
        summary.interrupted = self.shutdown.stop.is_cancelled();
        summary.epoch_unix_us = Some(epoch_unix_us);
        let lag = scheduler_lag.as_ref().and_then(Distribution::of);
        let client = self_check(cpu_before, cpu_after, wall, lag.as_ref());
        summary.load = Some(load_summary(profile, pace, &stats, lag, client));
        if let Some(lag) = &scheduler_lag {
            let histograms = dir.join(HISTOGRAMS_DIR);
            std::fs::create_dir_all(&histograms)?;
            lag.save(&histograms.join("scheduler_lag.hdr"))?;
        }
        write_results(dir, &stats, timeseries, &summary)?;
        Ok(summary)
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
        } => (Some(arrivals.rate()), when_full == WhenFull::Drop),
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

/// Runs an open-loop schedule on a thread of its own, which sleeps with the OS timer (tens of
/// microseconds late) instead of tokio's millisecond wheel, and hands each request to the runtime.
async fn dispatch_on_pacer_thread(
    mut plan: Plan,
    pace: Pace,
    launcher: ClientLauncher,
    stop: CancellationToken,
) -> anyhow::Result<Option<crate::stats::ScaledHistogram>> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("llmvolley-pacer".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = done_tx.send(Err(e));
                    return;
                }
            };
            let rate = match pace {
                Pace::Open { arrivals, .. } => arrivals.rate(),
                Pace::Closed { .. } => 1.0,
            };
            let mut pacer = ThreadPacer::for_this_thread(stop.clone(), rate);
            let lag = runtime.block_on(dispatch(&mut plan, pace, &mut pacer, &launcher, &stop));
            drop(launcher);
            let _ = done_tx.send(Ok(lag));
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
            Some(end.saturating_sub(start).saturating_sub(mock).as_secs_f64() / wall.as_secs_f64())
        }
        _ => None,
    };
    let mut warnings = Vec::new();
    if let Some(cores) = cpu_cores_used.filter(|c| *c > CPU_WARNING_CORES) {
        warnings.push(format!(
            "the client used {:.0}% of a core: it may be the bottleneck (latencies include its own delays)",
            cores * 100.0
        ));
    }
    if let Some(lag) = lag.filter(|l| l.p99 > LAG_WARNING_MS) {
        warnings.push(format!(
            "scheduler lag p99 {:.2} ms > {LAG_WARNING_MS} ms: arrivals left late; the achieved rate may fall short",
            lag.p99
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

/// What launched requests share: one `Arc` clone per request.
struct Shared {
    requester: Arc<Requester>,
    workload: Arc<[Request]>,
    records: mpsc::Sender<Record>,
    in_flight: Arc<AtomicUsize>,
    abandon: CancellationToken,
    epoch: std::time::Instant,
    max_in_flight: usize,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    /// The workload line behind a schedule place: the workload is cycled.
    fn request(&self, seq: u64) -> &Request {
        &self.workload[((seq - 1) % self.workload.len() as u64) as usize]
    }
}

struct ClientLauncher(Arc<Shared>);

impl Planned {
    /// Marks a record with its place in the schedule and whether it was warm-up.
    fn stamp(self, record: &mut Record) {
        record.seq = Some(self.seq);
        record.warmup = self.warmup;
    }
}

impl Launcher for ClientLauncher {
    fn launch(
        &self,
        planned: Planned,
        scheduled: tokio::time::Instant,
        slot: OwnedSemaphorePermit,
    ) {
        let shared = self.0.clone();
        let request = shared.request(planned.seq).clone();
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        // Called on the pacer thread too, whose own runtime only paces: requests run on the main one.
        self.0.runtime.spawn(async move {
            let mut record = shared
                .requester
                .execute(request, scheduled.into_std(), &shared.abandon)
                .await;
            planned.stamp(&mut record);
            shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            // Holding the slot until the collector has the record keeps memory bounded when it lags.
            let _ = shared.records.send(record).await;
            drop(slot);
        });
    }

    async fn dropped(&self, planned: Planned, scheduled: tokio::time::Instant) -> bool {
        let shared = &self.0;
        let request = shared.request(planned.seq).clone();
        let mut record = dropped_record(request, shared.max_in_flight);
        planned.stamp(&mut record);
        record.scheduled_at = Some(millis(
            scheduled.into_std().saturating_duration_since(shared.epoch),
        ));
        shared.records.send(record).await.is_ok()
    }
}
