//! `llmvolley merge SHARD_DIR... --out DIR`: the run folders of one job's shards made into the one
//! folder a single process would have written: records on one time axis, histograms added exactly,
//! the time series replayed on the wall clock, and the summary recomputed from the merged figures.

use super::target::new_timeseries;
use crate::cli::MergeArgs;
use crate::export::{Destination, Exports, Json};
use crate::record::Record;
use crate::report::hgrm;
use crate::run_folder::{
    self, HISTOGRAMS_DIR, RECORDS_CSV, RECORDS_JSONL, SUMMARY_JSON, TIMESERIES_CSV,
};
use crate::shard::Shard;
use crate::sink::{CsvSink, RecordSink};
use crate::stats::{Histo, RunStats, ScaledHistogram, Slo, Summary};
use crate::workload::Fingerprint;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The record fields that are offsets from the run's epoch (ms); every other time is a duration.
const OFFSETS: [&str; 3] = ["scheduled_at", "sent_at", "first_sent_at"];

/// What one shard's folder says about itself.
struct ShardFolder {
    dir: PathBuf,
    shard: Shard,
    fingerprint: Fingerprint,
    command: String,
    epoch_unix_us: u64,
    finished_unix_us: Option<u64>,
    summary: Value,
    run_json: Value,
}

/// Settings every shard of one job shares: a shard run with another would measure something else.
/// (Concurrency, rates, budget and seed are shares of the job's, and differ by design.)
const SHARED_SETTINGS: [&str; 14] = [
    "api",
    "stream",
    "http2",
    "profile",
    "requests",
    "duration_s",
    "warmup",
    "max_retries",
    "timeout_s",
    "prices",
    "tier",
    "slo",
    "save_responses",
    "mock",
];

impl ShardFolder {
    fn read(dir: &Path) -> anyhow::Result<ShardFolder> {
        if dir.join("sweep.json").is_file() {
            bail!(
                "{} is a sweep: merge each step's shard folders (steps/NN-name) on their own",
                dir.display()
            );
        }
        let run_json = read_json(&dir.join("run.json"))?;
        let shard: Shard = serde_json::from_value(run_json["shard"].clone()).map_err(|_| {
            anyhow::anyhow!(
                "{} was not run as a shard (its run.json names no shard): run each copy with --shard I/N or --shards N",
                dir.display()
            )
        })?;
        let fingerprint: Fingerprint = serde_json::from_value(
            run_json["workload_fingerprint"].clone(),
        )
        .with_context(|| format!("{}: run.json has no workload fingerprint", dir.display()))?;
        if !dir.join(RECORDS_JSONL).is_file() || !dir.join(SUMMARY_JSON).is_file() {
            bail!(
                "{} has no records.jsonl or summary.json: the shard has not finished (run the same command again: it resumes)",
                dir.display()
            );
        }
        let finished_unix_us = run_json["finished_at"]
            .as_str()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_micros() as u64);
        Ok(ShardFolder {
            dir: dir.to_path_buf(),
            shard,
            fingerprint,
            command: run_json["command"].as_str().unwrap_or("").to_string(),
            epoch_unix_us: run_json["epoch_unix_us"]
                .as_u64()
                .with_context(|| format!("{}: run.json has no epoch_unix_us", dir.display()))?,
            finished_unix_us,
            summary: read_json(&dir.join(SUMMARY_JSON))?,
            run_json,
        })
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// Checks that the folders are every shard of one job, once each.
fn check_job(shards: &[ShardFolder]) -> anyhow::Result<()> {
    let first = &shards[0];
    for s in shards {
        if s.shard.count != first.shard.count {
            bail!(
                "{} is shard {} but {} is shard {}: the shards of one job have one count",
                first.dir.display(),
                first.shard,
                s.dir.display(),
                s.shard
            );
        }
        if !s.fingerprint.same_content(&first.fingerprint) {
            bail!(
                "{} ran workload {} ({} bytes, xxh3 {}) but {} ran {} ({} bytes, xxh3 {}): shards of one job share one workload",
                first.dir.display(),
                first.fingerprint.path,
                first.fingerprint.bytes,
                first.fingerprint.xxh3,
                s.dir.display(),
                s.fingerprint.path,
                s.fingerprint.bytes,
                s.fingerprint.xxh3
            );
        }
        for key in SHARED_SETTINGS {
            if s.run_json.get(key) != first.run_json.get(key) {
                bail!(
                    "{} ran with {key} = {} but {} with {key} = {}: the shards of one job share their settings (run each with the same command line)",
                    first.dir.display(),
                    first.run_json.get(key).unwrap_or(&Value::Null),
                    s.dir.display(),
                    s.run_json.get(key).unwrap_or(&Value::Null)
                );
            }
        }
        if s.command != first.command {
            bail!(
                "{} is a `{}` folder and {} a `{}` one: merge shards of one command",
                first.dir.display(),
                first.command,
                s.dir.display(),
                s.command
            );
        }
    }
    let count = first.shard.count;
    let mut seen: Vec<Option<&Path>> = vec![None; count as usize];
    for s in shards {
        if let Some(earlier) = seen[s.shard.index as usize].replace(&s.dir) {
            bail!(
                "shard {} is given twice: {} and {}",
                s.shard,
                earlier.display(),
                s.dir.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| seen[*i as usize].is_none())
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shard{} {} of the job {} missing: give every shard's folder",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(())
}

/// One shard's records, read in file (completion) order, each moved onto the job's time axis.
struct ShardRecords {
    shard: Shard,
    shift_ms: f64,
    lines: Lines<BufReader<File>>,
    path: PathBuf,
    line: usize,
}

impl ShardRecords {
    /// The next record, shifted, with the shard's index added; an id outside the shard is an error
    /// (it would be in two shards' output, or none's).
    fn next(&mut self) -> anyhow::Result<Option<(f64, Value)>> {
        loop {
            let Some(line) = self.lines.next() else {
                return Ok(None);
            };
            self.line += 1;
            let line = line.with_context(|| format!("cannot read {}", self.path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut record: Value = serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a record", self.path.display(), self.line))?;
            let id = record["id"].as_str().unwrap_or_default();
            if !self.shard.owns(id) {
                bail!(
                    "{}:{}: id {id:?} is not shard {}'s: the folder holds another shard's lines (was it run with another --shard or workload?)",
                    self.path.display(),
                    self.line,
                    self.shard
                );
            }
            if let Some(map) = record.as_object_mut() {
                for field in OFFSETS {
                    if let Some(v) = map.get(field).and_then(Value::as_f64) {
                        map.insert(field.to_string(), json!(round3(v + self.shift_ms)));
                    }
                }
                map.insert("shard".into(), json!(self.shard.index));
            }
            let ended = match (record["sent_at"].as_f64(), record["latency_ms"].as_f64()) {
                (Some(sent), Some(latency)) => sent + latency,
                _ => record["scheduled_at"].as_f64().unwrap_or(0.0),
            };
            return Ok(Some((ended, record)));
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Orders heap entries by completion time (ms), then shard.
struct Due(f64, usize);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

pub fn merge(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut shards = args
        .dirs
        .iter()
        .map(|d| ShardFolder::read(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    check_job(&shards)?;
    shards.sort_by_key(|s| s.shard.index);
    let out = run_folder::create(Some(&args.out), Path::new("merged"), Path::new("results"))?;
    // A shard resumed after a crash may hold a line twice until its compaction: one each.
    for s in shards.iter().filter(|s| s.command == "run") {
        let records = s.dir.join(RECORDS_JSONL);
        crate::resume::compact(&records)
            .with_context(|| format!("cannot compact {}", records.display()))?;
    }
    let epoch = shards.iter().map(|s| s.epoch_unix_us).min().unwrap_or(0);
    let mut readers = Vec::new();
    for s in &shards {
        let path = s.dir.join(RECORDS_JSONL);
        let file = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        readers.push(ShardRecords {
            shard: s.shard,
            shift_ms: (s.epoch_unix_us - epoch) as f64 / 1000.0,
            lines: BufReader::new(file).lines(),
            path,
            line: 0,
        });
    }

    let slo = slo_of(&shards[0].summary);
    let mut stats = RunStats::with_slo(slo);
    let mut series = new_timeseries(&out, epoch)?;
    let mut jsonl = BufWriter::new(
        File::create(out.join(RECORDS_JSONL))
            .with_context(|| format!("cannot create {}", out.join(RECORDS_JSONL).display()))?,
    );
    let mut csv = CsvSink::create(&out.join(RECORDS_CSV))
        .with_context(|| format!("cannot create {}", out.join(RECORDS_CSV).display()))?;
    // Every shard's file is in completion order: a k-way merge keeps the job's, holding one
    // record per shard, whatever the job's size.
    let mut heads: Vec<Option<Value>> = Vec::new();
    let mut heap = BinaryHeap::new();
    for (i, reader) in readers.iter_mut().enumerate() {
        let head = reader.next()?;
        if let Some((ended, _)) = &head {
            heap.push(Reverse(Due(*ended, i)));
        }
        heads.push(head.map(|(_, record)| record));
    }
    let mut records = 0u64;
    while let Some(Reverse(Due(_, i))) = heap.pop() {
        let Some(value) = heads[i].take() else {
            continue;
        };
        serde_json::to_writer(&mut jsonl, &value)?;
        jsonl.write_all(b"\n")?;
        let record: Record = serde_json::from_value(value).with_context(|| {
            format!(
                "{}: a record llmvolley cannot read",
                readers[i].path.display()
            )
        })?;
        csv.write(&record)?;
        stats.add(&record);
        series.add(&record);
        records += 1;
        if let Some((ended, next)) = readers[i].next()? {
            heap.push(Reverse(Due(ended, i)));
            heads[i] = Some(next);
        }
    }
    jsonl.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    csv.flush()?;
    drop(csv);

    // Histograms: every shard's added, value for value. Gaps between chunks (ITL) exist only
    // there; the others equal what the merged records hold (the exactness test checks it).
    let histograms = out.join(HISTOGRAMS_DIR);
    for (name, histo) in Histo::NAMED {
        *histo.of_mut(&mut stats) = added(&shards, name)?.unwrap_or_default();
    }
    stats.save_histograms(&histograms)?;
    if let Some(lag) = added(&shards, "scheduler_lag")? {
        lag.save(&histograms.join("scheduler_lag.hdr"))?;
    }
    hgrm::write_all(&histograms)?;
    series
        .write_csv(&out.join(TIMESERIES_CSV))
        .with_context(|| format!("cannot write {}", out.join(TIMESERIES_CSV).display()))?;
    merge_server_metrics(&shards, epoch, &out)?;

    let unpriced: Vec<String> = {
        let mut models: Vec<String> = shards
            .iter()
            .flat_map(|s| {
                s.summary["cost"]["unpriced_models"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_string))
            })
            .collect();
        models.sort();
        models.dedup();
        models
    };
    let end = shards
        .iter()
        .map(|s| s.finished_unix_us.unwrap_or(s.epoch_unix_us))
        .max()
        .unwrap_or(epoch);
    let mut summary =
        Summary::from_stats(&stats, (end.saturating_sub(epoch)) as f64 / 1e6, unpriced);
    summary.epoch_unix_us = Some(epoch);
    summary.interrupted = shards.iter().any(|s| s.summary["interrupted"] == true);
    summary.warmup_requests = stats.warmup;
    summary.load = job_load(&shards);
    Exports::new()
        .to(Json, Destination::File(out.join(SUMMARY_JSON)))
        .write(&summary)?;
    let run_json = json!({
        "command": "merge",
        "merged_command": shards[0].command,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "epoch_unix_us": epoch,
        "workload_fingerprint": shards[0].fingerprint,
        "shards": shards.iter().map(|s| json!({
            "shard": s.shard,
            "folder": s.dir,
            "epoch_unix_us": s.epoch_unix_us,
        })).collect::<Vec<_>>(),
        "settings_of_shard_0": read_json(&shards[0].dir.join("run.json")).ok(),
    });
    run_folder::write_whole(
        &out.join("run.json"),
        &serde_json::to_vec_pretty(&run_json)?,
    )?;
    crate::export::print_line(&format!("run folder   {}", out.display()))?;
    crate::export::print_line(&format!(
        "merged       {records} records of {} shards",
        shards.len()
    ))?;
    super::target::print_summary(&summary, &Default::default())?;
    Ok(ExitCode::SUCCESS)
}

/// Every shard's `server_metrics.csv` (`--scrape`) on the job's epoch, a `shard` column first:
/// shards scrape the same servers, so their rows are kept side by side, never added. Each shard's
/// `server` summary stays in its own folder.
///
/// Errors: a shard's file cannot be read, or the merged one written.
fn merge_server_metrics(shards: &[ShardFolder], epoch: u64, out: &Path) -> anyhow::Result<()> {
    use crate::scrape::SERVER_METRICS_CSV;
    let mut header: Option<Vec<String>> = None;
    let mut rows: Vec<(f64, u32, Vec<String>)> = Vec::new();
    for s in shards {
        let path = s.dir.join(SERVER_METRICS_CSV);
        if !path.is_file() {
            continue;
        }
        let mut reader = csv::Reader::from_path(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let names: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
        let at = |name: &str| names.iter().position(|n| n == name);
        let (Some(second), Some(from), Some(to)) = (at("second"), at("from_s"), at("t_s")) else {
            anyhow::bail!("{}: no second, from_s and t_s columns", path.display());
        };
        if header.as_ref().is_some_and(|h| *h != names) {
            anyhow::bail!(
                "{}: its columns differ from another shard's (another llmvolley version?)",
                path.display()
            );
        }
        header.get_or_insert_with(|| names.clone());
        let shift_s = (s.epoch_unix_us - epoch) as f64 / 1e6;
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{}:{}", path.display(), i + 2))?;
            let mut cells: Vec<String> = row.iter().map(str::to_string).collect();
            let shifted = |cell: &str| {
                cell.parse::<f64>()
                    .map(|v| v + shift_s)
                    .with_context(|| format!("{}:{}: {cell:?} is no time", path.display(), i + 2))
            };
            let (start, end) = (shifted(&cells[from])?, shifted(&cells[to])?);
            cells[second] = format!("{}", start.round());
            cells[from] = format!("{start:.3}");
            cells[to] = format!("{end:.3}");
            rows.push((start, s.shard.index, cells));
        }
    }
    let Some(header) = header else {
        return Ok(());
    };
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let path = out.join(SERVER_METRICS_CSV);
    let mut writer = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writer.write_record(std::iter::once("shard").chain(header.iter().map(String::as_str)))?;
    for (_, shard, cells) in rows {
        writer.write_record(std::iter::once(shard.to_string()).chain(cells))?;
    }
    writer.flush()?;
    Ok(())
}

/// `histograms/<name>.hdr` of every shard added value for value; None when no shard has one.
fn added(shards: &[ShardFolder], name: &str) -> anyhow::Result<Option<ScaledHistogram>> {
    let mut sum: Option<ScaledHistogram> = None;
    for s in shards {
        let path = s.dir.join(HISTOGRAMS_DIR).join(format!("{name}.hdr"));
        if let Some(h) = hgrm::read_hdr(&path)? {
            sum.get_or_insert_default()
                .merge(&ScaledHistogram::from(h))
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
    }
    Ok(sum)
}

/// The job's load: the shards' rates, slots, sends and drops added up; the client's CPU is the sum
/// of the shards' (each on its own machine), with every shard's warnings.
fn job_load(shards: &[ShardFolder]) -> Option<crate::stats::LoadSummary> {
    let loads: Vec<&Value> = shards
        .iter()
        .map(|s| &s.summary["load"])
        .filter(|l| l.is_object())
        .collect();
    if loads.len() != shards.len() {
        return None;
    }
    let mut job = loads[0].clone();
    let sum = |path: &[&str]| -> Value {
        let values: Vec<f64> = loads
            .iter()
            .filter_map(|l| {
                path.iter()
                    .try_fold(*l, |v, k| v.get(*k))
                    .and_then(Value::as_f64)
            })
            .collect();
        if values.len() == loads.len() {
            json!(values.iter().sum::<f64>())
        } else {
            Value::Null
        }
    };
    job["rate_per_s"] = sum(&["rate_per_s"]);
    job["achieved_rate_per_s"] = sum(&["achieved_rate_per_s"]);
    job["max_in_flight"] = json!(sum(&["max_in_flight"]).as_f64().unwrap_or(0.0) as u64);
    job["sent"] = json!(sum(&["sent"]).as_f64().unwrap_or(0.0) as u64);
    job["dropped"] = json!(sum(&["dropped"]).as_f64().unwrap_or(0.0) as u64);
    job["scheduler_lag_ms"] = Value::Null;
    job["client"]["cpu_cores_used"] = sum(&["client", "cpu_cores_used"]);
    job["client"]["cores_available"] =
        json!(sum(&["client", "cores_available"]).as_f64().unwrap_or(0.0) as u64);
    job["client"]["warnings"] = json!(
        loads
            .iter()
            .flat_map(|l| l["client"]["warnings"]
                .as_array()
                .cloned()
                .unwrap_or_default())
            .collect::<Vec<_>>()
    );
    serde_json::from_value(job).ok()
}

/// The SLO the shards judged goodput by (from a shard's summary), so the merge judges it too.
fn slo_of(summary: &Value) -> Option<Slo> {
    let slo = summary.get("slo").filter(|s| !s.is_null())?;
    let ms = |key: &str| {
        slo[key]
            .as_f64()
            .map(|v| Duration::from_secs_f64(v / 1000.0))
    };
    Some(Slo {
        ttft: ms("ttft_ms"),
        tpot: ms("tpot_ms"),
        e2e: ms("e2e_ms"),
    })
}
