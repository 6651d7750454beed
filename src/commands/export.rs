//! `llmvolley export DIR`: a run folder's records in another order or format.

use crate::batch_output::{self, ERRORS_JSONL, OUTPUT_JSONL};
use crate::cli::ExportArgs;
use crate::record::Record;
use crate::run_folder::{HISTOGRAMS_DIR, RECORDS_JSONL};
use crate::sink::ParquetFile;

/// The typed copy of the records `export --parquet` writes.
pub const RECORDS_PARQUET: &str = "records.parquet";
use anyhow::{Context, bail};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let records = args.dir.join(RECORDS_JSONL);
    if !records.is_file() {
        bail!(
            "{} has no {RECORDS_JSONL}: is it a run folder?",
            args.dir.display()
        );
    }
    if !(args.ordered || args.batch || args.parquet || args.hgrm) {
        bail!(
            "say what to export: --ordered (records in workload order), --batch (OpenAI Batch output files), --parquet (records.parquet) or --hgrm (percentile text of each histogram)"
        );
    }
    if args.parquet {
        let path = args.dir.join(RECORDS_PARQUET);
        let rows = parquet(&records, &path)?;
        eprintln!("{}: {rows} records", path.display());
    }
    if args.hgrm {
        let histograms = args.dir.join(HISTOGRAMS_DIR);
        let written = crate::report::hgrm::write_all(&histograms)?;
        eprintln!("{}: {written} .hgrm files", histograms.display());
    }
    if args.batch {
        // One line per custom_id: a resumed run stopped before its compaction may hold two records.
        crate::resume::compact(&records)
            .with_context(|| format!("cannot compact {}", records.display()))?;
        let saved = batch_output::bodies_saved(&records)
            .with_context(|| format!("cannot read {}", records.display()))?;
        if saved == Some(false) {
            anyhow::bail!(
                "{} holds no answer bodies (the run had no --save-responses), so every line of {OUTPUT_JSONL} would say \"body\": null: run it again with --save-responses (or --batch-output, which saves them and writes these files)",
                records.display()
            );
        }
        let written = batch_output::write(&args.dir, &records)
            .with_context(|| format!("cannot write the Batch output in {}", args.dir.display()))?;
        eprintln!(
            "{}: {} answers, {}: {} errors{}",
            args.dir.join(OUTPUT_JSONL).display(),
            written.output,
            args.dir.join(ERRORS_JSONL).display(),
            written.errors,
            not_sent_note(written.not_sent)
        );
    }
    if args.ordered {
        let stdout = std::io::stdout();
        let result = match &args.out {
            Some(path) => {
                let file = File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                ordered(&records, BufWriter::new(file))
            }
            None => ordered(&records, BufWriter::new(stdout.lock())),
        };
        match result {
            // `llmvolley export DIR --ordered | head`: the reader went away.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.with_context(|| format!("cannot export {}", records.display()))?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The records of `records.jsonl`, in its order, as `records.parquet`; returns how many.
fn parquet(records: &Path, out: &Path) -> anyhow::Result<u64> {
    let mut file = ParquetFile::create(out)?;
    let reader = BufReader::new(
        File::open(records).with_context(|| format!("cannot read {}", records.display()))?,
    );
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", records.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a record", records.display(), i + 1))?;
        file.write(&record)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    file.finish()
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Copies the records sorted by workload line, the last record of a line when it has two. Only an
/// index of (line, offset, length) is held, 24 bytes a record: each record is read again from the
/// file in the new order.
fn ordered(records: &Path, mut out: impl Write) -> std::io::Result<()> {
    #[derive(serde::Deserialize)]
    struct Line {
        line: u64,
    }
    let mut reader = BufReader::new(File::open(records)?);
    let mut index: Vec<(u64, u64, u64)> = Vec::new();
    let mut text = Vec::new();
    let mut offset = 0u64;
    loop {
        text.clear();
        let n = reader.read_until(b'\n', &mut text)?;
        if n == 0 {
            break;
        }
        let record = text.strip_suffix(b"\n").unwrap_or(&text);
        if !record.iter().all(u8::is_ascii_whitespace) {
            let line: Line = serde_json::from_slice(record)
                .map_err(|e| std::io::Error::other(format!("record at byte {offset}: {e}")))?;
            index.push((line.line, offset, record.len() as u64));
        }
        offset += n as u64;
    }
    // Stable: a line recorded twice (a resumed run stopped before compaction) keeps its last record.
    index.sort_by_key(|(line, _, _)| *line);
    index.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            *earlier = *later;
            true
        } else {
            false
        }
    });
    let mut file = File::open(records)?;
    for (_, at, len) in index {
        text.resize(len as usize, 0);
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut text)?;
        out.write_all(&text)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// What the Batch files leave out, when anything.
pub fn not_sent_note(not_sent: u64) -> String {
    if not_sent == 0 {
        String::new()
    } else {
        format!("; {not_sent} lines not sent are in neither (--resume sends them)")
    }
}
