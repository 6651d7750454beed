//! What the HTML report shows, read from run folders: percentile distributions from the saved
//! HdrHistograms, the per-second time series, errors per second by kind, sweep steps, search
//! probes, tokens and cost per model, the run's settings and the client self-check. Reading only;
//! `export::HtmlReport` renders it.

pub mod hgrm;

use crate::run_folder::{HISTOGRAMS_DIR, RECORDS_JSONL, SUMMARY_JSON, TIMESERIES_CSV};
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The histograms whose percentile distributions are drawn, by file stem, in this order.
pub const DISTRIBUTIONS: [&str; 4] = ["latency", "ttft", "tpot", "itl"];

/// Everything one report shows.
#[derive(Debug, Clone, Serialize)]
pub struct ReportData {
    pub tool_version: String,
    pub runs: Vec<RunData>,
    pub sweeps: Vec<SweepData>,
    pub searches: Vec<SearchData>,
}

/// One run folder.
#[derive(Debug, Clone, Serialize)]
pub struct RunData {
    /// A short name for legends: the folder's own name (with its sweep's, for a step).
    pub name: String,
    pub dir: PathBuf,
    /// `run.json` without its per-session history.
    pub settings: Value,
    pub summary: Value,
    /// Per histogram: `[1 / (1 − percentile), value in ms]` points, as HdrHistogram's plotter draws.
    pub distributions: BTreeMap<String, Vec<[f64; 2]>>,
    /// `timeseries.csv` as columns (header name → one value per second; empty cells are null).
    pub timeseries: BTreeMap<String, Vec<Option<f64>>>,
    /// Failed requests per second of completion, by error kind.
    pub errors_per_second: BTreeMap<String, Vec<u64>>,
    /// `server_metrics.csv` as columns (`--scrape`; empty without it), on the same seconds.
    pub server_metrics: BTreeMap<String, Vec<Option<f64>>>,
}

/// A sweep's top folder: its steps (`sweep.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SweepData {
    pub name: String,
    pub dir: PathBuf,
    pub steps: Value,
    pub settings: Value,
}

/// A capacity search's top folder: `search.json` as written (the answer, every probe with its
/// objectives' figures and intervals).
#[derive(Debug, Clone, Serialize)]
pub struct SearchData {
    pub name: String,
    pub dir: PathBuf,
    pub search: Value,
    pub settings: Value,
}

impl ReportData {
    /// Reads each folder: a run folder, or a sweep's or search's top folder (its curve or probes;
    /// pass a step's folder to see that step's distributions). Errors name the folder and what it lacks.
    pub fn read(dirs: &[PathBuf]) -> anyhow::Result<ReportData> {
        let mut data = ReportData {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            runs: Vec::new(),
            sweeps: Vec::new(),
            searches: Vec::new(),
        };
        for dir in dirs {
            if dir.join("search.json").is_file() {
                data.searches.push(SearchData {
                    name: name_of(dir),
                    dir: dir.clone(),
                    search: read_json(&dir.join("search.json"))?,
                    settings: settings(dir),
                });
            } else if dir.join("sweep.json").is_file() {
                data.sweeps.push(SweepData {
                    name: name_of(dir),
                    dir: dir.clone(),
                    steps: read_json(&dir.join("sweep.json"))?["steps"].take(),
                    settings: settings(dir),
                });
            } else if dir.join(SUMMARY_JSON).is_file() {
                data.runs.push(RunData::read(dir)?);
            } else if !dir.exists() {
                bail!("{} does not exist", dir.display());
            } else {
                bail!(
                    "{} has no summary.json, sweep.json nor search.json: is it a finished run folder?",
                    dir.display()
                );
            }
        }
        Ok(data)
    }
}

impl RunData {
    fn read(dir: &Path) -> anyhow::Result<RunData> {
        let mut distributions = BTreeMap::new();
        for name in DISTRIBUTIONS {
            let path = dir.join(HISTOGRAMS_DIR).join(format!("{name}.hdr"));
            if let Some(h) = hgrm::read_hdr(&path)? {
                let points = percentile_points(&h);
                if !points.is_empty() {
                    distributions.insert(name.to_string(), points);
                }
            }
        }
        Ok(RunData {
            name: name_of(dir),
            dir: dir.to_path_buf(),
            settings: settings(dir),
            summary: read_json(&dir.join(SUMMARY_JSON))?,
            distributions,
            timeseries: read_timeseries(&dir.join(TIMESERIES_CSV))?,
            errors_per_second: errors_per_second(&dir.join(RECORDS_JSONL))?,
            server_metrics: read_timeseries(&dir.join(crate::scrape::SERVER_METRICS_CSV))?,
        })
    }
}

/// `results/x/steps/03-rate-12.00` → `x/03-rate-12.00`; else the folder's name.
fn name_of(dir: &Path) -> String {
    let own = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match dir.parent() {
        Some(parent) if parent.file_name().is_some_and(|n| n == "steps") => {
            let sweep = parent
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{sweep}/{own}")
        }
        _ => own,
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// `run.json` without `sessions` (a resumed run's history repeats the settings); a sweep's step
/// folder (`steps/NN-name`) has none of its own, so its sweep's is used.
fn settings(dir: &Path) -> Value {
    let own = dir.join("run.json");
    let path = if own.is_file() {
        own
    } else {
        match dir.parent() {
            Some(steps) if steps.file_name().is_some_and(|n| n == "steps") => {
                match steps.parent() {
                    Some(sweep) => sweep.join("run.json"),
                    None => return Value::Null,
                }
            }
            _ => return Value::Null,
        }
    };
    let mut settings = read_json(&path).unwrap_or(Value::Null);
    if let Some(map) = settings.as_object_mut() {
        map.remove("sessions");
    }
    settings
}

/// The percentile distribution as HdrHistogram's plotter draws it: 5 points per halving of the
/// remaining tail, x = 1 / (1 − percentile) (a log axis then spreads 90%, 99%, 99.9% evenly).
/// Values were saved in thousandths (µs for times), shown in ms.
pub fn percentile_points(h: &hdrhistogram::Histogram<u64>) -> Vec<[f64; 2]> {
    let mut points = Vec::new();
    for step in h.iter_quantiles(5) {
        let q = step.quantile_iterated_to();
        if q >= 1.0 {
            break;
        }
        points.push([1.0 / (1.0 - q), step.value_iterated_to() as f64 / 1000.0]);
    }
    if !h.is_empty() {
        // The maximum, one step of the axis past the last point drawn.
        let last_x = points.last().map_or(1.0, |p| p[0]);
        points.push([last_x * 2.0, h.max() as f64 / 1000.0]);
    }
    points
}

fn read_timeseries(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<Option<f64>>>> {
    let mut columns: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    if !path.is_file() {
        return Ok(columns);
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("cannot read {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}:{}", path.display(), i + 2))?;
        for (name, cell) in headers.iter().zip(row.iter()) {
            columns
                .entry(name.clone())
                .or_default()
                .push(cell.parse().ok());
        }
    }
    Ok(columns)
}

/// Failed requests per second of completion, by error kind (every other field is skipped unread).
fn errors_per_second(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<u64>>> {
    #[derive(serde::Deserialize)]
    struct Failed {
        status: String,
        #[serde(default)]
        warmup: bool,
        sent_at: Option<f64>,
        scheduled_at: Option<f64>,
        latency_ms: Option<f64>,
        error: Option<Kind>,
    }
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
    }
    let mut by_kind: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    if !path.is_file() {
        return Ok(by_kind);
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (i, line) in std::io::BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(r) = serde_json::from_slice::<Failed>(&line) else {
            bail!("{}:{}: not a record of llmvolley", path.display(), i + 1);
        };
        // Warm-up, and lines never sent (cancelled, skipped): not load the server saw.
        if r.warmup || r.status == "ok" {
            continue;
        }
        let ended = match (r.sent_at, r.latency_ms, r.scheduled_at) {
            (Some(sent), Some(latency), _) => sent + latency,
            (_, _, Some(scheduled)) if r.status == "dropped" => scheduled,
            _ => continue,
        };
        let kind = r.error.map_or(r.status, |e| e.kind);
        let second = (ended.max(0.0) / 1000.0) as usize;
        let counts = by_kind.entry(kind).or_default();
        if counts.len() <= second {
            counts.resize(second + 1, 0);
        }
        counts[second] += 1;
    }
    Ok(by_kind)
}
