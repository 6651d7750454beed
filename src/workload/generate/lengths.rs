//! Token-length specs (`512`, `uniform:256..1024`, `normal:512,64`, `lognormal:512,256`) and their
//! draws: how long each generated prompt or answer is.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, LogNormal, Normal};

/// The longest length a spec may draw (tokens): longer than any model's context today.
pub const MAX_TOKENS: u32 = 10_000_000;

/// A token length, fixed or drawn per line. Draws are rounded to whole tokens and kept within
/// 1..=`MAX_TOKENS`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lengths {
    /// Every line gets this many tokens.
    Fixed(u32),
    /// Uniform over `low..=high`, both included.
    Uniform { low: u32, high: u32 },
    /// Normal with this mean and standard deviation (tokens).
    Normal { mean: f64, sd: f64 },
    /// Log-normal with this mean and standard deviation (tokens, not the logarithm's): long
    /// right tails, as real prompt and answer lengths have.
    LogNormal { mean: f64, sd: f64 },
}

impl Lengths {
    /// Parses `N`, `uniform:LOW..HIGH`, `normal:MEAN,SD` or `lognormal:MEAN,SD`.
    ///
    /// # Errors
    /// A message naming the accepted forms when `spec` is none of them or out of range.
    pub fn parse(spec: &str) -> Result<Lengths, String> {
        const FORMS: &str =
            "expected N, uniform:LOW..HIGH, normal:MEAN,SD or lognormal:MEAN,SD (tokens)";
        let bad = || format!("{spec:?}: {FORMS}");
        let count = |s: &str| -> Result<u32, String> {
            match s.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_TOKENS).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{spec:?}: {s:?} is not a token count from 1 to {MAX_TOKENS}"
                )),
            }
        };
        let pair = |s: &str| -> Result<(f64, f64), String> {
            let (mean, sd) = s.split_once(',').ok_or_else(bad)?;
            let (mean, sd) = (
                mean.trim().parse::<f64>().map_err(|_| bad())?,
                sd.trim().parse::<f64>().map_err(|_| bad())?,
            );
            if !(mean.is_finite() && mean >= 1.0 && sd.is_finite() && sd >= 0.0) {
                return Err(format!(
                    "{spec:?}: the mean must be at least 1 and the standard deviation not negative"
                ));
            }
            Ok((mean, sd))
        };
        match spec.split_once(':') {
            None => count(spec).map(Lengths::Fixed),
            Some(("uniform", range)) => {
                let (low, high) = range.split_once("..").ok_or_else(bad)?;
                let (low, high) = (count(low)?, count(high.trim_start_matches('='))?);
                if low > high {
                    return Err(format!("{spec:?}: LOW must not exceed HIGH"));
                }
                Ok(Lengths::Uniform { low, high })
            }
            Some(("normal", p)) => pair(p).map(|(mean, sd)| Lengths::Normal { mean, sd }),
            Some(("lognormal", p)) => pair(p).map(|(mean, sd)| Lengths::LogNormal { mean, sd }),
            Some(_) => Err(bad()),
        }
    }

    /// One draw.
    pub fn draw(&self, rng: &mut impl Rng) -> u32 {
        self.draw_clamped(rng).0
    }

    /// One draw, and whether it fell outside 1..=MAX_TOKENS and was clamped to it (a normal
    /// with a large deviation draws many lengths below one token).
    pub fn draw_clamped(&self, rng: &mut impl Rng) -> (u32, bool) {
        let real = match *self {
            Lengths::Fixed(n) => return (n, false),
            Lengths::Uniform { low, high } => return (rng.random_range(low..=high), false),
            Lengths::Normal { mean, sd } => match Normal::new(mean, sd) {
                Ok(normal) => normal.sample(rng),
                Err(_) => mean,
            },
            Lengths::LogNormal { mean, sd } => {
                // The underlying normal's parameters for this mean and deviation.
                let sigma2 = (1.0 + (sd / mean).powi(2)).ln();
                match LogNormal::new(mean.ln() - sigma2 / 2.0, sigma2.sqrt()) {
                    Ok(lognormal) => lognormal.sample(rng),
                    Err(_) => mean,
                }
            }
        };
        let rounded = real.round();
        let clamped = rounded.clamp(1.0, f64::from(MAX_TOKENS));
        (clamped as u32, clamped != rounded)
    }

    /// The largest length a draw can take, when bounded.
    pub fn max(&self) -> Option<u32> {
        match *self {
            Lengths::Fixed(n) => Some(n),
            Lengths::Uniform { high, .. } => Some(high),
            Lengths::Normal { .. } | Lengths::LogNormal { .. } => None,
        }
    }
}

impl std::fmt::Display for Lengths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lengths::Fixed(n) => write!(f, "{n}"),
            Lengths::Uniform { low, high } => write!(f, "uniform:{low}..{high}"),
            Lengths::Normal { mean, sd } => write!(f, "normal:{mean},{sd}"),
            Lengths::LogNormal { mean, sd } => write!(f, "lognormal:{mean},{sd}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn specs_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(Lengths::parse("512"), Ok(Lengths::Fixed(512)));
        assert_eq!(
            Lengths::parse("uniform:256..1024"),
            Ok(Lengths::Uniform {
                low: 256,
                high: 1024
            })
        );
        assert_eq!(
            Lengths::parse("normal:512,64"),
            Ok(Lengths::Normal {
                mean: 512.0,
                sd: 64.0
            })
        );
        assert!(matches!(
            Lengths::parse("lognormal:300,200"),
            Ok(Lengths::LogNormal { .. })
        ));
        for bad in ["0", "-5", "uniform:9..3", "gauss:1,2", "normal:512", "x"] {
            let e = Lengths::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn draws_follow_their_distribution_and_stay_in_range() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let n = 20_000;
        let mean_of = |spec: &str, rng: &mut Pcg64Mcg| {
            let lengths = Lengths::parse(spec).unwrap();
            let draws: Vec<f64> = (0..n).map(|_| f64::from(lengths.draw(rng))).collect();
            assert!(draws.iter().all(|d| *d >= 1.0));
            let mean = draws.iter().sum::<f64>() / n as f64;
            let sd = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
            (mean, sd, draws)
        };
        let (mean, _, draws) = mean_of("uniform:100..200", &mut rng);
        assert!((mean - 150.0).abs() < 2.0, "{mean}");
        assert!(draws.iter().all(|d| (100.0..=200.0).contains(d)));
        let (mean, sd, _) = mean_of("normal:512,64", &mut rng);
        assert!(
            (mean - 512.0).abs() < 3.0 && (sd - 64.0).abs() < 3.0,
            "{mean} {sd}"
        );
        let (mean, sd, draws) = mean_of("lognormal:300,200", &mut rng);
        assert!(
            (mean - 300.0).abs() < 8.0 && (sd - 200.0).abs() < 20.0,
            "{mean} {sd}"
        );
        let median = {
            let mut d = draws.clone();
            d.sort_by(f64::total_cmp);
            d[d.len() / 2]
        };
        assert!(median < mean, "a log-normal's median is below its mean");
        assert_eq!(Lengths::Fixed(7).draw(&mut rng), 7);
    }
}
