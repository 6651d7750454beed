//! Cost: prices per model and tier, dollars per record and per run, and estimates before a run.

mod budget;
pub mod estimate;
mod prices;

pub use budget::{Budget, Reservation};
pub use prices::{ModelPrice, PriceTable, Rates, Tier, TokenCounts};

use crate::record::Record;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Prices records as they are collected; warns once per model that has no price.
pub struct Pricer {
    table: PriceTable,
    default_tier: Tier,
    unpriced: BTreeSet<String>,
    warn: bool,
    budget: Option<Arc<Budget>>,
}

impl Pricer {
    pub fn new(table: PriceTable, default_tier: Tier, warn: bool) -> Self {
        Pricer {
            table,
            default_tier,
            unpriced: BTreeSet::new(),
            warn,
            budget: None,
        }
    }

    /// Reports every priced record's cost to the `--max-cost` budget.
    pub fn with_budget(mut self, budget: Option<Arc<Budget>>) -> Self {
        self.budget = budget;
        self
    }

    /// Sets `cost_usd` from the record's usage, at the tier the answer reports (else the default).
    /// A model with no price gets no cost (null), never a silent zero.
    ///
    /// Spends the cost from the `--max-cost` budget, then releases the request's reservation: in
    /// that order, so spent plus reserved never misses a finished request.
    pub fn price(&mut self, record: &mut Record) {
        let reserved = record.budget_reserved.take();
        self.price_only(record);
        if let (Some(budget), Some(reserved)) = (&self.budget, reserved) {
            budget.release(reserved);
        }
    }

    fn price_only(&mut self, record: &mut Record) {
        // Embeddings and moderations (answers with items) generate nothing: no output to price.
        let output = record.output_tokens.or(record.items.map(|_| 0));
        // Moderations report no usage: a free model needs none to price at zero.
        let input = record.input_tokens.or(record.items.map(|_| 0).filter(|_| {
            record
                .model
                .as_deref()
                .and_then(|m| self.table.lookup(m))
                .is_some_and(|p| p.is_free())
        }));
        let (Some(model), Some(input), Some(output)) = (&record.model, input, output) else {
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
        // To the nano-dollar: no float noise such as 0.000018750000000000002 in the records.
        let cost = (price.rates(tier).cost(&tokens) * 1e9).round() / 1e9;
        record.cost_usd = Some(cost);
        if let Some(budget) = &self.budget {
            budget.spend(cost);
        }
    }

    pub fn unpriced_models(&self) -> Vec<String> {
        self.unpriced.iter().cloned().collect()
    }
}
