//! The sweep: its table printed, its CSV and its rows, one per step, read from each step's summary.

use super::Exporter;
use crate::modes::Profile;
use crate::stats::Summary;
use serde::Serialize;
use std::fmt::Write as _;

/// A sweep's steps, in order (`sweep.json` is this object).
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub steps: Vec<SweepRow>,
}

/// One row of the sweep table.
#[derive(Debug, Clone, Serialize)]
pub struct SweepRow {
    pub step: usize,
    pub profile: Option<Profile>,
    pub folder: String,
    /// Target arrival rate (rate steps only).
    pub rate_per_s: Option<f64>,
    /// Measured sends per second.
    pub sent_per_s: Option<f64>,
    /// ok completions per second.
    pub requests_per_s: f64,
    /// null when the step's output tokens are unknown (no usage, nothing counted).
    pub output_tokens_per_s: Option<f64>,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_from_schedule_p99_ms: Option<f64>,
    pub error_rate: f64,
    pub goodput_per_s: Option<f64>,
    /// Share of the step's measured requests meeting each SLO given, and all of them.
    pub slo_ttft_share: Option<f64>,
    pub slo_tpot_share: Option<f64>,
    pub slo_e2e_share: Option<f64>,
    pub slo_share: Option<f64>,
    /// `--fail-on` thresholds this step failed, `; `-separated (empty: none failed, or none given).
    pub failed_gates: String,
    /// An interrupt stopped the step before its end: its figures cover only part of it.
    #[serde(default)]
    pub interrupted: bool,
    /// The server fell behind the offered rate: the evidence, and whether the step was stopped
    /// early for it (after how many seconds).
    #[serde(default)]
    pub saturated: Option<String>,
    #[serde(default)]
    pub stopped_after_s: Option<f64>,
}

impl SweepRow {
    fn slo_shares(&self) -> [(&'static str, Option<f64>); 3] {
        [
            ("ttft ok", self.slo_ttft_share),
            ("tpot ok", self.slo_tpot_share),
            ("e2e ok", self.slo_e2e_share),
        ]
    }

    /// The row of step `step`, measured into `folder` (relative to the sweep's run folder).
    pub fn new(step: usize, folder: &str, s: &Summary) -> Self {
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
            error_rate: s.requests.error_rate().unwrap_or(0.0),
            interrupted: s.interrupted,
            saturated: s.saturation.as_ref().map(|sat| sat.evidence.clone()),
            stopped_after_s: s.stopped_early.map(|stop| match stop {
                crate::capacity::StoppedEarly::Saturated { after_s }
                | crate::capacity::StoppedEarly::Decided { after_s, .. } => after_s,
            }),
            goodput_per_s: s.slo.as_ref().map(|g| g.goodput_per_s),
            slo_ttft_share: s.slo.as_ref().and_then(|g| g.share_ttft),
            slo_tpot_share: s.slo.as_ref().and_then(|g| g.share_tpot),
            slo_e2e_share: s.slo.as_ref().and_then(|g| g.share_e2e),
            slo_share: s.slo.as_ref().map(|g| g.share_all),
            failed_gates: s
                .thresholds
                .iter()
                .filter(|v| v.failed)
                .map(|v| v.expression.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// `Sweep` → the table `bench --profile sweep` prints.
pub struct SweepTable;

impl Exporter<Sweep> for SweepTable {
    fn render(&self, sweep: &Sweep) -> anyhow::Result<Vec<u8>> {
        Ok(render_sweep(&sweep.steps).into_bytes())
    }
}

/// `Sweep` → `sweep.csv`, one line per step.
pub struct SweepCsv;

impl Exporter<Sweep> for SweepCsv {
    fn render(&self, sweep: &Sweep) -> anyhow::Result<Vec<u8>> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in &sweep.steps {
            csv.serialize(row)?;
        }
        csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
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
        if r.interrupted {
            out.push_str("  (interrupted: a partial step)");
        }
        match (&r.saturated, r.stopped_after_s) {
            (Some(_), Some(after)) => {
                let _ = write!(out, "  (saturated: stopped after {after:.1} s)");
            }
            (Some(_), None) => out.push_str("  (saturated)"),
            _ => {}
        }
        out.push('\n');
    }
    out.push_str("(latency and TTFT in ms; each step's full summary is in its folder)\n");
    for r in rows.iter() {
        if let Some(evidence) = &r.saturated {
            let _ = writeln!(out, "{:<13}step {}: {evidence}", "saturated", r.step);
        }
    }
    for r in rows.iter().filter(|r| !r.failed_gates.is_empty()) {
        let _ = writeln!(
            out,
            "{:<13}step {} failed {}",
            "fail-on", r.step, r.failed_gates
        );
    }
    out
}
