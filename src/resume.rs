//! `--resume`: what an earlier run into the same folder already finished, and the compaction that
//! leaves exactly one final record per id.

use crate::record::{Record, Status};
use crate::sink::{CsvSink, RecordSink};
use crate::stats::RunStats;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

fn key(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// Whether a workload line is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    /// Its earlier record stands.
    Keep,
}

/// The latest status of every id in an earlier `records.jsonl` (128-bit id hashes: bounded memory).
pub struct PriorOutcomes {
    latest: HashMap<u128, Status>,
    retry_failed: bool,
    /// The ok turns so far of each conversation sent again, in order: it goes on after them.
    turns: HashMap<u128, std::sync::Arc<[Record]>>,
    /// Dollars the records in the file cost, and how many were priced.
    spent_usd: f64,
    priced: u64,
    dearest_usd: f64,
}

#[derive(serde::Deserialize)]
struct IdAndStatus {
    id: String,
    status: Status,
    /// `bench` records: the place in the schedule. A cycled workload repeats ids, so a bench
    /// record is one of its own, never a duplicate to compact away.
    #[serde(default)]
    seq: Option<u64>,
    /// A conversation's turn, and whether it was the conversation's last.
    #[serde(default)]
    turn: Option<u32>,
    #[serde(default)]
    conversation_end: bool,
    #[serde(default)]
    error: Option<ErrorKind>,
    #[serde(default)]
    attempt_errors: Vec<String>,
    #[serde(default)]
    cost_usd: Option<f64>,
}

#[derive(serde::Deserialize)]
struct ErrorKind {
    kind: String,
}

/// The error kind of a failure that provably sent nothing: the connection (DNS, TCP, TLS, the
/// proxy's tunnel) was never made, so no server saw, or billed, the request.
const NOTHING_SENT: &str = "connect";

impl IdAndStatus {
    /// A failed line none of whose attempts reached a server: `--resume` sends it, as it sends
    /// lines never tried; `--retry-failed` stays for failures a server may have seen.
    fn sent_nothing(&self) -> bool {
        self.status == Status::ConnectError
            && self.error.as_ref().is_some_and(|e| e.kind == NOTHING_SENT)
            && self.attempt_errors.iter().all(|kind| kind == NOTHING_SENT)
    }

    /// What makes two records the same line's: the id, and for bench records the schedule place.
    fn identity(&self) -> u128 {
        key(&self.id) ^ u128::from(self.seq.unwrap_or(0)).rotate_left(64)
    }
}

impl PriorOutcomes {
    /// Reads every record of `records` (whose torn last line, if any, `repair_torn_tail` has
    /// dealt with). A line that does not parse is an error naming it: resume cannot tell whether
    /// its request was sent (and paid), so it neither drops it silently nor sends its line again.
    pub fn read(records: &Path, retry_failed: bool) -> io::Result<PriorOutcomes> {
        let mut latest = HashMap::new();
        let (mut spent_usd, mut priced, mut dearest_usd) = (0.0, 0, 0.0_f64);
        for (index, line) in BufReader::new(File::open(records)?)
            .split(b'\n')
            .enumerate()
        {
            let line = line?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record = serde_json::from_slice::<IdAndStatus>(&line)
                .map_err(|e| damaged_line(records, index + 1, &line, &e))?;
            // Every record is a request the server answered, or none: its cost was spent.
            if let Some(cost) = record.cost_usd {
                spent_usd += cost;
                priced += 1;
                dearest_usd = dearest_usd.max(cost);
            }
            // A conversation whose last record is not its end was cut short (a crash between
            // turns): it is sent again, whole. A failure that sent nothing is as good as unsent.
            let status = match record.turn {
                Some(_) if !record.conversation_end => Status::NotSent,
                _ if record.sent_nothing() => Status::NotSent,
                _ => record.status,
            };
            latest.insert(key(&record.id), status);
        }
        let mut prior = PriorOutcomes {
            latest,
            retry_failed,
            turns: HashMap::new(),
            spent_usd,
            priced,
            dearest_usd,
        };
        prior.turns = prior.unfinished_turns(records)?;
        Ok(prior)
    }

    /// A second pass for the conversations sent again: the ok turns of each one's last attempt
    /// that come before its first turn not done (only theirs are held, whatever the file's size).
    fn unfinished_turns(
        &self,
        records: &Path,
    ) -> io::Result<HashMap<u128, std::sync::Arc<[Record]>>> {
        let mut turns: HashMap<u128, Vec<Record>> = HashMap::new();
        for line in BufReader::new(File::open(records)?).split(b'\n') {
            let line = line?;
            let Ok(head) = serde_json::from_slice::<IdAndStatus>(&line) else {
                continue;
            };
            let Some(turn) = head.turn else { continue };
            if self.decide(&head.id) != Decision::Send {
                continue;
            }
            let list = turns.entry(key(&head.id)).or_default();
            if turn == 1 {
                list.clear();
            }
            // A later record of the same turn (the turn sent again) replaces it and what followed.
            list.retain(|r| r.turn.is_some_and(|t| t < turn));
            if let Ok(record) = serde_json::from_slice::<Record>(&line) {
                list.push(record);
            }
        }
        Ok(turns
            .into_iter()
            .filter_map(|(id, mut list)| {
                // Up to the first turn that did not end ok: the conversation goes on from it.
                let ok = list
                    .iter()
                    .position(|r| r.status != Status::Ok || r.conversation_end)
                    .unwrap_or(list.len());
                list.truncate(ok);
                (!list.is_empty()).then(|| (id, list.into()))
            })
            .collect())
    }

    /// The recorded ok turns a conversation sent again goes on after (None: from its first turn).
    pub fn prior_turns(&self, id: &str) -> Option<std::sync::Arc<[Record]>> {
        self.turns.get(&key(id)).cloned()
    }

    /// Ok lines are kept; lines never sent (budget, cancelled) or never recorded are sent; failed lines
    /// are sent again only with `--retry-failed`.
    pub fn decide(&self, id: &str) -> Decision {
        match self.latest.get(&key(id)) {
            None | Some(Status::SkippedBudget | Status::Cancelled | Status::NotSent) => {
                Decision::Send
            }
            Some(Status::Ok) => Decision::Keep,
            Some(_) if self.retry_failed => Decision::Send,
            Some(_) => Decision::Keep,
        }
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// What the file's records cost (dollars: the earlier sessions' spend, less what their
    /// compactions dropped, see `Compacted`), how many were priced, and the dearest one.
    pub fn spent(&self) -> (f64, u64, f64) {
        (self.spent_usd, self.priced, self.dearest_usd)
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// A record line that does not parse, named for the user: which file and line, what it starts
/// with, and what to do.
fn damaged_line(records: &Path, number: usize, line: &[u8], e: &serde_json::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{}:{number} is damaged ({e}; it starts {:?}): --resume cannot tell whether that record's request was sent and paid, so it stops rather than drop it or send its line again. Mend the line, or delete it to have its line sent again, then run --resume again",
            records.display(),
            preview(line)
        ),
    )
}

/// The first 80 characters of a line, for a message.
fn preview(line: &[u8]) -> String {
    String::from_utf8_lossy(line).chars().take(80).collect()
}

/// What `repair_torn_tail` did to a last line left without its newline by a crash mid-write.
#[derive(Debug, PartialEq, Eq)]
pub enum TornTail {
    /// The file ended with a newline: nothing to do.
    None,
    /// The last line was a whole record missing only its newline, which was added.
    Completed { line: usize },
    /// The last line was torn mid-record and cut; it started with `start`. Its workload line has
    /// no record and is sent again.
    Cut { line: usize, start: String },
}

/// Repairs a last line without its final newline, so that appended records start on a line of
/// their own: a whole record gets its newline, a torn one is cut. Reads backwards from the end
/// in blocks only as far as the last newline (a run folder's records may be gigabytes, a torn
/// line is at most one record), then counts lines to name it.
pub fn repair_torn_tail(path: &Path) -> io::Result<TornTail> {
    const BLOCK: u64 = 64 * 1024;
    let mut file = File::options().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = Vec::new();
    let mut cut_at = 0;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        block.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        if end == len && block.last() == Some(&b'\n') {
            return Ok(TornTail::None);
        }
        if let Some(i) = block.iter().rposition(|b| *b == b'\n') {
            cut_at = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if len == 0 {
        return Ok(TornTail::None);
    }
    let mut tail = Vec::with_capacity((len - cut_at) as usize);
    file.seek(SeekFrom::Start(cut_at))?;
    file.read_to_end(&mut tail)?;
    let line = count_lines(path, cut_at)? + 1;
    if serde_json::from_slice::<IdAndStatus>(&tail).is_ok() {
        file.seek(SeekFrom::End(0))?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        return Ok(TornTail::Completed { line });
    }
    file.set_len(cut_at)?;
    file.sync_all()?;
    Ok(TornTail::Cut {
        line,
        start: preview(&tail),
    })
}

/// Newlines in the first `upto` bytes of `path`.
fn count_lines(path: &Path, upto: u64) -> io::Result<usize> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?.take(upto));
    let mut lines = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(lines);
        }
        lines += buf.iter().filter(|b| **b == b'\n').count();
        let n = buf.len();
        reader.consume(n);
    }
}

/// What `compact` did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compacted {
    /// Records kept: one final record per id (per turn, for conversations).
    pub kept: usize,
    /// What the records it dropped cost (earlier attempts of lines sent again): spent all the
    /// same, so a later `--resume` counts it against the job's `--max-cost` (run.json keeps it).
    pub dropped_cost_usd: f64,
}

/// Rewrites `records.jsonl` with only the last record of each id (of a conversation, the last
/// record of each turn of its last attempt, from its turn 1 on: a resumed conversation goes on
/// after its recorded turns), in file order, through a temporary file and a rename: a crash leaves
/// either the old file or the new one.
pub fn compact(path: &Path) -> io::Result<Compacted> {
    // Where each id's last attempt starts: its last record, or its conversation's last turn 1;
    // and the last record of each of a conversation's turns.
    let mut last_index: HashMap<u128, usize> = HashMap::new();
    let mut last_of_turn: HashMap<(u128, u32), usize> = HashMap::new();
    for (index, line) in BufReader::new(File::open(path)?).split(b'\n').enumerate() {
        if let Ok(record) = serde_json::from_slice::<IdAndStatus>(&line?) {
            if record.turn.is_none_or(|turn| turn == 1) {
                last_index.insert(record.identity(), index);
            }
            if let Some(turn) = record.turn {
                last_of_turn.insert((record.identity(), turn), index);
            }
        }
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    let (mut kept, mut dropped_cost_usd) = (0, 0.0);
    for (index, line) in BufReader::new(File::open(path)?).split(b'\n').enumerate() {
        let line = line?;
        let keep = |record: &IdAndStatus| {
            let start = last_index.get(&record.identity());
            match record.turn {
                None => start == Some(&index),
                Some(turn) => {
                    start.is_some_and(|start| index >= *start)
                        && last_of_turn.get(&(record.identity(), turn)) == Some(&index)
                }
            }
        };
        let Ok(record) = serde_json::from_slice::<IdAndStatus>(&line) else {
            continue;
        };
        if keep(&record) {
            out.write_all(&line)?;
            out.write_all(b"\n")?;
            kept += 1;
        } else {
            dropped_cost_usd += record.cost_usd.unwrap_or(0.0);
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(Compacted {
        kept,
        dropped_cost_usd,
    })
}

/// Rewrites `records.csv` from `records.jsonl`, so both hold the same rows; returns the statistics of
/// every record (a resumed run's summary covers the whole workload).
pub fn rebuild_csv_and_stats(jsonl: &Path, csv: &Path) -> io::Result<RunStats> {
    let tmp = csv.with_extension("csv.tmp");
    let _ = fs::remove_file(&tmp);
    let mut sink = CsvSink::create(&tmp)?;
    let mut stats = RunStats::default();
    for line in BufReader::new(File::open(jsonl)?).split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let record: Record = serde_json::from_slice(&line).map_err(io::Error::other)?;
        sink.write(&record)?;
        stats.add(&record);
    }
    sink.flush()?;
    drop(sink);
    fs::rename(&tmp, csv)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::write(path, text).unwrap();
    }

    #[test]
    fn decisions_follow_the_latest_record_of_each_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        write(
            &path,
            "{\"id\":\"a\",\"status\":\"http_error\"}\n{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"timeout\"}\n{\"id\":\"c\",\"status\":\"skipped_budget\"}\n{\"id\":\"d\",\"sta",
        );
        assert!(matches!(
            repair_torn_tail(&path).unwrap(),
            TornTail::Cut { line: 5, .. }
        ));
        let prior = PriorOutcomes::read(&path, false).unwrap();
        assert_eq!(prior.len(), 3, "the torn last line is not an outcome");
        assert_eq!(prior.decide("a"), Decision::Keep);
        assert_eq!(prior.decide("b"), Decision::Keep);
        assert_eq!(prior.decide("c"), Decision::Send);
        assert_eq!(prior.decide("d"), Decision::Send);
        let retry = PriorOutcomes::read(&path, true).unwrap();
        assert_eq!(retry.decide("b"), Decision::Send);
        assert_eq!(retry.decide("a"), Decision::Keep);
    }

    #[test]
    fn a_torn_tail_longer_than_a_read_block_is_cut_at_the_last_whole_line_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let whole = "{\"id\":\"a\",\"status\":\"ok\"}\n";
        let torn = format!("{{\"id\":\"b\",\"output_text\":\"{}", "x".repeat(200_000));
        write(&path, &format!("{whole}{whole}{torn}"));
        match repair_torn_tail(&path).unwrap() {
            TornTail::Cut { line, start } => {
                assert_eq!(line, 3);
                assert!(start.starts_with("{\"id\":\"b\""), "{start}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{whole}{whole}")
        );
        write(&path, &torn);
        assert!(matches!(
            repair_torn_tail(&path).unwrap(),
            TornTail::Cut { line: 1, .. }
        ));
        assert_eq!(
            fs::read(&path).unwrap().len(),
            0,
            "a file of one torn line is emptied"
        );
        assert_eq!(
            repair_torn_tail(&path).unwrap(),
            TornTail::None,
            "an empty file has nothing to cut"
        );
    }

    #[test]
    fn a_whole_last_record_missing_only_its_newline_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        write(
            &path,
            "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"status\":\"ok\"}",
        );
        assert_eq!(
            repair_torn_tail(&path).unwrap(),
            TornTail::Completed { line: 2 }
        );
        assert!(fs::read_to_string(&path).unwrap().ends_with("}\n"));
        assert_eq!(
            PriorOutcomes::read(&path, false).unwrap().decide("b"),
            Decision::Keep
        );
    }

    #[test]
    fn a_damaged_record_in_the_middle_stops_resume_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        write(
            &path,
            "{\"id\":\"a\",\"status\":\"ok\"}\n{\"id\":\"b\",\"stat\u{0}us\n{\"id\":\"c\",\"status\":\"ok\"}\n",
        );
        let e = PriorOutcomes::read(&path, false).err().expect("refused");
        let message = e.to_string();
        assert!(message.contains("records.jsonl:2 is damaged"), "{message}");
        assert!(message.contains("delete it"), "{message}");
    }

    #[test]
    fn a_failure_that_sent_nothing_is_sent_again_and_one_a_server_saw_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let refused = r#"{"id":"a","status":"connect_error","error":{"kind":"connect","message":"refused"},"attempt_errors":["connect","connect"]}"#;
        let reset =
            r#"{"id":"b","status":"connect_error","error":{"kind":"transport","message":"reset"}}"#;
        let seen_first = r#"{"id":"c","status":"connect_error","error":{"kind":"connect","message":"refused"},"attempt_errors":["http_500"]}"#;
        write(&path, &format!("{refused}\n{reset}\n{seen_first}\n"));
        let prior = PriorOutcomes::read(&path, false).unwrap();
        assert_eq!(prior.decide("a"), Decision::Send);
        assert_eq!(prior.decide("b"), Decision::Keep);
        assert_eq!(prior.decide("c"), Decision::Keep);
    }

    #[test]
    fn torn_tail_is_cut_and_compaction_keeps_the_last_record_per_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        write(
            &path,
            "{\"id\":\"a\",\"status\":\"timeout\",\"cost_usd\":0.25}\n{\"id\":\"b\",\"status\":\"ok\"}\n{\"id\":\"a\",\"st",
        );
        assert!(matches!(
            repair_torn_tail(&path).unwrap(),
            TornTail::Cut { line: 3, .. }
        ));
        assert_eq!(repair_torn_tail(&path).unwrap(), TornTail::None);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("{\"id\":\"a\",\"status\":\"ok\"}\n");
        write(&path, &text);
        let compacted = compact(&path).unwrap();
        assert_eq!(compacted.kept, 2);
        assert_eq!(
            compacted.dropped_cost_usd, 0.25,
            "the dropped attempt was paid"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"id\":\"b\",\"status\":\"ok\"}\n{\"id\":\"a\",\"status\":\"ok\"}\n"
        );
    }

    /// A conversation's record as the run writes it.
    fn turn(id: &str, turn: u32, end: bool) -> String {
        let mut record = Record::empty(id.into(), 1, Status::Ok);
        record.conversation_id = Some(id.into());
        record.turn = Some(turn);
        record.conversation_end = end;
        serde_json::to_string(&record).unwrap()
    }

    #[test]
    fn a_conversation_is_one_unit_for_resume_and_compaction_keeps_the_last_record_of_each_turn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        // c: cut short by a crash after turn 1 (no end); d: ended ok in three turns.
        let lines = [
            turn("c", 1, false),
            turn("d", 1, false),
            turn("d", 2, false),
            turn("d", 3, true),
        ];
        write(&path, &(lines.join("\n") + "\n"));
        let prior = PriorOutcomes::read(&path, false).unwrap();
        assert_eq!(
            prior.decide("c"),
            Decision::Send,
            "an unfinished conversation is sent again"
        );
        assert_eq!(prior.decide("d"), Decision::Keep);
        let c = prior
            .prior_turns("c")
            .expect("c goes on after its recorded turn");
        assert_eq!((c.len(), c[0].turn), (1, Some(1)));
        assert!(prior.prior_turns("d").is_none());
        // The resumed session goes on with c's turn 2 (after an interrupted try at it).
        let mut cancelled = Record::empty("c".into(), 1, Status::Cancelled);
        cancelled.turn = Some(2);
        cancelled.conversation_end = true;
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "{}\n{}\n",
            serde_json::to_string(&cancelled).unwrap(),
            turn("c", 2, true)
        ));
        write(&path, &text);
        assert_eq!(compact(&path).unwrap().kept, 5);
        let kept = fs::read_to_string(&path).unwrap();
        let c_turns: Vec<&str> = kept
            .lines()
            .filter(|l| l.contains("\"id\":\"c\""))
            .collect();
        assert_eq!(c_turns.len(), 2);
        assert!(c_turns.iter().all(|l| l.contains("\"status\":\"ok\"")));
        assert_eq!(
            kept.lines().filter(|l| l.contains("\"id\":\"d\"")).count(),
            3
        );
    }
}
