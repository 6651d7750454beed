//! `bench --profile sweep`: synchronous, throughput, then rates between them; the sweep table.

use super::measure::Bench;
use crate::capacity::Watch;
use crate::cli::Profile;
use crate::export::{
    Destination, Exports, Json, Sweep, SweepCsv, SweepMarkdown, SweepRow, SweepTable,
};
use crate::run_folder::HISTOGRAMS_DIR;
use crate::scheduler::Pace;
use crate::stats::Summary;
use anyhow::Context;
use std::path::Path;

pub const SWEEP_JSON: &str = "sweep.json";
pub const SWEEP_CSV: &str = "sweep.csv";
pub const STEPS_DIR: &str = "steps";

/// How far past the throughput step's rate the rate steps go: a knee at the measured throughput
/// (where a closed loop of `--max-inflight` settles) is then inside the range, not its edge.
const PAST_THROUGHPUT: f64 = 1.1;

/// A throughput step at most this much faster than the synchronous one is warned about.
const SERIAL_MARGIN: f64 = 1.2;

/// Synchronous, then throughput, then `--steps` rates evenly spaced above the synchronous rate up
/// to 1.1× the throughput step's (or the `--rates` given, alone); each step is a full run folder
/// under `steps/`.
pub(super) async fn sweep(bench: &Bench<'_>, dir: &Path) -> anyhow::Result<Vec<Summary>> {
    let config = bench.config;
    let steps = config.steps as usize;
    let total = if config.rates.is_empty() {
        steps + 2
    } else {
        config.rates.len()
    };
    let mut done = SweepSteps {
        bench,
        dir,
        total,
        rows: Vec::new(),
        summaries: Vec::new(),
    };
    let profile = config.sweep_arrivals.profile();
    if !config.rates.is_empty() {
        for &rate in &config.rates {
            if done.stopped() {
                break;
            }
            done.run(format!("rate-{rate:.2}"), profile, config.sweep_step(rate))
                .await?;
        }
    } else {
        done.run("synchronous".into(), Profile::Synchronous, Pace::closed(1))
            .await?;
        if !done.stopped() {
            done.run(
                "throughput".into(),
                Profile::Throughput,
                config.closed(config.max_inflight),
            )
            .await?;
        }
        let (low, high) = match &done.summaries[..] {
            [sync, throughput] => (sync.requests_per_s, throughput.requests_per_s),
            _ => (0.0, 0.0),
        };
        if !done.stopped() && (low <= 0.0 || high <= 0.0) {
            eprintln!(
                "warning: no rate steps: the synchronous or throughput step completed no request ok"
            );
        } else {
            let top = PAST_THROUGHPUT * high.max(low);
            // Within 20%: a server taking one request at a time still gains a little from a
            // closed loop that never leaves it idle between requests (6% on the mock with one
            // slot), and rate steps in so narrow a range tell little apart.
            if !done.stopped() && high <= low * SERIAL_MARGIN {
                eprintln!(
                    "warning: the throughput step ({high:.2} ok req/s at --max-inflight {}) came out within 20% of the synchronous one ({low:.2}): the server takes about one request at a time (a connection limit, a small listen backlog, or a proxy in front that serialises); the rate steps go from {low:.2} to {top:.2} req/s — give --rates to probe others",
                    config.max_inflight,
                );
            }
            for i in 1..=steps {
                if done.stopped() {
                    break;
                }
                let rate = low + (top - low) * i as f64 / steps as f64;
                done.run(format!("rate-{rate:.2}"), profile, config.sweep_step(rate))
                    .await?;
            }
        }
    }
    let SweepSteps {
        rows, summaries, ..
    } = done;
    let sweep = Sweep { steps: rows };
    Exports::new()
        .to(Json, Destination::File(dir.join(SWEEP_JSON)))
        .to(SweepCsv, Destination::File(dir.join(SWEEP_CSV)))
        .write(&sweep)?;
    crate::export::print_line(&format!("run folder   {}", dir.display()))?;
    Exports::new()
        .to(SweepTable, Destination::Stdout)
        .write(&sweep)?;
    if let Some(path) = &config.verdicts.summary_markdown
        && let Err(e) = Exports::new()
            .to(SweepMarkdown, Destination::Append(path.clone()))
            .write(&sweep)
    {
        eprintln!("warning: {e:#}");
    }
    Ok(summaries)
}

/// Step `step`'s folder `steps/NN-name` (relative, and under `dir`), created with its histograms
/// folder: a sweep's steps and a search's probes alike.
pub(super) fn step_folder(
    dir: &Path,
    step: usize,
    name: &str,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    let folder = format!("{STEPS_DIR}/{step:02}-{name}");
    let step_dir = dir.join(&folder);
    std::fs::create_dir_all(step_dir.join(HISTOGRAMS_DIR))
        .with_context(|| format!("cannot create {}", step_dir.display()))?;
    Ok((folder, step_dir))
}

/// The sweep's steps so far.
struct SweepSteps<'a, 'b> {
    bench: &'a Bench<'b>,
    dir: &'a Path,
    total: usize,
    rows: Vec<SweepRow>,
    summaries: Vec<Summary>,
}

impl SweepSteps<'_, '_> {
    /// An interrupt, a step that gave up on a dead endpoint, or the spent budget ends the sweep.
    fn stopped(&self) -> bool {
        self.bench.driver.shutdown.stop.is_cancelled()
            || self
                .summaries
                .iter()
                .any(|s| s.gave_up.is_some() || s.cost.budget_stopped)
    }

    async fn run(&mut self, name: String, profile: Profile, pace: Pace) -> anyhow::Result<()> {
        let step = self.rows.len() + 1;
        let (folder, step_dir) = step_folder(self.dir, step, &name)?;
        let label = format!("step {step}/{} {name}", self.total);
        let summary = self
            .bench
            .measure(
                &step_dir,
                profile,
                pace,
                None,
                Some(label),
                Watch::saturation(true),
            )
            .await?
            .summary;
        let row = SweepRow::new(step, &folder, &summary);
        if !self.bench.config.load.quiet {
            eprintln!(
                "step {step}/{} {name}: {:.2} ok req/s, latency p50 {} ms, {} failed",
                self.total,
                row.requests_per_s,
                row.latency_p50_ms.map_or("-".into(), |v| format!("{v:.1}")),
                summary.requests.failed
            );
        }
        self.rows.push(row);
        self.summaries.push(summary);
        Ok(())
    }
}
