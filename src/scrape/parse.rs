//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0 text, read leniently: a line
//! that cannot be read is skipped and counted, never the whole scrape lost.
//!
//! Why our own reader: `prometheus-parse` takes metric names as `\w+` (vLLM's `vllm:` names have
//! a colon), keys histograms by name alone (vLLM labels every series by model) and splits label
//! values on commas; `openmetrics-parser` rejects a whole exposition on one nonconforming line
//! (a server omitting `# EOF`, a Prometheus-format page). Format sources: the Prometheus
//! "Exposition formats" page (text format details) and the OpenMetrics 1.0 specification.

use std::collections::HashMap;

/// A family's declared type (`# TYPE`); OpenMetrics' `gaugehistogram`, `info`, `stateset` and
/// `unknown`, and a family with no `# TYPE`, read as `Untyped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl Kind {
    fn parse(text: &str) -> Kind {
        match text {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "summary" => Kind::Summary,
            _ => Kind::Untyped,
        }
    }
}

/// Which part of its family a sample is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Part {
    /// A counter's, gauge's or untyped family's value; a summary's quantile.
    Value,
    /// A histogram's cumulative bucket count; `le` is its upper bound.
    Bucket {
        le: f64,
    },
    Sum,
    Count,
}

/// One sample, its family resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The family's name: as declared, a counter's without `_total` (`vllm:prompt_tokens` whether
    /// the page declared `vllm:prompt_tokens_total` or, as OpenMetrics does, `vllm:prompt_tokens`);
    /// the sample's own name when undeclared.
    pub family: String,
    pub kind: Kind,
    pub part: Part,
    /// Sorted by name, `le` left out (it is in `part`).
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// What one scrape held.
#[derive(Debug, Default, Clone)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Lines that could not be read (skipped).
    pub skipped_lines: usize,
}

/// Reads an exposition; never fails: unreadable lines are counted in `skipped_lines`.
pub fn parse(text: &str) -> Exposition {
    let mut types: HashMap<&str, Kind> = HashMap::new();
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(kind)) = (words.next(), words.next())
            {
                types.insert(name, Kind::parse(kind));
            }
            continue;
        }
        match sample(line) {
            Some((name, labels, value)) => {
                if let Some(s) = resolve(&types, name, labels, value) {
                    out.samples.push(s);
                }
            }
            None => out.skipped_lines += 1,
        }
    }
    out
}

/// The family a sample name belongs to, by the suffixes its declared type allows; None for
/// OpenMetrics' `_created` samples (a creation time, not a value).
fn resolve(
    types: &HashMap<&str, Kind>,
    name: &str,
    mut labels: Vec<(String, String)>,
    value: f64,
) -> Option<Sample> {
    let declared = |family: &str| types.get(family).copied();
    // prometheus_client declares a counter as `x_total` (or a histogram as `x`) and writes
    // `x_created` beside it, even as a family of its own (`# TYPE x_created gauge`): a creation
    // time, never a reading.
    if let Some(family) = name.strip_suffix("_created")
        && [family.to_string(), format!("{family}_total")]
            .iter()
            .any(|f| {
                matches!(
                    declared(f),
                    Some(Kind::Counter | Kind::Histogram | Kind::Summary)
                )
            })
    {
        return None;
    }
    if let Some(kind) = declared(name) {
        return Some(Sample {
            family: canonical(name, kind),
            kind,
            part: Part::Value,
            labels,
            value,
        });
    }
    for (suffix, part) in [
        ("_bucket", Part::Bucket { le: 0.0 }),
        ("_sum", Part::Sum),
        ("_count", Part::Count),
        ("_total", Part::Value),
        ("_created", Part::Value),
    ] {
        let Some(family) = name.strip_suffix(suffix) else {
            continue;
        };
        if suffix == "_created" {
            continue;
        }
        let Some(kind) = declared(family) else {
            continue;
        };
        let part = match (kind, part) {
            (Kind::Histogram, Part::Bucket { .. }) => {
                let at = labels.iter().position(|(k, _)| k == "le")?;
                let le = number(&labels.remove(at).1)?;
                Part::Bucket { le }
            }
            (Kind::Histogram | Kind::Summary, Part::Sum | Part::Count) => part,
            (Kind::Counter, Part::Value) => Part::Value,
            _ => continue,
        };
        return Some(Sample {
            family: family.to_string(),
            kind,
            part,
            labels,
            value,
        });
    }
    // Undeclared: a `_total` name reads as a counter (Prometheus naming convention).
    let kind = if name.ends_with("_total") {
        Kind::Counter
    } else {
        Kind::Untyped
    };
    Some(Sample {
        family: canonical(name, kind),
        kind,
        part: Part::Value,
        labels,
        value,
    })
}

/// A counter's family without `_total`, however it was declared: Prometheus-format pages from
/// prometheus_client declare `x_total`, OpenMetrics pages `x`, and both mean the same counter.
fn canonical(name: &str, kind: Kind) -> String {
    match (kind, name.strip_suffix("_total")) {
        (Kind::Counter, Some(family)) => family.to_string(),
        _ => name.to_string(),
    }
}

/// A sample line read: its name, sorted labels and value.
type Line<'a> = (&'a str, Vec<(String, String)>, f64);

/// `name{label="value",...} value [timestamp] [# exemplar]` → name, sorted labels, value.
fn sample(line: &str) -> Option<Line<'_>> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(end);
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(inner)?;
        labels = parsed;
        rest = after;
    }
    // The value is the first word; a timestamp and an exemplar (`# {...} v`) may follow.
    let value = number(rest.split_whitespace().next()?)?;
    labels.sort();
    Some((name, labels, value))
}

/// The inside of `{...}` → its labels and what follows the closing brace.
fn label_set(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim();
        if key.is_empty() {
            return None;
        }
        let rest = text[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next()? {
                (at, '"') => break at,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        text = &rest[close + 1..];
    }
}

/// A sample value: Go's float syntax, `NaN`, `+Inf`, `-Inf` (any case).
fn number(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn find<'a>(e: &'a Exposition, family: &str, part: Part) -> Vec<&'a Sample> {
        e.samples
            .iter()
            .filter(|s| s.family == family && s.part == part)
            .collect()
    }

    #[test]
    fn a_prometheus_page_reads_every_family_kind_and_label_set() {
        let page = r#"
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 1234.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 7.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 0.7
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 7.0
escaped{path="C:\\DIR",msg="a \"quoted\", comma"} 1.5e3 1395066363000
"#;
        let e = parse(page);
        assert_eq!(e.skipped_lines, 0);
        let running = find(&e, "vllm:num_requests_running", Part::Value);
        assert_eq!(running[0].kind, Kind::Gauge);
        assert_eq!(running[0].value, 3.0);
        assert_eq!(
            running[0].labels,
            [
                ("engine".into(), "0".into()),
                ("model_name".into(), "m".into())
            ]
        );
        assert_eq!(
            find(&e, "vllm:prompt_tokens", Part::Value)[0].kind,
            Kind::Counter
        );
        let buckets: Vec<f64> = e
            .samples
            .iter()
            .filter_map(|s| match s.part {
                Part::Bucket { le } => Some(le),
                _ => None,
            })
            .collect();
        assert_eq!(buckets, [0.001, f64::INFINITY]);
        assert_eq!(
            find(&e, "vllm:time_to_first_token_seconds", Part::Count)[0].value,
            7.0
        );
        let escaped = find(&e, "escaped", Part::Value)[0];
        assert_eq!(escaped.value, 1500.0);
        assert_eq!(escaped.labels[0].1, "a \"quoted\", comma");
        assert_eq!(escaped.labels[1].1, "C:\\DIR");
    }

    #[test]
    fn openmetrics_counters_drop_total_from_the_family_and_created_samples_are_ignored() {
        let page = "# TYPE requests counter\n# UNIT requests requests\nrequests_total{a=\"1\"} 17 # {trace_id=\"x\"} 1 1.5\nrequests_created{a=\"1\"} 1.7e9\n# EOF\n";
        let e = parse(page);
        assert_eq!(e.samples.len(), 1, "{:?}", e.samples);
        assert_eq!(e.samples[0].family, "requests");
        assert_eq!(e.samples[0].kind, Kind::Counter);
        assert_eq!(e.samples[0].value, 17.0);
    }

    #[test]
    fn a_prometheus_client_counter_and_its_created_sample_read_as_one_counter() {
        // prometheus_client 0.0.4 output: the `_created` samples may be declared as gauges.
        let page = "# TYPE t_total counter\nt_total 3.0\n# TYPE t_created gauge\nt_created 1.7e9\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 2\nh_created 1.7e9\n";
        let e = parse(page);
        assert_eq!(e.samples.len(), 4, "{:?}", e.samples);
        assert_eq!(e.samples[0].family, "t");
        assert!(e.samples.iter().all(|s| !s.family.ends_with("_created")));
    }

    #[test]
    fn an_unreadable_line_is_skipped_and_the_rest_kept() {
        let e = parse("ok 1\nbroken{a=\"1\" 2\n9bad 3\nnovalue\nalso_ok NaN\n");
        assert_eq!(e.skipped_lines, 3);
        assert_eq!(e.samples.len(), 2);
        assert!(e.samples[1].value.is_nan());
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panicking(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn a_written_sample_reads_back(
            name in "[a-z_:][a-z0-9_:]{0,20}",
            labels in proptest::collection::btree_map("[a-z_][a-z0-9_]{0,8}", "\\PC{0,12}", 0..4),
            value in -1e12f64..1e12,
        ) {
            prop_assume!(name != "le" && !labels.contains_key("le"));
            prop_assume!(!["_bucket", "_sum", "_count", "_total", "_created"].iter().any(|s| name.ends_with(s)));
            let written: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
                .collect();
            let page = format!("# TYPE {name} gauge\n{name}{{{}}} {value:e}\n", written.join(","));
            let e = parse(&page);
            prop_assert_eq!(e.skipped_lines, 0);
            prop_assert_eq!(e.samples.len(), 1);
            let s = &e.samples[0];
            prop_assert_eq!(&s.family, &name);
            prop_assert_eq!(s.value, value);
            let read: Vec<(String, String)> = labels.into_iter().collect();
            prop_assert_eq!(&s.labels, &read);
        }
    }
}
