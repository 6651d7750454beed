//! The bootstrap of one sample's percentile and share, drawn in O(1) per resample: `compare`'s
//! rows and a capacity search's probes judge their noise the same way.
//!
//! The k-th smallest of n values resampled with replacement is the value at the k-th order
//! statistic of n uniforms, a Beta(k, n − k + 1) draw (Efron & Tibshirani, *An Introduction to the
//! Bootstrap*); a share's resample is a Binomial(n, p) draw.

use rand::SeedableRng;
use rand_distr::{Beta, Binomial, Distribution};

/// The 1-based rank of quantile `q` among `n` sorted values (HdrHistogram's and numpy's
/// "inverted CDF" percentile: the smallest value with at least q·n values at or below it).
pub fn rank(q: f64, n: usize) -> usize {
    // Less a hair: 0.9 × 100 is 90.00000000000001 in binary, whose ceiling would be 91.
    ((q * n as f64 - 1e-9).ceil() as usize).clamp(1, n)
}

/// The 0-based index, into `n` sorted values, of one bootstrap resample's `q` percentile.
pub fn percentile_index(q: f64, n: usize, rng: &mut impl rand::Rng) -> usize {
    let k = rank(q, n);
    let u: f64 = Beta::new(k as f64, (n - k + 1) as f64)
        .map(|beta| beta.sample(rng))
        .unwrap_or(q);
    ((u * n as f64) as usize).min(n - 1)
}

/// Resamples drawn for an interval: enough for a 95% interval's ends to settle to a few parts in
/// a thousand.
pub const RESAMPLES: usize = 2000;

/// The central `confidence` interval of the bootstrap distribution of the `q` percentile of `n`
/// sorted values, `value_at(i)` giving the i-th (0-based; may be infinite). Deterministic: the
/// draws are seeded.
pub fn percentile_interval(
    q: f64,
    n: usize,
    confidence: f64,
    value_at: impl Fn(usize) -> f64,
) -> (f64, f64) {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x5eed);
    let mut indices: Vec<usize> = (0..RESAMPLES)
        .map(|_| percentile_index(q, n, &mut rng))
        .collect();
    indices.sort_unstable();
    let (low, high) = tails(&indices, confidence);
    (value_at(low), value_at(high))
}

/// The central `confidence` interval of the bootstrap distribution of the share `hits / n`.
pub fn share_interval(hits: u64, n: u64, confidence: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let p = hits as f64 / n as f64;
    let Ok(binomial) = Binomial::new(n, p) else {
        return (p, p);
    };
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x5eed);
    let mut draws: Vec<u64> = (0..RESAMPLES).map(|_| binomial.sample(&mut rng)).collect();
    draws.sort_unstable();
    let (low, high) = tails(&draws, confidence);
    (low as f64 / n as f64, high as f64 / n as f64)
}

/// The values at the two tails of a sorted resample cutting off (1 − confidence) / 2 each.
fn tails<T: Copy>(sorted: &[T], confidence: f64) -> (T, T) {
    let cut = ((1.0 - confidence) / 2.0 * sorted.len() as f64) as usize;
    let high = sorted.len() - 1 - cut.min(sorted.len() - 1);
    (sorted[cut.min(high)], sorted[high])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentiles_interval_narrows_as_the_sample_grows() {
        // Values 0..n: the p50's interval is about ±1.96·√(n/4) ranks.
        let width = |n: usize| {
            let (low, high) = percentile_interval(0.5, n, 0.95, |i| i as f64);
            assert!(low <= (n / 2) as f64 && (n / 2) as f64 <= high + 1.0);
            high - low
        };
        let (small, large) = (width(100), width(10_000));
        assert!((15.0..25.0).contains(&small), "n=100: {small}");
        assert!((180.0..220.0).contains(&large), "n=10000: {large}");
        // p99 of 50 values: the resample can reach the maximum, and past it is infinite.
        let (_, high) = percentile_interval(0.99, 50, 0.95, |i| {
            if i >= 49 { f64::INFINITY } else { i as f64 }
        });
        assert!(high.is_infinite());
    }

    #[test]
    fn a_shares_interval_holds_the_share_and_narrows_with_n() {
        let (low, high) = share_interval(90, 100, 0.95);
        assert!(
            low < 0.9 && 0.9 < high && high - low > 0.08,
            "{low}..{high}"
        );
        let (low, high) = share_interval(9000, 10_000, 0.95);
        assert!(
            low < 0.9 && 0.9 < high && high - low < 0.015,
            "{low}..{high}"
        );
        assert_eq!(share_interval(10, 10, 0.95), (1.0, 1.0));
    }
}
