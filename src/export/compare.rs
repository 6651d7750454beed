//! The comparison as the table `llmvolley compare` prints.

use super::Exporter;
use crate::compare::Comparison;
use std::fmt::Write as _;

/// `Comparison` → one row per figure: both sides, the change, its interval and the verdict.
pub struct CompareTable;

impl Exporter<Comparison> for CompareTable {
    fn render(&self, c: &Comparison) -> anyhow::Result<Vec<u8>> {
        let side = |dirs: &[std::path::PathBuf], requests: u64| {
            let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!(
                "{} ({} run{}, {requests} measured requests)",
                names.join(" "),
                dirs.len(),
                if dirs.len() == 1 { "" } else { "s" }
            )
        };
        let mut out = String::new();
        let _ = writeln!(out, "base  {}", side(&c.base, c.base_requests));
        let _ = writeln!(out, "new   {}", side(&c.new, c.new_requests));
        if !c.differences.is_empty() {
            let listed: Vec<String> = c
                .differences
                .iter()
                .map(|d| format!("{} ({} vs {})", d.setting, d.base, d.new))
                .collect();
            let _ = writeln!(
                out,
                "WARNING the sides differ in {}: each row mixes that in with the change under test",
                listed.join(", ")
            );
        }
        let _ = writeln!(out, "method: {}\n", c.method);
        let _ = writeln!(
            out,
            "{:<22} {:>12} {:>12} {:>9}  {:<26} verdict",
            "",
            "base",
            "new",
            "change",
            format!("{:.0}% interval", c.confidence * 100.0)
        );
        let number =
            |v: Option<f64>, places: usize| v.map_or("-".to_string(), |v| format!("{v:.places$}"));
        let pct = |v: f64, unit: &str| {
            if unit == "pts" {
                format!("{v:+.2} pts")
            } else {
                format!("{v:+.1}%")
            }
        };
        for r in &c.rows {
            // Dollars per 1,000 requests are often cents.
            let places = if r.metric == "cost_per_1k" { 4 } else { 2 };
            let interval = r.interval_pct.map_or(String::new(), |(lo, hi)| {
                format!("[{}, {}]", pct(lo, r.change_unit), pct(hi, r.change_unit))
            });
            let note = r
                .note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<22} {:>12} {:>12} {:>9}  {:<26} {}{note}",
                r.label,
                number(r.base, places),
                number(r.new, places),
                r.change_pct
                    .map_or("-".to_string(), |c| pct(c, r.change_unit)),
                interval,
                r.verdict.as_str()
            );
        }
        Ok(out.into_bytes())
    }
}
