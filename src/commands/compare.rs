//! `llmvolley compare`: two sides of run folders read, compared row by row (or two searches'
//! answers), printed or as JSON.

use super::EXIT_THRESHOLD;
use super::search::SEARCH_JSON;
use crate::cli::CompareArgs;
use crate::compare::{Figure, Settings, Side, compare as compare_sides, search};
use crate::export::{CompareTable, Destination, Exports, Json, SearchCompareTable};
use anyhow::bail;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let (base, new) = sides(args.runs)?;
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        bail!("--confidence must be between 0 and 1 (e.g. 0.95)");
    }
    if args
        .fail_if_worse
        .is_some_and(|p| !(p.is_finite() && p >= 0.0))
    {
        bail!("--fail-if-worse takes a percentage of 0 or more (e.g. 5)");
    }
    if !(args.min_change.is_finite() && args.min_change >= 0.0) {
        bail!("--min-change takes a percentage of 0 or more (e.g. 1)");
    }
    if let Some(searches) = searches(&base, &new)? {
        if !args.metric.is_empty() {
            bail!("--metric names a run's figures; two searches compare their answers");
        }
        return compare_searches(searches, args.json, args.fail_if_worse);
    }
    let figures = if args.metric.is_empty() {
        Figure::headline()
    } else {
        args.metric
    };
    let settings = Settings {
        confidence: args.confidence,
        resamples: args.resamples,
        seed: args.seed,
        min_change_pct: args.min_change,
    };
    let comparison = compare_sides(&Side::read(&base)?, &Side::read(&new)?, &figures, settings);
    let exports = if args.json {
        Exports::new().to(Json, Destination::Stdout)
    } else {
        Exports::new().to(CompareTable, Destination::Stdout)
    };
    exports.write(&comparison)?;
    if let Some(pct) = args.fail_if_worse {
        let worse = comparison.worse_beyond(pct);
        if !worse.is_empty() {
            let names: Vec<&str> = worse.iter().map(|r| r.metric.as_str()).collect();
            eprintln!(
                "error: worse beyond the noise and by more than {pct}%: {}",
                names.join(", ")
            );
            return Ok(ExitCode::from(EXIT_THRESHOLD));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Both sides' folders when each side is one search's folder; None when neither side holds a
/// search; an error when only one does, or a side has several.
fn searches(base: &[PathBuf], new: &[PathBuf]) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let is_search = |dir: &PathBuf| dir.join(SEARCH_JSON).is_file();
    let (b, n) = (
        base.iter().filter(|d| is_search(d)).count(),
        new.iter().filter(|d| is_search(d)).count(),
    );
    match (b, n) {
        (0, 0) => Ok(None),
        (1, 1) if base.len() == 1 && new.len() == 1 => Ok(Some((base[0].clone(), new[0].clone()))),
        _ => bail!(
            "compare takes run folders, or one search's folder per side (its search.json): pass a probe's folder (steps/NN-...) to compare one probe as a run"
        ),
    }
}

/// Two searches' answers, printed or as JSON; exit 3 when `--fail-if-worse` says so.
fn compare_searches(
    (base_dir, new_dir): (PathBuf, PathBuf),
    json: bool,
    fail_if_worse: Option<f64>,
) -> anyhow::Result<ExitCode> {
    let (base, new) = (search::read(&base_dir)?, search::read(&new_dir)?);
    let comparison = search::compare(&base_dir, &base, &new_dir, &new)?;
    let exports = if json {
        Exports::new().to(Json, Destination::Stdout)
    } else {
        Exports::new().to(SearchCompareTable, Destination::Stdout)
    };
    exports.write(&comparison)?;
    if let Some(pct) = fail_if_worse
        && comparison.worse_beyond(pct)
    {
        eprintln!(
            "error: the answer is worse beyond the searches' precision and by more than {pct}%"
        );
        return Ok(ExitCode::from(EXIT_THRESHOLD));
    }
    Ok(ExitCode::SUCCESS)
}

/// `BASE NEW`, or `BASE... vs NEW...`.
fn sides(runs: Vec<PathBuf>) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if runs.iter().filter(|p| p.as_os_str() == "vs").count() > 1 {
        bail!("`vs` is given twice: BASE... vs NEW... has two sides");
    }
    let split = runs.iter().position(|p| p.as_os_str() == "vs");
    match split {
        Some(at) if at > 0 && at + 1 < runs.len() => {
            let mut base = runs;
            let new = base.split_off(at + 1);
            base.pop();
            Ok((base, new))
        }
        Some(_) => bail!("say both sides: BASE... vs NEW..."),
        None if runs.len() == 2 => {
            let mut runs = runs.into_iter();
            Ok((runs.next().into_iter().collect(), runs.collect()))
        }
        None => bail!(
            "{} run folders: give BASE NEW, or BASE... vs NEW... for several runs per side",
            runs.len()
        ),
    }
}
