//! The text generated prompts are cut from: a public-domain novel shipped in the binary, tokenized
//! once with the target tokenizer and cut at token boundaries into texts of an exact token count.

use crate::tokenize::TokenCounter;

/// Jules Verne, *Around the World in Eighty Days* (Project Gutenberg EBook #103, public domain),
/// one paragraph per line, ASCII: see `assets/corpus/README.md`.
pub const TEXT: &str = include_str!("../../../assets/corpus/around-the-world-in-80-days.txt");

/// The corpus tokenized with one tokenizer: where each token starts, and where sentences start.
pub struct Corpus {
    /// The corpus, repeated (one copy per line run) as often as the longest cut needs.
    text: String,
    /// Byte offset of each token of `text`.
    starts: Vec<usize>,
    /// Byte offsets of sentence starts in the first copy: every cut starts at one, so prompts
    /// read like language from their first word.
    sentences: Vec<usize>,
    counter: TokenCounter,
}

impl Corpus {
    /// The corpus for `counter`, long enough for cuts of `longest` tokens from any sentence.
    pub fn new(counter: TokenCounter, longest: usize) -> Corpus {
        let one = counter.token_starts(TEXT);
        // Cuts start in the first copy and may run on into the following ones.
        let copies = longest.div_ceil(one.len().max(1)) + 1;
        let text = TEXT.repeat(copies);
        let starts = counter.token_starts(&text);
        let bytes = TEXT.as_bytes();
        let sentences = (0..bytes.len())
            .filter(|&i| {
                bytes[i].is_ascii_uppercase()
                    && (i == 0
                        || bytes[i - 1] == b'\n'
                        || (i >= 2 && bytes[i - 1] == b' ' && b".?!".contains(&bytes[i - 2])))
            })
            .collect();
        Corpus {
            text,
            starts,
            sentences,
            counter,
        }
    }

    /// How many sentences a cut can start at.
    pub fn sentences(&self) -> usize {
        self.sentences.len()
    }

    /// `lead`, then text from sentence `sentence` (modulo the number of sentences), then `tail`,
    /// such that the whole counts exactly `total` tokens; `lead_tokens` is `lead`'s own count.
    /// Tries the following sentences when a tokenizer will not land on `total` from one (a cut
    /// that merges with its neighbour); None when none of 64 does, or the corpus is too short.
    pub fn cut(
        &self,
        lead: &str,
        lead_tokens: u32,
        sentence: usize,
        total: u32,
        tail: &str,
    ) -> Option<String> {
        (0..64).find_map(|k| self.cut_from(lead, lead_tokens, sentence + k, total, tail))
    }

    fn cut_from(
        &self,
        lead: &str,
        lead_tokens: u32,
        sentence: usize,
        total: u32,
        tail: &str,
    ) -> Option<String> {
        let from = *self.sentences.get(sentence % self.sentences.len().max(1))?;
        let first = self.starts.partition_point(|&s| s <= from).checked_sub(1)?;
        let mut take = i64::from(total) - i64::from(lead_tokens);
        let mut tried = Vec::new();
        let mut text = String::new();
        while take >= 1 && !tried.contains(&take) && tried.len() < 12 {
            tried.push(take);
            let end = *self.starts.get(first + take as usize)?;
            text.clear();
            text.push_str(lead);
            text.push_str(&self.text[from..end]);
            text.push_str(tail);
            let count = self.counter.count(&text) as i64;
            if count == i64::from(total) {
                return Some(text);
            }
            take += i64::from(total) - count;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Encoding;

    #[test]
    fn the_corpus_is_ascii_prose_of_a_few_hundred_kilobytes() {
        assert!(TEXT.is_ascii());
        assert!((200_000..=400_000).contains(&TEXT.len()), "{}", TEXT.len());
        assert!(TEXT.starts_with("Mr. Phileas Fogg lived, in 1872"));
        assert!(!TEXT.contains("Gutenberg"));
    }

    #[test]
    fn cuts_count_exactly_what_was_asked_even_beyond_one_copy() {
        let counter = TokenCounter::Tiktoken(Encoding::O200kBase);
        let corpus = Corpus::new(counter.clone(), 150_000);
        assert!(corpus.sentences() > 2000);
        for (sentence, total) in [(0, 1), (1, 2), (17, 512), (400, 4000), (9, 150_000)] {
            let text = corpus.cut("", 0, sentence, total, "").unwrap();
            assert_eq!(counter.count(&text), u64::from(total));
            assert!(text.as_bytes()[0].is_ascii_uppercase(), "{}", &text[..20]);
        }
        let lead = corpus.cut("", 0, 3, 64, "\n").unwrap();
        assert!(lead.ends_with('\n'));
        let whole = corpus.cut(&lead, 64, 50, 200, "").unwrap();
        assert!(whole.starts_with(&lead));
        assert_eq!(counter.count(&whole), 200);
    }
}
