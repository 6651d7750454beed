//! Subcommands: each file orchestrates one, and all return the process exit code.

mod batch;
mod bench;
mod compare;
mod drive;
mod estimate;
mod export;
mod generate;
mod identity;
mod measure;
mod merge;
mod mock;
mod report;
mod run;
mod scraper;
mod search;
mod sweep;
mod target;

use crate::cli::{Cli, Command};
use crate::stats::Summary;
use std::process::ExitCode;

/// Exit code for usage and setup errors (bad flags, unreadable workload, unwritable folder).
pub const EXIT_SETUP: u8 = 2;
/// Exit code when the run finished but some requests did not end ok.
pub const EXIT_SOME_FAILED: u8 = 1;
/// Exit code when a `--fail-on` threshold failed (a CI gate), whatever the requests did.
pub const EXIT_THRESHOLD: u8 = 3;
/// Exit code when SIGINT or SIGTERM stopped the run (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

pub async fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Mock(args) => mock::mock(args).await,
        Command::Estimate(args) => estimate::estimate(args),
        Command::Bench(args) => bench::bench(*args).await,
        Command::Export(args) => export::export(args),
        Command::Compare(args) => compare::compare(args),
        Command::Report(args) => report::report(args),
        Command::Merge(args) => merge::merge(args),
        Command::Batch(args) => batch::batch(*args).await,
        Command::Generate(args) => generate::generate(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", crate::inert::terminal(&format!("{e:#}")));
        ExitCode::from(EXIT_SETUP)
    })
}

/// The one exit-code rule: interrupted → 130; gave up on a dead endpoint → 2 (a setup error found
/// by sending); a `--fail-on` threshold failed (in any step) → 3; any record not ok, or
/// `--max-cost` cut the load short (in any step) → 1; else 0.
fn exit_code(interrupted: bool, summaries: &[Summary]) -> ExitCode {
    if interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if let Some(verdict) = summaries.iter().find_map(|s| s.gave_up.as_deref()) {
        eprintln!("error: {}", crate::inert::terminal(verdict));
        ExitCode::from(EXIT_SETUP)
    } else if summaries
        .iter()
        .any(|s| s.thresholds.iter().any(|t| t.failed))
    {
        ExitCode::from(EXIT_THRESHOLD)
    } else if summaries
        .iter()
        .all(|s| s.requests.failed == 0 && !s.cost.budget_stopped)
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SOME_FAILED)
    }
}
