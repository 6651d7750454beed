//! `llmvolley report`: run folders and sweeps read, one HTML page written.

use crate::cli::ReportArgs;
use crate::export::{Destination, Exports, HtmlReport};
use crate::report::ReportData;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let data = ReportData::read(&args.dirs)?;
    let out = args.out.unwrap_or_else(|| match &args.dirs[..] {
        [one] => one.join("report.html"),
        _ => PathBuf::from("report.html"),
    });
    Exports::new()
        .to(HtmlReport, Destination::File(out.clone()))
        .write(&data)?;
    crate::export::print_line(&format!("report       {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}
