//! Client-side token counts: tiktoken encodings (loaded once on first use) for OpenAI models, or a
//! Hugging Face `tokenizer.json` (`--tokenizer`) for open models served by vLLM, SGLang or llama.cpp.

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

    pub fn count(self, text: &str) -> u64 {
        let bpe = match self {
            Encoding::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        };
        bpe.encode_ordinary(text).len() as u64
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
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "cannot load --tokenizer {} (a Hugging Face tokenizer.json)",
                    path.display()
                )
            })?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn counts_tokens() {
        assert_eq!(Encoding::O200kBase.count("Hello there"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }
}
