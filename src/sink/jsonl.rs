//! `records.jsonl`: one JSON object per record, appended as requests finish.

use super::RecordSink;
use crate::record::Record;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub struct JsonlSink {
    out: BufWriter<File>,
}

impl JsonlSink {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::options().create_new(true).write(true).open(path)?;
        Ok(JsonlSink {
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }
}

impl JsonlSink {
    /// Appends to an existing file (a resumed run).
    pub fn append(path: &Path) -> io::Result<Self> {
        let file = File::options().append(true).open(path)?;
        Ok(JsonlSink {
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }
}

impl RecordSink for JsonlSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
