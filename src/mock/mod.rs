//! The embedded OpenAI-compatible mock endpoint: `/v1/responses` and `/v1/chat/completions` on loopback.

mod answer;

use answer::{Answer, ApiShape, Prompt};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// The mock's knobs. Answers and delays depend only on the request body and the seed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MockConfig {
    /// Fixed delay before every answer.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter)`, seeded per request body.
    pub jitter: Duration,
    pub seed: u64,
    /// Answer `/v1/responses` with Chat Completions bodies, as the seed gateway documents.
    pub chat_shape_for_responses: bool,
}

struct MockState {
    config: MockConfig,
    requests: AtomicU64,
}

/// The mock's routes, for embedding in another server or driving with `tower::ServiceExt`.
pub fn router(config: MockConfig) -> Router {
    let state = Arc::new(MockState {
        config,
        requests: AtomicU64::new(0),
    });
    Router::new()
        .route("/v1/responses", post(responses))
        .route("/responses", post(responses))
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the mock on an already bound listener until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn responses(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    let shape = if state.config.chat_shape_for_responses {
        ApiShape::Chat
    } else {
        ApiShape::Responses
    };
    answer(&state, body, ApiShape::Responses, shape).await
}

async fn chat(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    answer(&state, body, ApiShape::Chat, ApiShape::Chat).await
}

async fn answer(
    state: &MockState,
    body: Bytes,
    request_shape: ApiShape,
    answer_shape: ApiShape,
) -> Response {
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let request: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the request body must be a JSON object",
                n,
            );
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("could not parse the JSON body of your request: {e}"),
                n,
            );
        }
    };
    if request.get("stream").and_then(|s| s.as_bool()) == Some(true) {
        return error(
            StatusCode::BAD_REQUEST,
            "this mock does not stream yet: send \"stream\": false",
            n,
        );
    }
    let key = xxhash_rust::xxh3::xxh3_64_with_seed(&body, state.config.seed);
    let config = &state.config;
    if !config.latency.is_zero() || !config.jitter.is_zero() {
        let mut rng = SmallRng::seed_from_u64(key);
        let jitter = config.jitter.mul_f64(rng.random_range(0.0..1.0));
        tokio::time::sleep(config.latency + jitter).await;
    }
    let prompt = Prompt::read(&request, request_shape);
    let answer = Answer::generate(&prompt, key);
    let body = match answer_shape {
        ApiShape::Responses => answer.responses_body(&request, &prompt, key),
        ApiShape::Chat => answer.chat_body(&prompt, key),
    };
    with_request_id((StatusCode::OK, axum::Json(body)).into_response(), n)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "unknown path: the mock serves POST /v1/responses and /v1/chat/completions",
        0,
    )
}

fn error(status: StatusCode, message: &str, n: u64) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    with_request_id((status, axum::Json(body)).into_response(), n)
}

fn with_request_id(mut response: Response, n: u64) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("req_mock_{n:08}")) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
