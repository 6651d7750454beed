//! A capacity search's `search.csv` (one line per probe) and its table printed answer first
//! (`search.json` is `capacity::SearchResult` as JSON).

use super::Exporter;
use crate::capacity::{Judged, Outcome, SearchOver, SearchResult};
use crate::stats::gate::Unit;
use std::fmt::Write as _;

/// `SearchResult` → the answer, then the probes' table, as printed.
pub struct SearchTable;

impl Exporter<SearchResult> for SearchTable {
    fn render(&self, s: &SearchResult) -> anyhow::Result<Vec<u8>> {
        let mut out = String::new();
        let _ = writeln!(out, "{}", s.line);
        let names: Vec<&str> = s
            .probes
            .first()
            .map(|p| p.objectives.iter().map(|o| o.name.as_str()).collect())
            .unwrap_or_default();
        let load = match s.over {
            SearchOver::Rate => "rate/s",
            SearchOver::Concurrency => "conc.",
        };
        let _ = write!(out, "probe {load:>9} {:>9} {:>6}", "ok req/s", "time s");
        for name in &names {
            let _ = write!(out, " {:>28}", name);
        }
        let _ = writeln!(out, "  outcome");
        for p in &s.probes {
            // The first probe is the synchronous one: one request at a time.
            let load = if p.step == 1 {
                "sync".to_string()
            } else {
                match s.over {
                    SearchOver::Rate => format!("{:.2}", p.load),
                    SearchOver::Concurrency => format!("{:.0}", p.load),
                }
            };
            let _ = write!(
                out,
                "{:>5} {load:>9} {:>9.2} {:>6.1}",
                p.step, p.requests_per_s, p.duration_s
            );
            for o in &p.objectives {
                let _ = write!(out, " {:>28}", figure(o));
            }
            let mut notes = Vec::new();
            if p.cut_short {
                notes.push("cut short, not judged".to_string());
            }
            if p.saturated {
                notes.push("saturated".to_string());
            }
            if p.extensions > 0 {
                notes.push(format!("extended ×{}", p.extensions));
            }
            if p.inconclusive {
                notes.push("inconclusive: judged on its figures".to_string());
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            // A failure stands out in the column.
            let outcome = match p.outcome {
                Outcome::Fail => "FAIL",
                other => other.as_str(),
            };
            let _ = writeln!(out, "  {outcome}{notes}");
        }
        let _ = writeln!(
            out,
            "(each figure with its {:.0}% bootstrap interval; each probe's summary is in its folder; {:.0} s in all)",
            s.confidence * 100.0,
            s.wall_time_s
        );
        for t in &s.thresholds {
            let _ = writeln!(out, "{:<13}{}", "fail-on", t.line());
        }
        Ok(out.into_bytes())
    }
}

/// `412.0 [398.1, 431.7] ≤ 500`, units by the objective.
fn figure(o: &Judged) -> String {
    let v = |x: Option<f64>| match (x, o.unit) {
        (None, _) => "∞".to_string(),
        (Some(x), Unit::Share) => format!("{:.1}%", x * 100.0),
        (Some(x), _) => format!("{x:.1}"),
    };
    if o.low.is_none() && o.high.is_none() && o.value.is_some() {
        return v(o.value);
    }
    format!("{} [{}, {}]", v(o.value), v(o.low), v(o.high))
}

/// `SearchResult` → `search.csv`: one line per probe, each objective's figure and interval.
pub struct SearchCsv;

impl Exporter<SearchResult> for SearchCsv {
    fn render(&self, s: &SearchResult) -> anyhow::Result<Vec<u8>> {
        let mut csv = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = [
            "step",
            "folder",
            "load",
            "requests_per_s",
            "requests",
            "duration_s",
            "outcome",
            "inconclusive",
            "extensions",
            "saturated",
            "cut_short",
            "goodput_per_s",
        ]
        .map(String::from)
        .to_vec();
        let names: Vec<String> = s
            .probes
            .first()
            .map(|p| p.objectives.iter().map(|o| o.name.clone()).collect())
            .unwrap_or_default();
        for name in &names {
            header.extend([
                name.clone(),
                format!("{name}_low"),
                format!("{name}_high"),
                format!("{name}_outcome"),
            ]);
        }
        csv.write_record(&header)?;
        let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        for p in &s.probes {
            let mut row = vec![
                p.step.to_string(),
                p.folder.clone(),
                p.load.to_string(),
                p.requests_per_s.to_string(),
                p.requests.to_string(),
                p.duration_s.to_string(),
                p.outcome.as_str().to_string(),
                p.inconclusive.to_string(),
                p.extensions.to_string(),
                p.saturated.to_string(),
                p.cut_short.to_string(),
                cell(p.goodput_per_s),
            ];
            for o in &p.objectives {
                row.extend([
                    cell(o.value),
                    cell(o.low),
                    cell(o.high),
                    o.outcome.as_str().to_string(),
                ]);
            }
            csv.write_record(&row)?;
        }
        csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
    }
}
