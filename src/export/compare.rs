//! The comparison as the table `llmvolley compare` prints, of runs or of two searches' answers.

use super::Exporter;
use crate::capacity::SearchOver;
use crate::compare::Comparison;
use crate::compare::search::{SearchComparison, SearchSide};
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

/// `SearchComparison` → both answers, the change and the verdict against the searches' precision.
pub struct SearchCompareTable;

impl Exporter<SearchComparison> for SearchCompareTable {
    fn render(&self, c: &SearchComparison) -> anyhow::Result<Vec<u8>> {
        let (what, unit, places) = match c.over {
            SearchOver::Rate => ("max rate", "req/s", 2),
            SearchOver::Concurrency => ("max concurrency", "in flight", 0),
        };
        let n = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.places$}"));
        let bracket = |s: &SearchSide| {
            format!(
                "[{}, {})",
                n(s.max.or(Some(0.0))),
                s.fails_at
                    .map_or("∞".to_string(), |f| format!("{f:.places$}"))
            )
        };
        let mut out = String::new();
        let _ = writeln!(out, "base  {}: {}", c.base.dir.display(), c.base.line);
        let _ = writeln!(out, "new   {}: {}", c.new.dir.display(), c.new.line);
        if c.objectives_differ {
            let _ = writeln!(
                out,
                "WARNING the searches were judged against different objectives ({} vs {}): the change mixes that in",
                c.base.objectives, c.new.objectives
            );
        }
        for s in [&c.base, &c.new] {
            if !s.resolved {
                let _ = writeln!(
                    out,
                    "WARNING {} stopped before its answer was within {:.0}%: its bracket is wider",
                    s.dir.display(),
                    s.precision * 100.0
                );
            }
        }
        let _ = writeln!(
            out,
            "method: each search brackets its capacity between its highest passing and lowest failing load; the answers differ beyond the searches' precision only when the brackets do not overlap\n"
        );
        let _ = writeln!(
            out,
            "{:<26} {:>16} {:>16} {:>9}  verdict",
            "", "base", "new", "change"
        );
        let _ = writeln!(
            out,
            "{:<26} {:>16} {:>16} {:>9}  {}",
            format!("{what} {unit}"),
            n(c.base.max),
            n(c.new.max),
            c.change_pct
                .map_or("-".to_string(), |p| format!("{p:+.1}%")),
            match c.verdict {
                crate::compare::Verdict::WithinNoise => "within precision",
                other => other.as_str(),
            }
        );
        let _ = writeln!(
            out,
            "{:<26} {:>16} {:>16}",
            "bracket",
            bracket(&c.base),
            bracket(&c.new)
        );
        Ok(out.into_bytes())
    }
}
