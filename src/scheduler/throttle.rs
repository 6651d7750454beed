//! Pacing for the whole run: `--rps`/`--rpm`/`--tpm` limits, the server's announced request limit, a
//! pause when the server says to wait, and a concurrency that halves on 429 and grows back (AIMD).

use crate::client::{Asked, RateHints, Wait};
use crate::stats::ServerPacing;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long to pause everything after a 429 that names no wait.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// Server-requested waits at least this long are shown on the progress bar and logged (`-v`).
pub const VISIBLE_WAIT: Duration = Duration::from_secs(3);

/// Share of a server-announced limit the run paces itself to: a margin for the skew between the
/// client's and the server's clocks and for network jitter.
const ANNOUNCED_SHARE: f64 = 0.95;

pub struct Throttle {
    requests: Option<DefaultDirectRateLimiter>,
    /// `--tpm`: a bucket refilled continuously that holds a tenth of a second of tokens, and that
    /// capacity (a request's tokens are taken in pieces of it, so none is too large to wait for).
    tokens: Option<(DefaultDirectRateLimiter, NonZeroU32)>,
    /// Requests per minute the server announced (`x-ratelimit-limit-requests`), paced evenly.
    announced: OnceLock<(u64, DefaultDirectRateLimiter)>,
    epoch: Instant,
    paused_until_us: AtomicU64,
    limit: AtomicUsize,
    lowest_limit: AtomicUsize,
    max: usize,
    successes: AtomicUsize,
    slot_freed: Notify,
    /// `--max-server-wait`: no wait a server asks for is honoured for longer.
    max_server_wait: Duration,
    pauses: AtomicU64,
    paused_us: AtomicU64,
    capped_waits: AtomicU64,
    /// The longest server-requested wait obeyed, and the latest one worth showing (≥ VISIBLE_WAIT)
    /// with when it ends (µs from `epoch`). Written only on such waits, read by the progress bar.
    longest: Mutex<Option<Wait>>,
    notice: Mutex<Option<(Wait, u64)>>,
    /// Whether answers change the pacing (pauses, announced limits, AIMD); off for a benchmark,
    /// which keeps the load it was asked for.
    follow_server: bool,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Throttle(limit {} of {})", self.limit(), self.max)
    }
}

/// Takes `n` tokens from a bucket of capacity `burst`, a bucketful at a time.
async fn take_tokens(limiter: &DefaultDirectRateLimiter, burst: NonZeroU32, mut n: u32) {
    while let Some(piece) = NonZeroU32::new(n.min(burst.get())) {
        // A piece never exceeds the capacity: the error (InsufficientCapacity) cannot happen.
        let _ = limiter.until_n_ready(piece).await;
        n -= piece.get();
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
        max_server_wait: Duration,
    ) -> Throttle {
        let per_second = [rps, rpm.map(|m| m / 60.0)]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        let requests = per_second
            .is_finite()
            .then(|| every(Duration::from_secs_f64(1.0 / per_second)))
            .flatten();
        // A minute's tokens at once (governor's per-minute quota) sent 81 requests in the first
        // 138 ms at --tpm 20000; providers enforce sub-minute windows, so the bucket holds 100 ms.
        let tokens = tpm.and_then(NonZeroU32::new).and_then(|t| {
            let burst = NonZeroU32::new(t.get() / 600).unwrap_or(NonZeroU32::MIN);
            let period = Duration::from_secs_f64(60.0 / f64::from(t.get()));
            Quota::with_period(period).map(|q| (RateLimiter::direct(q.allow_burst(burst)), burst))
        });
        Throttle {
            requests,
            tokens,
            announced: OnceLock::new(),
            epoch: Instant::now(),
            paused_until_us: AtomicU64::new(0),
            limit: AtomicUsize::new(concurrency),
            lowest_limit: AtomicUsize::new(concurrency),
            max: concurrency,
            successes: AtomicUsize::new(0),
            slot_freed: Notify::new(),
            max_server_wait,
            pauses: AtomicU64::new(0),
            paused_us: AtomicU64::new(0),
            capped_waits: AtomicU64::new(0),
            longest: Mutex::new(None),
            notice: Mutex::new(None),
            follow_server: true,
        }
    }

    /// Whether answers can pause, slow or narrow the load (false: `limits_only`).
    pub fn follows_server(&self) -> bool {
        self.follow_server
    }

    /// Only the `--rps`/`--rpm`/`--tpm` limits: answers never pause, slow or narrow the load.
    pub fn limits_only(mut self) -> Throttle {
        self.follow_server = false;
        self
    }

    /// Waits until an attempt estimated at `tokens` may be sent.
    pub async fn before_send(&self, tokens: u32) {
        // A pause can begin while this attempt waits for its turn: look again after each wait.
        loop {
            self.wait_pause().await;
            if let Some(limiter) = &self.requests {
                limiter.until_ready().await;
            }
            if let Some((_, limiter)) = self.announced.get() {
                limiter.until_ready().await;
            }
            if !self.paused() {
                break;
            }
        }
        if let Some((limiter, burst)) = &self.tokens {
            take_tokens(limiter, *burst, tokens.max(1)).await;
        }
    }

    /// Corrects `--tpm` by a request's actual usage: tokens beyond its estimate are taken from the
    /// budget before its slot is given back (tokens below it are not refunded: the limiter errs slow).
    pub async fn settle_tokens(&self, estimated: u32, actual: Option<u64>) {
        let (Some((limiter, burst)), Some(actual)) = (&self.tokens, actual) else {
            return;
        };
        let extra = actual.saturating_sub(u64::from(estimated));
        take_tokens(limiter, *burst, u32::try_from(extra).unwrap_or(u32::MAX)).await;
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

    /// Pauses every send for `wait` (extending a shorter pause); true when this began or extended one.
    fn pause_for(&self, wait: Wait) -> bool {
        let now = self.epoch.elapsed().as_micros() as u64;
        let until = now + wait.wait.as_micros() as u64;
        let before = self.paused_until_us.fetch_max(until, Ordering::Relaxed);
        if before >= until {
            return false;
        }
        self.pauses.fetch_add(1, Ordering::Relaxed);
        self.paused_us
            .fetch_add(until - before.max(now), Ordering::Relaxed);
        self.note_wait(&wait);
        true
    }

    /// Records a server-requested wait (a pause, or one request's retry wait) for the summary, and
    /// shows one of at least `VISIBLE_WAIT` on the progress bar and in the `-v` log.
    pub fn note_wait(&self, wait: &Wait) {
        if wait.asked.is_none() {
            return;
        }
        if wait.capped() {
            self.capped_waits.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut longest) = self.longest.lock()
            && longest.is_none_or(|l| l.wait < wait.wait)
        {
            *longest = Some(*wait);
        }
        if wait.wait >= VISIBLE_WAIT {
            tracing::info!(wait_s = wait.wait.as_secs_f64(), source = %wait, "waiting as the server asked");
            let until = (self.epoch.elapsed() + wait.wait).as_micros() as u64;
            if let Ok(mut notice) = self.notice.lock() {
                *notice = Some((*wait, until));
            }
        }
    }

    fn server_wait(&self, asked: Option<Asked>) -> Wait {
        match asked {
            Some(asked) => Wait::server(asked, self.max_server_wait),
            None => Wait {
                wait: DEFAULT_PAUSE,
                asked: None,
            },
        }
    }

    /// Learns from one attempt's answer: its HTTP status and rate-limit headers.
    pub fn observe(&self, http_status: Option<u16>, hints: &RateHints) {
        if !self.follow_server {
            return;
        }
        if let Some(per_minute) = hints.limit_requests.filter(|l| *l > 0)
            && self.announced.get().is_none()
            && let Some(limiter) = every(Duration::from_secs_f64(
                60.0 / (per_minute as f64 * ANNOUNCED_SHARE),
            ))
        {
            let _ = self.announced.set((per_minute, limiter));
        }
        if http_status == Some(429) {
            let wait = self.server_wait(hints.server_wait());
            // One halving per pause, however many answers of a burst come back 429.
            if self.pause_for(wait) {
                let _ = self
                    .limit
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
                        Some((l / 2).max(1))
                    });
                self.lowest_limit.fetch_min(self.limit(), Ordering::Relaxed);
                self.successes.store(0, Ordering::Relaxed);
            }
            return;
        }
        // An exhausted window (of requests or of tokens; the longer reset when both are).
        let exhausted = [
            hints
                .reset_requests
                .filter(|_| hints.remaining_requests == Some(0)),
            hints
                .reset_tokens
                .filter(|_| hints.remaining_tokens == Some(0)),
        ];
        if hints.remaining_requests == Some(0) || hints.remaining_tokens == Some(0) {
            let longest = exhausted.into_iter().flatten().max_by_key(|a| a.wait);
            self.pause_for(self.server_wait(longest));
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

    /// What the server made the client do right now, for the progress bar: a pause or wait still
    /// running, the announced limit obeyed, a lowered concurrency. `None` when nothing.
    pub fn status_line(&self) -> Option<String> {
        let now = self.epoch.elapsed().as_micros() as u64;
        let mut parts = Vec::new();
        if let Ok(notice) = self.notice.lock()
            && let Some((wait, until)) = *notice
            && until > now
        {
            parts.push(format!(
                "waiting {:.0}s more ({wait})",
                (until - now) as f64 / 1e6
            ));
        }
        if let Some((per_minute, _)) = self.announced.get() {
            parts.push(format!(
                "paced to {:.0}/min (server limit {per_minute}/min)",
                *per_minute as f64 * ANNOUNCED_SHARE
            ));
        }
        let limit = self.limit();
        if limit < self.max {
            parts.push(format!("concurrency {limit} of {} after 429s", self.max));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// How the server slowed the run, for the summary; `None` when it never did.
    pub fn report(&self) -> Option<ServerPacing> {
        let pauses = self.pauses.load(Ordering::Relaxed);
        let longest = self.longest.lock().ok().and_then(|l| *l);
        let announced = self.announced.get().map(|(per_minute, _)| *per_minute);
        let lowest = self.lowest_limit.load(Ordering::Relaxed);
        if pauses == 0 && longest.is_none() && announced.is_none() && lowest == self.max {
            return None;
        }
        Some(ServerPacing {
            pauses,
            paused_s: self.paused_us.load(Ordering::Relaxed) as f64 / 1e6,
            longest_wait_s: longest.map(|w| w.wait.as_secs_f64()),
            longest_wait_source: longest.map(|w| w.to_string()),
            capped_waits: self.capped_waits.load(Ordering::Relaxed),
            max_server_wait_s: self.max_server_wait.as_secs_f64(),
            announced_requests_per_min: announced,
            paced_to_requests_per_min: announced.map(|a| a as f64 * ANNOUNCED_SHARE),
            lowest_concurrency: (lowest < self.max).then_some(lowest),
            concurrency: self.max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_WAIT: Duration = Duration::from_secs(60);

    fn hints() -> RateHints {
        RateHints::default()
    }

    fn asked(wait: Duration) -> Option<Asked> {
        Some(Asked {
            wait,
            header: "retry-after",
        })
    }

    #[test]
    fn concurrency_halves_on_429_and_grows_back_by_one() {
        let throttle = Throttle::new(None, None, None, 32, MAX_WAIT);
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: asked(Duration::from_millis(1)),
                ..hints()
            },
        );
        assert_eq!(throttle.limit(), 16);
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: asked(Duration::from_micros(1)),
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
        let throttle = Throttle::new(None, None, None, 4, MAX_WAIT);
        let start = tokio::time::Instant::now();
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: asked(Duration::from_secs(2)),
                ..hints()
            },
        );
        throttle.before_send(1).await;
        assert!(start.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_asking_an_hour_pauses_no_longer_than_max_server_wait_and_says_so() {
        let throttle = Throttle::new(None, None, None, 4, Duration::from_secs(60));
        let start = tokio::time::Instant::now();
        throttle.observe(
            Some(429),
            &RateHints {
                retry_after: asked(Duration::from_secs(3600)),
                ..hints()
            },
        );
        let shown = throttle.status_line().unwrap();
        assert!(
            shown.contains("retry-after: 1h asked, capped at 1m"),
            "{shown}"
        );
        throttle.before_send(1).await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
            "{waited:?}"
        );
        let report = throttle.report().unwrap();
        assert_eq!((report.pauses, report.capped_waits), (1, 1));
        assert_eq!(report.longest_wait_s, Some(60.0));
        assert_eq!(report.lowest_concurrency, Some(2));
    }

    #[tokio::test]
    async fn tokens_beyond_the_estimate_are_charged_to_tpm() {
        // 600 tokens a minute: 10 a second, a bucket of 1.
        let throttle = Throttle::new(None, None, Some(600), 4, MAX_WAIT);
        throttle.before_send(1).await;
        let start = std::time::Instant::now();
        throttle.settle_tokens(1, Some(6)).await;
        assert!(
            start.elapsed() >= Duration::from_millis(400),
            "5 extra tokens wait half a second"
        );
    }

    #[tokio::test]
    async fn tpm_spreads_tokens_evenly_instead_of_a_minute_at_once() {
        // 60,000 a minute is 1,000 a second: ten requests of 100 tokens take about a second,
        // never the whole minute's budget at once.
        let throttle = Throttle::new(None, None, Some(60_000), 4, MAX_WAIT);
        let start = std::time::Instant::now();
        for _ in 0..10 {
            throttle.before_send(100).await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(850), "{took:?}");
        // A request larger than the bucket still gets its share of time, not a free pass.
        let start = std::time::Instant::now();
        throttle.before_send(500).await;
        assert!(
            start.elapsed() >= Duration::from_millis(450),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn requests_per_second_are_paced() {
        let throttle = Throttle::new(Some(200.0), Some(60_000.0), None, 4, MAX_WAIT);
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
