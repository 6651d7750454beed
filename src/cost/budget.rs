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
        // Reserved before spent: a request that settles between the two reads (the collector
        // spends, then releases) is then counted twice, never missed.
        let holders = self.holders.load(Ordering::Acquire);
        let reserved = self.reserved_micros.load(Ordering::Acquire);
        let committed = self.spent_micros.load(Ordering::Acquire) + reserved;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Route;
    use bytes::Bytes;

    fn request() -> Request {
        Request {
            line: 1,
            id: "1".into(),
            route: Route::Responses,
            body: Bytes::from_static(b"{\"model\":\"gpt-4.1\",\"input\":\"hi\"}"),
            model: Some("gpt-4.1".into()),
            max_output_tokens: None,
            metadata: None,
            timestamp: None,
            conversation: None,
            prior_turns: None,
            usage_option_added: false,
        }
    }

    fn budget(limit_usd: f64) -> Budget {
        Budget::new(limit_usd, Arc::new(PriceTable::default()), Tier::Standard)
    }

    #[test]
    fn a_launch_that_does_not_fit_waits_while_requests_are_in_flight_and_ends_the_budget_when_none_are()
     {
        let budget = budget(0.01);
        // After one answer of $0.004, each launch reserves $0.004.
        let Reservation::Reserved(first) = budget.reserve(&request()) else {
            panic!("the first fits")
        };
        budget.spend(0.004);
        budget.release(first);
        let reserved: Vec<u64> = (0..1)
            .map(|_| match budget.reserve(&request()) {
                Reservation::Reserved(r) => r,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(reserved, [4000]);
        // $0.004 spent + $0.004 held + $0.004 more > $0.01: wait for the one in flight.
        assert_eq!(budget.reserve(&request()), Reservation::Wait);
        assert!(!budget.stopped());
        // It settles cheaper than it held ($0.001): the next one fits after all.
        budget.spend(0.001);
        budget.release(reserved[0]);
        let Reservation::Reserved(next) = budget.reserve(&request()) else {
            panic!("fits once the flight settled")
        };
        budget.spend(0.004);
        budget.release(next);
        // $0.009 spent, nothing in flight, $0.004 more does not fit: the budget ends, for good.
        assert_eq!(budget.reserve(&request()), Reservation::Exhausted);
        assert!(budget.stopped());
        assert_eq!(budget.reserve(&request()), Reservation::Exhausted);
    }

    #[tokio::test]
    async fn a_release_before_the_wait_begins_still_wakes_it() {
        let budget = budget(1.0);
        let Reservation::Reserved(r) = budget.reserve(&request()) else {
            panic!()
        };
        budget.release(r);
        // The permit was stored: this returns at once instead of waiting for ever.
        tokio::time::timeout(std::time::Duration::from_secs(1), budget.settled())
            .await
            .expect("woken by the earlier release");
    }

    #[test]
    fn a_resumed_job_starts_with_what_earlier_sessions_spent() {
        let budget = budget(0.02).with_prior_spend(0.015, 10, 0.003);
        // $0.015 spent, the dearest $0.003: one more fits ($0.018), a second would not.
        let Reservation::Reserved(r) = budget.reserve(&request()) else {
            panic!()
        };
        assert_eq!(r, 3000);
        budget.spend(0.003);
        budget.release(r);
        assert_eq!(budget.reserve(&request()), Reservation::Exhausted);
        assert!((budget.session_spent_usd() - 0.003).abs() < 1e-9);
    }
}
