//! Mooncake traces (`timestamp`, `input_length`, `output_length`, `hash_ids`) turned into timed
//! workload lines whose prompts share a block of text wherever the trace's requests share a hash id,
//! so the trace's prefix reuse is reproduced (Mooncake, FAST '25: one hash id per 512-token block).

use super::{Corpus, Generated, LINE_STREAM, Recipe, line_rng};
use anyhow::{Context, bail};
use rand::RngExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

/// Tokens of prompt one trace hash id stands for (Mooncake's block size).
pub const BLOCK_TOKENS: u32 = 512;

/// Block texts kept for reuse; beyond this many the cache starts over (memory stays bounded on
/// traces with millions of blocks).
const CACHED_BLOCKS: usize = 50_000;

#[derive(Deserialize)]
struct TraceLine {
    /// Milliseconds from the trace start.
    timestamp: f64,
    input_length: u32,
    output_length: u32,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

pub(super) fn generate(
    recipe: &Recipe,
    path: &Path,
    out: &mut impl Write,
) -> anyhow::Result<Generated> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read trace {}", path.display()))?;
    let corpus = Corpus::new(recipe.counter.clone(), BLOCK_TOKENS as usize + 16);
    let mut blocks = Blocks {
        corpus: &corpus,
        seed: recipe.seed,
        cache: HashMap::new(),
    };
    let mut generated = Generated::default();
    let mut last_timestamp = 0u64;
    let mut reader = BufReader::new(file);
    super::datasets::skip_bom(&mut reader)?;
    for (i, line) in reader.lines().enumerate() {
        let number = i as u64 + 1;
        if recipe.count.is_some_and(|count| generated.lines >= count) {
            break;
        }
        let line = line.with_context(|| format!("cannot read {}:{number}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let request: TraceLine = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{number}: not a Mooncake trace line (expected {{\"timestamp\", \"input_length\", \"output_length\", \"hash_ids\"}})",
                path.display()
            )
        })?;
        if !(request.timestamp.is_finite() && request.timestamp >= 0.0) {
            bail!(
                "{}:{number}: timestamp must be milliseconds from the trace start (not negative)",
                path.display()
            );
        }
        let timestamp = request.timestamp.round() as u64;
        if timestamp < last_timestamp {
            bail!(
                "{}:{number}: timestamp {timestamp} is before the line above ({last_timestamp}); a trace is in time order",
                path.display()
            );
        }
        last_timestamp = timestamp;
        if request.input_length == 0 {
            generated.skipped += 1;
            continue;
        }
        if request.input_length > super::lengths::MAX_TOKENS {
            bail!(
                "{}:{number}: input_length {} is more than {} tokens",
                path.display(),
                request.input_length,
                super::lengths::MAX_TOKENS
            );
        }
        let prompt = blocks.prompt(&request, number)?;
        if recipe.counter.count(&prompt) != u64::from(request.input_length) {
            generated.inexact += 1;
        }
        let cap = match recipe.output {
            Some(lengths) => lengths.draw(&mut line_rng(recipe.seed, LINE_STREAM, number)),
            None => request.output_length.max(1),
        };
        let id = format!("trace-{number}");
        out.write_all(
            recipe
                .shape
                .line(&id, &prompt, Some(cap), Some(timestamp))
                .as_bytes(),
        )?;
        generated.add(request.input_length, Some(cap));
    }
    if generated.lines == 0 {
        bail!(
            "{}: no request with an input_length above 0 (a Mooncake trace is JSONL of {{\"timestamp\", \"input_length\", \"output_length\", \"hash_ids\"}})",
            path.display()
        );
    }
    Ok(generated)
}

/// The text of each hash id's block: `{id}. ` and corpus text, exactly `BLOCK_TOKENS` tokens
/// ending with a newline, so that blocks put side by side keep their tokens and two different
/// ids never start alike.
struct Blocks<'a> {
    corpus: &'a Corpus,
    seed: u64,
    cache: HashMap<u64, String>,
}

impl Blocks<'_> {
    /// `input_length` tokens: the blocks of `hash_ids` in order, the last cut short. Blocks the
    /// trace gives no id for get one of their own, shared with no other request.
    fn prompt(&mut self, request: &TraceLine, number: u64) -> anyhow::Result<String> {
        let needed = request.input_length.div_ceil(BLOCK_TOKENS) as usize;
        let mut prompt = String::new();
        for j in 0..needed {
            let id = request.hash_ids.get(j).copied().unwrap_or_else(|| {
                xxhash_rust::xxh3::xxh3_64_with_seed(&number.to_le_bytes(), j as u64) | (1 << 63)
            });
            let tokens = (request.input_length - j as u32 * BLOCK_TOKENS).min(BLOCK_TOKENS);
            if tokens == BLOCK_TOKENS {
                prompt.push_str(self.full(id)?);
            } else {
                prompt.push_str(&self.cut(id, tokens, "")?);
            }
        }
        Ok(prompt)
    }

    fn full(&mut self, id: u64) -> anyhow::Result<&str> {
        if !self.cache.contains_key(&id) {
            if self.cache.len() >= CACHED_BLOCKS {
                self.cache.clear();
            }
            let text = self.cut(id, BLOCK_TOKENS, "\n")?;
            self.cache.insert(id, text);
        }
        Ok(self.cache.get(&id).map_or("", String::as_str))
    }

    /// The first `tokens` tokens of block `id` (a partial block is a prefix of the full one).
    fn cut(&self, id: u64, tokens: u32, tail: &str) -> anyhow::Result<String> {
        let sentence =
            line_rng(self.seed, BLOCK_STREAM, id).random_range(0..self.corpus.sentences());
        let tag = format!("{id}. ");
        self.corpus
            .cut(&tag, 3, sentence, tokens, tail)
            .or_else(|| self.corpus.cut("", 0, sentence, tokens, tail))
            .with_context(|| format!("cannot cut block {id} of {tokens} tokens"))
    }
}

const BLOCK_STREAM: u64 = 3;
