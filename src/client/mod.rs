//! How a request is sent and read: one pooled HTTP client, URL joining, timing, and the answer parsers.

mod parse;
mod retry;

pub use retry::Hints as RateHints;
pub mod sse;
mod stream;

pub use parse::{read_error_body, read_success_body};

use crate::record::{Record, SavedBody, Status, millis};
use crate::scheduler::Throttle;
use crate::tokenize::HfTokenizer;
use crate::workload::{Request, Route, request_model};
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// An API key that never prints itself.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        ApiKey(key)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Everything the client needs, already validated.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Url,
    pub api_key: Option<ApiKey>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub max_connections: usize,
    pub save_responses: bool,
    /// HTTP/2 without negotiation for http:// (h2c).
    pub http2_prior_knowledge: bool,
    /// Counts tokens of streams that carry no usage (else the model's tiktoken encoding).
    pub tokenizer: Option<HfTokenizer>,
    /// Attempts after the first for a retryable failure.
    pub max_retries: u32,
    /// Skip TLS certificate verification (`--insecure`, never the default).
    pub insecure: bool,
    /// Run-wide pacing every attempt waits for and reports its answer to.
    pub throttle: Option<Arc<Throttle>>,
}

/// Sends requests and turns each answer (or failure) into a `Record`.
pub struct Client {
    http: reqwest::Client,
    base_url: Url,
    responses_url: Url,
    chat_url: Url,
    save_responses: bool,
    tokenizer: Option<HfTokenizer>,
    max_retries: u32,
    throttle: Option<Arc<Throttle>>,
    epoch: Instant,
}

impl Client {
    /// `epoch` is the run's start: record times count from it.
    pub fn new(config: &ClientConfig, epoch: Instant) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(ApiKey(key)) = &config.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                anyhow::anyhow!("the API key contains characters not allowed in an HTTP header")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &config.headers {
            headers.insert(name.clone(), value.clone());
        }
        let mut builder = reqwest::Client::builder().danger_accept_invalid_certs(config.insecure);
        if config.http2_prior_knowledge {
            builder = builder.http2_prior_knowledge();
        }
        let http = builder
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(30)))
            .pool_max_idle_per_host(config.max_connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // A redirect could carry the Authorization header to another host: report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("llmvolley/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            responses_url: endpoint_url(&config.base_url, &Route::Responses),
            chat_url: endpoint_url(&config.base_url, &Route::Chat),
            base_url: config.base_url.clone(),
            save_responses: config.save_responses,
            tokenizer: config.tokenizer.clone(),
            max_retries: config.max_retries,
            throttle: config.throttle.clone(),
            epoch,
        })
    }

    fn url_for(&self, route: &Route) -> Url {
        match route {
            Route::Responses => self.responses_url.clone(),
            Route::Chat => self.chat_url.clone(),
            other => endpoint_url(&self.base_url, other),
        }
    }

    /// Sends one request (scheduled at `scheduled`) and reads the whole answer into a record,
    /// retrying what the retry policy allows; the record is the last attempt's.
    ///
    /// When `abandon` fires (the grace period after an interrupt ran out), the request is dropped and
    /// its record says `cancelled`.
    pub async fn execute(
        &self,
        request: Request,
        scheduled: Instant,
        abandon: &CancellationToken,
    ) -> Record {
        let Request {
            line,
            mut id,
            route,
            body,
            mut model,
            max_output_tokens,
        } = request;
        let mut attempt_errors = Vec::new();
        let mut attempt = 0;
        // Tokens for --tpm: the body's bytes / 4 plus its answer cap (else a typical answer of 256);
        // settled with the actual usage.
        let input_guess = u32::try_from(body.len() / 4).unwrap_or(u32::MAX);
        let estimated_tokens = input_guess.saturating_add(max_output_tokens.unwrap_or(256));
        loop {
            attempt += 1;
            let mut record = Record::empty(id, line, Status::Ok);
            // Moved in and taken back for a retry: no copy per request.
            record.model = model.take();
            if let Some(throttle) = &self.throttle {
                tokio::select! {
                    () = throttle.before_send(estimated_tokens) => {}
                    () = abandon.cancelled() => {
                        record.attempts = attempt - 1;
                        record.attempt_errors = attempt_errors;
                        record.fail(Status::Cancelled, "interrupted", "not sent: the run was interrupted while it waited for the rate limit");
                        return record;
                    }
                }
            }
            let sending = self.send(&route, body.clone(), scheduled, &mut record);
            let hints = tokio::select! {
                hints = sending => hints,
                () = abandon.cancelled() => {
                    record.attempts = attempt;
                    record.attempt_errors = attempt_errors;
                    record.fail(Status::Cancelled, "interrupted", "still in flight when the --grace period after an interrupt ran out");
                    return record;
                }
            };
            record.attempts = attempt;
            record.latency_from_schedule_ms = record
                .queue_ms
                .zip(record.latency_ms)
                .map(|(queue, latency)| ((queue + latency) * 1000.0).round() / 1000.0);
            if let Some(throttle) = &self.throttle {
                throttle.observe(record.http_status, &hints);
                throttle
                    .settle_tokens(estimated_tokens, record.total_tokens)
                    .await;
            }
            tracing::debug!(
                line,
                attempt,
                status = record.status.as_str(),
                http_status = record.http_status,
                error = record.error.as_ref().map(|e| e.kind.as_str()),
                latency_ms = record.latency_ms,
                "attempt finished"
            );
            let retry = record.status != Status::Ok
                && attempt <= self.max_retries
                && retry::should_retry(&record, &hints);
            if !retry {
                record.attempt_errors = attempt_errors;
                if record.model.is_none() {
                    record.model = request_model(&body);
                }
                return record;
            }
            if let Some(error) = &record.error {
                attempt_errors.push(error.kind.clone());
            }
            let wait = retry::wait(&hints, attempt);
            tracing::debug!(line, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = abandon.cancelled() => {
                    record.attempt_errors = attempt_errors;
                    return record;
                }
            }
            id = record.id;
            model = record.model;
        }
    }

    async fn send(
        &self,
        route: &Route,
        body: bytes::Bytes,
        scheduled: Instant,
        record: &mut Record,
    ) -> retry::Hints {
        let mut hints = retry::Hints::default();
        let url = self.url_for(route);
        let sent = Instant::now();
        record.scheduled_at = Some(millis(scheduled - self.epoch));
        record.sent_at = Some(millis(sent - self.epoch));
        record.queue_ms = Some(millis(sent.saturating_duration_since(scheduled)));
        let outcome = self.http.post(url).body(body).send().await;
        let response = match outcome {
            Ok(response) => response,
            Err(e) => {
                record.latency_ms = Some(millis(sent.elapsed()));
                let (status, kind) = classify(&e);
                record.fail(status, kind, describe(&e));
                return hints;
            }
        };
        hints = retry::Hints::from_headers(response.headers());
        record.ttfb_ms = Some(millis(sent.elapsed()));
        let http_status = response.status();
        record.http_status = Some(http_status.as_u16());
        record.request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if http_status.is_success() && is_event_stream(response.headers()) {
            self.read_stream(response, sent, record).await;
            return hints;
        }
        let body = response.bytes().await;
        record.latency_ms = Some(millis(sent.elapsed()));
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                let (status, kind, message) = body_error(&e);
                record.fail(status, kind, message);
                return hints;
            }
        };
        if http_status.is_success() {
            read_success_body(&body, record);
        } else {
            read_error_body(http_status.as_u16(), &body, record);
        }
        if self.save_responses {
            record.response = Some(saved_body(&body));
        }
        hints
    }
}

impl Client {
    /// Reads a Server-Sent Events body chunk by chunk as it arrives, timing every event.
    async fn read_stream(
        &self,
        mut response: reqwest::Response,
        sent: Instant,
        record: &mut Record,
    ) {
        let mut parser = sse::SseParser::new();
        let mut assembler = stream::StreamAssembler::new(sent);
        let mut saved = self.save_responses.then(Vec::new);
        let broken = loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    let at = Instant::now();
                    if let Some(saved) = &mut saved {
                        saved.extend_from_slice(&bytes);
                    }
                    if parser.push(&bytes).is_err() {
                        break Some((
                            Status::InvalidResponse,
                            "sse_line_too_long",
                            "an SSE line exceeds 64 MiB".to_string(),
                        ));
                    }
                    while let Some(event) = parser.next_event() {
                        assembler.on_event(&event, at, record);
                    }
                }
                Ok(None) => {
                    if let Some(event) = parser.finish() {
                        assembler.on_event(&event, Instant::now(), record);
                    }
                    break None;
                }
                Err(e) => {
                    break Some(body_error(&e));
                }
            }
        };
        assembler.finish(Instant::now(), broken, self.tokenizer.as_ref(), record);
        if let Some(saved) = saved {
            record.response = Some(SavedBody::Text(
                String::from_utf8_lossy(&saved).into_owned(),
            ));
        }
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

/// Joins the base URL (as the OpenAI SDKs take it, e.g. `https://host/v1`) and a route without
/// doubling `/v1`: `--api responses` appends `/responses`; a Batch `url` of `/v1/responses` drops its
/// `/v1` when the base already ends with one.
pub fn endpoint_url(base: &Url, route: &Route) -> Url {
    let base_path = base.path().trim_end_matches('/');
    let suffix: &str = match route {
        Route::Responses => "/responses",
        Route::Chat => "/chat/completions",
        Route::Other(path) if base_path.ends_with("/v1") => {
            path.strip_prefix("/v1").unwrap_or(path)
        }
        Route::Other(path) => path,
    };
    let mut url = base.clone();
    let (path, query) = suffix.split_once('?').unwrap_or((suffix, ""));
    url.set_path(&format!("{base_path}{path}"));
    url.set_query((!query.is_empty()).then_some(query));
    url
}

fn saved_body(body: &[u8]) -> SavedBody {
    match serde_json::from_slice(body) {
        Ok(raw) => SavedBody::Json(raw),
        Err(_) => SavedBody::Text(String::from_utf8_lossy(body).into_owned()),
    }
}

/// An error while the body was arriving: the connection broke mid-answer unless it timed out.
fn body_error(e: &reqwest::Error) -> (Status, &'static str, String) {
    let (status, kind) = classify(e);
    let status = if status == Status::ConnectError {
        Status::Truncated
    } else {
        status
    };
    (status, kind, describe(e))
}

fn classify(e: &reqwest::Error) -> (Status, &'static str) {
    if e.is_timeout() {
        (Status::Timeout, "timeout")
    } else if e.is_connect() {
        (Status::ConnectError, "connect")
    } else if e.is_body() || e.is_decode() {
        (Status::Truncated, "body_read")
    } else if e.is_redirect() {
        (Status::HttpError, "redirect")
    } else {
        (Status::ConnectError, "transport")
    }
}

/// The error and its causes on one line, without the URL (it may carry query credentials).
fn describe(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    if let Some(url) = e.url() {
        message = message
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "<url>");
    }
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, route: Route) -> String {
        endpoint_url(&Url::parse(base).unwrap(), &route).to_string()
    }

    #[test]
    fn base_urls_join_like_the_openai_sdks() {
        assert_eq!(
            url("https://gw.example/v1", Route::Responses),
            "https://gw.example/v1/responses"
        );
        assert_eq!(
            url("https://gw.example/v1/", Route::Chat),
            "https://gw.example/v1/chat/completions"
        );
        assert_eq!(
            url("http://127.0.0.1:8000", Route::Responses),
            "http://127.0.0.1:8000/responses"
        );
    }

    #[test]
    fn batch_urls_do_not_double_v1() {
        assert_eq!(
            url(
                "https://gw.example/v1",
                Route::Other("/v1/embeddings".into())
            ),
            "https://gw.example/v1/embeddings"
        );
        assert_eq!(
            url(
                "https://gw.example/api",
                Route::Other("/v1/embeddings".into())
            ),
            "https://gw.example/api/v1/embeddings"
        );
        assert_eq!(
            url("https://gw.example/v1", Route::Other("/v1/x?a=b".into())),
            "https://gw.example/v1/x?a=b"
        );
    }

    #[test]
    fn api_key_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ApiKey::new("sk-secret".into())),
            "ApiKey(<redacted>)"
        );
    }
}
