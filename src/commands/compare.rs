//! `llmvolley compare`: two sides of run folders read, compared row by row, printed or as JSON.

use super::EXIT_THRESHOLD;
use crate::cli::CompareArgs;
use crate::compare::{Figure, Settings, Side, compare as compare_sides};
use crate::export::{CompareTable, Destination, Exports, Json};
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
