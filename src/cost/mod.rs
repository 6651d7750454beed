//! Cost: prices per model and tier, dollars per record and per run, and estimates before a run.

pub mod estimate;
mod prices;

pub use prices::{ModelPrice, PriceTable, Rates, Tier, TokenCounts};

use crate::record::Record;
use std::collections::BTreeSet;

/// Prices records as they are collected; warns once per model that has no price.
pub struct Pricer {
    table: PriceTable,
    default_tier: Tier,
    unpriced: BTreeSet<String>,
    warn: bool,
}

impl Pricer {
    pub fn new(table: PriceTable, default_tier: Tier, warn: bool) -> Self {
        Pricer {
            table,
            default_tier,
            unpriced: BTreeSet::new(),
            warn,
        }
    }

    /// Sets `cost_usd` from the record's usage, at the tier the answer reports (else the default).
    /// A model with no price gets no cost (null), never a silent zero.
    pub fn price(&mut self, record: &mut Record) {
        let (Some(model), Some(input), Some(output)) =
            (&record.model, record.input_tokens, record.output_tokens)
        else {
            return;
        };
        let Some(price) = self.table.lookup(model) else {
            if self.unpriced.insert(model.clone()) && self.warn {
                eprintln!(
                    "warning: no price for model {model:?}: its records get no cost_usd (add it with --prices FILE)"
                );
            }
            return;
        };
        let tier = record
            .service_tier
            .as_deref()
            .and_then(Tier::from_service_tier)
            .unwrap_or(self.default_tier);
        let tokens = TokenCounts {
            input,
            cached: record.cached_tokens.unwrap_or(0),
            cache_write: record.cache_write_tokens.unwrap_or(0),
            output,
        };
        record.cost_usd = Some(price.rates(tier).cost(&tokens));
    }

    pub fn unpriced_models(&self) -> Vec<String> {
        self.unpriced.iter().cloned().collect()
    }
}
