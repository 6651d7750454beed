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
    tool_call_problems_json: String,
    output_problems_json: String,
    flagged: String,
    notes: String,
}

/// A flat view of a `Record`, borrowed, so writing a row copies nothing but the tool-call text.
#[derive(Serialize)]
struct Row<'a> {
    id: Cell<'a>,
    line: u64,
    seq: Option<u64>,
    warmup: bool,
    attempts: u32,
    attempt_errors: String,
    reconnects: u32,
    status: Status,
    http_status: Option<u16>,
    error_kind: Option<Cell<'a>>,
    error_message: Option<Cell<'a>>,
    scheduled_at: Plain<3>,
    sent_at: Plain<3>,
    first_sent_at: Plain<3>,
    queue_ms: Plain<3>,
    latency_ms: Plain<3>,
    latency_from_schedule_ms: Plain<3>,
    retry_wait_ms: Plain<3>,
    connect_ms: Plain<3>,
    ttfb_ms: Plain<3>,
    ttft_ms: Plain<3>,
    ttfo_ms: Plain<3>,
    tpot_ms: Plain<3>,
    chunks: Option<u32>,
    model: Option<Cell<'a>>,
    response_id: Option<Cell<'a>>,
    request_id: Option<Cell<'a>>,
    finish: Option<Cell<'a>>,
    incomplete_reason: Option<Cell<'a>>,
    input_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    output_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    total_tokens: Option<u64>,
    partial_output_tokens: Option<u64>,
    token_source: Option<TokenSource>,
    tokenizer: Option<Cell<'a>>,
    service_tier: Option<Cell<'a>>,
    cost_usd: Plain<9>,
    output_text: Option<Cell<'a>>,
    tool_calls: Cell<'a>,
    tool_call_problems: Cell<'a>,
    items: Option<u64>,
    dimensions: Option<u64>,
    /// `flagged_categories` joined with ";".
    flagged_categories: Cell<'a>,
    structured_output: Option<Cell<'a>>,
    /// `output_problems` as JSON (empty when valid or unchecked).
    output_problems: Cell<'a>,
    conversation_id: Option<Cell<'a>>,
    turn: Option<u32>,
    conversation_end: bool,
    /// `notes` joined with "; ".
    notes: Cell<'a>,
    /// A Batch line's `metadata` as JSON text.
    metadata: Option<Cell<'a>>,
}

/// Text a spreadsheet must not run as a formula (`inert::csv_cell`): written with a leading `'`
/// when it starts with `=`, `+`, `-`, `@`, tab or carriage return.
#[derive(Clone, Copy)]
struct Cell<'a>(&'a str);

impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::inert::csv_cell(self.0))
    }
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
        let mut fast = [0u8; 40];
        if let Some(text) = plain_fast::<PLACES>(value, &mut fast) {
            return serializer.serialize_str(text);
        }
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

/// `Plain`'s text without `fmt` (the CSV sink's hottest step): exact when `value` scaled by
/// 10^PLACES is within 2^53, as record values are (already rounded to those places); None
/// otherwise.
fn plain_fast<const PLACES: usize>(value: f64, buf: &mut [u8; 40]) -> Option<&str> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let scale = 10u64.checked_pow(u32::try_from(PLACES).ok()?)?;
    let scaled = (value * scale as f64).round();
    if scaled.is_nan() || scaled.abs() >= EXACT {
        return None;
    }
    let n = scaled.abs() as u64;
    let (int, mut frac) = (n / scale, n % scale);
    // Digits are written from the end of `buf` backwards.
    let mut at = buf.len();
    let mut places = PLACES;
    while places > 0 && frac % 10 == 0 && frac != 0 {
        frac /= 10;
        places -= 1;
    }
    if frac != 0 {
        for _ in 0..places {
            at -= 1;
            buf[at] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        at -= 1;
        buf[at] = b'.';
    }
    let mut int = int;
    loop {
        at -= 1;
        buf[at] = b'0' + (int % 10) as u8;
        int /= 10;
        if int == 0 {
            break;
        }
    }
    if scaled < 0.0 && n != 0 {
        at -= 1;
        buf[at] = b'-';
    }
    std::str::from_utf8(&buf[at..]).ok()
}

impl CsvSink {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::options().create_new(true).write(true).open(path)?;
        Ok(CsvSink {
            out: csv::WriterBuilder::new()
                .buffer_capacity(64 * 1024)
                .from_writer(file),
            tool_calls_json: String::new(),
            tool_call_problems_json: String::new(),
            output_problems_json: String::new(),
            flagged: String::new(),
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
        self.tool_call_problems_json.clear();
        if !r.tool_call_problems.is_empty() {
            self.tool_call_problems_json = serde_json::to_string(&r.tool_call_problems)?;
        }
        self.output_problems_json.clear();
        if !r.output_problems.is_empty() {
            self.output_problems_json = serde_json::to_string(&r.output_problems)?;
        }
        self.flagged.clear();
        self.flagged.push_str(&r.flagged_categories.join(";"));
        self.notes.clear();
        for (i, note) in r.notes.iter().enumerate() {
            if i > 0 {
                self.notes.push_str("; ");
            }
            self.notes.push_str(note);
        }
        let row = Row {
            id: Cell(&r.id),
            line: r.line,
            seq: r.seq,
            warmup: r.warmup,
            attempts: r.attempts,
            attempt_errors: crate::inert::csv_cell(&r.attempt_errors.join(";")).into_owned(),
            reconnects: r.reconnects,
            status: r.status,
            http_status: r.http_status,
            error_kind: r.error.as_ref().map(|e| Cell(&e.kind)),
            error_message: r.error.as_ref().map(|e| Cell(&e.message)),
            scheduled_at: Plain(r.scheduled_at),
            sent_at: Plain(r.sent_at),
            first_sent_at: Plain(r.first_sent_at),
            queue_ms: Plain(r.queue_ms),
            latency_ms: Plain(r.latency_ms),
            latency_from_schedule_ms: Plain(r.latency_from_schedule_ms),
            retry_wait_ms: Plain(r.retry_wait_ms),
            connect_ms: Plain(r.connect_ms),
            ttfb_ms: Plain(r.ttfb_ms),
            ttft_ms: Plain(r.ttft_ms),
            ttfo_ms: Plain(r.ttfo_ms),
            tpot_ms: Plain(r.tpot_ms),
            chunks: r.chunks,
            model: r.model.as_deref().map(Cell),
            response_id: r.response_id.as_deref().map(Cell),
            request_id: r.request_id.as_deref().map(Cell),
            finish: r.finish.as_deref().map(Cell),
            incomplete_reason: r.incomplete_reason.as_deref().map(Cell),
            input_tokens: r.input_tokens,
            cached_tokens: r.cached_tokens,
            cache_write_tokens: r.cache_write_tokens,
            output_tokens: r.output_tokens,
            reasoning_tokens: r.reasoning_tokens,
            total_tokens: r.total_tokens,
            partial_output_tokens: r.partial_output_tokens,
            token_source: r.token_source,
            tokenizer: r.tokenizer.as_deref().map(Cell),
            service_tier: r.service_tier.as_deref().map(Cell),
            cost_usd: Plain(r.cost_usd),
            output_text: r.output_text.as_deref().map(Cell),
            tool_calls: Cell(&self.tool_calls_json),
            tool_call_problems: Cell(&self.tool_call_problems_json),
            items: r.items,
            dimensions: r.dimensions,
            flagged_categories: Cell(&self.flagged),
            structured_output: r.structured_output.as_deref().map(Cell),
            output_problems: Cell(&self.output_problems_json),
            conversation_id: r.conversation_id.as_deref().map(Cell),
            turn: r.turn,
            conversation_end: r.conversation_end,
            notes: Cell(&self.notes),
            metadata: r.metadata.as_deref().map(RawValue::get).map(Cell),
        };
        self.out.serialize(row).map_err(io::Error::other)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `Plain` wrote before its fast path: `{:.P}` with trailing zeros dropped.
    fn by_fmt<const PLACES: usize>(value: f64) -> String {
        let text = format!("{value:.PLACES$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.')
        } else {
            &text
        };
        if text == "-0" { "0" } else { text }.to_string()
    }

    proptest! {
        #[test]
        fn plain_numbers_are_written_as_fmt_writes_them(micros in -10_000_000_000_000i64..10_000_000_000_000, nanodollars in 0u64..1_000_000_000_000) {
            let ms = micros as f64 / 1000.0;
            let mut buf = [0u8; 40];
            prop_assert_eq!(plain_fast::<3>(ms, &mut buf).unwrap(), by_fmt::<3>(ms));
            let usd = nanodollars as f64 / 1e9;
            prop_assert_eq!(plain_fast::<9>(usd, &mut buf).unwrap(), by_fmt::<9>(usd));
        }
    }

    #[test]
    fn plain_numbers_at_the_edges() {
        let mut buf = [0u8; 40];
        for (value, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (-1e-7, "0"),
            (-0.0001, "-0.0001"),
            (8.85e-6, "0.000009"),
            (12.5, "12.5"),
            (-3.25, "-3.25"),
            (1e6, "1000000"),
        ] {
            assert_eq!(plain_fast::<6>(value, &mut buf).unwrap(), text, "{value}");
        }
        assert_eq!(plain_fast::<3>(1e300, &mut buf), None);
    }
}
