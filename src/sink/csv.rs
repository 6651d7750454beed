//! `records.csv`: the same rows as `records.jsonl`, flattened (errors split, tool calls as JSON text).

use super::RecordSink;
use crate::record::{Record, Status, TokenSource};
use serde::Serialize;
use serde_json::value::RawValue;
use std::fs::File;
use std::io;
use std::path::Path;

pub struct CsvSink {
    out: csv::Writer<File>,
    tool_calls_json: String,
    notes: String,
}

/// A flat view of a `Record`, borrowed, so writing a row copies nothing but the tool-call text.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    line: u64,
    seq: Option<u64>,
    warmup: bool,
    attempts: u32,
    attempt_errors: String,
    reconnects: u32,
    status: Status,
    http_status: Option<u16>,
    error_kind: Option<&'a str>,
    error_message: Option<&'a str>,
    scheduled_at: Plain<3>,
    sent_at: Plain<3>,
    first_sent_at: Plain<3>,
    queue_ms: Plain<3>,
    latency_ms: Plain<3>,
    latency_from_schedule_ms: Plain<3>,
    retry_wait_ms: Plain<3>,
    ttfb_ms: Plain<3>,
    ttft_ms: Plain<3>,
    ttfo_ms: Plain<3>,
    tpot_ms: Plain<3>,
    chunks: Option<u32>,
    model: Option<&'a str>,
    response_id: Option<&'a str>,
    request_id: Option<&'a str>,
    finish: Option<&'a str>,
    incomplete_reason: Option<&'a str>,
    input_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    output_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    total_tokens: Option<u64>,
    partial_output_tokens: Option<u64>,
    token_source: Option<TokenSource>,
    tokenizer: Option<&'a str>,
    service_tier: Option<&'a str>,
    cost_usd: Plain<9>,
    output_text: Option<&'a str>,
    tool_calls: &'a str,
    /// `notes` joined with "; ".
    notes: &'a str,
    /// A Batch line's `metadata` as JSON text.
    metadata: Option<&'a str>,
}

/// A number written in plain decimal with at most `PLACES` decimals (milliseconds to the µs, dollars
/// to the nano-dollar), trailing zeros dropped: never `8.85e-6`, which spreadsheets and type-guessing
/// readers take for text.
struct Plain<const PLACES: usize>(Option<f64>);

impl<const PLACES: usize> Serialize for Plain<PLACES> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use std::io::Write;
        let Some(value) = self.0.filter(|v| v.is_finite()) else {
            return serializer.serialize_none();
        };
        // 20 integer digits and the decimals fit; no allocation per field.
        let mut buf = [0u8; 48];
        let mut cursor = io::Cursor::new(&mut buf[..]);
        if write!(cursor, "{value:.PLACES$}").is_err() {
            return serializer.serialize_f64(value);
        }
        let len = cursor.position() as usize;
        let text = std::str::from_utf8(&buf[..len]).unwrap_or("");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            text
        };
        serializer.serialize_str(if text == "-0" { "0" } else { text })
    }
}

impl CsvSink {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::options().create_new(true).write(true).open(path)?;
        Ok(CsvSink {
            out: csv::WriterBuilder::new()
                .buffer_capacity(64 * 1024)
                .from_writer(file),
            tool_calls_json: String::new(),
            notes: String::new(),
        })
    }
}

impl RecordSink for CsvSink {
    fn write(&mut self, r: &Record) -> io::Result<()> {
        self.tool_calls_json.clear();
        if !r.tool_calls.is_empty() {
            // Writing into a String cannot fail.
            self.tool_calls_json = serde_json::to_string(&r.tool_calls)?;
        }
        self.notes.clear();
        for (i, note) in r.notes.iter().enumerate() {
            if i > 0 {
                self.notes.push_str("; ");
            }
            self.notes.push_str(note);
        }
        let row = Row {
            id: &r.id,
            line: r.line,
            seq: r.seq,
            warmup: r.warmup,
            attempts: r.attempts,
            attempt_errors: r.attempt_errors.join(";"),
            reconnects: r.reconnects,
            status: r.status,
            http_status: r.http_status,
            error_kind: r.error.as_ref().map(|e| e.kind.as_str()),
            error_message: r.error.as_ref().map(|e| e.message.as_str()),
            scheduled_at: Plain(r.scheduled_at),
            sent_at: Plain(r.sent_at),
            first_sent_at: Plain(r.first_sent_at),
            queue_ms: Plain(r.queue_ms),
            latency_ms: Plain(r.latency_ms),
            latency_from_schedule_ms: Plain(r.latency_from_schedule_ms),
            retry_wait_ms: Plain(r.retry_wait_ms),
            ttfb_ms: Plain(r.ttfb_ms),
            ttft_ms: Plain(r.ttft_ms),
            ttfo_ms: Plain(r.ttfo_ms),
            tpot_ms: Plain(r.tpot_ms),
            chunks: r.chunks,
            model: r.model.as_deref(),
            response_id: r.response_id.as_deref(),
            request_id: r.request_id.as_deref(),
            finish: r.finish.as_deref(),
            incomplete_reason: r.incomplete_reason.as_deref(),
            input_tokens: r.input_tokens,
            cached_tokens: r.cached_tokens,
            cache_write_tokens: r.cache_write_tokens,
            output_tokens: r.output_tokens,
            reasoning_tokens: r.reasoning_tokens,
            total_tokens: r.total_tokens,
            partial_output_tokens: r.partial_output_tokens,
            token_source: r.token_source,
            tokenizer: r.tokenizer.as_deref(),
            service_tier: r.service_tier.as_deref(),
            cost_usd: Plain(r.cost_usd),
            output_text: r.output_text.as_deref(),
            tool_calls: &self.tool_calls_json,
            notes: &self.notes,
            metadata: r.metadata.as_deref().map(RawValue::get),
        };
        self.out.serialize(row).map_err(io::Error::other)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
