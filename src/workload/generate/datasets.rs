//! Prompts from dataset files: ShareGPT conversations, a JSONL field, a CSV column, read as a stream
//! and sampled with a seed (reservoir sampling, written in file order).

use super::{Generated, LINE_STREAM, Recipe, line_rng};
use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The file formats `generate --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetFormat {
    /// ShareGPT conversations (a JSON array, or JSONL): the first human turn is the prompt, the
    /// recorded answer's token count its output cap.
    Sharegpt,
    /// One JSON object per line; --field names the prompt.
    Jsonl,
    /// A CSV file with a header row; --column names the prompt.
    Csv,
    /// A Mooncake trace: timed requests whose prompts share blocks by hash id.
    Mooncake,
}

impl DatasetFormat {
    fn stem(self) -> &'static str {
        match self {
            DatasetFormat::Sharegpt => "sharegpt",
            DatasetFormat::Jsonl => "jsonl",
            DatasetFormat::Csv => "csv",
            DatasetFormat::Mooncake => "trace",
        }
    }
}

/// A dataset file and where its prompts are.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub format: DatasetFormat,
    pub path: PathBuf,
    /// JSONL: the prompt's dotted path (`prompt`, `messages.0.content`).
    pub field: Option<String>,
    /// CSV: the prompt's column name.
    pub column: Option<String>,
    /// The field (JSONL, a dotted path) or column (CSV) holding each record's id: its custom_id.
    pub id: Option<String>,
    /// Fields (JSONL) or columns (CSV) carried into each line's `metadata`.
    pub metadata: Vec<String>,
}

/// One usable record of a dataset.
struct Row {
    /// 1-based record number in the file (a JSONL line, a CSV data row, a ShareGPT entry).
    number: u64,
    prompt: String,
    /// ShareGPT: the recorded answer, whose token count caps the output.
    answer: Option<String>,
    /// The dataset's own id (`Dataset::id`), when asked for.
    id: Option<String>,
    /// The `Dataset::metadata` values, by name (JSON object text), when asked for.
    metadata: Option<String>,
}

pub(super) fn generate(
    recipe: &Recipe,
    dataset: &Dataset,
    out: &mut impl Write,
) -> anyhow::Result<Generated> {
    let path = &dataset.path;
    let mut generated = Generated::default();
    let corpus_prefixes = match recipe.prefix {
        Some(_) => {
            let corpus = super::Corpus::new(
                recipe.counter.clone(),
                recipe.prefix.map_or(1, |p| p.tokens) as usize,
            );
            super::prefixes(recipe, &corpus)?
        }
        None => Vec::new(),
    };
    let mut written = 0u64;
    let mut ids: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut write = |row: Row, generated: &mut Generated| -> anyhow::Result<()> {
        let prompt = match corpus_prefixes.len() {
            0 => row.prompt,
            k => format!(
                "{}{}",
                corpus_prefixes[(written % k as u64) as usize],
                row.prompt
            ),
        };
        let cap = match (recipe.output, &row.answer) {
            (Some(lengths), _) => {
                Some(lengths.draw(&mut line_rng(recipe.seed, LINE_STREAM, row.number)))
            }
            (None, Some(answer)) => Some((recipe.counter.count(answer) as u32).max(1)),
            (None, None) => None,
        };
        let tokens = recipe.counter.count(&prompt) as u32;
        let id = match row.id {
            Some(id) => {
                // The workload reader refuses a repeated custom_id: say so here, at its source.
                if let Some(first) = ids.insert(id.clone(), row.number) {
                    bail!(
                        "{}: records {first} and {} have the same id {id:?} (--id-field/--id-column): a custom_id names one request",
                        path.display(),
                        row.number
                    );
                }
                id
            }
            None => format!("{}-{}", dataset.format.stem(), row.number),
        };
        let mut line = recipe.shape.line(&id, &prompt, cap, None);
        if let Some(metadata) = &row.metadata {
            // Beside the body, before the closing brace: `{"custom_id",...,"body":{...},"metadata":{...}}`.
            line.truncate(line.trim_end().len() - 1);
            line.push_str(",\"metadata\":");
            line.push_str(metadata);
            line.push_str("}\n");
        }
        out.write_all(line.as_bytes())?;
        generated.add(tokens, cap);
        written += 1;
        Ok(())
    };
    match recipe.count {
        None => rows(dataset, &mut |row| match row {
            Some(row) => write(row, &mut generated),
            None => {
                generated.skipped += 1;
                Ok(())
            }
        })?,
        Some(count) => {
            // Reservoir sampling (Algorithm R): every record equally likely, one pass, `count` held.
            let mut rng = Pcg64Mcg::seed_from_u64(recipe.seed);
            let mut kept: Vec<Row> = Vec::new();
            let mut seen = 0u64;
            let mut skipped = 0;
            rows(dataset, &mut |row| {
                let Some(row) = row else {
                    skipped += 1;
                    return Ok(());
                };
                if seen < count {
                    kept.push(row);
                } else {
                    let j = rng.random_range(0..=seen);
                    if j < count {
                        kept[j as usize] = row;
                    }
                }
                seen += 1;
                Ok(())
            })?;
            generated.skipped = skipped;
            kept.sort_by_key(|row| row.number);
            for row in kept {
                write(row, &mut generated)?;
            }
        }
    }
    if generated.lines == 0 {
        bail!(
            "{}: no usable {} record{}",
            path.display(),
            dataset.format.stem(),
            match dataset.format {
                DatasetFormat::Sharegpt => " (a human turn followed by an answer)",
                _ => "",
            }
        );
    }
    Ok(generated)
}

/// Calls `each` with every record of the dataset in file order: Some(row), or None for a record
/// without a usable prompt (counted as skipped). Stops at the first error of `each` or of the file.
fn rows(
    dataset: &Dataset,
    each: &mut dyn FnMut(Option<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let path = &dataset.path;
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    skip_bom(&mut reader)?;
    match dataset.format {
        DatasetFormat::Sharegpt => {
            let starts_array = reader
                .fill_buf()?
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'[');
            if starts_array {
                sharegpt_array(reader, path, each)
            } else {
                json_lines(reader, path, &mut |number, value| {
                    each(sharegpt_row(number, &value))
                })
                .context(
                    "a ShareGPT file is a JSON array of conversations, or JSONL with one conversation per line",
                )
            }
        }
        DatasetFormat::Jsonl => {
            let field = dataset.field.as_deref().unwrap_or("prompt");
            json_lines(
                reader,
                path,
                &mut |number, value| match lookup(&value, field) {
                    Some(Value::String(prompt)) if !prompt.is_empty() => each(Some(Row {
                        number,
                        prompt: prompt.clone(),
                        answer: None,
                        id: json_id(&value, dataset.id.as_deref(), path, number)?,
                        metadata: json_metadata(&value, &dataset.metadata),
                    })),
                    Some(Value::String(_)) | None | Some(Value::Null) => each(None),
                    Some(other) => bail!(
                        "{}:{number}: --field {field} is {}, not a string",
                        path.display(),
                        kind(other)
                    ),
                },
            )
        }
        DatasetFormat::Csv => csv_rows(reader, dataset, each),
        DatasetFormat::Mooncake => bail!("a Mooncake trace is not a prompt dataset"),
    }
}

/// Skips a UTF-8 byte-order mark, as the workload reader does.
pub(super) fn skip_bom(reader: &mut impl BufRead) -> std::io::Result<()> {
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A dotted path into JSON: object keys, and array indices as numbers (`messages.0.content`).
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |value, key| match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Each non-blank line parsed as JSON, with its 1-based number.
fn json_lines(
    reader: impl BufRead,
    path: &Path,
    each: &mut dyn FnMut(u64, Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (i, line) in reader.lines().enumerate() {
        let number = i as u64 + 1;
        let line = line.with_context(|| format!("cannot read {}:{number}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{number}: not JSON (expected one JSON object per line)",
                path.display()
            )
        })?;
        each(number, value)?;
    }
    Ok(())
}

/// The first human turn and the answer after it, from one ShareGPT entry (`conversations` of
/// `{from, value}`; `role`/`content` and `user`/`assistant` are read too).
fn sharegpt_row(number: u64, entry: &Value) -> Option<Row> {
    let turns = entry
        .get("conversations")
        .or_else(|| entry.get("conversation"))
        .or_else(|| entry.get("messages"))?
        .as_array()?;
    let speaker = |turn: &Value| {
        turn.get("from")
            .or_else(|| turn.get("role"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    let text = |turn: &Value| {
        turn.get("value")
            .or_else(|| turn.get("content"))
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string)
    };
    let at = turns
        .iter()
        .position(|t| matches!(speaker(t).as_deref(), Some("human" | "user")))?;
    let prompt = text(&turns[at])?;
    let answer = turns.get(at + 1).filter(|t| {
        matches!(
            speaker(t).as_deref(),
            Some("gpt" | "assistant" | "chatgpt" | "bard" | "bing" | "model")
        )
    })?;
    Some(Row {
        number,
        prompt,
        answer: Some(text(answer)?),
        id: None,
        metadata: None,
    })
}

/// A ShareGPT JSON array, one entry at a time: the file (hundreds of MB) is never held whole.
fn sharegpt_array(
    reader: impl Read,
    path: &Path,
    each: &mut dyn FnMut(Option<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    struct Entries<'a> {
        each: &'a mut dyn FnMut(Option<Row>) -> anyhow::Result<()>,
        failed: &'a mut Option<anyhow::Error>,
    }
    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of ShareGPT conversations")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut number = 0;
            while let Some(entry) = seq.next_element::<Value>()? {
                number += 1;
                if let Err(e) = (self.each)(sharegpt_row(number, &entry)) {
                    *self.failed = Some(e);
                    return Err(serde::de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Entries<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parsed = Entries {
        each,
        failed: &mut failed,
    }
    .deserialize(&mut de);
    if let Some(e) = failed {
        return Err(e);
    }
    parsed.with_context(|| {
        format!(
            "{}: not a ShareGPT file (a JSON array of {{\"conversations\": [{{\"from\", \"value\"}}]}})",
            path.display()
        )
    })
}

fn csv_rows(
    reader: impl Read,
    dataset: &Dataset,
    each: &mut dyn FnMut(Option<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let path = &dataset.path;
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv
        .headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let find = |column: &str, flag: &str| {
        headers
            .iter()
            .position(|h| h.trim() == column)
            .with_context(|| {
                format!(
                    "{}: no column {column:?} (the header row has {}); name it with {flag}",
                    path.display(),
                    headers
                        .iter()
                        .map(|h| format!("{h:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    };
    let index = find(dataset.column.as_deref().unwrap_or("prompt"), "--column")?;
    let id_index = dataset
        .id
        .as_deref()
        .map(|c| find(c, "--id-column"))
        .transpose()?;
    let metadata: Vec<(&str, usize)> = dataset
        .metadata
        .iter()
        .map(|c| Ok((c.as_str(), find(c, "--metadata-columns")?)))
        .collect::<anyhow::Result<_>>()?;
    for (i, record) in csv.records().enumerate() {
        let number = i as u64 + 1;
        let record =
            record.with_context(|| format!("{}: row {number}: not valid CSV", path.display()))?;
        let id = match id_index {
            Some(at) => match record.get(at).map(str::trim).filter(|id| !id.is_empty()) {
                Some(id) => Some(id.to_string()),
                None => bail!(
                    "{}: row {number}: the --id-column is empty: every line needs its id",
                    path.display()
                ),
            },
            None => None,
        };
        let metadata = (!metadata.is_empty()).then(|| {
            let object: serde_json::Map<String, Value> = metadata
                .iter()
                .map(|(name, at)| {
                    let value = record.get(*at).unwrap_or("");
                    (name.to_string(), Value::String(value.to_string()))
                })
                .collect();
            Value::Object(object).to_string()
        });
        let row = record
            .get(index)
            .filter(|p| !p.trim().is_empty())
            .map(|prompt| Row {
                number,
                prompt: prompt.to_string(),
                answer: None,
                id,
                metadata,
            });
        each(row)?;
    }
    Ok(())
}

/// A JSONL record's id at `field` (a string, or a number written as its digits).
fn json_id(
    value: &Value,
    field: Option<&str>,
    path: &Path,
    number: u64,
) -> anyhow::Result<Option<String>> {
    let Some(field) = field else {
        return Ok(None);
    };
    match lookup(value, field) {
        Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        other => bail!(
            "{}:{number}: --id-field {field} is {}, not a string or number: every line needs its id",
            path.display(),
            other.map_or("missing", kind)
        ),
    }
}

/// A JSONL record's `fields`, as a JSON object by field name (a missing field is null).
fn json_metadata(value: &Value, fields: &[String]) -> Option<String> {
    (!fields.is_empty()).then(|| {
        let object: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.clone(), lookup(value, f).cloned().unwrap_or(Value::Null)))
            .collect();
        Value::Object(object).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sharegpt_takes_the_first_human_turn_and_the_answer_after_it() {
        let entry = json!({"id": "x", "conversations": [
            {"from": "system", "value": "be nice"},
            {"from": "human", "value": "Hi there"},
            {"from": "gpt", "value": "Hello, how can I help?"},
            {"from": "human", "value": "later"}]});
        let row = sharegpt_row(3, &entry).unwrap();
        assert_eq!((row.number, row.prompt.as_str()), (3, "Hi there"));
        assert_eq!(row.answer.as_deref(), Some("Hello, how can I help?"));
        let roles = json!({"conversations": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]});
        assert!(sharegpt_row(1, &roles).is_some());
        let unanswered = json!({"conversations": [{"from": "human", "value": "a"}]});
        assert!(sharegpt_row(1, &unanswered).is_none());
    }

    #[test]
    fn dotted_paths_reach_into_objects_and_arrays() {
        let v = json!({"messages": [{"content": "a"}, {"content": "b"}], "p": "x"});
        assert_eq!(lookup(&v, "messages.1.content"), Some(&json!("b")));
        assert_eq!(lookup(&v, "p"), Some(&json!("x")));
        assert_eq!(lookup(&v, "messages.9.content"), None);
    }
}
