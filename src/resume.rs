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
}

impl IdAndStatus {
    /// What makes two records the same line's: the id, and for bench records the schedule place.
    fn identity(&self) -> u128 {
        key(&self.id) ^ u128::from(self.seq.unwrap_or(0)).rotate_left(64)
    }
}

impl PriorOutcomes {
    pub fn read(records: &Path, retry_failed: bool) -> io::Result<PriorOutcomes> {
        let mut latest = HashMap::new();
        for line in BufReader::new(File::open(records)?).split(b'\n') {
            // A torn last line (a crash mid-write) does not parse and is not an outcome.
            if let Ok(record) = serde_json::from_slice::<IdAndStatus>(&line?) {
                // A conversation whose last record is not its end was cut short (a crash between
                // turns): it is sent again, whole.
                let status = match record.turn {
                    Some(_) if !record.conversation_end => Status::Cancelled,
                    _ => record.status,
                };
                latest.insert(key(&record.id), status);
            }
        }
        let mut prior = PriorOutcomes {
            latest,
            retry_failed,
            turns: HashMap::new(),
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
            None | Some(Status::SkippedBudget | Status::Cancelled) => Decision::Send,
            Some(Status::Ok) => Decision::Keep,
            Some(_) if self.retry_failed => Decision::Send,
            Some(_) => Decision::Keep,
        }
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// Cuts a torn last line (no final newline) so that appended records start on a line of their own.
/// Reads the file backwards from its end in blocks, only as far as the last newline: a run folder's
/// records may be gigabytes, a torn line is at most one record.
pub fn cut_torn_tail(path: &Path) -> io::Result<bool> {
    const BLOCK: u64 = 64 * 1024;
    let mut file = File::options().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = Vec::new();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        block.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        if end == len && block.last() == Some(&b'\n') {
            return Ok(false);
        }
        if let Some(i) = block.iter().rposition(|b| *b == b'\n') {
            file.set_len(start + i as u64 + 1)?;
            return Ok(true);
        }
        end = start;
    }
    // No newline at all: the only line is torn.
    file.set_len(0)?;
    Ok(len > 0)
}

/// Rewrites `records.jsonl` with only the last record of each id (of a conversation, the last
/// record of each turn of its last attempt, from its turn 1 on: a resumed conversation goes on
/// after its recorded turns), in file order, through a temporary file and a rename: a crash leaves
/// either the old file or the new one. Returns the records kept.
pub fn compact(path: &Path) -> io::Result<usize> {
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
    let mut kept = 0;
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
        if let Ok(record) = serde_json::from_slice::<IdAndStatus>(&line)
            && keep(&record)
        {
            out.write_all(&line)?;
            out.write_all(b"\n")?;
            kept += 1;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(kept)
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
    fn a_torn_tail_longer_than_a_read_block_is_cut_at_the_last_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        let whole = "{\"id\":\"a\",\"status\":\"ok\"}\n";
        let torn = format!("{{\"id\":\"b\",\"output_text\":\"{}", "x".repeat(200_000));
        write(&path, &format!("{whole}{torn}"));
        assert!(cut_torn_tail(&path).unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), whole);
        write(&path, &torn);
        assert!(cut_torn_tail(&path).unwrap());
        assert_eq!(
            fs::read(&path).unwrap().len(),
            0,
            "a file of one torn line is emptied"
        );
        assert!(
            !cut_torn_tail(&path).unwrap(),
            "an empty file has nothing to cut"
        );
    }

    #[test]
    fn torn_tail_is_cut_and_compaction_keeps_the_last_record_per_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        write(
            &path,
            "{\"id\":\"a\",\"status\":\"timeout\"}\n{\"id\":\"b\",\"status\":\"ok\"}\n{\"id\":\"a\",\"st",
        );
        assert!(cut_torn_tail(&path).unwrap());
        assert!(!cut_torn_tail(&path).unwrap());
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("{\"id\":\"a\",\"status\":\"ok\"}\n");
        write(&path, &text);
        assert_eq!(compact(&path).unwrap(), 2);
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
        assert_eq!(compact(&path).unwrap(), 5);
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
