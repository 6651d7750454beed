//! The run second by second: `timeseries.csv` (sent, completed, errors, in flight, tokens,
//! percentiles) and `histograms/timeseries.hlog`, each second's latency and TTFT HdrHistograms as an
//! HdrHistogram interval log (which HdrHistogram's own tools plot and merge across processes).

use crate::record::{Record, Status};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::Serialize;
use std::io;
use std::path::Path;

/// Seconds a second's percentiles stay open for records that arrive out of completion order.
/// Records reach the collector in the order they finish, so a few seconds is ample; a record later
/// than that still counts in every count column, only not in that second's percentiles.
const OPEN_SECONDS: u64 = 5;

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    sent: u64,
    completed: u64,
    ok: u64,
    errors: u64,
    dropped: u64,
    warmup: u64,
    output_tokens: u64,
    /// Sent requests finishing in this second (the in-flight count falls by this much).
    finished: u64,
    latency: Option<Percentiles>,
    ttft: Option<Percentiles>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Percentiles {
    p50: f64,
    p99: f64,
}

/// Latency and TTFT histograms of one second still open.
struct OpenSecond {
    second: u64,
    latency: Histogram<u64>,
    ttft: Histogram<u64>,
}

/// Per-second counts for the whole run (a few dozen bytes a second) and histograms for the last
/// few seconds only, written to the interval log as each second closes, so memory stays flat
/// however long the run.
#[derive(Default)]
pub struct TimeSeries {
    rows: Vec<Counts>,
    open: Vec<OpenSecond>,
    spare: Vec<OpenSecond>,
    newest: u64,
    log: Option<IntervalLog>,
}

/// `histograms/timeseries.hlog`, written a line per closed histogram (HdrHistogram's interval log
/// format: `Tag=T,start,length,max,base64 of the V2 deflate histogram`).
struct IntervalLog {
    out: io::BufWriter<std::fs::File>,
    serializer: V2DeflateSerializer,
    bytes: Vec<u8>,
    text: String,
}

impl IntervalLog {
    /// Creates the log with its header: start and base time are the run's epoch (`epoch_unix_us`),
    /// so logs of several processes share one time axis; values are µs, shown in ms.
    fn create(path: &Path, epoch_unix_us: u64) -> io::Result<IntervalLog> {
        let mut out = io::BufWriter::new(std::fs::File::create(path)?);
        let epoch = std::time::UNIX_EPOCH + std::time::Duration::from_micros(epoch_unix_us);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("llmvolley: per-second latency and TTFT of ok requests, in microseconds")
            .with_start_time(epoch)
            .with_base_time(epoch)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)?;
        Ok(IntervalLog {
            out,
            serializer,
            bytes: Vec::new(),
            text: String::new(),
        })
    }

    /// A closed second's non-empty histograms, flushed at once so a crash loses at most one second.
    fn write_second(
        &mut self,
        second: u64,
        latency: &Histogram<u64>,
        ttft: &Histogram<u64>,
    ) -> io::Result<()> {
        for (tag, histogram) in [("latency", latency), ("ttft", ttft)] {
            if !histogram.is_empty() {
                self.write(second, tag, histogram)?;
            }
        }
        io::Write::flush(&mut self.out)
    }

    fn write(&mut self, second: u64, tag: &str, histogram: &Histogram<u64>) -> io::Result<()> {
        use base64::Engine;
        use std::io::Write;
        self.bytes.clear();
        self.serializer
            .serialize(histogram, &mut self.bytes)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        self.text.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&self.bytes, &mut self.text);
        writeln!(
            self.out,
            "Tag={tag},{second}.000,1.000,{:.3},{}",
            histogram.max() as f64 / 1000.0,
            self.text
        )
    }
}

#[derive(Serialize)]
struct Row {
    second: u64,
    sent: u64,
    completed: u64,
    ok: u64,
    errors: u64,
    dropped: u64,
    in_flight: u64,
    output_tokens: u64,
    latency_p50_ms: Option<f64>,
    latency_p99_ms: Option<f64>,
    ttft_p50_ms: Option<f64>,
    ttft_p99_ms: Option<f64>,
    warmup: u64,
}

impl TimeSeries {
    /// A time series that also writes each second's histograms to the interval log at `path`.
    pub fn with_interval_log(path: &Path, epoch_unix_us: u64) -> io::Result<TimeSeries> {
        Ok(TimeSeries {
            log: Some(IntervalLog::create(path, epoch_unix_us)?),
            ..TimeSeries::default()
        })
    }

    fn row(&mut self, second: u64) -> &mut Counts {
        let index = second as usize;
        if self.rows.len() <= index {
            self.rows.resize(index + 1, Counts::default());
        }
        &mut self.rows[index]
    }

    /// Counts a record in the second it was sent and the second it ended (ms from the run start).
    pub fn add(&mut self, r: &Record) {
        let (ended_ms, sent) = match (r.sent_at, r.latency_ms, r.scheduled_at) {
            (Some(sent), Some(latency), _) => (sent + latency, Some(sent)),
            (_, _, Some(scheduled)) if r.status == Status::Dropped => (scheduled, None),
            _ => return,
        };
        let second = |ms: f64| (ms.max(0.0) / 1000.0) as u64;
        if let Some(sent) = sent {
            self.row(second(sent)).sent += 1;
        }
        let ended = second(ended_ms);
        let row = self.row(ended);
        row.completed += u64::from(sent.is_some());
        row.finished += u64::from(sent.is_some());
        row.warmup += u64::from(r.warmup);
        match r.status {
            Status::Ok => {
                row.ok += 1;
                row.output_tokens += r.output_tokens.unwrap_or(0);
            }
            Status::Dropped => row.dropped += 1,
            _ => row.errors += 1,
        }
        if r.status != Status::Ok {
            return;
        }
        if ended > self.newest {
            self.newest = ended;
            self.close_before(ended.saturating_sub(OPEN_SECONDS));
        }
        let Some(open) = self.open_second(ended) else {
            return;
        };
        if let Some(latency) = r.latency_ms {
            super::grow_and_record(&mut open.latency, micros(latency));
        }
        if let Some(ttft) = r.ttft_ms {
            super::grow_and_record(&mut open.ttft, micros(ttft));
        }
    }

    fn open_second(&mut self, second: u64) -> Option<&mut OpenSecond> {
        if second + OPEN_SECONDS < self.newest {
            return None;
        }
        if let Some(i) = self.open.iter().position(|o| o.second == second) {
            return Some(&mut self.open[i]);
        }
        let mut fresh = self.spare.pop().unwrap_or_else(|| OpenSecond {
            second,
            latency: new_histogram(),
            ttft: new_histogram(),
        });
        fresh.second = second;
        self.open.push(fresh);
        self.open.last_mut()
    }

    /// Turns the histograms of seconds before `limit` into their percentiles.
    fn close_before(&mut self, limit: u64) {
        // Oldest first: the interval log's lines must go in time order.
        self.open
            .sort_unstable_by_key(|o| std::cmp::Reverse(o.second));
        while self.open.last().is_some_and(|o| o.second < limit) {
            let Some(mut closed) = self.open.pop() else {
                break;
            };
            let row = self.row(closed.second);
            row.latency = percentiles(&closed.latency);
            row.ttft = percentiles(&closed.ttft);
            if let Some(log) = &mut self.log
                && let Err(e) = log.write_second(closed.second, &closed.latency, &closed.ttft)
            {
                // A log that cannot be written loses its lines, never the run: the CSV and the
                // run's own histograms still have every figure.
                eprintln!("warning: the interval log stops here: {e}");
                self.log = None;
            }
            closed.latency.reset();
            closed.ttft.reset();
            self.spare.push(closed);
        }
    }

    /// Writes every second from the run start to the last one with activity (and the interval
    /// log's last seconds).
    pub fn write_csv(mut self, path: &Path) -> io::Result<()> {
        self.close_before(u64::MAX);
        let mut out = csv::Writer::from_path(path).map_err(io::Error::other)?;
        let mut in_flight: u64 = 0;
        for (second, c) in self.rows.iter().enumerate() {
            in_flight = (in_flight + c.sent).saturating_sub(c.finished);
            out.serialize(Row {
                second: second as u64,
                sent: c.sent,
                completed: c.completed,
                ok: c.ok,
                errors: c.errors,
                dropped: c.dropped,
                in_flight,
                output_tokens: c.output_tokens,
                latency_p50_ms: c.latency.map(|p| p.p50),
                latency_p99_ms: c.latency.map(|p| p.p99),
                ttft_p50_ms: c.ttft.map(|p| p.p50),
                ttft_p99_ms: c.ttft.map(|p| p.p99),
                warmup: c.warmup,
            })
            .map_err(io::Error::other)?;
        }
        if self.rows.is_empty() {
            out.write_record([
                "second",
                "sent",
                "completed",
                "ok",
                "errors",
                "dropped",
                "in_flight",
                "output_tokens",
                "latency_p50_ms",
                "latency_p99_ms",
                "ttft_p50_ms",
                "ttft_p99_ms",
                "warmup",
            ])?;
        }
        out.flush()
    }
}

/// A second's values are clamped to an hour.
const MAX_MICROS: u64 = 3_600_000_000;

fn new_histogram() -> Histogram<u64> {
    // Microseconds at 3 significant digits, like the run's histograms, laid out only as far as the
    // largest value recorded (auto-resize): 16 kB empty, 90 kB up to a second, 123 kB up to 10 s,
    // 188 kB for an hour; at most 2 × (OPEN_SECONDS + 2) exist, and a second without streams leaves
    // TTFT empty.
    Histogram::new(3).expect("3 significant digits are valid")
}

fn micros(ms: f64) -> u64 {
    ((ms * 1000.0).round() as u64).clamp(1, MAX_MICROS)
}

fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    (!h.is_empty()).then(|| Percentiles {
        p50: h.value_at_quantile(0.50) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sent_ms: f64, latency_ms: f64, status: Status) -> Record {
        let mut r = Record::empty("1".into(), 1, status);
        r.sent_at = Some(sent_ms);
        r.latency_ms = Some(latency_ms);
        r.output_tokens = Some(10);
        r.ttft_ms = Some(latency_ms / 2.0);
        r
    }

    /// HdrHistogram percentiles are exact to 3 significant digits.
    fn assert_close(cell: &str, expected: f64) {
        let value: f64 = cell.parse().unwrap();
        assert!(
            (value / expected - 1.0).abs() < 0.002,
            "{value} vs {expected}"
        );
    }

    fn rows(series: TimeSeries) -> Vec<csv::StringRecord> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        series.write_csv(&path).unwrap();
        csv::Reader::from_path(&path)
            .unwrap()
            .records()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn timeseries_counts_each_second_and_tracks_requests_in_flight() {
        let mut series = TimeSeries::default();
        series.add(&record(100.0, 200.0, Status::Ok)); // sent 0, ends 0
        series.add(&record(500.0, 1000.0, Status::Ok)); // sent 0, ends 1
        series.add(&record(900.0, 2500.0, Status::HttpError)); // sent 0, ends 3
        series.add(&record(1200.0, 100.0, Status::Ok)); // sent 1, ends 1
        let mut dropped = Record::empty("2".into(), 2, Status::Dropped);
        dropped.scheduled_at = Some(2100.0);
        series.add(&dropped);
        let rows = rows(series);
        let column = |i: usize| -> Vec<&str> { rows.iter().map(|r| &r[i]).collect() };
        assert_eq!(column(0), ["0", "1", "2", "3"]);
        assert_eq!(column(1), ["3", "1", "0", "0"], "sent");
        assert_eq!(column(2), ["1", "2", "0", "1"], "completed");
        assert_eq!(column(4), ["0", "0", "0", "1"], "errors");
        assert_eq!(column(5), ["0", "0", "1", "0"], "dropped");
        assert_eq!(
            column(6),
            ["2", "1", "1", "0"],
            "in flight at the end of each second"
        );
        assert_eq!(column(7), ["10", "20", "0", "0"], "output tokens");
        assert_close(&rows[0][8], 200.0);
        assert_close(&rows[1][10], 50.0);
        assert_eq!(&rows[2][8], "", "no completions, no percentile");
    }

    #[test]
    fn timeseries_percentiles_cover_only_requests_completing_in_that_second() {
        let mut series = TimeSeries::default();
        for i in 0..100 {
            series.add(&record(0.0, 10.0 + f64::from(i), Status::Ok));
        }
        // Ten seconds later: the first second's histogram is closed and reused.
        for i in 0..100 {
            series.add(&record(10_000.0, 500.0 + f64::from(i), Status::Ok));
        }
        let rows = rows(series);
        assert_close(&rows[0][8], 59.0);
        assert_close(&rows[0][9], 108.0);
        assert_close(&rows[10][8], 549.0);
        assert_close(&rows[10][9], 598.0);
    }
}
