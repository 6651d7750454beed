//! `bench --profile sweep`: synchronous, throughput, then rates between them; the sweep table.

use super::measure::Bench;
use crate::cli::Profile;
use crate::run_folder::{self, HISTOGRAMS_DIR};
use crate::scheduler::Pace;
use crate::stats::Summary;
use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

pub const SWEEP_JSON: &str = "sweep.json";
pub const SWEEP_CSV: &str = "sweep.csv";
pub const STEPS_DIR: &str = "steps";

/// One row of the sweep table.
#[derive(Debug, Clone, Serialize)]
struct SweepRow {
    step: usize,
    profile: Option<Profile>,
    folder: String,
    /// Target arrival rate (rate steps only).
    rate_per_s: Option<f64>,
    /// Measured sends per second.
    sent_per_s: Option<f64>,
    /// ok completions per second.
    requests_per_s: f64,
    /// null when the step's output tokens are unknown (no usage, nothing counted).
    output_tokens_per_s: Option<f64>,
    ttft_p50_ms: Option<f64>,
    ttft_p99_ms: Option<f64>,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    latency_from_schedule_p99_ms: Option<f64>,
    error_rate: f64,
    goodput_per_s: Option<f64>,
    /// Share of the step's measured requests meeting each SLO given, and all of them.
    slo_ttft_share: Option<f64>,
    slo_tpot_share: Option<f64>,
    slo_e2e_share: Option<f64>,
    slo_share: Option<f64>,
}

impl SweepRow {
    fn slo_shares(&self) -> [(&'static str, Option<f64>); 3] {
        [
            ("ttft ok", self.slo_ttft_share),
            ("tpot ok", self.slo_tpot_share),
            ("e2e ok", self.slo_e2e_share),
        ]
    }

    fn new(step: usize, folder: &str, s: &Summary) -> Self {
        let load = s.load.as_ref();
        SweepRow {
            step,
            profile: load.map(|l| l.profile),
            folder: folder.to_string(),
            rate_per_s: load.and_then(|l| l.rate_per_s),
            sent_per_s: load.and_then(|l| l.achieved_rate_per_s),
            requests_per_s: s.requests_per_s,
            output_tokens_per_s: s.tokens.output_per_s,
            ttft_p50_ms: s.ttft_ms.as_ref().map(|d| d.p50),
            ttft_p99_ms: s.ttft_ms.as_ref().map(|d| d.p99),
            latency_p50_ms: s.latency_ms.as_ref().map(|d| d.p50),
            latency_p99_ms: s.latency_ms.as_ref().map(|d| d.p99),
            latency_from_schedule_p99_ms: s.latency_from_schedule_ms.as_ref().map(|d| d.p99),
            error_rate: if s.requests.total == 0 {
                0.0
            } else {
                s.requests.failed as f64 / s.requests.total as f64
            },
            goodput_per_s: s.slo.as_ref().map(|g| g.goodput_per_s),
            slo_ttft_share: s.slo.as_ref().and_then(|g| g.share_ttft),
            slo_tpot_share: s.slo.as_ref().and_then(|g| g.share_tpot),
            slo_e2e_share: s.slo.as_ref().and_then(|g| g.share_e2e),
            slo_share: s.slo.as_ref().map(|g| g.share_all),
        }
    }
}

/// Synchronous, then throughput, then `--steps` rates evenly spaced strictly between the two
/// measured ok-request rates; each step is a full run folder under `steps/`.
pub(super) async fn sweep(bench: &Bench<'_>, dir: &Path) -> anyhow::Result<Vec<Summary>> {
    let config = bench.config;
    let steps = config.steps as usize;
    let total = steps + 2;
    let mut done = SweepSteps {
        bench,
        dir,
        total,
        rows: Vec::new(),
        summaries: Vec::new(),
    };
    done.run(
        "synchronous".into(),
        Profile::Synchronous,
        Pace::Closed { concurrency: 1 },
    )
    .await?;
    if !bench.shutdown.stop.is_cancelled() {
        done.run(
            "throughput".into(),
            Profile::Throughput,
            Pace::Closed {
                concurrency: config.max_inflight,
            },
        )
        .await?;
    }
    let (low, high) = match &done.summaries[..] {
        [sync, throughput] => (sync.requests_per_s, throughput.requests_per_s),
        _ => (0.0, 0.0),
    };
    if !bench.shutdown.stop.is_cancelled() && (low <= 0.0 || high <= 0.0) {
        eprintln!(
            "warning: no rate steps: the synchronous or throughput step completed no request ok"
        );
    } else {
        for i in 1..=steps {
            if bench.shutdown.stop.is_cancelled() {
                break;
            }
            let rate = low + (high - low) * i as f64 / (steps + 1) as f64;
            let profile = config.sweep_arrivals.profile();
            done.run(format!("rate-{rate:.2}"), profile, config.sweep_step(rate))
                .await?;
        }
    }
    let SweepSteps {
        rows, summaries, ..
    } = done;
    run_folder::write_json(dir, SWEEP_JSON, &json!({ "steps": rows }))?;
    let mut csv = csv::Writer::from_path(dir.join(SWEEP_CSV))
        .with_context(|| format!("cannot write {}", dir.join(SWEEP_CSV).display()))?;
    for row in &rows {
        csv.serialize(row)?;
    }
    csv.flush()?;
    println!("run folder   {}", dir.display());
    print!("{}", render_sweep(&rows));
    Ok(summaries)
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
    async fn run(&mut self, name: String, profile: Profile, pace: Pace) -> anyhow::Result<()> {
        let step = self.rows.len() + 1;
        let folder = format!("{STEPS_DIR}/{step:02}-{name}");
        let step_dir = self.dir.join(&folder);
        std::fs::create_dir_all(step_dir.join(HISTOGRAMS_DIR))
            .with_context(|| format!("cannot create {}", step_dir.display()))?;
        let summary = self.bench.measure(&step_dir, profile, pace).await?;
        let row = SweepRow::new(step, &folder, &summary);
        if !self.bench.config.quiet {
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

fn render_sweep(rows: &[SweepRow]) -> String {
    let with_slo = rows.iter().any(|r| r.goodput_per_s.is_some());
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    // One column per SLO given (the same SLOs in every step).
    let slo_columns: Vec<usize> = (0..3)
        .filter(|i| rows.iter().any(|r| r.slo_shares()[*i].1.is_some()))
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>4} {:<12} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "step",
        "profile",
        "rate/s",
        "sent/s",
        "ok req/s",
        "out tok/s",
        "ttft p50",
        "ttft p99",
        "lat p50",
        "lat p99",
        "errors"
    );
    if with_slo {
        for i in &slo_columns {
            let _ = write!(out, " {:>7}", rows[0].slo_shares()[*i].0);
        }
        let _ = write!(out, " {:>7} {:>9}", "all ok", "goodput");
    }
    out.push('\n');
    for r in rows {
        let _ = write!(
            out,
            "{:>4} {:<12} {:>9} {:>9} {:>9.2} {:>10} {:>9} {:>9} {:>9} {:>9} {:>6.1}%",
            r.step,
            r.profile.map_or("-", Profile::as_str),
            cell(r.rate_per_s),
            cell(r.sent_per_s),
            r.requests_per_s,
            r.output_tokens_per_s
                .map_or("unknown".to_string(), |v| format!("{v:.1}")),
            cell(r.ttft_p50_ms),
            cell(r.ttft_p99_ms),
            cell(r.latency_p50_ms),
            cell(r.latency_p99_ms),
            r.error_rate * 100.0
        );
        if with_slo {
            for i in &slo_columns {
                let _ = write!(out, " {:>7}", percent(r.slo_shares()[*i].1));
            }
            let _ = write!(
                out,
                " {:>7} {:>9}",
                percent(r.slo_share),
                cell(r.goodput_per_s)
            );
        }
        out.push('\n');
    }
    out.push_str("(latency and TTFT in ms; each step's full summary is in its folder)\n");
    out
}
