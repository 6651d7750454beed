//! `histograms/*.hgrm`: each saved HdrHistogram as percentile-distribution text, the format of
//! HdrHistogram's `outputPercentileDistribution`, which its own plotter
//! (hdrhistogram.github.io/HdrHistogram/plotFiles.html) and other tools read.

use crate::stats::ScaledHistogram;
use anyhow::Context;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use std::fmt::Write as _;
use std::path::Path;

/// Reads a `.hdr` file (HdrHistogram V2, deflated or not); None when it does not exist.
pub fn read_hdr(path: &Path) -> anyhow::Result<Option<Histogram<u64>>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{} is not an HdrHistogram: {e:?}", path.display()))
}

/// The percentile distribution of `h` (values saved in thousandths, written in whole units: ms for
/// times), 5 lines per halving of the remaining tail, as HdrHistogram's Java and C libraries print:
/// `Value Percentile TotalCount 1/(1-Percentile)`, then mean, deviation, max, count.
pub fn render(h: &Histogram<u64>) -> String {
    const SCALE: f64 = 1000.0;
    let places = 3;
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for step in h.iter_quantiles(5) {
        let value = step.value_iterated_to() as f64 / SCALE;
        let q = step.quantile_iterated_to();
        let count = h.count_between(0, step.value_iterated_to());
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{value:>12.places$} {q:>2.12} {count:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:>12.places$} {q:>2.12} {count:>10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.places$}, StdDeviation   = {:>12.places$}]",
        h.mean() / SCALE,
        h.stdev() / SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.places$}, Total count    = {:>12}]",
        h.max() as f64 / SCALE,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        // As HdrHistogram computes it: the power of two holding 2 × 10^significant digits.
        (2.0 * 10f64.powi(i32::from(h.sigfig())))
            .log2()
            .ceil()
            .exp2() as u64
    );
    out
}

/// Writes `<name>.hgrm` beside every non-empty `<name>.hdr` in `dir`; returns how many.
pub fn write_all(dir: &Path) -> anyhow::Result<usize> {
    let mut written = 0;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "hdr") {
            continue;
        }
        let Some(h) = read_hdr(&path)? else { continue };
        if h.is_empty() {
            continue;
        }
        let out = path.with_extension("hgrm");
        crate::run_folder::write_whole(&out, render(&h).as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?;
        written += 1;
    }
    Ok(written)
}

/// The `.hgrm` text of one of the run's histograms (for writing beside its `.hdr` at the run's end).
pub fn of(h: &ScaledHistogram) -> Option<String> {
    (!h.is_empty()).then(|| render(h.inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hgrm_text_has_the_columns_and_footer_hdrhistograms_plotter_reads() {
        let mut h = ScaledHistogram::default();
        for ms in 1..=1000 {
            h.record(f64::from(ms));
        }
        let text = of(&h).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines.next().unwrap(), "");
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
            .collect();
        // Percentiles climb to 1, counts to 1000, values are ms; the median is about 500 ms.
        assert_eq!(rows.last().unwrap()[1], 1.0);
        assert_eq!(rows.last().unwrap()[2], 1000.0);
        let median = rows.iter().find(|r| r[1] >= 0.5).unwrap();
        assert!((median[0] - 500.0).abs() < 1.0, "{median:?}");
        assert!(
            rows.windows(2)
                .all(|w| w[0][1] <= w[1][1] && w[0][0] <= w[1][0])
        );
        assert!(
            text.contains("#[Max     =     1000.447, Total count    =         1000]"),
            "{text}"
        );
    }
}
