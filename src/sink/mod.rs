//! Output formats for records, one file each, behind one small trait.

mod csv;
mod jsonl;
mod parquet;

pub use self::csv::CsvSink;
pub use self::jsonl::JsonlSink;
pub use self::parquet::ParquetFile;

use crate::record::Record;
use std::io;

/// Somewhere records go, in the order they finish. Files are created before the first request.
pub trait RecordSink: Send {
    fn write(&mut self, record: &Record) -> io::Result<()>;
    /// Pushes what was written to the operating system, so a crash loses nothing written so far.
    fn flush(&mut self) -> io::Result<()>;
}
