//! Two capacity searches compared (`llmvolley compare` of two `search.json` folders): the answers,
//! the change, and whether it is larger than the searches' own precision.
//!
//! A search brackets the capacity: it passed at `max` and failed at `fails_at`, so the true answer
//! lies in `[max, fails_at)` (no upper end when no probe failed; no lower end, 0, when every probe
//! failed). Two answers differ beyond doubt only when their brackets do not overlap: the new
//! search's failing load at or below the base's passing one is *worse*, its passing load at or
//! above the base's failing one *better*; overlapping brackets are *within precision*, whatever the
//! point change. This is the search's own uncertainty (each probe was already judged with its
//! bootstrap interval), so no resampling is repeated here.

use super::Verdict;
use crate::capacity::{SearchOver, SearchResult};
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One side: a search folder and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct SearchSide {
    pub dir: PathBuf,
    /// The answer as the search printed it.
    pub line: String,
    /// Highest passing load (req/s, or requests in flight); None when every probe failed.
    pub max: Option<f64>,
    /// Lowest failing load; None when no probe failed.
    pub fails_at: Option<f64>,
    /// The bracket reached the search's precision (not stopped early).
    pub resolved: bool,
    pub objectives: String,
    pub precision: f64,
}

/// What `compare` prints (and `--json` writes) for two searches.
#[derive(Debug, Clone, Serialize)]
pub struct SearchComparison {
    pub over: SearchOver,
    pub base: SearchSide,
    pub new: SearchSide,
    /// (new.max − base.max) / base.max, in percent; None when a side has no passing load.
    pub change_pct: Option<f64>,
    /// `better`, `worse`, `within_noise` (brackets overlap: within the searches' precision) or
    /// `no_data` (a side has neither a passing nor a failing load).
    pub verdict: Verdict,
    /// The sides were judged against different objectives: the change mixes that in.
    pub objectives_differ: bool,
}

/// Reads `dir/search.json`; errors name the folder.
pub fn read(dir: &Path) -> anyhow::Result<SearchResult> {
    let path = dir.join("search.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a search.json this llmvolley wrote: run the search again",
            path.display()
        )
    })
}

/// Compares two searches' answers. Errors when they searched different things (rate against
/// concurrency): those answers are in different units.
pub fn compare(
    base_dir: &Path,
    base: &SearchResult,
    new_dir: &Path,
    new: &SearchResult,
) -> anyhow::Result<SearchComparison> {
    if base.over != new.over {
        bail!(
            "{} searched {} and {} searched {}: the answers are in different units",
            base_dir.display(),
            over_name(base.over),
            new_dir.display(),
            over_name(new.over)
        );
    }
    let over = base.over;
    let side = |dir: &Path, s: &SearchResult| SearchSide {
        dir: dir.to_path_buf(),
        line: s.line.clone(),
        max: s.answer.max,
        fails_at: s.answer.fails_at,
        resolved: s.answer.resolved,
        objectives: s.objectives.clone(),
        precision: s.precision,
    };
    let (base, new) = (side(base_dir, base), side(new_dir, new));
    let change_pct = match (base.max, new.max) {
        (Some(b), Some(n)) if b > 0.0 => Some((n - b) / b * 100.0),
        _ => None,
    };
    Ok(SearchComparison {
        over,
        verdict: verdict(&base, &new),
        objectives_differ: base.objectives != new.objectives,
        change_pct,
        base,
        new,
    })
}

fn over_name(over: SearchOver) -> &'static str {
    match over {
        SearchOver::Rate => "the rate",
        SearchOver::Concurrency => "the concurrency",
    }
}

/// Brackets `[max, fails_at)` compared: disjoint is a change, overlapping is within precision.
fn verdict(base: &SearchSide, new: &SearchSide) -> Verdict {
    if (base.max.is_none() && base.fails_at.is_none())
        || (new.max.is_none() && new.fails_at.is_none())
    {
        return Verdict::NoData;
    }
    let passes = |s: &SearchSide| s.max.unwrap_or(0.0);
    let fails = |s: &SearchSide| s.fails_at.unwrap_or(f64::INFINITY);
    if fails(new) <= passes(base) {
        Verdict::Worse
    } else if passes(new) >= fails(base) {
        Verdict::Better
    } else {
        Verdict::WithinNoise
    }
}

impl SearchComparison {
    /// Worse beyond the searches' precision and by more than `pct` percent of the base's answer.
    pub fn worse_beyond(&self, pct: f64) -> bool {
        self.verdict == Verdict::Worse
            && match self.change_pct {
                Some(change) => -change > pct,
                // Every new probe failed: worse by all of the base's answer.
                None => self.base.max.is_some_and(|b| b > 0.0),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(max: Option<f64>, fails_at: Option<f64>) -> SearchSide {
        SearchSide {
            dir: PathBuf::from("x"),
            line: String::new(),
            max,
            fails_at,
            resolved: true,
            objectives: "ttft.p99 ≤ 500 ms".into(),
            precision: 0.05,
        }
    }

    #[test]
    fn disjoint_brackets_are_a_change_and_overlapping_ones_are_within_precision() {
        let base = side(Some(40.0), Some(42.0));
        assert_eq!(
            verdict(&base, &side(Some(30.0), Some(31.5))),
            Verdict::Worse
        );
        assert_eq!(
            verdict(&base, &side(Some(42.0), Some(44.0))),
            Verdict::Better
        );
        // 41 passes on one side, fails on none: the capacities may be equal.
        assert_eq!(
            verdict(&base, &side(Some(41.0), Some(43.0))),
            Verdict::WithinNoise
        );
        // The failing load of the new search is the base's passing one: worse.
        assert_eq!(
            verdict(&base, &side(Some(38.0), Some(40.0))),
            Verdict::Worse
        );
    }

    #[test]
    fn open_ended_brackets_only_change_when_the_other_side_shows_it() {
        // Base never failed up to 80: a new one passing at 100 may be no better.
        let base = side(Some(80.0), None);
        assert_eq!(
            verdict(&base, &side(Some(100.0), None)),
            Verdict::WithinNoise
        );
        assert_eq!(
            verdict(&base, &side(Some(60.0), Some(70.0))),
            Verdict::Worse
        );
        // Every new probe failed, the lowest at 10: worse than a base passing at 80.
        let none = side(None, Some(10.0));
        assert_eq!(verdict(&base, &none), Verdict::Worse);
        assert_eq!(verdict(&side(None, None), &none), Verdict::NoData);
    }

    #[test]
    fn only_a_worse_verdict_beyond_the_percentage_fails() {
        let compared = |new: SearchSide| SearchComparison {
            over: SearchOver::Rate,
            change_pct: new.max.map(|m| (m - 40.0) / 40.0 * 100.0),
            verdict: verdict(&side(Some(40.0), Some(42.0)), &new),
            objectives_differ: false,
            base: side(Some(40.0), Some(42.0)),
            new,
        };
        assert!(compared(side(Some(30.0), Some(31.5))).worse_beyond(10.0));
        assert!(!compared(side(Some(38.0), Some(40.0))).worse_beyond(10.0));
        assert!(!compared(side(Some(41.0), Some(43.0))).worse_beyond(0.0));
        assert!(compared(side(None, Some(2.0))).worse_beyond(50.0));
    }
}
