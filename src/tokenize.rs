//! Client-side token counts: tiktoken encodings (loaded once on first use) for OpenAI models, or a
//! Hugging Face `tokenizer.json` (`--tokenizer`) for open models served by vLLM, SGLang or llama.cpp.

use crate::record::{Record, Status, TokenSource};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// The encoding a model uses, falling back to `o200k_base` for models tiktoken does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    O200kBase,
    Cl100kBase,
}

impl Encoding {
    pub fn for_model(model: Option<&str>) -> Encoding {
        match model.and_then(get_tokenizer) {
            Some(Tokenizer::Cl100kBase) => Encoding::Cl100kBase,
            _ => Encoding::O200kBase,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::O200kBase => "o200k_base",
            Encoding::Cl100kBase => "cl100k_base",
        }
    }

    fn bpe(self) -> &'static tiktoken_rs::CoreBPE {
        match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }

    pub fn count(self, text: &str) -> u64 {
        self.bpe().encode_ordinary(text).len() as u64
    }

    fn token_starts(self, text: &str) -> Vec<usize> {
        let bpe = self.bpe();
        let mut at = 0;
        bpe.encode_ordinary(text)
            .into_iter()
            .map(|token| {
                let start = at;
                at += bpe.decode_bytes(&[token]).map_or(0, |bytes| bytes.len());
                start
            })
            .collect()
    }
}

/// A Hugging Face tokenizer loaded from a `tokenizer.json`.
#[derive(Clone)]
pub struct HfTokenizer {
    tokenizer: Arc<tokenizers::Tokenizer>,
    label: String,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HfTokenizer({})", self.label)
    }
}

impl HfTokenizer {
    pub fn load(path: &Path) -> anyhow::Result<HfTokenizer> {
        let mut tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "cannot load --tokenizer {} (a Hugging Face tokenizer.json)",
                    path.display()
                )
            })?;
        // Counting needs every token: a file set up to truncate (or pad) to a length would
        // count that length instead.
        tokenizer.with_padding(None);
        let _ = tokenizer.with_truncation(None);
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(HfTokenizer {
            tokenizer: Arc::new(tokenizer),
            label: format!("hf:{name}"),
        })
    }

    pub fn count(&self, text: &str) -> u64 {
        self.tokenizer
            .encode(text, false)
            .map_or(0, |encoding| encoding.len() as u64)
    }

    fn token_starts(&self, text: &str) -> Vec<usize> {
        self.tokenizer
            .encode(text, false)
            .map(|encoding| encoding.get_offsets().iter().map(|o| o.0).collect())
            .unwrap_or_default()
    }
}

/// Whatever counts tokens for a model: its tiktoken encoding, or the `--tokenizer` given.
#[derive(Debug, Clone)]
pub enum TokenCounter {
    Tiktoken(Encoding),
    HuggingFace(HfTokenizer),
}

impl TokenCounter {
    /// The `--tokenizer` when given (it is what the server runs), else the model's tiktoken encoding.
    pub fn choose(model: Option<&str>, hf: Option<&HfTokenizer>) -> TokenCounter {
        match hf {
            Some(hf) => TokenCounter::HuggingFace(hf.clone()),
            None => TokenCounter::Tiktoken(Encoding::for_model(model)),
        }
    }

    pub fn count(&self, text: &str) -> u64 {
        match self {
            TokenCounter::Tiktoken(encoding) => encoding.count(text),
            TokenCounter::HuggingFace(hf) => hf.count(text),
        }
    }

    /// `count` of a text of any size in bounded time and memory: up to `EXACT_UP_TO` bytes exactly;
    /// past it in slices of about `SLICE` bytes, each cut before a whitespace character where one
    /// is near (else at any character), summed. A pre-tokenizer meeting megabytes without a space
    /// (a runaway answer) otherwise hands BPE one enormous word: 8.8 MB took 5.3 s and 497 MB.
    /// The slices' edges may count a token more or fewer than the whole would, an estimate anyway.
    pub fn count_bounded(&self, text: &str) -> u64 {
        const EXACT_UP_TO: usize = 64 * 1024;
        const SLICE: usize = 16 * 1024;
        if text.len() <= EXACT_UP_TO {
            return self.count(text);
        }
        let mut total = 0;
        let mut rest = text;
        while !rest.is_empty() {
            if rest.len() <= SLICE {
                total += self.count(rest);
                break;
            }
            let mut cut = SLICE;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            // Before the last whitespace in the slice's second half, so words stay whole.
            let mut half = SLICE / 2;
            while !rest.is_char_boundary(half) {
                half -= 1;
            }
            if let Some(space) = rest[half..cut].rfind(char::is_whitespace) {
                cut = half + space;
            }
            total += self.count(&rest[..cut]);
            rest = &rest[cut..];
        }
        total
    }

    /// The byte offset in `text` at which each of its tokens starts, in order: where a text can be
    /// cut so that its pieces keep their tokens (the workload generator cuts prompts this way).
    pub fn token_starts(&self, text: &str) -> Vec<usize> {
        match self {
            TokenCounter::Tiktoken(encoding) => encoding.token_starts(text),
            TokenCounter::HuggingFace(hf) => hf.token_starts(text),
        }
    }

    /// `o200k_base`, `cl100k_base` or `hf:<file name>`: recorded next to every estimate.
    pub fn label(&self) -> &str {
        match self {
            TokenCounter::Tiktoken(encoding) => encoding.name(),
            TokenCounter::HuggingFace(hf) => &hf.label,
        }
    }

    /// Two counters give the same counts.
    pub fn same_as(&self, other: &TokenCounter) -> bool {
        match (self, other) {
            (TokenCounter::Tiktoken(a), TokenCounter::Tiktoken(b)) => a == b,
            (TokenCounter::HuggingFace(_), TokenCounter::HuggingFace(_)) => true,
            _ => false,
        }
    }
}

/// Counts the output tokens of answers that came without usage. Runs on the collector's thread,
/// never on the async runtime, so counting (and loading an encoding) never stalls a stream.
pub struct Estimator {
    hf: Option<HfTokenizer>,
}

impl Estimator {
    /// An estimator that loads a tiktoken encoding when it first needs it, on the collector's
    /// thread, off the requests' runtime (0.2 s once); `--tokenizer` files are loaded already, when
    /// the settings are read. Nothing is loaded before it is needed: most servers send usage with
    /// every stream, and `o200k_base` would cost such a run ~45 MB of memory for nothing (a
    /// streamed bench peaked at 75 MB against 28 MB whole; issue 31).
    pub fn new(hf: Option<HfTokenizer>) -> Self {
        Estimator { hf }
    }

    /// A record whose stream carried no usage (`token_source: estimated`, no output tokens) gets
    /// its output tokens counted from what arrived (answer, reasoning and refusal text, tool calls):
    /// `output_tokens` (and TPOT) for an ok answer, `partial_output_tokens` for a failed one.
    pub fn fill(&self, record: &mut Record) {
        if record.token_source != Some(TokenSource::Estimated) || record.output_tokens.is_some() {
            if !record.reasoning_text.is_empty() {
                self.fill_reasoning(record);
            }
            return;
        }
        let counter = TokenCounter::choose(record.model.as_deref(), self.hf.as_ref());
        let mut output = counter.count_bounded(record.output_text.as_deref().unwrap_or(""))
            + counter.count_bounded(&std::mem::take(&mut record.reasoning_text))
            + counter.count_bounded(record.refusal.as_deref().unwrap_or(""));
        for call in &record.tool_calls {
            output += counter.count_bounded(&call.name) + counter.count_bounded(&call.arguments);
        }
        if record.status == Status::Ok {
            record.output_tokens = Some(output);
            record.derive_tpot();
        } else if output > 0 {
            record.partial_output_tokens = Some(output);
        } else {
            record.token_source = None;
            return;
        }
        record.tokenizer = Some(counter.label().to_string());
    }
}

impl Estimator {
    /// Reasoning text arrived but the usage reported no reasoning tokens (some open servers):
    /// they are counted here. If the server's output count already covers reasoning and visible
    /// output (within 10%: another tokenizer counts a little differently), the reasoning was inside
    /// it and only `reasoning_tokens` is set; otherwise the reasoning is added to the output. Either
    /// way the counts are marked estimated.
    fn fill_reasoning(&self, record: &mut Record) {
        let counter = TokenCounter::choose(record.model.as_deref(), self.hf.as_ref());
        let reasoning = counter.count_bounded(&std::mem::take(&mut record.reasoning_text));
        let mut visible = counter.count_bounded(record.output_text.as_deref().unwrap_or(""))
            + counter.count_bounded(record.refusal.as_deref().unwrap_or(""));
        for call in &record.tool_calls {
            visible += counter.count_bounded(&call.name) + counter.count_bounded(&call.arguments);
        }
        let reported = record.output_tokens.unwrap_or(0);
        let included = reported as f64 >= 0.9 * (reasoning + visible) as f64;
        if !included {
            record.output_tokens = Some(reported + reasoning);
            record.total_tokens = record.total_tokens.map(|t| t + reasoning);
        }
        record.reasoning_tokens = Some(reasoning);
        record.token_source = Some(TokenSource::Estimated);
        record.tokenizer = Some(counter.label().to_string());
        record.notes.push(format!(
            "reasoning text arrived but usage reported no reasoning tokens: {reasoning} counted locally, {}",
            if included {
                "inside the reported output tokens"
            } else {
                "added to the reported output tokens"
            }
        ));
        record.derive_tpot();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_count_in_slices_close_to_the_whole_even_without_spaces() {
        let counter = TokenCounter::Tiktoken(Encoding::O200kBase);
        let prose = "The quick brown fox jumps over the lazy dog. ".repeat(4000);
        let (whole, sliced) = (counter.count(&prose), counter.count_bounded(&prose));
        assert!(
            whole.abs_diff(sliced) * 100 <= whole,
            "within 1%: {whole} vs {sliced}"
        );
        // 2 MB without a space: counted slice by slice (the whole would be one BPE word).
        let unspaced = "x".repeat(2 << 20);
        let n = counter.count_bounded(&unspaced);
        assert!(n > 2 * 1024 * 1024 / 32, "{n}");
        // Slices never cut inside a character, whatever its width.
        for wide in ["é", "中", "😀"] {
            assert!(counter.count_bounded(&wide.repeat(40_000)) > 0, "{wide}");
        }
        let spaced = "中 ".repeat(30_000);
        assert!(counter.count_bounded(&spaced) > 0);
    }

    #[test]
    fn models_map_to_their_encoding_with_o200k_fallback() {
        assert_eq!(
            Encoding::for_model(Some("gpt-4o-mini")),
            Encoding::O200kBase
        );
        assert_eq!(Encoding::for_model(Some("gpt-4")), Encoding::Cl100kBase);
        assert_eq!(
            Encoding::for_model(Some("llama-3-70b")),
            Encoding::O200kBase
        );
        assert_eq!(Encoding::for_model(None), Encoding::O200kBase);
    }

    #[test]
    fn hugging_face_tokenizer_json_counts_and_names_itself() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer.json"
        ));
        let hf = HfTokenizer::load(path).unwrap();
        let counter = TokenCounter::choose(Some("gpt-4o"), Some(&hf));
        assert_eq!(counter.count("Hello there, friend"), 4);
        assert_eq!(counter.label(), "hf:tokenizer.json");
        assert!(HfTokenizer::load(Path::new("no/such/tokenizer.json")).is_err());
    }

    #[test]
    fn estimates_fill_output_of_ok_answers_and_partial_output_of_failed_ones() {
        let estimator = Estimator::new(None);
        let mut ok = Record::empty("1".into(), 1, Status::Ok);
        ok.token_source = Some(TokenSource::Estimated);
        ok.output_text = Some("Hello there".into());
        ok.latency_ms = Some(100.0);
        ok.ttft_ms = Some(40.0);
        estimator.fill(&mut ok);
        assert_eq!(ok.output_tokens, Some(2));
        assert_eq!(ok.tpot_ms, Some(60.0));
        assert_eq!(ok.tokenizer.as_deref(), Some("o200k_base"));
        let mut failed = ok.clone();
        failed.output_tokens = None;
        failed.fail(Status::Truncated, "stream_truncated", "cut");
        estimator.fill(&mut failed);
        assert_eq!(
            (failed.output_tokens, failed.partial_output_tokens),
            (None, Some(2))
        );
        let mut nothing = Record::empty("2".into(), 2, Status::Truncated);
        nothing.token_source = Some(TokenSource::Estimated);
        estimator.fill(&mut nothing);
        assert_eq!(
            (nothing.partial_output_tokens, nothing.token_source),
            (None, None)
        );
    }

    #[test]
    fn counts_tokens() {
        assert_eq!(Encoding::O200kBase.count("Hello there"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }
}
