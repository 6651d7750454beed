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
        // Through the Batch API: the expected cost at its tier, beside the live one.
        let batch = estimate
            .models
            .iter()
            .any(|m| m.batch_expected_usd.is_some());
        let _ = writeln!(
            out,
            "{:<24} {:>9} {:>13} {:>13} {:>12} {:>12} {:>12}{}  tokenizer",
            "model",
            "requests",
            "input tok",
            "output tok",
            "cost low",
            "expected",
            "high",
            if batch {
                format!(" {:>12}", "batch")
            } else {
                String::new()
            }
        );
        let usd = |v: Option<f64>| match v {
            None => "-".to_string(),
            Some(v) if v < 0.01 => format!("${v:.6}"),
            Some(v) => format!("${v:.4}"),
        };
        let rows = estimate.models.iter().chain(
            estimate
                .total
                .as_ref()
                .filter(|_| estimate.models.len() > 1),
        );
        for m in rows {
            let cost = m.cost_usd.as_ref();
            let _ = writeln!(
                out,
                "{:<24} {:>9} {:>13} {:>13} {:>12} {:>12} {:>12}{}  {}",
                m.model,
                m.requests,
                m.input_tokens,
                m.output_tokens
                    .expected
                    .map_or("-".to_string(), |v| format!("{v:.0}")),
                usd(cost.and_then(|c| c.low)),
                usd(cost.and_then(|c| c.expected)),
                usd(cost.and_then(|c| c.high)),
                if batch {
                    format!(" {:>12}", usd(m.batch_expected_usd))
                } else {
                    String::new()
                },
                m.tokenizer
            );
        }
        if batch {
            let _ = writeln!(
                out,
                "\nbatch: the expected cost through the Batch API (`llmvolley batch`, its half-price tier; answers within 24 h)"
            );
        }
        for m in &estimate.models {
            if m.cost_usd.is_none() {
                let _ = writeln!(
                    out,
                    "\nno price for {:?}: add it with --prices FILE (the total leaves it out)",
                    m.model
                );
            }
        }
        let (without, all) = estimate.without_output_estimate();
        if without > 0 {
            let by_model: Vec<String> = estimate
                .models
                .iter()
                .filter(|m| m.requests_without_output_estimate > 0)
                .map(|m| format!("{} {}", m.model, m.requests_without_output_estimate))
                .collect();
            let _ = writeln!(
                out,
                "\npartial: {} of {} requests have no output estimate (no max_output_tokens: {}), so expected and high count only their input; complete it with --assume-output N or --from-run DIR (an earlier run's measured output)",
                without,
                all,
                by_model.join(", ")
            );
        }
        Ok(out.into_bytes())
    }
}
