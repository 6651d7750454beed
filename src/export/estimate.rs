//! `llmvolley estimate`'s table.

use super::Exporter;
use crate::cost::estimate::Estimate;
use std::fmt::Write as _;

/// `Estimate` → the aligned table `llmvolley estimate` prints.
pub struct EstimateTable;

impl Exporter<Estimate> for EstimateTable {
    fn render(&self, estimate: &Estimate) -> anyhow::Result<Vec<u8>> {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "workload     {} ({} requests, {} invalid lines)",
            estimate.workload, estimate.requests, estimate.invalid_lines
        );
        let _ = writeln!(out, "output       {}", estimate.output_source);
        let _ = writeln!(out, "tier         {:?}\n", estimate.tier);
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>13} {:>13} {:>12} {:>12} {:>12}  tokenizer",
            "model", "requests", "input tok", "output tok", "cost low", "expected", "high"
        );
        let usd = |v: Option<f64>| match v {
            None => "-".to_string(),
            Some(v) if v < 0.01 => format!("${v:.6}"),
            Some(v) => format!("${v:.4}"),
        };
        for m in &estimate.models {
            let cost = m.cost_usd.as_ref();
            let _ = writeln!(
                out,
                "{:<24} {:>9} {:>13} {:>13} {:>12} {:>12} {:>12}  {}",
                m.model,
                m.requests,
                m.input_tokens,
                m.output_tokens
                    .expected
                    .map_or("-".to_string(), |v| format!("{v:.0}")),
                usd(cost.and_then(|c| c.low)),
                usd(cost.and_then(|c| c.expected)),
                usd(cost.and_then(|c| c.high)),
                m.tokenizer
            );
        }
        for m in &estimate.models {
            if m.cost_usd.is_none() {
                let _ = writeln!(
                    out,
                    "\nno price for {:?}: add it with --prices FILE",
                    m.model
                );
            }
            if m.requests_without_output_estimate > 0 {
                let _ = writeln!(
                    out,
                    "\n{}: {} requests have no output estimate (no max_output_tokens): give --assume-output N or --from-run DIR",
                    m.model, m.requests_without_output_estimate
                );
            }
        }
        Ok(out.into_bytes())
    }
}
