//! OpenAI Batch output files from a run folder's records: `output.jsonl` (answers) and
//! `errors.jsonl` (requests the server, the network or the input failed), one line per
//! `custom_id`, so scripts written for the Batch API read llmvolley's results unchanged. Lines not
//! sent yet are in neither: they are not failures, and `--resume` sends them.

use crate::record::RecordError;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

pub const OUTPUT_JSONL: &str = "output.jsonl";
pub const ERRORS_JSONL: &str = "errors.jsonl";

/// What a Batch output line needs from a record (the rest of it is not read).
#[derive(Deserialize)]
struct Read<'a> {
    id: String,
    status: &'a str,
    http_status: Option<u16>,
    request_id: Option<String>,
    error: Option<RecordError>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
}

/// One line of a Batch output or error file (the OpenAI Batch API's "output file" format).
#[derive(Serialize)]
struct Line<'a> {
    /// `batch_req_` and the record's position: stable for a folder.
    id: String,
    custom_id: &'a str,
    response: Option<Response<'a>>,
    error: Option<BatchError<'a>>,
}

/// The Batch API's error object: the record's error kind as its code.
#[derive(Serialize)]
struct BatchError<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Response<'a> {
    status_code: u16,
    request_id: Option<&'a str>,
    /// The body as it arrived (a streamed answer's events are kept as their text).
    body: Option<&'a RawValue>,
}

/// Counts written to each file, and the records in neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub output: u64,
    pub errors: u64,
    /// Lines not sent (a limit, an interrupt, the budget): not failures, so in neither file;
    /// `--resume` sends them.
    pub not_sent: u64,
}

/// Whether the ok records carry their answers' bodies (`--save-responses`): the first ok record
/// decides (a run saves all or none). None when no record is ok.
pub fn bodies_saved(records: &Path) -> io::Result<Option<bool>> {
    for text in BufReader::new(File::open(records)?).lines() {
        let text = text?;
        if let Ok(record) = serde_json::from_str::<Read>(&text)
            && record.status == "ok"
        {
            return Ok(Some(record.response.is_some()));
        }
    }
    Ok(None)
}

/// Writes `output.jsonl` (records `ok`) and `errors.jsonl` (every other record) in `dir` from its
/// `records.jsonl` (compacted: one record per id). Each file is written beside its final name and
/// renamed over it, so a reader never sees half a file.
pub fn write(dir: &Path, records: &Path) -> io::Result<Written> {
    let reader = BufReader::new(File::open(records)?);
    let mut output = Staged::create(&dir.join(OUTPUT_JSONL))?;
    let mut errors = Staged::create(&dir.join(ERRORS_JSONL))?;
    let mut written = Written {
        output: 0,
        errors: 0,
        not_sent: 0,
    };
    for (n, text) in reader.lines().enumerate() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let record: Read = serde_json::from_str(&text)
            .map_err(|e| io::Error::other(format!("{}:{}: {e}", records.display(), n + 1)))?;
        if matches!(record.status, "not_sent" | "skipped_budget") {
            written.not_sent += 1;
            continue;
        }
        let ok = record.status == "ok";
        let line = Line {
            id: format!("batch_req_{:08}", n + 1),
            custom_id: &record.id,
            response: record.http_status.map(|status_code| Response {
                status_code,
                request_id: record.request_id.as_deref(),
                body: record.response,
            }),
            error: record.error.as_ref().filter(|_| !ok).map(|e| BatchError {
                code: &e.kind,
                message: &e.message,
            }),
        };
        let out = if ok { &mut output } else { &mut errors };
        serde_json::to_writer(&mut out.file, &line)?;
        out.file.write_all(b"\n")?;
        if ok {
            written.output += 1;
        } else {
            written.errors += 1;
        }
    }
    output.commit()?;
    errors.commit()?;
    Ok(written)
}

/// A file written under a temporary name and renamed into place once whole.
struct Staged {
    file: BufWriter<File>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Staged {
    fn create(path: &Path) -> io::Result<Staged> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        Ok(Staged {
            file: BufWriter::new(File::create(&tmp)?),
            tmp,
            path: path.to_path_buf(),
        })
    }

    fn commit(self) -> io::Result<()> {
        self.file
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}
