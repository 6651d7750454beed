//! The mock's hostile side: a share of answers replaced by faults real gateways produce.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use std::time::Duration;

/// One way an answer goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Fault {
    /// 429 with `retry-after-ms` and a rate-limit error body.
    RateLimit,
    /// 500 with a JSON error body.
    ServerError,
    /// 503 with an empty body.
    Unavailable,
    /// 502 with an HTML page, as a proxy in front of the server sends it.
    HtmlPage,
    /// Headers, then the connection drops before any body byte.
    Reset,
    /// Part of the body (or of the stream), then the connection drops.
    ResetMidBody,
    /// No answer until just past the run's `--timeout` (an hour for `llmvolley mock`): the client's
    /// timeout must end it. Only when named in `--mock-faults`: by default it would hold a slot for
    /// the whole timeout.
    Stall,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with an `error` object instead of an answer.
    ErrorBody,
    /// 200 with an answer of about 4 MB that reports `status: failed`: the client must read it whole,
    /// and its 800,000 tokens count as a failure's, not in the throughput figures.
    Huge,
    /// A structured answer (`json_schema`/`json_object` asked for) whose JSON is cut by a
    /// character; other answers are untouched. Only when named.
    BadJson,
    /// A structured answer that breaks its schema: a required field left out, or a wrong type.
    /// Only when named.
    SchemaViolation,
}

impl Fault {
    pub const ALL: [Fault; 12] = [
        Fault::RateLimit,
        Fault::ServerError,
        Fault::Unavailable,
        Fault::HtmlPage,
        Fault::Reset,
        Fault::ResetMidBody,
        Fault::Stall,
        Fault::Malformed,
        Fault::ErrorBody,
        Fault::Huge,
        Fault::BadJson,
        Fault::SchemaViolation,
    ];

    /// The faults drawn when `--mock-faults` names none: the transport's and the body's, not
    /// `stall` (it holds a slot for the whole timeout) nor the structured-output breakages (they
    /// test one check, and leave every other answer alone).
    pub fn defaults() -> Vec<Fault> {
        Fault::ALL
            .into_iter()
            .filter(|f| !matches!(f, Fault::Stall) && f.breakage().is_none())
            .collect()
    }

    /// A fault that breaks the answer's JSON rather than its transport.
    pub fn breakage(self) -> Option<super::answer::Breakage> {
        match self {
            Fault::BadJson => Some(super::answer::Breakage::BadJson),
            Fault::SchemaViolation => Some(super::answer::Breakage::SchemaViolation),
            _ => None,
        }
    }

    /// Whether the SDK retry policy retries this fault (and a client should end ok after it).
    pub fn retryable(self) -> bool {
        !matches!(self, Fault::Malformed | Fault::ErrorBody | Fault::Huge)
    }
}

/// Picks the fault for the `n`-th request, if any: each request independently with `rate`.
pub fn draw(rate: f64, faults: &[Fault], seed: u64, n: u64) -> Option<Fault> {
    if rate <= 0.0 || faults.is_empty() {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (rng.random_range(0.0..1.0) < rate).then(|| faults[rng.random_range(0..faults.len())])
}

fn json(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// A body that sends `prefix`, then fails, so the server drops the connection mid-answer.
fn broken_body(prefix: Vec<u8>) -> Body {
    let parts: Vec<Result<Vec<u8>, std::io::Error>> = if prefix.is_empty() {
        vec![Err(std::io::Error::other("mock fault: connection reset"))]
    } else {
        vec![
            Ok(prefix),
            Err(std::io::Error::other("mock fault: connection reset")),
        ]
    };
    Body::from_stream(futures_util::stream::iter(parts))
}

/// The faulty answer; `answer` is the good one (needed to cut it short or inflate it); `stall` is
/// how long the stall fault holds its answer.
pub async fn respond(
    fault: Fault,
    stall: Duration,
    answer: impl FnOnce() -> (Vec<u8>, &'static str),
) -> Response {
    match fault {
        Fault::RateLimit => {
            let mut response = json(
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"error":{"message":"Rate limit reached for requests (mock fault)","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
            );
            response
                .headers_mut()
                .insert("retry-after-ms", HeaderValue::from_static("20"));
            response.headers_mut().insert(
                "x-ratelimit-remaining-requests",
                HeaderValue::from_static("0"),
            );
            response
        }
        Fault::ServerError => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"The server had an error while processing your request (mock fault).","type":"server_error","param":null,"code":null}}"#,
        ),
        Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Fault::HtmlPage => {
            let mut response = (
                StatusCode::BAD_GATEWAY,
                "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>",
            )
                .into_response();
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("text/html"));
            response
        }
        Fault::Reset => Response::new(broken_body(Vec::new())),
        Fault::ResetMidBody => {
            let (body, content_type) = answer();
            let half = body[..body.len() / 2].to_vec();
            let mut response = Response::new(broken_body(half));
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            response
        }
        Fault::Stall => {
            tokio::time::sleep(stall).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Fault::Malformed => json(
            StatusCode::OK,
            r#"{"id":"resp_mock","object":"response","output":[{"type":"mess"#,
        ),
        Fault::ErrorBody => json(
            StatusCode::OK,
            r#"{"error":{"message":"The model is overloaded (mock fault).","type":"server_error","param":null,"code":"overloaded"}}"#,
        ),
        Fault::Huge => {
            let text = "huge ".repeat(800_000);
            let body = format!(
                r#"{{"id":"resp_huge","object":"response","status":"failed","error":{{"code":"huge_answer","message":"a 4 MB answer of filler (mock fault)"}},"model":"mock-model","output":[{{"type":"message","id":"msg_huge","status":"completed","role":"assistant","content":[{{"type":"output_text","text":"{text}","annotations":[]}}]}}],"usage":{{"input_tokens":10,"output_tokens":800000,"total_tokens":800010}}}}"#
            );
            let mut response = (StatusCode::OK, body).into_response();
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
        // Breakages are applied to the answer itself (`Answer::break_structured`) before any
        // transport fault: here the answer goes out as it is.
        Fault::BadJson | Fault::SchemaViolation => {
            let (body, content_type) = answer();
            let mut response = (StatusCode::OK, body).into_response();
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_come_at_the_configured_rate() {
        let hits = (0..10_000)
            .filter(|n| draw(0.2, &Fault::ALL, 7, *n).is_some())
            .count();
        assert!((1_800..2_200).contains(&hits), "{hits}");
        assert!(draw(0.0, &Fault::ALL, 7, 1).is_none());
    }
}
