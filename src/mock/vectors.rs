//! The mock's embeddings and moderations answers: one per input, in the real API's shapes
//! (Embeddings and Moderations API references), derived from the input so reruns repeat.

use crate::tokenize::{Encoding, TokenCounter};
use crate::workload::Route;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Embeddings,
    Moderations,
}

/// The largest vector the mock writes (`dimensions` above it is refused, as the API refuses more
/// than a model has).
const MAX_DIMENSIONS: u64 = 8192;

/// The moderation categories (Moderations API reference, `omni-moderation-latest`).
const CATEGORIES: [&str; 13] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// Words that make the mock flag an input, by category: enough to test counting, not a classifier.
const TRIGGERS: [(&str, &str); 3] = [
    ("kill", "violence"),
    ("idiot", "harassment"),
    ("steal", "illicit"),
];

/// The answer body, or the parameter and message of a 400 (`invalid_request_error`).
pub fn answer(request: &Value, kind: Kind) -> Result<Value, (&'static str, String)> {
    let texts = inputs(request.get("input"))
        .ok_or(("input", "Missing required parameter: 'input'.".to_string()))?;
    match kind {
        Kind::Embeddings => embeddings(request, &texts),
        Kind::Moderations => Ok(moderations(request, &texts)),
    }
}

/// The inputs as texts: a string, strings, token arrays (written as their numbers), or
/// moderation parts (`{"type": "text", "text": ...}`). None when there is no input.
fn inputs(input: Option<&Value>) -> Option<Vec<String>> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Object(part) => part
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        other => other.to_string(),
    };
    match input? {
        Value::Array(items) if items.is_empty() => None,
        // One token array is one input.
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Some(vec![Value::Array(items.clone()).to_string()])
        }
        Value::Array(items) => Some(items.iter().map(text).collect()),
        Value::Null => None,
        other => Some(vec![text(other)]),
    }
}

fn embeddings(request: &Value, texts: &[String]) -> Result<Value, (&'static str, String)> {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .ok_or(("model", "you must provide a model parameter".to_string()))?;
    let dimensions = match request.get("dimensions").and_then(Value::as_u64) {
        Some(n) if (1..=MAX_DIMENSIONS).contains(&n) => n,
        Some(n) => {
            return Err((
                "dimensions",
                format!("dimensions must be between 1 and {MAX_DIMENSIONS}, not {n}"),
            ));
        }
        None if model.contains("3-large") => 3072,
        None => 1536,
    };
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = unit_vector(text, dimensions as usize);
            let embedding = if base64 {
                use base64::Engine as _;
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = crate::cost::estimate::input_tokens(
        request,
        &Route::Embeddings,
        &TokenCounter::Tiktoken(Encoding::for_model(Some(model))),
    );
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// A unit vector drawn from the text: the same text always gets the same vector.
fn unit_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut rng = SmallRng::seed_from_u64(xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
    let raw: Vec<f32> = (0..dimensions)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    raw.into_iter().map(|x| x / norm).collect()
}

fn moderations(request: &Value, texts: &[String]) -> Value {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("omni-moderation-latest");
    let results: Vec<Value> = texts
        .iter()
        .map(|text| {
            let lower = text.to_lowercase();
            let flagged_by: Vec<&str> = TRIGGERS
                .iter()
                .filter(|(word, _)| lower.contains(word))
                .map(|(_, category)| *category)
                .collect();
            let mut categories = Map::new();
            let mut scores = Map::new();
            let mut applied = Map::new();
            for category in CATEGORIES {
                let on = flagged_by.contains(&category);
                categories.insert(category.to_string(), Value::Bool(on));
                scores.insert(category.to_string(), json!(if on { 0.91 } else { 0.0001 }));
                applied.insert(category.to_string(), json!(["text"]));
            }
            json!({
                "flagged": !flagged_by.is_empty(),
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": applied,
            })
        })
        .collect();
    let id = xxhash_rust::xxh3::xxh3_64(request.to_string().as_bytes());
    json!({"id": format!("modr-{id:016x}"), "model": model, "results": results})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_answer_one_vector_per_input_as_floats_or_base64() {
        let floats = answer(
            &json!({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8}),
            Kind::Embeddings,
        )
        .unwrap();
        assert_eq!(floats["data"].as_array().unwrap().len(), 2);
        assert_eq!(floats["data"][1]["embedding"].as_array().unwrap().len(), 8);
        let b64 = answer(
            &json!({"model": "text-embedding-3-large", "input": "a", "encoding_format": "base64"}),
            Kind::Embeddings,
        )
        .unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 3072 * 4);
    }

    #[test]
    fn moderations_flag_their_trigger_words() {
        let body = answer(
            &json!({"input": ["I will kill the process", "hello"]}),
            Kind::Moderations,
        )
        .unwrap();
        assert_eq!(body["results"][0]["flagged"], true);
        assert_eq!(body["results"][0]["categories"]["violence"], true);
        assert_eq!(body["results"][1]["flagged"], false);
    }
}
