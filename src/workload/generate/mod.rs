//! `llmvolley generate`: workloads written, not scripted. Synthetic prompts of exact token lengths
//! cut from a corpus, shared prefixes, a dataset's prompts, or a trace's timed requests, each
//! written as one Batch line (so every generated workload can be read, versioned and replayed).

mod corpus;
mod datasets;
mod lengths;
mod mooncake;

pub use corpus::Corpus;
pub use datasets::{Dataset, DatasetFormat};
pub use lengths::{Lengths, MAX_TOKENS};

use crate::stats::LengthCounts;
use crate::tokenize::TokenCounter;
use crate::workload::Route;
use anyhow::{Context, bail};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::io::Write;
use std::path::PathBuf;

/// What every generated request asks the server for, besides its prompt and answer cap.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Responses (`input`, `max_output_tokens`) or Chat (`messages`, `max_tokens`).
    pub route: Route,
    pub model: String,
    /// `"stream": true` (Chat also asks for the usage chunk).
    pub stream: bool,
    /// `--ignore-eos`: `"ignore_eos": true` and `"min_tokens"` equal to the cap, vLLM's and
    /// SGLang's sampling parameters (not OpenAI's) that keep the model generating to the cap.
    pub ignore_eos: bool,
}

impl Shape {
    /// One Batch line: `custom_id`, `method`, `url`, `body`, and for a trace its `timestamp` (ms
    /// from the trace start), which is not sent.
    ///
    /// Chat caps the answer with `max_tokens`, the one name vLLM, SGLang, llama.cpp, Ollama, TGI
    /// and OpenAI's non-reasoning models all accept.
    pub fn line(
        &self,
        id: &str,
        prompt: &str,
        max_output: Option<u32>,
        timestamp_ms: Option<u64>,
    ) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string());
        let mut body = format!("{{\"model\":{}", quote(&self.model));
        let url = match self.route {
            Route::Completions => {
                body.push_str(&format!(",\"prompt\":{}", quote(prompt)));
                if let Some(cap) = max_output {
                    body.push_str(&format!(",\"max_tokens\":{cap}"));
                }
                "/v1/completions"
            }
            // Embeddings and moderations: an input, nothing to cap or stream.
            Route::Embeddings | Route::Moderations => {
                body.push_str(&format!(",\"input\":{}", quote(prompt)));
                body.push('}');
                let timestamp =
                    timestamp_ms.map_or(String::new(), |t| format!(",\"timestamp\":{t}"));
                return format!(
                    "{{\"custom_id\":{}{timestamp},\"method\":\"POST\",\"url\":\"/v1{}\",\"body\":{body}}}\n",
                    quote(id),
                    self.route.path()
                );
            }
            Route::Chat => {
                body.push_str(&format!(
                    ",\"messages\":[{{\"role\":\"user\",\"content\":{}}}]",
                    quote(prompt)
                ));
                if let Some(cap) = max_output {
                    body.push_str(&format!(",\"max_tokens\":{cap}"));
                }
                "/v1/chat/completions"
            }
            _ => {
                body.push_str(&format!(",\"input\":{}", quote(prompt)));
                if let Some(cap) = max_output {
                    body.push_str(&format!(",\"max_output_tokens\":{cap}"));
                }
                "/v1/responses"
            }
        };
        if let (true, Some(cap)) = (self.ignore_eos, max_output) {
            body.push_str(&format!(",\"ignore_eos\":true,\"min_tokens\":{cap}"));
        }
        if self.stream {
            body.push_str(",\"stream\":true");
            if self.route.takes_stream_options() {
                body.push_str(",\"stream_options\":{\"include_usage\":true}");
            }
        }
        body.push('}');
        let timestamp = timestamp_ms.map_or(String::new(), |t| format!(",\"timestamp\":{t}"));
        format!(
            "{{\"custom_id\":{}{timestamp},\"method\":\"POST\",\"url\":\"{url}\",\"body\":{body}}}\n",
            quote(id)
        )
    }
}

/// Where prompts come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// Cut from the corpus, each of a drawn length (tokens).
    Synthetic(Lengths),
    /// One prompt per record of a dataset file.
    Dataset(Dataset),
    /// A Mooncake trace (JSONL of `timestamp`, `input_length`, `output_length`, `hash_ids`).
    Mooncake(PathBuf),
}

/// `--prefix-tokens P --prefix-groups K`: K shared prefixes of P tokens; line i starts with
/// prefix i mod K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub tokens: u32,
    pub groups: u32,
}

/// Everything `generate` needs.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub shape: Shape,
    pub input: Input,
    /// The answer cap of each line (a dataset's recorded answer length when not given).
    pub output: Option<Lengths>,
    pub prefix: Option<Prefix>,
    /// Lines to write: synthetic lines, a sample of a dataset, the first lines of a trace.
    pub count: Option<u64>,
    pub seed: u64,
    pub counter: TokenCounter,
}

/// What was written, for the summary `generate` prints.
#[derive(Debug, Default)]
pub struct Generated {
    pub lines: u64,
    /// Tokens of each prompt's text, by the recipe's tokenizer (the request adds its framing).
    pub input_tokens: LengthCounts,
    /// Each line's answer cap, when it has one.
    pub output_caps: LengthCounts,
    /// Drawn input lengths raised to the shared prefix plus one token.
    pub raised: u64,
    /// Draws (input lengths and output caps) outside 1..=MAX_TOKENS, clamped to it.
    pub clamped: u64,
    /// Dataset records skipped (no prompt, or for ShareGPT no answer), and trace prompts whose
    /// count missed their `input_length` (a tokenizer merging across a block boundary).
    pub skipped: u64,
    pub inexact: u64,
}

impl Generated {
    fn add(&mut self, input_tokens: u32, cap: Option<u32>) {
        self.lines += 1;
        self.input_tokens.add(u64::from(input_tokens));
        if let Some(cap) = cap {
            self.output_caps.add(u64::from(cap));
        }
    }
}

/// The generator of line `index` (0-based) for `seed`: a line's draws depend on its index alone,
/// so the first N lines of a larger count are the same lines.
fn line_rng(seed: u64, stream: u64, index: u64) -> Pcg64Mcg {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&stream.to_le_bytes());
    key[8..].copy_from_slice(&index.to_le_bytes());
    Pcg64Mcg::seed_from_u64(xxhash_rust::xxh3::xxh3_64_with_seed(&key, seed))
}

const LINE_STREAM: u64 = 1;
const PREFIX_STREAM: u64 = 2;

/// Writes the recipe's lines to `out`.
///
/// # Errors
/// A dataset or trace that cannot be read (naming file and line), a length the corpus cannot be
/// cut to, or a write error.
pub fn generate(recipe: &Recipe, out: &mut impl Write) -> anyhow::Result<Generated> {
    match &recipe.input {
        Input::Synthetic(lengths) => synthetic(recipe, *lengths, out),
        Input::Dataset(dataset) => datasets::generate(recipe, dataset, out),
        Input::Mooncake(path) => mooncake::generate(recipe, path, out),
    }
}

/// The K shared prefixes, each exactly `tokens` tokens ending with a newline (so the text after
/// it tokenizes as if alone).
fn prefixes(recipe: &Recipe, corpus: &Corpus) -> anyhow::Result<Vec<String>> {
    let Some(prefix) = recipe.prefix else {
        return Ok(Vec::new());
    };
    (0..u64::from(prefix.groups))
        .map(|k| {
            let mut rng = line_rng(recipe.seed, PREFIX_STREAM, k);
            let sentence = rng.random_range(0..corpus.sentences());
            corpus
                .cut("", 0, sentence, prefix.tokens, "\n")
                .with_context(|| format!("cannot cut a prefix of {} tokens", prefix.tokens))
        })
        .collect()
}

fn synthetic(recipe: &Recipe, lengths: Lengths, out: &mut impl Write) -> anyhow::Result<Generated> {
    let Some(count) = recipe.count else {
        bail!("--input-tokens needs --count N: how many lines to write");
    };
    let floor = recipe.prefix.map_or(1, |p| p.tokens + 1);
    let draw = |i: u64| {
        let mut rng = line_rng(recipe.seed, LINE_STREAM, i);
        let input = lengths.draw_clamped(&mut rng);
        let output = recipe.output.map(|o| o.draw_clamped(&mut rng));
        let clamped = u64::from(input.1) + u64::from(output.is_some_and(|o| o.1));
        (input.0, output.map(|o| o.0), rng, clamped)
    };
    // The longest prompt sets how much corpus to tokenize: known for bounded specs, else drawn.
    let longest = match lengths.max() {
        Some(max) => max,
        None => (0..count).map(|i| draw(i).0).max().unwrap_or(1),
    };
    let corpus = Corpus::new(recipe.counter.clone(), longest.max(floor) as usize);
    let prefixes = prefixes(recipe, &corpus)?;
    let prefix_tokens = recipe.prefix.map_or(0, |p| p.tokens);
    let mut generated = Generated::default();
    for i in 0..count {
        let (drawn, cap, mut rng, clamped) = draw(i);
        generated.clamped += clamped;
        let total = drawn.max(floor);
        generated.raised += u64::from(total != drawn);
        let sentence = rng.random_range(0..corpus.sentences());
        let prefix = match prefixes.len() {
            0 => "",
            k => prefixes[(i % k as u64) as usize].as_str(),
        };
        // A line number after the shared prefix: no two lines share more than their prefix, so
        // a prefix cache hits only where the workload asks it to. A prompt too short for the
        // number goes without.
        let numbered = format!("{prefix}{}. ", i + 1);
        let prompt = corpus
            .cut(&numbered, prefix_tokens + 2, sentence, total, "")
            .or_else(|| corpus.cut(prefix, prefix_tokens, sentence, total, ""))
            .with_context(|| format!("cannot cut a prompt of {total} tokens from the corpus"))?;
        out.write_all(
            recipe
                .shape
                .line(&format!("gen-{}", i + 1), &prompt, cap, None)
                .as_bytes(),
        )?;
        generated.add(total, cap);
    }
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Encoding;

    fn recipe(route: Route, input: &str, prefix: Option<Prefix>) -> Recipe {
        Recipe {
            shape: Shape {
                route,
                model: "gpt-4.1-mini".into(),
                stream: true,
                ignore_eos: true,
            },
            input: Input::Synthetic(Lengths::parse(input).unwrap()),
            output: Some(Lengths::Fixed(64)),
            prefix,
            count: Some(40),
            seed: 7,
            counter: TokenCounter::Tiktoken(Encoding::O200kBase),
        }
    }

    fn lines(recipe: &Recipe) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        generate(recipe, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_are_batch_lines_the_api_takes_with_caps_and_ignore_eos() {
        let chat = lines(&recipe(Route::Chat, "100", None));
        let body = &chat[0]["body"];
        assert_eq!(chat[0]["custom_id"], "gen-1");
        assert_eq!(chat[0]["url"], "/v1/chat/completions");
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["min_tokens"], 64);
        assert_eq!(body["ignore_eos"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        let responses = lines(&recipe(Route::Responses, "100", None));
        assert_eq!(responses[0]["url"], "/v1/responses");
        assert_eq!(responses[0]["body"]["max_output_tokens"], 64);
        assert!(responses[0]["body"]["input"].is_string());
    }

    #[test]
    fn the_same_seed_gives_the_same_lines_and_no_two_prompts_start_alike() {
        let a = lines(&recipe(Route::Responses, "uniform:20..300", None));
        assert_eq!(a, lines(&recipe(Route::Responses, "uniform:20..300", None)));
        let mut other = recipe(Route::Responses, "uniform:20..300", None);
        other.seed = 8;
        assert_ne!(a, lines(&other));
        let starts: std::collections::HashSet<String> = a
            .iter()
            .map(|l| l["body"]["input"].as_str().unwrap()[..6].to_string())
            .collect();
        assert_eq!(starts.len(), a.len());
    }

    #[test]
    fn prefixed_prompts_share_their_groups_prefix_and_count_it() {
        let prefix = Prefix {
            tokens: 200,
            groups: 3,
        };
        let counter = TokenCounter::Tiktoken(Encoding::O200kBase);
        let got = lines(&recipe(Route::Responses, "250", Some(prefix)));
        let prompts: Vec<&str> = got
            .iter()
            .map(|l| l["body"]["input"].as_str().unwrap())
            .collect();
        let common = |a: &str, b: &str| -> usize {
            a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
        };
        assert!(prompts.iter().all(|p| counter.count(p) == 250));
        // Lines 4 to 9 against lines 1 to 3 of their group: the group's prefix, then numbers
        // that differ in their first digit.
        for (i, prompt) in prompts.iter().enumerate().take(9).skip(3) {
            let shared = &prompt[..common(prompt, prompts[i % 3])];
            assert!(shared.ends_with('\n'), "{shared:?}");
            assert_eq!(counter.count(shared), 200);
        }
        assert!(common(prompts[0], prompts[1]) < 20);
    }
}
