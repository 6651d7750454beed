//! Rendering results for people and programs: one exporter per format behind one small trait (as
//! hyperfine's `src/export/`), each reading plain data (`Summary`, `Sweep`, `Estimate`) and measuring nothing.
//! The HTML report is one more exporter.

mod compare;
mod estimate;
mod html;
mod markdown;
mod search;
mod sweep;
mod text;

pub use compare::{CompareTable, SearchCompareTable};
pub use estimate::EstimateTable;
pub use html::HtmlReport;
pub use markdown::{SummaryMarkdown, SweepMarkdown};
pub use search::{SearchCsv, SearchTable};
pub use sweep::{Sweep, SweepCsv, SweepRow, SweepTable};
pub use text::SummaryText;

use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

/// Renders `T` in one format.
pub trait Exporter<T: ?Sized> {
    /// The whole rendering, as bytes to print or write.
    fn render(&self, data: &T) -> anyhow::Result<Vec<u8>>;
}

/// Any serializable data as pretty JSON (`summary.json`, `sweep.json`).
pub struct Json;

impl<T: Serialize + ?Sized> Exporter<T> for Json {
    fn render(&self, data: &T) -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(data)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Where an exporter's output goes.
pub enum Destination {
    Stdout,
    /// Written whole, through a temporary file and a rename.
    File(PathBuf),
    /// Appended to (a CI job's summary file, which several steps add to).
    Append(PathBuf),
}

/// The exporters one piece of data goes through, each to its destination.
pub struct Exports<T: ?Sized> {
    targets: Vec<(Box<dyn Exporter<T>>, Destination)>,
}

impl<T: ?Sized> Default for Exports<T> {
    fn default() -> Self {
        Exports {
            targets: Vec::new(),
        }
    }
}

impl<T: ?Sized> Exports<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn to(mut self, exporter: impl Exporter<T> + 'static, destination: Destination) -> Self {
        self.targets.push((Box::new(exporter), destination));
        self
    }

    /// Renders `data` with every exporter and writes each result; a file is written whole.
    pub fn write(&self, data: &T) -> anyhow::Result<()> {
        for (exporter, destination) in &self.targets {
            let bytes = exporter.render(data)?;
            match destination {
                Destination::Stdout => to_stdout(&bytes)?,
                Destination::File(path) => crate::run_folder::write_whole(path, &bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                Destination::Append(path) => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut file| file.write_all(&bytes))
                    .with_context(|| format!("cannot write {}", path.display()))?,
            }
        }
        Ok(())
    }
}

/// Prints one line on stdout (see `to_stdout`).
pub fn print_line(line: &str) -> std::io::Result<()> {
    to_stdout(format!("{line}\n").as_bytes())
}

/// Writes to stdout; a reader that went away (`llmvolley run … | head -1`) is not an error: the
/// run folder holds everything, and the exit code still says how the run went.
fn to_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
