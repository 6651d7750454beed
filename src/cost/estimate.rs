//! `llmvolley estimate`: input tokens counted locally, output tokens assumed, dollars per model.
//!
//! Input tokens are the tiktoken count of every text the model reads (`instructions`, each input or
//! chat message, tool definitions as JSON) plus framing: 3 tokens per message (OpenAI's cookbook
//! figure for chat models) and a per-request base of 3 for Chat Completions and 22 for the Responses
//! API, whose reported usage includes a preamble (the seed unicorn prompt, 11 content tokens, was
//! reported as 36 input tokens).

use super::{PriceTable, Tier, TokenCounts};
use crate::stats::ScaledHistogram;
use crate::tokenize::{HfTokenizer, TokenCounter};
use crate::workload::{Route, WorkItem, WorkloadReader};
use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const TOKENS_PER_MESSAGE: u64 = 3;
const CHAT_BASE: u64 = 3;
const RESPONSES_BASE: u64 = 22;

/// Where output token estimates come from.
#[derive(Debug, Clone)]
pub enum OutputSource {
    /// Every request produces this many output tokens.
    Assume(u64),
    /// The distribution an earlier run measured (p10 / mean / p90 of ok records).
    FromRun(PathBuf),
    /// Each body's `max_output_tokens` (Chat: `max_completion_tokens`, `max_tokens`): low none,
    /// expected half the cap, high the cap.
    BodyCaps,
}

pub struct EstimateOptions {
    pub workload: PathBuf,
    pub default_route: crate::workload::DefaultRoute,
    /// Price the workload on these models instead of the ones its bodies name.
    pub models: Vec<String>,
    pub output: OutputSource,
    pub tier: Tier,
    pub prices: PriceTable,
    /// `--tokenizer`: count every model's tokens with this Hugging Face tokenizer.
    pub tokenizer: Option<HfTokenizer>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Range {
    pub low: Option<f64>,
    pub expected: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelEstimate {
    pub model: String,
    pub tokenizer: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: Range,
    /// Null when the model has no price.
    pub cost_usd: Option<Range>,
    /// Requests with no output estimate (no cap in the body, no --assume-output, no --from-run).
    pub requests_without_output_estimate: u64,
    /// The expected cost through the Batch API (`llmvolley batch`: the batch tier), beside the
    /// live tier's; null when estimating at the batch tier already, or with no price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_expected_usd: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub workload: String,
    pub tier: Tier,
    pub output_source: String,
    pub requests: u64,
    pub invalid_lines: u64,
    pub models: Vec<ModelEstimate>,
    /// Every model together (`model` is "total"; cost covers the priced models, null when none
    /// is). Null with `--model`: the same workload priced on several models does not add up.
    pub total: Option<ModelEstimate>,
}

impl Estimate {
    /// Requests with no output estimate, so `expected` and `high` count only their input.
    pub fn without_output_estimate(&self) -> (u64, u64) {
        self.models.iter().fold((0, 0), |(without, all), m| {
            (
                without + m.requests_without_output_estimate,
                all + m.requests,
            )
        })
    }
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

fn add_ranges(a: &Range, b: &Range) -> Range {
    Range {
        low: add(a.low, b.low),
        expected: add(a.expected, b.expected),
        high: add(a.high, b.high),
    }
}

/// The row totalling every model.
fn total(models: &[ModelEstimate]) -> ModelEstimate {
    let empty = || Range {
        low: None,
        expected: None,
        high: None,
    };
    let mut total = ModelEstimate {
        model: "total".to_string(),
        tokenizer: String::new(),
        requests: 0,
        input_tokens: 0,
        output_tokens: empty(),
        cost_usd: None,
        requests_without_output_estimate: 0,
        batch_expected_usd: None,
    };
    for m in models {
        total.requests += m.requests;
        total.input_tokens += m.input_tokens;
        total.output_tokens = add_ranges(&total.output_tokens, &m.output_tokens);
        if let Some(cost) = &m.cost_usd {
            total.cost_usd = Some(add_ranges(
                total.cost_usd.as_ref().unwrap_or(&empty()),
                cost,
            ));
        }
        total.requests_without_output_estimate += m.requests_without_output_estimate;
        if let Some(batch) = m.batch_expected_usd {
            *total.batch_expected_usd.get_or_insert(0.0) += batch;
        }
    }
    total
}

/// Output tokens per request: (low, expected, high), or None when unknown.
type OutputGuess = Option<(f64, f64, f64)>;

/// Per-model output distributions of an earlier run, and the overall one.
struct RunOutputs {
    by_model: BTreeMap<String, (f64, f64, f64)>,
    overall: (f64, f64, f64),
}

fn spread(h: &ScaledHistogram) -> (f64, f64, f64) {
    let h = h.inner();
    let at = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    (at(0.10), h.mean() / 1000.0, at(0.90))
}

fn run_outputs(dir: &Path) -> anyhow::Result<RunOutputs> {
    let path = dir.join("records.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--from-run: cannot read {}", path.display()))?;
    let mut overall = ScaledHistogram::default();
    let mut by_model: BTreeMap<String, ScaledHistogram> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if record["status"] != "ok" {
            continue;
        }
        let Some(output) = record["output_tokens"].as_u64() else {
            continue;
        };
        overall.record(output as f64);
        if let Some(model) = record["model"].as_str() {
            by_model
                .entry(model.to_string())
                .or_default()
                .record(output as f64);
        }
    }
    anyhow::ensure!(
        !overall.is_empty(),
        "--from-run {}: no ok record with output tokens",
        dir.display()
    );
    Ok(RunOutputs {
        by_model: by_model
            .iter()
            .map(|(m, h)| (m.clone(), spread(h)))
            .collect(),
        overall: spread(&overall),
    })
}

/// Input tokens of one request body.
pub fn input_tokens(body: &Value, route: &Route, counter: &TokenCounter) -> u64 {
    // Prompts and inputs counted as they are: these APIs add no framing (Completions, Embeddings
    // and Moderations API references: `usage.prompt_tokens` is the text's own tokens).
    let bare = match route {
        Route::Completions => Some("prompt"),
        Route::Embeddings | Route::Moderations => Some("input"),
        Route::Responses | Route::Chat => None,
    };
    if let Some(key) = bare {
        return bare_tokens(body.get(key), counter);
    }
    let mut messages = 0u64;
    let mut tokens = 0u64;
    let mut text = |s: &str| tokens += counter.count(s);
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
        text(instructions);
        messages += 1;
    }
    let conversation = match route {
        Route::Chat => body.get("messages"),
        _ => body.get("input"),
    };
    match conversation {
        Some(Value::String(s)) => {
            text(s);
            messages += 1;
        }
        Some(Value::Array(items)) => {
            for item in items {
                messages += 1;
                for key in ["content", "output", "arguments", "name"] {
                    match item.get(key) {
                        Some(Value::String(s)) => text(s),
                        Some(Value::Array(parts)) => {
                            for part in parts {
                                if let Some(s) = part.get("text").and_then(Value::as_str) {
                                    text(s);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        for tool in tools {
            text(&tool.to_string());
        }
    }
    let base = if *route == Route::Chat {
        CHAT_BASE
    } else {
        RESPONSES_BASE
    };
    tokens + base + TOKENS_PER_MESSAGE * messages
}

/// Tokens of a `prompt`/`input` that is a string, an array of strings, a token array or an array
/// of token arrays (the forms the Completions and Embeddings APIs take).
fn bare_tokens(value: Option<&Value>, counter: &TokenCounter) -> u64 {
    match value {
        Some(Value::String(s)) => counter.count(s),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => items.len() as u64,
        Some(Value::Array(items)) => items.iter().map(|i| bare_tokens(Some(i), counter)).sum(),
        // Moderations: `[{"type": "text", "text": ...}]`.
        Some(Value::Object(part)) => part
            .get("text")
            .and_then(Value::as_str)
            .map_or(0, |s| counter.count(s)),
        _ => 0,
    }
}

fn body_cap(body: &Value) -> Option<u64> {
    ["max_output_tokens", "max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
}

#[derive(Default)]
struct Totals {
    requests: u64,
    input_tokens: u64,
    output: [f64; 3],
    cost: [f64; 3],
    /// The expected output priced at the batch tier.
    batch_cost: f64,
    without_output: u64,
}

/// Reads the whole workload (no network) and prices it per model.
pub fn estimate(options: &EstimateOptions) -> anyhow::Result<Estimate> {
    let reader = WorkloadReader::open(&options.workload, options.default_route.clone())
        .with_context(|| format!("cannot read workload {}", options.workload.display()))?;
    let run = match &options.output {
        OutputSource::FromRun(dir) => Some(run_outputs(dir)?),
        _ => None,
    };
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    let (mut requests, mut invalid_lines) = (0u64, 0u64);
    for item in reader {
        let request =
            match item.with_context(|| format!("workload {}", options.workload.display()))? {
                WorkItem::Send(request) => request,
                WorkItem::Invalid(_) => {
                    invalid_lines += 1;
                    continue;
                }
            };
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            invalid_lines += 1;
            continue;
        };
        requests += 1;
        let own_model = body
            .get("model")
            .and_then(Value::as_str)
            // The moderations API's default model (Moderations API reference).
            .or((request.route == Route::Moderations).then_some("omni-moderation-latest"))
            .unwrap_or("(no model)")
            .to_string();
        let models = if options.models.is_empty() {
            vec![own_model]
        } else {
            options.models.clone()
        };
        let mut counted: Vec<(TokenCounter, u64)> = Vec::with_capacity(2);
        for model in models {
            let counter = TokenCounter::choose(Some(&model), options.tokenizer.as_ref());
            let input = match counted.iter().find(|(c, _)| c.same_as(&counter)) {
                Some((_, n)) => *n,
                None => {
                    let n = input_tokens(&body, &request.route, &counter);
                    counted.push((counter, n));
                    n
                }
            };
            let guess: OutputGuess = match (&options.output, &run) {
                // Embeddings and moderations generate nothing: no output tokens to guess.
                _ if !request.route.generates() => Some((0.0, 0.0, 0.0)),
                (OutputSource::Assume(n), _) => Some((*n as f64, *n as f64, *n as f64)),
                (OutputSource::FromRun(_), Some(run)) => {
                    Some(*run.by_model.get(&model).unwrap_or(&run.overall))
                }
                // A cap is a ceiling; with nothing measured, the middle between none and it.
                _ => body_cap(&body).map(|cap| (0.0, cap as f64 / 2.0, cap as f64)),
            };
            let price = options
                .prices
                .lookup(&model)
                .map(|p| *p.rates(options.tier));
            let batch_price = options
                .prices
                .lookup(&model)
                .map(|p| *p.rates(Tier::Batch))
                .filter(|_| options.tier != Tier::Batch);
            let t = totals.entry(model).or_default();
            t.requests += 1;
            t.input_tokens += input;
            let outputs = match guess {
                Some((low, expected, high)) => [low, expected, high],
                None => {
                    t.without_output += 1;
                    [0.0; 3]
                }
            };
            for (i, output) in outputs.iter().enumerate() {
                t.output[i] += output;
                if let Some(rates) = &price {
                    let tokens = TokenCounts {
                        input,
                        cached: 0,
                        cache_write: 0,
                        output: 0,
                    };
                    t.cost[i] += rates.cost(&tokens) + output * rates.output;
                }
                if let (1, Some(rates)) = (i, &batch_price) {
                    let tokens = TokenCounts {
                        input,
                        cached: 0,
                        cache_write: 0,
                        output: 0,
                    };
                    t.batch_cost += rates.cost(&tokens) + output * rates.output;
                }
            }
        }
    }
    let models: Vec<ModelEstimate> = totals
        .into_iter()
        .map(|(model, t)| {
            let priced = options.prices.contains(&model);
            let known = t.without_output < t.requests;
            let range = |v: [f64; 3]| Range {
                low: Some(v[0]),
                expected: known.then_some(v[1]),
                high: known.then_some(v[2]),
            };
            ModelEstimate {
                tokenizer: TokenCounter::choose(Some(&model), options.tokenizer.as_ref())
                    .label()
                    .to_string(),
                requests: t.requests,
                input_tokens: t.input_tokens,
                output_tokens: range(t.output),
                cost_usd: priced.then(|| range(t.cost)),
                requests_without_output_estimate: t.without_output,
                batch_expected_usd: (priced && known && options.tier != Tier::Batch)
                    .then_some(t.batch_cost),
                model,
            }
        })
        .collect();
    Ok(Estimate {
        workload: options.workload.display().to_string(),
        tier: options.tier,
        output_source: match &options.output {
            OutputSource::Assume(n) => format!("--assume-output {n}"),
            OutputSource::FromRun(dir) => {
                format!("--from-run {} (p10 / mean / p90)", dir.display())
            }
            OutputSource::BodyCaps => {
                "max_output_tokens of each body (low: none, expected: half the cap, high: the cap)"
                    .to_string()
            }
        },
        requests,
        invalid_lines,
        total: options.models.is_empty().then(|| total(&models)),
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::Encoding;
    use serde_json::json;

    #[test]
    fn unicorn_seed_prompt_lands_near_the_reported_36_input_tokens() {
        let body = json!({"model": "gpt-5.1", "input": [{"role": "user", "content": "Write a one-sentence bedtime story about a unicorn."}]});
        let n = input_tokens(
            &body,
            &Route::Responses,
            &TokenCounter::Tiktoken(Encoding::O200kBase),
        );
        assert!((29..=43).contains(&n), "{n} is not within 20% of 36");
        assert_eq!(n, 36);
    }

    #[test]
    fn instructions_messages_and_tools_all_count() {
        let plain = json!({"input": "hi"});
        let with_all = json!({"input": "hi", "instructions": "Be brief.", "tools": [{"type": "function", "name": "f", "parameters": {}}]});
        let a = input_tokens(
            &plain,
            &Route::Responses,
            &TokenCounter::Tiktoken(Encoding::O200kBase),
        );
        let b = input_tokens(
            &with_all,
            &Route::Responses,
            &TokenCounter::Tiktoken(Encoding::O200kBase),
        );
        assert!(b > a + 5, "{a} vs {b}");
        let chat = json!({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
        assert_eq!(
            input_tokens(
                &chat,
                &Route::Chat,
                &TokenCounter::Tiktoken(Encoding::O200kBase)
            ),
            CHAT_BASE + 2 * TOKENS_PER_MESSAGE + 3 + 1
        );
    }
}
