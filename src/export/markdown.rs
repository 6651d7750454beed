//! The summary and the sweep as Markdown tables, for a CI job's summary page (`--summary-markdown`).

use super::{Exporter, Sweep};
use crate::stats::Summary;
use crate::stats::gate::{Unit, show};
use std::fmt::Write as _;

/// `Summary` → headline figures, the percentile table and the `--fail-on` verdicts, in Markdown.
pub struct SummaryMarkdown;

impl Exporter<Summary> for SummaryMarkdown {
    fn render(&self, s: &Summary) -> anyhow::Result<Vec<u8>> {
        let mut out = String::from("### llmvolley summary\n\n| figure | value |\n|---|---|\n");
        let r = &s.requests;
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "| {name} | {value} |");
        };
        row(
            "requests",
            format!("{} total, {} ok, {} failed", r.total, r.ok, r.failed),
        );
        if let Some(rate) = r.error_rate() {
            row("error rate", show(rate, Unit::Share));
        }
        row(
            "ok requests/s",
            format!("{:.2} over {:.2} s", s.requests_per_s, s.window_s),
        );
        if let Some(v) = s.tokens.output_per_s {
            row("output tokens/s", format!("{v:.1}"));
        }
        if let Some(slo) = &s.slo {
            row(
                "goodput",
                format!(
                    "{:.2}/s ({:.1}% of requests meet every SLO)",
                    slo.goodput_per_s,
                    slo.share_all * 100.0
                ),
            );
        }
        if let Some(total) = s.cost.total_usd {
            let per_1k = s
                .cost
                .per_1k_requests_usd
                .map(|v| format!(" (${v:.4} per 1,000 requests)"))
                .unwrap_or_default();
            row("cost", format!("${total:.4}{per_1k}"));
        }
        for (kind, n) in &s.errors_by_kind {
            row("error", format!("{}: {n}", crate::inert::markdown(kind)));
        }
        let rows = [
            ("latency", &s.latency_ms),
            ("ttft", &s.ttft_ms),
            ("tpot", &s.tpot_ms),
            ("itl", &s.itl_ms),
            ("queue", &s.queue_ms),
        ];
        if rows.iter().any(|(_, d)| d.is_some()) {
            out.push_str(
                "\n| ms | p50 | p90 | p95 | p99 | p99.9 | max | mean | count |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            );
            for (name, d) in rows {
                if let Some(d) = d {
                    let _ = writeln!(
                        out,
                        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                        d.p50, d.p90, d.p95, d.p99, d.p99_9, d.max, d.mean, d.count
                    );
                }
            }
        }
        let lengths = [("input", &s.input_length), ("output", &s.output_length)];
        if lengths.iter().any(|(_, l)| l.is_some()) {
            out.push_str(
                "\n| tokens per request | p50 | p90 | p95 | p99 | p99.9 | max | mean | count |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            );
            for (name, l) in lengths {
                if let Some(l) = l {
                    let _ = writeln!(
                        out,
                        "| {name} | {} | {} | {} | {} | {} | {} | {:.2} | {} |",
                        l.p50, l.p90, l.p95, l.p99, l.p99_9, l.max, l.mean, l.count
                    );
                }
            }
        }
        if !s.thresholds.is_empty() {
            out.push_str("\n| `--fail-on` | value | verdict |\n|---|---:|---|\n");
            for v in &s.thresholds {
                let verdict = match (&v.note, v.failed) {
                    (Some(note), _) => format!("**FAILED** ({note})"),
                    (None, true) => "**FAILED**".to_string(),
                    (None, false) => "passed".to_string(),
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {verdict} |",
                    v.expression,
                    v.value.map_or("no data".to_string(), |x| show(x, v.unit))
                );
            }
        }
        for warning in &s.warnings {
            let _ = writeln!(out, "\n> warning: {}", crate::inert::markdown(warning));
        }
        Ok(out.into_bytes())
    }
}

/// `Sweep` → one Markdown row per step.
pub struct SweepMarkdown;

impl Exporter<Sweep> for SweepMarkdown {
    fn render(&self, sweep: &Sweep) -> anyhow::Result<Vec<u8>> {
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let mut out = String::from(
            "### llmvolley sweep\n\n| step | profile | rate/s | ok req/s | output tok/s | TTFT p99 ms | latency p50 ms | latency p99 ms | errors | goodput/s | failed gates |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &sweep.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.1}% | {} | {} |",
                r.step,
                r.profile.map_or("-", crate::modes::Profile::as_str),
                cell(r.rate_per_s),
                r.requests_per_s,
                cell(r.output_tokens_per_s),
                cell(r.ttft_p99_ms),
                cell(r.latency_p50_ms),
                cell(r.latency_p99_ms),
                r.error_rate * 100.0,
                cell(r.goodput_per_s),
                if r.failed_gates.is_empty() {
                    "-".to_string()
                } else {
                    format!("`{}`", r.failed_gates)
                }
            );
        }
        Ok(out.into_bytes())
    }
}
