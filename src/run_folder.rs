//! The run folder: picks and creates it, opens every output file before the first request, writes run.json.

use anyhow::{Context, bail};
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const RECORDS_JSONL: &str = "records.jsonl";
pub const RECORDS_CSV: &str = "records.csv";
/// Each second's latency and TTFT histograms, an HdrHistogram interval log (under `histograms/`).
pub const TIMESERIES_HLOG: &str = "timeseries.hlog";
pub const SUMMARY_JSON: &str = "summary.json";
pub const RUN_JSON: &str = "run.json";
pub const HISTOGRAMS_DIR: &str = "histograms";
pub const TIMESERIES_CSV: &str = "timeseries.csv";

/// Chooses the folder (`--out`, else `results/<workload stem>-<UTC time>`) and creates it empty.
/// An existing non-empty folder is refused: a run never overwrites another.
pub fn create(out: Option<&Path>, workload: &Path, results_root: &Path) -> anyhow::Result<PathBuf> {
    let dir = match out {
        Some(dir) => {
            if dir.exists() {
                if !dir.is_dir() {
                    bail!("--out {} exists and is not a folder", dir.display());
                }
                let mut entries = fs::read_dir(dir)
                    .with_context(|| format!("cannot read --out {}", dir.display()))?;
                if entries.next().is_some() {
                    bail!(
                        "--out {} already exists and is not empty; runs are never overwritten: choose another folder",
                        dir.display()
                    );
                }
            }
            dir.to_path_buf()
        }
        None => {
            let stem = workload
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("run");
            let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
                .to_string()
                .replace(['-', ':'], "");
            let base = results_root.join(format!("{stem}-{stamp}"));
            let mut dir = base.clone();
            let mut n = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            dir
        }
    };
    fs::create_dir_all(dir.join(HISTOGRAMS_DIR))
        .with_context(|| format!("cannot create run folder {}", dir.display()))?;
    Ok(dir)
}

/// Writes `value` as pretty JSON to `dir/name` via a temporary file and a rename, so a reader never
/// sees half a file.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    let path = dir.join(name);
    write_whole(&path, &text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes through a temporary file beside `path` and a rename: a crash leaves the old file or the
/// new one, never half of one.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Now as Unix time in microseconds: taken with a run's monotonic epoch, it places the run's
/// offsets (`sent_at`, …) on the wall clock, so runs of several processes share one time axis.
pub fn unix_micros_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_non_empty_out_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("run");
        fs::create_dir(&out).unwrap();
        assert!(create(Some(&out), Path::new("w.jsonl"), root.path()).is_ok());
        assert!(out.join(HISTOGRAMS_DIR).is_dir());
        let err = create(Some(&out), Path::new("w.jsonl"), root.path()).unwrap_err();
        assert!(err.to_string().contains("never overwritten"));
    }

    #[test]
    fn generated_names_never_collide() {
        let root = tempfile::tempdir().unwrap();
        let a = create(None, Path::new("dir/unicorn.jsonl"), root.path()).unwrap();
        let b = create(None, Path::new("dir/unicorn.jsonl"), root.path()).unwrap();
        assert_ne!(a, b);
        assert!(
            a.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("unicorn-")
        );
    }
}
