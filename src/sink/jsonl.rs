//! `records.jsonl`: one JSON object per record, appended as requests finish.

use super::RecordSink;
use crate::record::Record;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub struct JsonlSink {
    out: BufWriter<File>,
    /// One serialized record: written whole, so the buffer only ever flushes at line ends and a
    /// process that dies between writes leaves no torn line.
    line: Vec<u8>,
}

impl JsonlSink {
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::options().create_new(true).write(true).open(path)?;
        Ok(JsonlSink {
            out: BufWriter::with_capacity(64 * 1024, file),
            line: Vec::with_capacity(4096),
        })
    }
}

impl JsonlSink {
    /// Appends to an existing file (a resumed run).
    pub fn append(path: &Path) -> io::Result<Self> {
        let file = File::options().append(true).open(path)?;
        Ok(JsonlSink {
            out: BufWriter::with_capacity(64 * 1024, file),
            line: Vec::with_capacity(4096),
        })
    }
}

impl RecordSink for JsonlSink {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
