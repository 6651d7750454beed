//! The collector: the single owner of the output files, the statistics and the progress bar.

use crate::capacity::{Criteria, Cut, Outcome, StoppedEarly};
use crate::cost::Pricer;
use crate::output_check::OutputChecker;
use crate::record::{Record, Status};
use crate::scheduler::Throttle;
use crate::secrets::Secrets;
use crate::sink::RecordSink;
use crate::stats::{RunStats, TimeSeries, WindowEnd};
use crate::tokenize::Estimator;
use crate::tool_check::ToolChecker;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Records written between two flushes at most, so a burst is flushed promptly.
const MAX_BATCH: usize = 4096;
/// How long a record may wait in the collector's buffers before it is written to the files.
const FLUSH_EVERY: Duration = Duration::from_millis(20);
/// How long the collector sleeps when it finds no record, before it looks again.
const NAP: Duration = Duration::from_millis(2);

/// How progress is shown on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live bar (stderr is a terminal).
    Bar,
    /// A plain line every `every` (stderr is a file or pipe: CI logs, nohup).
    Lines { every: Duration },
    /// Nothing (`--quiet`).
    Off,
}

impl ProgressMode {
    /// The bar on a terminal, a plain line `every` elsewhere, nothing when `quiet`.
    pub fn for_stderr(quiet: bool, every: Duration) -> ProgressMode {
        use std::io::IsTerminal;
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => ProgressMode::Off,
            (false, true) => ProgressMode::Bar,
            (false, false) => ProgressMode::Lines { every },
        }
    }
}

/// Where a load stands, shown before the counts.
#[derive(Debug, Clone, Default)]
struct Phase {
    step: Option<String>,
    warmup: bool,
    span: Option<Duration>,
}

/// The live progress line on stderr: done/total, rate, in flight, errors, tokens/s, p50 latency,
/// ETA.
pub struct Progress {
    bar: ProgressBar,
    /// A bench's phase: its sweep step, whether it is still warming up, and the time left of a
    /// `--duration` (warm-up time included).
    phase: Phase,
    /// `Lines` mode: the thread printing the bar's state, and its stop flag.
    plain: Option<(
        Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    )>,
    started: Instant,
    in_flight: Arc<AtomicUsize>,
    /// What the server made the client do (pauses, limits), shown while it lasts.
    pacing: Option<Arc<Throttle>>,
    errors: u64,
    /// The kind of the latest error, shown beside the count.
    latest_error: Option<String>,
    cost_usd: f64,
    priced: bool,
    last_message: Instant,
}

impl Progress {
    pub fn new(total: Option<u64>, mode: ProgressMode, in_flight: Arc<AtomicUsize>) -> Self {
        let visible = mode == ProgressMode::Bar;
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(total, target);
        let template = "{elapsed_precise} [{wide_bar:.cyan/blue}] {human_pos}/{human_len} {rate:.green} {msg} ETA {eta}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            let style = style
                .with_key(
                    "rate",
                    |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = write!(out, "{:.0} req/s", state.per_sec());
                    },
                )
                .progress_chars("=> ");
            bar.set_style(style);
        }
        if visible {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        let plain = match mode {
            ProgressMode::Lines { every } => Some(print_lines(bar.clone(), every)),
            _ => None,
        };
        Progress {
            bar,
            phase: Phase::default(),
            plain,
            started: Instant::now(),
            in_flight,
            pacing: None,
            errors: 0,
            latest_error: None,
            cost_usd: 0.0,
            priced: false,
            last_message: Instant::now(),
        }
    }

    /// Shows where the load stands: `step` (a sweep's "step 2/7 throughput"), "warm-up" until the
    /// first measured record when `warmup`, and the time left of `span`.
    pub fn with_phase(
        mut self,
        step: Option<String>,
        warmup: bool,
        span: Option<Duration>,
    ) -> Self {
        self.phase = Phase { step, warmup, span };
        self
    }

    /// Shows the server's pacing of the run (a pause, an announced limit) in the bar's message.
    pub fn with_pacing(mut self, throttle: Arc<Throttle>) -> Self {
        self.pacing = Some(throttle);
        self
    }

    fn record_done(&mut self, record: &Record, stats: &RunStats) {
        if self.phase.warmup && !record.warmup {
            self.phase.warmup = false;
        }
        // A line this session did not send is neither done nor an error (the total counts only
        // the lines it sends).
        if record.status.not_sent() {
            return;
        }
        if record.status != Status::Ok {
            self.errors += 1;
            if let Some(error) = &record.error
                && self.latest_error.as_deref() != Some(error.kind.as_str())
            {
                self.latest_error = Some(error.kind.clone());
            }
        }
        if let Some(cost) = record.cost_usd {
            self.cost_usd += cost;
            self.priced = true;
        }
        // Done counts workload lines: a conversation's once, at its last turn.
        if record.turn.is_none() || record.conversation_end {
            self.bar.inc(1);
        }
        if self.last_message.elapsed() >= Duration::from_millis(100) {
            self.update_message(stats);
        }
    }

    fn update_message(&mut self, stats: &RunStats) {
        self.last_message = Instant::now();
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let cost = if self.priced {
            format!(" ${:.4}", self.cost_usd)
        } else {
            String::new()
        };
        let pacing = self
            .pacing
            .as_ref()
            .and_then(|t| t.status_line())
            .map(|line| format!(" | server: {line}"))
            .unwrap_or_default();
        let latest = self
            .latest_error
            .as_ref()
            .map(|kind| format!(" (latest {})", crate::inert::terminal(kind)))
            .unwrap_or_default();
        let elapsed = self.started.elapsed().as_secs_f64();
        let tokens = match stats.output_tokens.value() {
            Some(tokens) if elapsed > 0.0 => format!(" {:.0} tok/s", tokens as f64 / elapsed),
            _ => String::new(),
        };
        let latency = stats.latency.inner();
        let p50 = if latency.is_empty() {
            String::new()
        } else {
            // Thousandths of a millisecond.
            format!(
                " p50 {:.0} ms",
                latency.value_at_quantile(0.5) as f64 / 1000.0
            )
        };
        let mut phase = self.phase.step.clone().unwrap_or_default();
        if self.phase.warmup {
            phase.push_str(if phase.is_empty() {
                "warm-up"
            } else {
                " warm-up"
            });
        }
        if let Some(span) = self.phase.span {
            let left = span
                .saturating_sub(self.started.elapsed())
                .as_secs_f64()
                .ceil();
            if !phase.is_empty() {
                phase.push(' ');
            }
            phase.push_str(&format!("{left}s left"));
        }
        if !phase.is_empty() {
            phase.push_str(" | ");
        }
        self.bar.set_message(format!(
            "{phase}in-flight {in_flight} errors {}{latest}{tokens}{p50}{cost}{pacing}",
            self.errors
        ));
    }

    fn finish(&mut self, stats: &RunStats) {
        self.update_message(stats);
        if let Some((stop, thread)) = self.plain.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Prints the (hidden) bar's state as a plain line `every` so long until told to stop.
fn print_lines(
    bar: ProgressBar,
    every: Duration,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut next = Instant::now() + every;
        while !stopped.load(Ordering::Relaxed) {
            // Short sleeps: the run's end is seen promptly.
            std::thread::sleep(every.min(Duration::from_millis(200)));
            if Instant::now() < next {
                continue;
            }
            next += every;
            let done = bar.position();
            let of = bar
                .length()
                .map(|total| format!("/{total}"))
                .unwrap_or_default();
            let eta = if bar.length().is_some() && bar.per_sec() > 0.0 {
                format!(
                    ", ETA {}",
                    humantime::format_duration(Duration::from_secs(bar.eta().as_secs()))
                )
            } else {
                String::new()
            };
            eprintln!(
                "progress {done}{of} done, {:.1} req/s, {}{eta} ({} elapsed)",
                bar.per_sec(),
                bar.message(),
                humantime::format_duration(Duration::from_secs(bar.elapsed().as_secs()))
            );
        }
    });
    (stop, thread)
}

/// Receives every record, in completion order, and is the only writer of the run's files.
pub struct Collector {
    sinks: Vec<Box<dyn RecordSink>>,
    stats: RunStats,
    timeseries: Option<TimeSeries>,
    progress: Progress,
    pricer: Pricer,
    estimator: Estimator,
    tool_checker: ToolChecker,
    output_checker: OutputChecker,
    /// A timed load's deadline, published by the dispatcher.
    window_end: Option<WindowEnd>,
    /// The credentials sent: scrubbed from every record before it is written or counted.
    secrets: Secrets,
    /// A search probe's judgements along the way.
    checkpoints: Option<Checkpoints>,
}

/// What the collector accumulated once every record was in.
pub struct Collected {
    pub stats: RunStats,
    pub timeseries: Option<TimeSeries>,
    pub unpriced_models: Vec<String>,
}

impl Collector {
    /// `estimator` counts the output tokens of streams that came without usage (here, on the
    /// collector's thread, off the async runtime).
    pub fn new(
        sinks: Vec<Box<dyn RecordSink>>,
        progress: Progress,
        pricer: Pricer,
        estimator: Estimator,
    ) -> Self {
        Collector {
            sinks,
            stats: RunStats::default(),
            timeseries: None,
            progress,
            pricer,
            estimator,
            tool_checker: ToolChecker::default(),
            output_checker: OutputChecker::default(),
            window_end: None,
            secrets: Secrets::default(),
            checkpoints: None,
        }
    }

    /// Scrubs these credentials from every record (a server that echoes the key it got).
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// Learns the end of a timed load's measured phase from the dispatcher, once it is known.
    pub fn with_window_end(mut self, end: WindowEnd) -> Self {
        self.window_end = Some(end);
        self
    }

    /// Starts from these statistics (e.g. with SLOs to judge) instead of empty ones.
    pub fn with_stats(mut self, stats: RunStats) -> Self {
        self.stats = stats;
        self
    }

    /// Judges a search probe at its checkpoints, and cuts it once decided.
    pub fn with_checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Also keeps the per-second time series (every record, warm-up included).
    pub fn with_timeseries(mut self, series: TimeSeries) -> Self {
        self.timeseries = Some(series);
        self
    }

    /// Runs on its own thread (file writes are blocking) until every sender is gone.
    pub fn run(mut self, mut records: mpsc::Receiver<Record>) -> io::Result<Collected> {
        // The progress line says what it can before the first record.
        self.progress.update_message(&self.stats);
        let result = self.drain(&mut records);
        self.progress.finish(&self.stats);
        result.map(|()| Collected {
            stats: self.stats,
            timeseries: self.timeseries,
            unpriced_models: self.pricer.unpriced_models(),
        })
    }

    /// Takes records in batches: after a record it naps while more arrive, up to `FLUSH_EVERY`
    /// after the batch's first, so a busy run costs one wake-up and one write per file per batch,
    /// not per record; a batch is flushed `FLUSH_EVERY` after its first record was taken (or
    /// after `MAX_BATCH` records), whether or not more keep coming.
    fn drain(&mut self, records: &mut mpsc::Receiver<Record>) -> io::Result<()> {
        while let Some(first) = records.blocking_recv() {
            let flush_by = Instant::now() + FLUSH_EVERY;
            self.accept(first)?;
            let mut taken = 1;
            loop {
                match records.try_recv() {
                    Ok(record) => {
                        self.accept(record)?;
                        taken += 1;
                        if taken < MAX_BATCH && Instant::now() < flush_by {
                            continue;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {
                        let now = Instant::now();
                        if now < flush_by {
                            std::thread::sleep((flush_by - now).min(NAP));
                            continue;
                        }
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {}
                }
                break;
            }
            for sink in &mut self.sinks {
                sink.flush()?;
            }
            if let Some(checkpoints) = &mut self.checkpoints {
                checkpoints.after_batch(&self.stats);
            }
        }
        Ok(())
    }

    fn accept(&mut self, mut record: Record) -> io::Result<()> {
        self.secrets.scrub_record(&mut record);
        self.estimator.fill(&mut record);
        // Before the tool check, which takes the request body off the record.
        self.output_checker.check(&mut record);
        self.tool_checker.check(&mut record);
        self.pricer.price(&mut record);
        for sink in &mut self.sinks {
            sink.write(&record)?;
        }
        // Read again for every record: a cut moves the end earlier.
        if let Some(end) = self.window_end.as_ref().and_then(WindowEnd::get_ms) {
            self.stats.window_end_ms = Some(end);
        }
        self.stats.add(&record);
        if let Some(series) = &mut self.timeseries {
            series.add(&record);
        }
        self.progress.record_done(&record, &self.stats);
        Ok(())
    }
}

/// A search probe judged every `every` of its run (after warm-up time) until it is decided or has
/// had its last extension: decided, it is cut; undecided, it runs on.
pub struct Checkpoints {
    criteria: Arc<Criteria>,
    cut: Arc<Cut>,
    next: Instant,
    every: Duration,
    left: u32,
    /// Spans judged inconclusive so far: the extensions run.
    extended: u32,
}

impl Checkpoints {
    /// `extensions` checkpoints after the first `start + every`; the run's plan ends one `every`
    /// after the last.
    pub fn new(
        criteria: Arc<Criteria>,
        cut: Arc<Cut>,
        start: Instant,
        every: Duration,
        extensions: u32,
    ) -> Self {
        Checkpoints {
            criteria,
            cut,
            next: start + every,
            every,
            left: extensions,
            extended: 0,
        }
    }

    fn after_batch(&mut self, stats: &RunStats) {
        if self.left == 0 || Instant::now() < self.next {
            return;
        }
        self.left -= 1;
        self.next += self.every;
        let elapsed = self.cut.elapsed_s();
        let judged = self.criteria.judge(stats, || {
            crate::stats::Summary::from_stats(stats, elapsed, Vec::new())
        });
        // A pass of an open loop whose in-flight count may still be growing is not yet a pass:
        // a queue growing slowly takes time to break a latency objective.
        let decided = match judged.outcome {
            Outcome::Fail => true,
            Outcome::Pass => self.cut.flat(),
            Outcome::Inconclusive => false,
        };
        if decided {
            self.cut.stop(StoppedEarly::Decided {
                after_s: elapsed,
                extensions: self.extended,
            });
        } else {
            self.extended += 1;
        }
    }
}
