//! Pacing for the whole run: `--rps`/`--rpm`/`--tpm` limits, the server's announced request limit, a
//! pause when the server says to wait, and a concurrency that halves on 429 and grows back (AIMD).

use crate::client::RateHints;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long to pause everything after a 429 that names no wait.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// Share of a server-announced limit the run paces itself to: a margin for the skew between the
/// client's and the server's clocks and for network jitter.
const ANNOUNCED_SHARE: f64 = 0.95;

pub struct Throttle {
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<DefaultDirectRateLimiter>,
    /// Requests per minute the server announced (`x-ratelimit-limit-requests`), paced evenly.
    announced: OnceLock<DefaultDirectRateLimiter>,
    epoch: Instant,
    paused_until_us: AtomicU64,
    limit: AtomicUsize,
    max: usize,
    successes: AtomicUsize,
    slot_freed: Notify,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Throttle(limit {} of {})", self.limit(), self.max)
    }
}

fn every(period: Duration) -> Option<DefaultDirectRateLimiter> {
    Quota::with_period(period).map(RateLimiter::direct)
}

impl Throttle {
    /// `rps`/`rpm` pace requests evenly (the stricter wins); `tpm` caps estimated tokens per minute.
    pub fn new(
        rps: Option<f64>,
        rpm: Option<f64>,
        tpm: Option<u32>,
        concurrency: usize,
    ) -> Throttle {
        let per_second = [rps, rpm.map(|m| m / 60.0)]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        let requests = per_second
            .is_finite()
            .then(|| every(Duration::from_secs_f64(1.0 / per_second)))
            .flatten();
        let tokens = tpm
            .and_then(NonZeroU32::new)
            .map(|t| RateLimiter::direct(Quota::per_minute(t)));
        Throttle {
            requests,
            tokens,
            announced: OnceLock::new(),
            epoch: Instant::now(),
            paused_until_us: AtomicU64::new(0),
            limit: AtomicUsize::new(concurrency),
            max: concurrency,
            successes: AtomicUsize::new(0),
            slot_freed: Notify::new(),
        }
    }

    /// Waits until an attempt estimated at `tokens` may be sent.
    pub async fn before_send(&self, tokens: u32) {
        // A pause can begin while this attempt waits for its turn: look again after each wait.
        loop {
            self.wait_pause().await;
            if let Some(limiter) = &self.requests {
                limiter.until_ready().await;
            }
            if let Some(limiter) = self.announced.get() {
                limiter.until_ready().await;
            }
            if !self.paused() {
                break;
            }
        }
        if let Some(limiter) = &self.tokens {
            // A request larger than the whole per-minute budget still goes, alone.
            let n = NonZeroU32::new(tokens.max(1)).unwrap_or(NonZeroU32::MIN);
            if limiter.until_n_ready(n).await.is_err() {
                limiter.until_ready().await;
            }
        }
    }

    /// Corrects `--tpm` by a request's actual usage: tokens beyond its estimate are taken from the
    /// budget before its slot is given back (tokens below it are not refunded: the limiter errs slow).
    pub async fn settle_tokens(&self, estimated: u32, actual: Option<u64>) {
        let (Some(limiter), Some(actual)) = (&self.tokens, actual) else {
            return;
        };
        let extra = actual.saturating_sub(u64::from(estimated));
        if let Some(extra) = NonZeroU32::new(u32::try_from(extra).unwrap_or(u32::MAX))
            && limiter.until_n_ready(extra).await.is_err()
        {
            limiter.until_ready().await;
        }
    }

    async fn wait_pause(&self) {
        loop {
            let until = self.paused_until_us.load(Ordering::Relaxed);
            let now = self.epoch.elapsed().as_micros() as u64;
            if until <= now {
                return;
            }
            tokio::time::sleep(Duration::from_micros(until - now)).await;
        }
    }

    fn paused(&self) -> bool {
        self.paused_until_us.load(Ordering::Relaxed) > self.epoch.elapsed().as_micros() as u64
    }

    fn pause_for(&self, wait: Duration) -> bool {
        let until = (self.epoch.elapsed() + wait).as_micros() as u64;
        self.paused_until_us.fetch_max(until, Ordering::Relaxed) < until
    }

    /// Learns from one attempt's answer: its HTTP status and rate-limit headers.
    pub fn observe(&self, http_status: Option<u16>, hints: &RateHints) {
        if let Some(per_minute) = hints.limit_requests.filter(|l| *l > 0)
            && self.announced.get().is_none()
            && let Some(limiter) = every(Duration::from_secs_f64(
                60.0 / (per_minute as f64 * ANNOUNCED_SHARE),
            ))
        {
            let _ = self.announced.set(limiter);
        }
        if http_status == Some(429) {
            let wait = hints
                .retry_after
                .or(hints.reset_requests)
                .unwrap_or(DEFAULT_PAUSE);
            // One halving per pause, however many answers of a burst come back 429.
            if self.pause_for(wait) {
                let _ = self
                    .limit
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                        Some((l / 2).max(1))
                    });
                self.successes.store(0, Ordering::Relaxed);
            }
            return;
        }
        if hints.remaining_requests == Some(0) {
            self.pause_for(hints.reset_requests.unwrap_or(DEFAULT_PAUSE));
        }
        if http_status.is_some_and(|s| (200..300).contains(&s)) {
            let limit = self.limit.load(Ordering::Relaxed);
            if limit < self.max && self.successes.fetch_add(1, Ordering::Relaxed) + 1 >= limit {
                self.successes.store(0, Ordering::Relaxed);
                let _ = self.limit.compare_exchange(
                    limit,
                    limit + 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                self.slot_freed.notify_one();
            }
        }
    }

    /// The concurrency allowed now (between 1 and `-c`).
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Waits until fewer than the allowed number of requests are in flight.
    pub async fn wait_for_slot(&self, in_flight: &AtomicUsize) {
        loop {
            let freed = self.slot_freed.notified();
            if in_flight.load(Ordering::Relaxed) < self.limit() {
                return;
            }
            freed.await;
        }
    }

    /// A request finished: the dispatcher may have room again.
    pub fn finished(&self) {
        self.slot_freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints() -> RateHints {
        RateHints::default()
    }

    #[test]
    fn concurrency_halves_on_429_and_grows_back_by_one() {
        let throttle = Throttle::new(None, None, None, 32);
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: Some(Duration::from_millis(1)),
                ..hints()
            },
        );
        assert_eq!(throttle.limit(), 16);
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: Some(Duration::from_micros(1)),
                ..hints()
            },
        );
        assert_eq!(
            throttle.limit(),
            16,
            "a burst of 429s within one pause halves once"
        );
        for _ in 0..16 {
            throttle.observe(Some(200), &hints());
        }
        assert_eq!(throttle.limit(), 17);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_every_send_for_the_asked_time() {
        let throttle = Throttle::new(None, None, None, 4);
        let start = tokio::time::Instant::now();
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: Some(Duration::from_secs(2)),
                ..hints()
            },
        );
        throttle.before_send(1).await;
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn tokens_beyond_the_estimate_are_charged_to_tpm() {
        // 600 tokens a minute: 10 a second once the minute's budget is spent.
        let throttle = Throttle::new(None, None, Some(600), 4);
        throttle.before_send(600).await;
        let start = std::time::Instant::now();
        throttle.settle_tokens(600, Some(605)).await;
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "5 extra tokens wait half a second"
        );
    }

    #[tokio::test]
    async fn requests_per_second_are_paced() {
        let throttle = Throttle::new(Some(200.0), Some(60_000.0), None, 4);
        let start = std::time::Instant::now();
        for _ in 0..21 {
            throttle.before_send(1).await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "21 sends at 200/s take at least 100 ms"
        );
    }
}
