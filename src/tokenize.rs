//! Client-side token counts (tiktoken encodings, loaded once on first use) for answers without usage.

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
    fn counts_tokens() {
        assert_eq!(Encoding::O200kBase.count("Hello there"), 2);
        assert_eq!(Encoding::O200kBase.count(""), 0);
    }
}
