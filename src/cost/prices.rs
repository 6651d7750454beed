//! Model prices: the built-in table, LiteLLM's and our own price files, name resolution and the cost formula.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Which price list applies: the standard one, or the Batch API's (also used for the `flex` tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Standard,
    Batch,
}

impl Tier {
    /// The tier a response's `service_tier` bills at; `None` for tiers we have no prices for.
    pub fn from_service_tier(service_tier: &str) -> Option<Tier> {
        match service_tier {
            "default" | "auto" | "standard" => Some(Tier::Standard),
            "flex" | "batch" => Some(Tier::Batch),
            _ => None,
        }
    }
}

/// USD per token for one tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub input: f64,
    /// Cached input tokens; the input rate when the model has no cache discount.
    pub cached_input: f64,
    /// Cache-write tokens; the input rate when not priced separately.
    pub cache_write: f64,
    pub output: f64,
}

impl Rates {
    fn per_million(input: f64, cached_input: Option<f64>, output: f64) -> Rates {
        Rates {
            input: input / 1e6,
            cached_input: cached_input.unwrap_or(input) / 1e6,
            cache_write: input / 1e6,
            output: output / 1e6,
        }
    }

    fn halved(self) -> Rates {
        Rates {
            input: self.input / 2.0,
            cached_input: self.cached_input / 2.0,
            cache_write: self.cache_write / 2.0,
            output: self.output / 2.0,
        }
    }

    /// Cached and cache-write tokens are inside `input`; reasoning tokens are inside `output`.
    pub fn cost(&self, tokens: &TokenCounts) -> f64 {
        let uncached = tokens
            .input
            .saturating_sub(tokens.cached + tokens.cache_write);
        uncached as f64 * self.input
            + tokens.cached as f64 * self.cached_input
            + tokens.cache_write as f64 * self.cache_write
            + tokens.output as f64 * self.output
    }
}

/// The token counts a cost is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    pub input: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub output: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub standard: Rates,
    pub batch: Rates,
}

impl ModelPrice {
    pub fn rates(&self, tier: Tier) -> &Rates {
        match tier {
            Tier::Standard => &self.standard,
            Tier::Batch => &self.batch,
        }
    }
}

/// Prices by model name.
#[derive(Debug, Clone)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
}

/// USD per 1M tokens: input, cached input, output (PROTOCOL.md §5, LiteLLM 1.109.1). Batch is half.
const BUILT_IN: [(&str, f64, Option<f64>, f64); 8] = [
    ("gpt-4.1", 2.00, Some(0.50), 8.00),
    ("gpt-4.1-mini", 0.40, Some(0.10), 1.60),
    ("gpt-4o", 2.50, Some(1.25), 10.00),
    ("gpt-4o-mini", 0.15, Some(0.075), 0.60),
    ("gpt-5", 1.25, Some(0.125), 10.00),
    ("gpt-5.1", 1.25, Some(0.125), 10.00),
    ("o3", 2.00, Some(0.50), 8.00),
    ("o3-pro", 20.00, None, 80.00),
];

impl Default for PriceTable {
    fn default() -> Self {
        let models = BUILT_IN
            .iter()
            .map(|(name, input, cached, output)| {
                let standard = Rates::per_million(*input, *cached, *output);
                (
                    name.to_string(),
                    ModelPrice {
                        standard,
                        batch: standard.halved(),
                    },
                )
            })
            .collect();
        PriceTable { models }
    }
}

/// One model in LiteLLM's `model_prices_and_context_window.json` (per-token USD).
#[derive(Deserialize)]
struct LiteLlmEntry {
    input_cost_per_token: Option<f64>,
    output_cost_per_token: Option<f64>,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
    input_cost_per_token_batches: Option<f64>,
    output_cost_per_token_batches: Option<f64>,
}

/// One model in our own price file (USD per 1M tokens).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnEntry {
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    cache_write: Option<f64>,
    batch_input: Option<f64>,
    batch_cached_input: Option<f64>,
    batch_output: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnFile {
    models: HashMap<String, OwnEntry>,
}

impl PriceTable {
    /// The built-in prices, extended and overridden by a price file (LiteLLM's format or ours).
    pub fn with_file(path: &Path) -> anyhow::Result<PriceTable> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --prices {}", path.display()))?;
        let mut table = PriceTable::default();
        let added = table
            .merge_json(&text)
            .with_context(|| format!("--prices {}", path.display()))?;
        if added == 0 {
            bail!("--prices {}: no model with prices found", path.display());
        }
        Ok(table)
    }

    /// Adds the models of a price file; returns how many had prices.
    pub fn merge_json(&mut self, text: &str) -> anyhow::Result<usize> {
        let value: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
        if value.get("models").is_some() {
            let own: OwnFile = serde_json::from_value(value).context(
                "expected {\"models\": {NAME: {\"input\": USD/1M, \"output\": USD/1M, \"cached_input\"?, \"cache_write\"?, \"batch_input\"?, \"batch_cached_input\"?, \"batch_output\"?}}}",
            )?;
            let count = own.models.len();
            for (name, e) in own.models {
                let mut standard = Rates::per_million(e.input, e.cached_input, e.output);
                if let Some(cache_write) = e.cache_write {
                    standard.cache_write = cache_write / 1e6;
                }
                let batch = match (e.batch_input, e.batch_output) {
                    (Some(input), Some(output)) => {
                        let mut batch = Rates::per_million(
                            input,
                            e.batch_cached_input.or(e.cached_input.map(|c| c / 2.0)),
                            output,
                        );
                        batch.cache_write = standard.cache_write / 2.0;
                        batch
                    }
                    _ => standard.halved(),
                };
                self.models.insert(name, ModelPrice { standard, batch });
            }
            return Ok(count);
        }
        let entries: HashMap<String, serde_json::Value> = serde_json::from_value(value)
            .context("expected an object of models (LiteLLM's format)")?;
        let mut count = 0;
        for (name, entry) in entries {
            if name == "sample_spec" {
                continue;
            }
            let Ok(e) = serde_json::from_value::<LiteLlmEntry>(entry) else {
                continue;
            };
            let (Some(input), Some(output)) = (e.input_cost_per_token, e.output_cost_per_token)
            else {
                continue;
            };
            let standard = Rates {
                input,
                cached_input: e.cache_read_input_token_cost.unwrap_or(input),
                cache_write: e.cache_creation_input_token_cost.unwrap_or(input),
                output,
            };
            let batch = match (
                e.input_cost_per_token_batches,
                e.output_cost_per_token_batches,
            ) {
                (Some(input), Some(output)) => Rates {
                    input,
                    cached_input: standard.cached_input * input
                        / standard.input.max(f64::MIN_POSITIVE),
                    cache_write: standard.cache_write / 2.0,
                    output,
                },
                _ => standard.halved(),
            };
            self.models.insert(name, ModelPrice { standard, batch });
            count += 1;
        }
        Ok(count)
    }

    /// The price of a model: by exact name, without a provider prefix (`openai/`), or as a dated
    /// snapshot of a priced family (`gpt-4.1-2025-04-14` → `gpt-4.1`). Nothing looser: an unknown
    /// model has no price rather than a wrong one.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(price) = self.models.get(model) {
            return Some(price);
        }
        let bare = model.rsplit_once('/').map_or(model, |(_, name)| name);
        self.models
            .get(bare)
            .or_else(|| self.models.get(strip_snapshot_date(bare)?))
    }

    pub fn contains(&self, model: &str) -> bool {
        self.lookup(model).is_some()
    }
}

/// `gpt-4.1-2025-04-14` → `gpt-4.1`; `gpt-4-0613` → `gpt-4`; None when there is no date suffix.
fn strip_snapshot_date(model: &str) -> Option<&str> {
    let bytes = model.as_bytes();
    let is_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let n = bytes.len();
    // -YYYY-MM-DD
    if n > 11
        && bytes[n - 11] == b'-'
        && bytes[n - 6] == b'-'
        && bytes[n - 3] == b'-'
        && is_digits(&bytes[n - 10..n - 6])
        && is_digits(&bytes[n - 5..n - 3])
        && is_digits(&bytes[n - 2..])
    {
        return Some(&model[..n - 11]);
    }
    // -MMDD or -YYYYMMDD
    for len in [4, 8] {
        if n > len + 1 && bytes[n - len - 1] == b'-' && is_digits(&bytes[n - len..]) {
            return Some(&model[..n - len - 1]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cost_splits_cached_input_and_bills_reasoning_as_output() {
        let table = PriceTable::default();
        let rates = table.lookup("gpt-4.1").unwrap().rates(Tier::Standard);
        // 1,000 input of which 400 cached, 500 output (of which 200 reasoning, already inside output).
        let tokens = TokenCounts {
            input: 1000,
            cached: 400,
            cache_write: 0,
            output: 500,
        };
        // 600 × $2/M + 400 × $0.50/M + 500 × $8/M = 0.0012 + 0.0002 + 0.004
        assert!(
            close(rates.cost(&tokens), 0.0054),
            "{}",
            rates.cost(&tokens)
        );
        let batch = table.lookup("gpt-4.1").unwrap().rates(Tier::Batch);
        assert!(close(batch.cost(&tokens), 0.0027));
    }

    #[test]
    fn model_without_cache_discount_bills_cached_tokens_as_input() {
        let table = PriceTable::default();
        let rates = table.lookup("o3-pro").unwrap().rates(Tier::Standard);
        let tokens = TokenCounts {
            input: 1_000_000,
            cached: 500_000,
            cache_write: 0,
            output: 0,
        };
        assert!(close(rates.cost(&tokens), 20.0));
    }

    #[test]
    fn names_resolve_to_their_family_and_unknown_models_have_no_price() {
        let table = PriceTable::default();
        assert_eq!(table.lookup("gpt-4.1-2025-04-14"), table.lookup("gpt-4.1"));
        assert_eq!(
            table.lookup("gpt-4o-mini-2024-07-18"),
            table.lookup("gpt-4o-mini")
        );
        assert_eq!(
            table.lookup("openai/gpt-4.1-mini"),
            table.lookup("gpt-4.1-mini")
        );
        assert!(
            table.lookup("gpt-4.1-mini").unwrap().standard.input
                < table.lookup("gpt-4.1").unwrap().standard.input
        );
        assert!(table.lookup("gpt-4.1-data").is_none());
        assert!(table.lookup("llama-3-70b").is_none());
    }

    #[test]
    fn service_tiers_map_to_price_lists() {
        assert_eq!(Tier::from_service_tier("default"), Some(Tier::Standard));
        assert_eq!(Tier::from_service_tier("flex"), Some(Tier::Batch));
        assert_eq!(Tier::from_service_tier("priority"), None);
    }

    #[test]
    fn litellm_format_is_read() {
        let mut table = PriceTable::default();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/litellm_prices.json"
        ))
        .unwrap();
        assert_eq!(table.merge_json(&text).unwrap(), 2);
        let llama = table
            .lookup("together_ai/meta-llama/Llama-3-70b-chat-hf")
            .unwrap();
        assert!(close(llama.standard.input, 0.0000009));
        assert!(close(llama.batch.output, 0.00000045));
        let custom = table.lookup("my-gpt").unwrap();
        assert!(close(custom.standard.cached_input, 0.0000005));
        assert!(close(custom.batch.input, 0.000001));
    }

    #[test]
    fn own_format_is_read_per_million() {
        let mut table = PriceTable::default();
        let text = r#"{"models": {"local-llama": {"input": 0.2, "output": 0.6}}}"#;
        assert_eq!(table.merge_json(text).unwrap(), 1);
        let rates = table.lookup("local-llama").unwrap().rates(Tier::Standard);
        assert!(close(
            rates.cost(&TokenCounts {
                input: 1_000_000,
                output: 1_000_000,
                ..Default::default()
            }),
            0.8
        ));
        assert!(
            table
                .merge_json(r#"{"models": {"x": {"inputs": 1}}}"#)
                .is_err()
        );
    }
}
