//! `--max-cost`: holds each launch back until spent dollars plus what is in flight leave room for
//! it, and stops dispatch only when even an idle budget has none.

use super::{PriceTable, Tier, TokenCounts};
use crate::workload::{Request, request_model};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::Notify;

/// Output tokens assumed for a request before any answer has shown what the workload produces.
const FIRST_GUESS_OUTPUT_TOKENS: u64 = 256;

/// What `Budget::reserve` decided for one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// It fits: this many micro-dollars are held for it until its record is priced.
    Reserved(u64),
    /// It does not fit now, but requests in flight hold reservations: once one settles (its real
    /// cost replaces its estimate, `Budget::settled`) the launch is decided again.
    Wait,
    /// It does not fit with nothing in flight: the budget is spent, for good.
    Exhausted,
}

/// Shared between the collector (which adds what was spent) and the scheduler (which reserves an
/// estimate for each request it sends). Amounts are kept in micro-dollars in atomics: no locks.
pub struct Budget {
    limit_micros: u64,
    spent_micros: AtomicU64,
    /// What earlier sessions of a resumed job spent (inside `spent_micros`).
    prior_micros: u64,
    priced: AtomicU64,
    /// The dearest answer so far: each launch reserves this much.
    dearest_micros: AtomicU64,
    reserved_micros: AtomicU64,
    /// Reservations held (requests in flight), priced or not.
    holders: AtomicU64,
    settled: Notify,
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
            prior_micros: 0,
            priced: AtomicU64::new(0),
            dearest_micros: AtomicU64::new(0),
            reserved_micros: AtomicU64::new(0),
            holders: AtomicU64::new(0),
            settled: Notify::new(),
            stopped: AtomicBool::new(false),
            prices,
            tier,
        }
    }

    /// The budget is the job's: a resumed run starts with what its earlier sessions spent
    /// (`usd`, over `priced` priced records, the dearest costing `dearest` dollars), which also
    /// seeds the per-request estimate.
    pub fn with_prior_spend(mut self, usd: f64, priced: u64, dearest: f64) -> Self {
        let prior = micros(usd);
        self.prior_micros = prior;
        *self.spent_micros.get_mut() = prior;
        *self.priced.get_mut() = priced;
        *self.dearest_micros.get_mut() = micros(dearest);
        self
    }

    /// A finished request cost this much.
    pub fn spend(&self, usd: f64) {
        let cost = micros(usd);
        self.spent_micros.fetch_add(cost, Ordering::AcqRel);
        self.dearest_micros.fetch_max(cost, Ordering::AcqRel);
        self.priced.fetch_add(1, Ordering::AcqRel);
    }

    /// Reserves the estimated cost of `request` when spent plus reserved plus this estimate stays
    /// within the limit; else asks the caller to wait for a request in flight to settle, or, with
    /// none in flight, stops the budget for good.
    pub fn reserve(&self, request: &Request) -> Reservation {
        if self.stopped.load(Ordering::Acquire) {
            return Reservation::Exhausted;
        }
        let estimate = self.estimate_micros(request);
        // Holders are read before the amounts: a request that settles in between has already
        // spent (the collector spends, then releases), so an empty flight seen here is real.
        let holders = self.holders.load(Ordering::Acquire);
        let committed = self.spent_micros.load(Ordering::Acquire)
            + self.reserved_micros.load(Ordering::Acquire);
        if committed + estimate > self.limit_micros {
            if holders > 0 {
                return Reservation::Wait;
            }
            self.stopped.store(true, Ordering::Release);
            return Reservation::Exhausted;
        }
        self.reserved_micros.fetch_add(estimate, Ordering::AcqRel);
        self.holders.fetch_add(1, Ordering::AcqRel);
        Reservation::Reserved(estimate)
    }

    /// Gives back a reservation once its request has finished (its real cost has arrived via
    /// `spend` first), and wakes a launch waiting for room.
    pub fn release(&self, reserved: u64) {
        self.reserved_micros.fetch_sub(reserved, Ordering::AcqRel);
        self.holders.fetch_sub(1, Ordering::AcqRel);
        // A stored permit if nobody waits yet: a launch that saw `Wait` just before this release
        // still wakes.
        self.settled.notify_one();
    }

    /// Resolves after a `release` since the last call: time to try `reserve` again.
    pub async fn settled(&self) {
        self.settled.notified().await;
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// What this session spent, in dollars (the job's spend less earlier sessions').
    pub fn session_spent_usd(&self) -> f64 {
        self.spent_micros
            .load(Ordering::Acquire)
            .saturating_sub(self.prior_micros) as f64
            / 1e6
    }

    /// The dearest answer so far, so that requests in flight rarely cost more than they hold
    /// (the spend passes the limit only by what answers dearer than every earlier one cost
    /// beyond it); before any answer, the body's size as input tokens (4 bytes a token, which
    /// over-counts JSON) plus `FIRST_GUESS_OUTPUT_TOKENS` at the model's price.
    fn estimate_micros(&self, request: &Request) -> u64 {
        if self.priced.load(Ordering::Acquire) > 0 {
            return self.dearest_micros.load(Ordering::Acquire);
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
