//! `--max-cost`: stops dispatch before spent dollars plus what is in flight would pass the limit.

use super::{PriceTable, Tier, TokenCounts};
use crate::workload::{Request, request_model};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Output tokens assumed for a request before any answer has shown what the workload produces.
const FIRST_GUESS_OUTPUT_TOKENS: u64 = 256;

/// Shared between the collector (which adds what was spent) and the scheduler (which reserves an
/// estimate for each request it sends). Amounts are kept in micro-dollars in atomics: no locks.
pub struct Budget {
    limit_micros: u64,
    spent_micros: AtomicU64,
    priced: AtomicU64,
    reserved_micros: AtomicU64,
    stopped: AtomicBool,
    prices: Arc<PriceTable>,
    tier: Tier,
}

fn micros(usd: f64) -> u64 {
    (usd * 1e6).ceil() as u64
}

impl Budget {
    pub fn new(limit_usd: f64, prices: Arc<PriceTable>, tier: Tier) -> Self {
        Budget {
            limit_micros: micros(limit_usd),
            spent_micros: AtomicU64::new(0),
            priced: AtomicU64::new(0),
            reserved_micros: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            prices,
            tier,
        }
    }

    /// A finished request cost this much.
    pub fn spend(&self, usd: f64) {
        self.spent_micros.fetch_add(micros(usd), Ordering::Relaxed);
        self.priced.fetch_add(1, Ordering::Relaxed);
    }

    /// Reserves the estimated cost of `request`; `None` (and the budget stops for good) when spent
    /// plus reserved plus this estimate would pass the limit.
    pub fn reserve(&self, request: &Request) -> Option<u64> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let estimate = self.estimate_micros(request);
        let committed = self.spent_micros.load(Ordering::Relaxed)
            + self.reserved_micros.load(Ordering::Relaxed);
        if committed + estimate > self.limit_micros {
            self.stopped.store(true, Ordering::Relaxed);
            return None;
        }
        self.reserved_micros.fetch_add(estimate, Ordering::Relaxed);
        Some(estimate)
    }

    /// Gives back a reservation once its request has finished (its real cost arrives via `spend`).
    pub fn release(&self, reserved: u64) {
        self.reserved_micros.fetch_sub(reserved, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// The mean cost of the answers so far; before any, the body's size as input tokens (4 bytes a
    /// token, which over-counts JSON) plus `FIRST_GUESS_OUTPUT_TOKENS` at the model's price.
    fn estimate_micros(&self, request: &Request) -> u64 {
        let priced = self.priced.load(Ordering::Relaxed);
        if priced > 0 {
            return self.spent_micros.load(Ordering::Relaxed).div_ceil(priced);
        }
        let model = request
            .model
            .clone()
            .or_else(|| request_model(&request.body));
        let Some(price) = model.as_deref().and_then(|m| self.prices.lookup(m)) else {
            return 0;
        };
        let tokens = TokenCounts {
            input: request.body.len() as u64 / 4,
            output: FIRST_GUESS_OUTPUT_TOKENS,
            ..TokenCounts::default()
        };
        micros(price.rates(self.tier).cost(&tokens))
    }
}
