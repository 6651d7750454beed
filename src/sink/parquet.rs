//! `records.parquet`: the records as a typed Parquet file (Apache Arrow's `parquet` crate, Snappy),
//! the columns of `records.csv` with real types, so pandas, Polars and DuckDB load them without
//! guessing.

use crate::record::{Record, TokenSource};
use anyhow::Context;
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Rows per row group: large enough to compress well, small enough to hold in memory (output
/// texts included).
const ROWS_PER_GROUP: usize = 16_384;

/// The columns, in order: (name, type). Times are ms from the run's epoch or durations in ms, as in
/// `records.jsonl`.
const COLUMNS: [(&str, DataType); 53] = [
    ("id", DataType::Utf8),
    ("line", DataType::UInt64),
    ("seq", DataType::UInt64),
    ("warmup", DataType::Boolean),
    ("attempts", DataType::UInt32),
    ("attempt_errors", DataType::Utf8),
    ("reconnects", DataType::UInt32),
    ("status", DataType::Utf8),
    ("http_status", DataType::UInt16),
    ("error_kind", DataType::Utf8),
    ("error_message", DataType::Utf8),
    ("scheduled_at", DataType::Float64),
    ("sent_at", DataType::Float64),
    ("first_sent_at", DataType::Float64),
    ("queue_ms", DataType::Float64),
    ("latency_ms", DataType::Float64),
    ("latency_from_schedule_ms", DataType::Float64),
    ("retry_wait_ms", DataType::Float64),
    ("connect_ms", DataType::Float64),
    ("ttfb_ms", DataType::Float64),
    ("ttft_ms", DataType::Float64),
    ("ttfo_ms", DataType::Float64),
    ("tpot_ms", DataType::Float64),
    ("chunks", DataType::UInt32),
    ("model", DataType::Utf8),
    ("response_id", DataType::Utf8),
    ("request_id", DataType::Utf8),
    ("finish", DataType::Utf8),
    ("incomplete_reason", DataType::Utf8),
    ("input_tokens", DataType::UInt64),
    ("cached_tokens", DataType::UInt64),
    ("cache_write_tokens", DataType::UInt64),
    ("output_tokens", DataType::UInt64),
    ("reasoning_tokens", DataType::UInt64),
    ("total_tokens", DataType::UInt64),
    ("partial_output_tokens", DataType::UInt64),
    ("token_source", DataType::Utf8),
    ("tokenizer", DataType::Utf8),
    ("service_tier", DataType::Utf8),
    ("cost_usd", DataType::Float64),
    ("output_text", DataType::Utf8),
    ("tool_calls", DataType::Utf8),
    ("tool_call_problems", DataType::Utf8),
    ("items", DataType::UInt64),
    ("dimensions", DataType::UInt64),
    ("flagged_categories", DataType::Utf8),
    ("structured_output", DataType::Utf8),
    ("output_problems", DataType::Utf8),
    ("conversation_id", DataType::Utf8),
    ("turn", DataType::UInt32),
    ("conversation_end", DataType::Boolean),
    ("notes", DataType::Utf8),
    ("metadata", DataType::Utf8),
];

/// Column builders of the row group being filled, one per `COLUMNS` entry.
#[derive(Default)]
struct Columns {
    text: Vec<StringBuilder>,
    u64s: Vec<UInt64Builder>,
    u32s: Vec<UInt32Builder>,
    u16s: Vec<UInt16Builder>,
    f64s: Vec<Float64Builder>,
    bools: Vec<BooleanBuilder>,
}

/// One value of a row, by its column's type.
enum Cell<'a> {
    Text(Option<&'a str>),
    U64(Option<u64>),
    U32(Option<u32>),
    U16(Option<u16>),
    F64(Option<f64>),
    Bool(bool),
}

/// A Parquet file of records, written a row group at a time.
pub struct ParquetFile {
    writer: ArrowWriter<File>,
    schema: Arc<Schema>,
    columns: Columns,
    rows: usize,
}

impl ParquetFile {
    pub fn create(path: &Path) -> anyhow::Result<ParquetFile> {
        let schema = Arc::new(Schema::new(
            COLUMNS
                .iter()
                .map(|(name, kind)| {
                    Field::new(
                        *name,
                        kind.clone(),
                        !matches!(
                            *name,
                            "id" | "line" | "status" | "warmup" | "attempts" | "reconnects"
                        ),
                    )
                })
                .collect::<Vec<_>>(),
        ));
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))?;
        Ok(ParquetFile {
            writer,
            schema,
            columns: Columns::default(),
            rows: 0,
        })
    }

    pub fn write(&mut self, r: &Record) -> anyhow::Result<()> {
        let tool_calls = if r.tool_calls.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&r.tool_calls)?)
        };
        let tool_call_problems = if r.tool_call_problems.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&r.tool_call_problems)?)
        };
        let output_problems = if r.output_problems.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&r.output_problems)?)
        };
        let flagged = (!r.flagged_categories.is_empty()).then(|| r.flagged_categories.join(";"));
        let attempt_errors = (!r.attempt_errors.is_empty()).then(|| r.attempt_errors.join(";"));
        let notes = (!r.notes.is_empty()).then(|| r.notes.join("; "));
        let token_source = r.token_source.map(|s| match s {
            TokenSource::Server => "server",
            TokenSource::Estimated => "estimated",
        });
        let cells = [
            Cell::Text(Some(&r.id)),
            Cell::U64(Some(r.line)),
            Cell::U64(r.seq),
            Cell::Bool(r.warmup),
            Cell::U32(Some(r.attempts)),
            Cell::Text(attempt_errors.as_deref()),
            Cell::U32(Some(r.reconnects)),
            Cell::Text(Some(r.status.as_str())),
            Cell::U16(r.http_status),
            Cell::Text(r.error.as_ref().map(|e| e.kind.as_str())),
            Cell::Text(r.error.as_ref().map(|e| e.message.as_str())),
            Cell::F64(r.scheduled_at),
            Cell::F64(r.sent_at),
            Cell::F64(r.first_sent_at),
            Cell::F64(r.queue_ms),
            Cell::F64(r.latency_ms),
            Cell::F64(r.latency_from_schedule_ms),
            Cell::F64(r.retry_wait_ms),
            Cell::F64(r.connect_ms),
            Cell::F64(r.ttfb_ms),
            Cell::F64(r.ttft_ms),
            Cell::F64(r.ttfo_ms),
            Cell::F64(r.tpot_ms),
            Cell::U32(r.chunks),
            Cell::Text(r.model.as_deref()),
            Cell::Text(r.response_id.as_deref()),
            Cell::Text(r.request_id.as_deref()),
            Cell::Text(r.finish.as_deref()),
            Cell::Text(r.incomplete_reason.as_deref()),
            Cell::U64(r.input_tokens),
            Cell::U64(r.cached_tokens),
            Cell::U64(r.cache_write_tokens),
            Cell::U64(r.output_tokens),
            Cell::U64(r.reasoning_tokens),
            Cell::U64(r.total_tokens),
            Cell::U64(r.partial_output_tokens),
            Cell::Text(token_source),
            Cell::Text(r.tokenizer.as_deref()),
            Cell::Text(r.service_tier.as_deref()),
            Cell::F64(r.cost_usd),
            Cell::Text(r.output_text.as_deref()),
            Cell::Text(tool_calls.as_deref()),
            Cell::Text(tool_call_problems.as_deref()),
            Cell::U64(r.items),
            Cell::U64(r.dimensions),
            Cell::Text(flagged.as_deref()),
            Cell::Text(r.structured_output.as_deref()),
            Cell::Text(output_problems.as_deref()),
            Cell::Text(r.conversation_id.as_deref()),
            Cell::U32(r.turn),
            Cell::Bool(r.conversation_end),
            Cell::Text(notes.as_deref()),
            Cell::Text(r.metadata.as_deref().map(|m| m.get())),
        ];
        let c = &mut self.columns;
        let (mut text, mut u64s, mut u32s, mut u16s, mut f64s, mut bools) = (0, 0, 0, 0, 0, 0);
        // Builders are made on the first row, in column order within each type.
        let fresh = self.rows == 0;
        for cell in cells {
            match cell {
                Cell::Text(v) => {
                    if fresh && c.text.len() == text {
                        c.text.push(StringBuilder::new());
                    }
                    c.text[text].append_option(v);
                    text += 1;
                }
                Cell::U64(v) => {
                    if fresh && c.u64s.len() == u64s {
                        c.u64s.push(UInt64Builder::new());
                    }
                    c.u64s[u64s].append_option(v);
                    u64s += 1;
                }
                Cell::U32(v) => {
                    if fresh && c.u32s.len() == u32s {
                        c.u32s.push(UInt32Builder::new());
                    }
                    c.u32s[u32s].append_option(v);
                    u32s += 1;
                }
                Cell::U16(v) => {
                    if fresh && c.u16s.len() == u16s {
                        c.u16s.push(UInt16Builder::new());
                    }
                    c.u16s[u16s].append_option(v);
                    u16s += 1;
                }
                Cell::F64(v) => {
                    if fresh && c.f64s.len() == f64s {
                        c.f64s.push(Float64Builder::new());
                    }
                    c.f64s[f64s].append_option(v.filter(|v| v.is_finite()));
                    f64s += 1;
                }
                Cell::Bool(v) => {
                    if fresh && c.bools.len() == bools {
                        c.bools.push(BooleanBuilder::new());
                    }
                    c.bools[bools].append_value(v);
                    bools += 1;
                }
            }
        }
        self.rows += 1;
        if self.rows >= ROWS_PER_GROUP {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Writes the rows so far as one row group (the builders are emptied, not dropped).
    fn flush_group(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let c = &mut self.columns;
        let (mut text, mut u64s, mut u32s, mut u16s, mut f64s, mut bools) = (
            c.text.iter_mut(),
            c.u64s.iter_mut(),
            c.u32s.iter_mut(),
            c.u16s.iter_mut(),
            c.f64s.iter_mut(),
            c.bools.iter_mut(),
        );
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len());
        for (_, kind) in &COLUMNS {
            let array: Option<ArrayRef> = match kind {
                DataType::Utf8 => text.next().map(|b| Arc::new(b.finish()) as ArrayRef),
                DataType::UInt64 => u64s.next().map(|b| Arc::new(b.finish()) as ArrayRef),
                DataType::UInt32 => u32s.next().map(|b| Arc::new(b.finish()) as ArrayRef),
                DataType::UInt16 => u16s.next().map(|b| Arc::new(b.finish()) as ArrayRef),
                DataType::Float64 => f64s.next().map(|b| Arc::new(b.finish()) as ArrayRef),
                _ => bools.next().map(|b| Arc::new(b.finish()) as ArrayRef),
            };
            arrays.push(array.context("a column of the Parquet schema has no builder")?);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last row group and the file's footer; returns the rows written.
    pub fn finish(mut self) -> anyhow::Result<u64> {
        self.flush_group()?;
        let metadata = self.writer.close()?;
        Ok(metadata.file_metadata().num_rows() as u64)
    }
}
