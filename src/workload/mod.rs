//! Workload input: streams a JSONL file line by line into requests to send or invalid lines to record.

pub mod generate;
mod line;
mod turns;

pub use line::{
    DefaultRoute, LineError, ParsedLine, Route, parse_line, request_model, supported_urls,
    with_stream, without_stream_options,
};
pub use turns::ConversationSpec;

use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// One request ready to send: the body bytes exactly as the workload gave them.
#[derive(Debug, Clone)]
pub struct Request {
    pub line: u64,
    pub id: String,
    pub route: Route,
    pub body: Bytes,
    /// `model` named by a bare request body (free from the line's one parse); None for Batch lines.
    pub model: Option<String>,
    /// The answer cap a bare body names (`max_output_tokens`, `max_completion_tokens`, `max_tokens`).
    pub max_output_tokens: Option<u32>,
    /// A Batch line's `metadata` (JSON text), copied into its record.
    pub metadata: Option<Bytes>,
    /// A Batch line's `timestamp`: when a trace replay sends it, from the trace start.
    pub timestamp: Option<std::time::Duration>,
    /// A conversation line's following user turns and tool results (shared, not copied, when a
    /// bench cycles it).
    pub conversation: Option<std::sync::Arc<ConversationSpec>>,
    /// `--resume`: the recorded ok turns of this conversation, which it goes on after.
    pub prior_turns: Option<std::sync::Arc<[crate::record::Record]>>,
    /// `--stream` added `stream_options.include_usage` to this Chat body (the user's body did not
    /// ask for it): a server that refuses the field gets the body without it.
    pub usage_option_added: bool,
}

/// A line that cannot be sent; it still becomes exactly one record. `message` says why, without the line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    pub line: u64,
    pub id: String,
    pub message: String,
    /// Sending it would be money for nothing: the run is refused before anything is sent (see
    /// `LineError::refuses_run`).
    pub refuses_run: bool,
}

#[derive(Debug, Clone)]
pub enum WorkItem {
    Send(Request),
    Invalid(InvalidLine),
}

impl WorkItem {
    /// The line's id: its `custom_id`, else its line number.
    pub fn id(&self) -> &str {
        match self {
            WorkItem::Send(r) => &r.id,
            WorkItem::Invalid(l) => &l.id,
        }
    }

    pub fn line(&self) -> u64 {
        match self {
            WorkItem::Send(r) => r.line,
            WorkItem::Invalid(l) => l.line,
        }
    }
}

/// Streams a workload: one `WorkItem` per non-blank line, never holding more than one line.
pub struct WorkloadReader<R> {
    source: R,
    default_route: DefaultRoute,
    /// `--stream`: every body is sent with `"stream": true`.
    force_stream: bool,
    line_no: u64,
    buf: Vec<u8>,
    /// 128-bit hashes of the custom_ids seen so far, with the line that first used each: bounded
    /// memory for millions of ids, and a collision chance far below any hardware error rate.
    seen_custom_ids: HashMap<u128, u64>,
}

impl WorkloadReader<BufReader<File>> {
    /// Opens a workload file; fails (before anything is sent) when it cannot be read.
    pub fn open(path: &Path, default_route: DefaultRoute) -> io::Result<Self> {
        let file = File::open(path)?;
        if file.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        Ok(Self::new(
            BufReader::with_capacity(256 * 1024, file),
            default_route,
        ))
    }
}

impl<R: BufRead> WorkloadReader<R> {
    pub fn new(source: R, default_route: DefaultRoute) -> Self {
        WorkloadReader {
            source,
            default_route,
            force_stream: false,
            line_no: 0,
            buf: Vec::with_capacity(4096),
            seen_custom_ids: HashMap::new(),
        }
    }

    /// Sends every body with `"stream": true` (Chat bodies also ask for the usage chunk).
    pub fn force_stream(mut self, yes: bool) -> Self {
        self.force_stream = yes;
        self
    }

    fn item_from_line(&mut self) -> Option<WorkItem> {
        let line_no = self.line_no;
        let mut bytes = self.buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let invalid = |message: String| {
            Some(WorkItem::Invalid(InvalidLine {
                line: line_no,
                id: line_no.to_string(),
                message,
                refuses_run: false,
            }))
        };
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                return invalid(format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1));
            }
        };
        let parsed = match parse_line(text, &self.default_route) {
            Ok(parsed) => parsed,
            Err(error) => {
                // A readable custom_id names the record, unless an earlier line holds it.
                let id = error
                    .custom_id
                    .filter(|id| {
                        let key = xxhash_rust::xxh3::xxh3_128(id.as_bytes());
                        !self.seen_custom_ids.contains_key(&key)
                            && self.seen_custom_ids.insert(key, line_no).is_none()
                    })
                    .unwrap_or_else(|| line_no.to_string());
                return Some(WorkItem::Invalid(InvalidLine {
                    line: line_no,
                    id,
                    message: error.message,
                    refuses_run: error.refuses_run,
                }));
            }
        };
        let id = match parsed.custom_id {
            Some(custom_id) => {
                let key = xxhash_rust::xxh3::xxh3_128(custom_id.as_bytes());
                if let Some(first) = self.seen_custom_ids.get(&key) {
                    return invalid(format!(
                        "duplicate custom_id {custom_id:?} (first used on line {first})"
                    ));
                }
                self.seen_custom_ids.insert(key, line_no);
                custom_id
            }
            None => line_no.to_string(),
        };
        let conversation = match (parsed.turns, parsed.tool_outputs) {
            (None, None) => None,
            _ if !matches!(parsed.route, Route::Responses | Route::Chat) => {
                return invalid(format!(
                    "\"turns\" and \"tool_outputs\" need a history to carry: /v1/responses or /v1/chat/completions, not {}",
                    parsed.route.path()
                ));
            }
            (turns, outputs) => match ConversationSpec::parse(turns, outputs) {
                Ok(spec) => Some(std::sync::Arc::new(spec)),
                Err(message) => return invalid(message),
            },
        };
        // Embeddings and moderations have no stream: `--stream` leaves them as they are.
        let (body, usage_option_added) = if self.force_stream && parsed.route.generates() {
            match with_stream(parsed.body, &parsed.route) {
                Ok((body, added)) => (Bytes::from(body), added),
                Err(message) => return invalid(message),
            }
        } else {
            (Bytes::copy_from_slice(parsed.body.as_bytes()), false)
        };
        Some(WorkItem::Send(Request {
            line: line_no,
            id,
            route: parsed.route,
            body,
            model: parsed.model,
            max_output_tokens: parsed.max_output_tokens,
            metadata: parsed
                .metadata
                .map(|m| Bytes::copy_from_slice(m.as_bytes())),
            timestamp: parsed.timestamp,
            conversation,
            prior_turns: None,
            usage_option_added,
        }))
    }
}

impl<R: BufRead> Iterator for WorkloadReader<R> {
    type Item = io::Result<WorkItem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.source.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    let message = format!("cannot read past line {}: {e}", self.line_no);
                    return Some(Err(io::Error::new(e.kind(), message)));
                }
            }
            self.line_no += 1;
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if let Some(item) = self.item_from_line() {
                return Some(Ok(item));
            }
        }
    }
}

/// Counts the non-blank lines of a workload, for progress totals, without parsing them.
/// What identifies a workload file for `--resume`: its size and the XXH3-64 hash of its bytes
/// (fast enough to read a multi-gigabyte file at disk speed; not a security check). The same pass
/// counts its non-blank lines, the progress bar's total.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    pub path: String,
    pub bytes: u64,
    pub xxh3: String,
    #[serde(default)]
    pub lines: u64,
}

impl Fingerprint {
    pub fn of(path: &Path) -> io::Result<Fingerprint> {
        let mut file = File::open(path)?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        let (mut lines, mut line_has_content) = (0u64, false);
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
            for &b in &buf[..n] {
                if b == b'\n' {
                    lines += u64::from(line_has_content);
                    line_has_content = false;
                } else if !b.is_ascii_whitespace() {
                    line_has_content = true;
                }
            }
        }
        Ok(Fingerprint {
            path: path.display().to_string(),
            bytes,
            xxh3: format!("{:016x}", hasher.digest()),
            lines: lines + u64::from(line_has_content),
        })
    }

    /// The same bytes, wherever the file now lives.
    pub fn same_content(&self, other: &Fingerprint) -> bool {
        self.bytes == other.bytes && self.xxh3 == other.xxh3
    }
}

/// Reads the whole workload once and returns the first bad line as `path:line: message`.
/// Lines `check_format` reads before anything is sent.
const FORMAT_SAMPLE: usize = 100;

/// Refuses, before anything is sent, a file that is not a JSONL workload — more than half of its
/// first 100 non-blank lines cannot be sent (a JSON array, a pretty-printed JSON document, a CSV...)
/// — or that is not a regular file (it is read more than once). The error names the file and the first bad line, says what the
/// file looks like and how to convert it. A workload with a few bad lines passes (each becomes an
/// `invalid_input` record).
pub fn check_format(path: &Path, default_route: DefaultRoute) -> Result<(), String> {
    let shown = path.display();
    if path.as_os_str() == "-" {
        return Err(
            "workload - (standard input) is a pipe, not a regular file: llmvolley reads it more than once (format check, progress total, resume fingerprint); write it to a file first".to_string(),
        );
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read workload {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "workload {shown} is not a regular file (a pipe or a device?): llmvolley reads it more than once (format check, progress total, resume fingerprint); write it to a file first"
        ));
    }
    let reader = WorkloadReader::open(path, default_route)
        .map_err(|e| format!("cannot read workload {shown}: {e}"))?;
    let (mut seen, mut bad) = (0usize, 0usize);
    let mut first_bad: Option<InvalidLine> = None;
    for item in reader.take(FORMAT_SAMPLE) {
        match item.map_err(|e| format!("{shown}: read error: {e}"))? {
            WorkItem::Send(_) => seen += 1,
            WorkItem::Invalid(invalid) if invalid.refuses_run => {
                return Err(format!("{shown}:{}: {}", invalid.line, invalid.message));
            }
            WorkItem::Invalid(invalid) => {
                seen += 1;
                bad += 1;
                first_bad.get_or_insert(invalid);
            }
        }
    }
    if seen == 0 {
        return Err(format!(
            "{shown} has no requests: it is empty or holds only blank lines (one JSON request body or OpenAI Batch line per line)"
        ));
    }
    let Some(first_bad) = first_bad else {
        return Ok(());
    };
    // The file's shape shows in its first line, when that line is one of the bad ones.
    let shape = match first_line(path) {
        Some((number, line)) if number == first_bad.line => Shape::of(&line),
        _ => Shape::Other,
    };
    // A few bad lines become `invalid_input` records; the shape only says what the file looks like.
    if bad * 2 <= seen {
        return Ok(());
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workload");
    let how = match shape {
        Shape::Array => format!(
            "it looks like a JSON array; convert it with: jq -c '.[]' {shown} > {stem}.jsonl"
        ),
        Shape::Pretty => format!(
            "it looks like pretty-printed JSON; convert it with: jq -c . {shown} > {stem}.jsonl"
        ),
        Shape::Csv => format!(
            "it looks like CSV; a column of prompts becomes a workload with e.g.: python3 -c 'import csv,json,sys; [print(json.dumps({{\"model\": \"gpt-4.1-mini\", \"input\": r[\"prompt\"]}})) for r in csv.DictReader(sys.stdin)]' < {shown} > {stem}.jsonl"
        ),
        Shape::Other => format!("{bad} of its first {seen} lines cannot be sent"),
    };
    Err(format!(
        "{shown}:{}: {}\n{shown} is not a JSONL workload (one JSON object per line: a request body or an OpenAI Batch line): {how}",
        first_bad.line, first_bad.message
    ))
}

/// What a file that is not JSONL looks like, from its first non-blank line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Array,
    /// A JSON document spread over lines (`{` alone, or an object not closed on its line).
    Pretty,
    Csv,
    Other,
}

impl Shape {
    fn of(line: &str) -> Shape {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.starts_with('[') {
            Shape::Array
        } else if line.starts_with('{')
            && serde_json::from_str::<serde::de::IgnoredAny>(line).is_err()
        {
            Shape::Pretty
        } else if !line.starts_with('{') && line.contains(',') {
            Shape::Csv
        } else {
            Shape::Other
        }
    }
}

/// The first non-blank line within the first MiB, and its 1-based number.
fn first_line(path: &Path) -> Option<(u64, String)> {
    let mut reader = BufReader::new(File::open(path).ok()?.take(1 << 20));
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        number += 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Some((number, String::from_utf8_lossy(&line).into_owned()));
        }
    }
}

pub fn validate_strict(path: &Path, default_route: DefaultRoute) -> Result<u64, String> {
    let reader = WorkloadReader::open(path, default_route)
        .map_err(|e| format!("{}: cannot read workload: {e}", path.display()))?;
    let mut lines = 0;
    for item in reader {
        match item {
            Ok(WorkItem::Send(_)) => lines += 1,
            Ok(WorkItem::Invalid(bad)) => {
                return Err(format!("{}:{}: {}", path.display(), bad.line, bad.message));
            }
            Err(e) => return Err(format!("{}: read error: {e}", path.display())),
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &[u8]) -> Vec<WorkItem> {
        WorkloadReader::new(text, DefaultRoute::ByShape)
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn blank_lines_are_skipped_and_line_numbers_kept() {
        let got = items(b"{\"model\":\"m\"}\n\n   \n{\"model\":\"n\"}\n");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].line(), 4);
        let WorkItem::Send(r) = &got[1] else { panic!() };
        assert_eq!(r.id, "4");
        assert_eq!(r.model.as_deref(), Some("n"));
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let got = items(b"\xEF\xBB\xBF{\"model\":\"m\"}\r\n{\"model\":\"n\"}\r\n");
        assert_eq!(got.len(), 2);
        for item in got {
            let WorkItem::Send(r) = item else {
                panic!("{item:?}")
            };
            assert!(r.body.starts_with(b"{") && r.body.ends_with(b"}"));
        }
    }

    #[test]
    fn invalid_utf8_is_an_invalid_line_naming_it() {
        let got = items(b"{\"model\":\"m\"}\n{\"model\":\"\xff\"}\n");
        let WorkItem::Invalid(bad) = &got[1] else {
            panic!()
        };
        assert_eq!(bad.line, 2);
        assert!(
            bad.message.starts_with("invalid UTF-8 at byte 11"),
            "{}",
            bad.message
        );
    }

    #[test]
    fn duplicate_custom_id_names_the_first_line() {
        let line =
            br#"{"custom_id":"a","method":"POST","url":"/v1/responses","body":{"model":"m"}}"#;
        let mut text = line.to_vec();
        text.push(b'\n');
        text.extend_from_slice(line);
        let got = items(&text);
        assert!(matches!(got[0], WorkItem::Send(_)));
        let WorkItem::Invalid(bad) = &got[1] else {
            panic!()
        };
        assert_eq!(bad.id, "2");
        assert!(
            bad.message.contains("first used on line 1"),
            "{}",
            bad.message
        );
    }

    #[test]
    fn last_line_without_newline_is_read() {
        assert_eq!(items(b"{\"a\":1}\n{\"b\":2}").len(), 2);
    }
}
