//! How a request is sent and read: one pooled HTTP client, URL joining, timing, and the answer parsers.

mod parse;

pub mod retry;
pub use retry::{Asked, Hints as RateHints, Wait};
pub mod sse;
mod stream;

pub use parse::{read_error_body, read_success_body};

use crate::record::{Record, SavedBody, Status, millis};
use crate::workload::Route;
use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::error::Error as _;
use std::time::{Duration, Instant};

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
    /// How long an unused pooled connection is kept (`--pool-idle-timeout`): below the servers'
    /// keep-alive, so the client, not the server, closes idle connections.
    pub pool_idle_timeout: Duration,
    pub save_responses: bool,
    /// HTTP/2 without negotiation for http:// (h2c).
    pub http2_prior_knowledge: bool,

    /// Skip TLS certificate verification (`--insecure`, never the default).
    pub insecure: bool,
}

/// Sends requests and turns each answer (or failure) into a `Record`.
pub struct Client {
    http: reqwest::Client,
    /// Keeps no connection: a re-send after a pooled connection was found closed gets a new one.
    fresh: reqwest::Client,
    base_url: Url,
    responses_url: Url,
    chat_url: Url,
    save_responses: bool,
    timeout: Duration,
    epoch: Instant,
}

/// How long, after the terminal event, the end of the body may take to arrive (off the request's
/// path) so an HTTP/1.1 connection can be reused; past it the response is dropped.
const BODY_END_GRACE: Duration = Duration::from_millis(50);

/// How soon after the send a closed connection counts as the keep-alive race (the server had closed
/// it already; its FIN or RST comes back within a round trip), not as a server that read the request
/// and died working on it, which the retry policy handles.
const RECONNECT_WINDOW: Duration = Duration::from_secs(1);

/// What one attempt reports back besides its record: the server's hints, and when it was sent
/// (after a reconnect, the second send) and when its answer ended.
pub struct Attempt {
    pub hints: retry::Hints,
    pub sent: Instant,
    pub end: Instant,
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
        let build = |idle_per_host: usize| {
            let mut builder =
                reqwest::Client::builder().danger_accept_invalid_certs(config.insecure);
            if config.http2_prior_knowledge {
                builder = builder.http2_prior_knowledge();
            }
            builder
                .default_headers(headers.clone())
                .timeout(config.timeout)
                .connect_timeout(config.timeout.min(Duration::from_secs(30)))
                .pool_max_idle_per_host(idle_per_host)
                .pool_idle_timeout(config.pool_idle_timeout)
                .tcp_nodelay(true)
                // A redirect could carry the Authorization header to another host: report it instead.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("llmvolley/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Ok(Client {
            http: build(config.max_connections)?,
            fresh: build(0)?,
            responses_url: endpoint_url(&config.base_url, &Route::Responses),
            chat_url: endpoint_url(&config.base_url, &Route::Chat),
            base_url: config.base_url.clone(),
            save_responses: config.save_responses,
            timeout: config.timeout,
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

    /// The run's start: record times count from it.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// One attempt, started at `started`: sends the body and reads the answer into `record`
    /// (status, answer, usage, timings from the send). A send that finds its pooled connection
    /// closed before any byte of the answer arrived is repeated once, at once, on a new connection
    /// (`record.reconnects`): the server never read it. Retrying is the caller's decision
    /// (`retry::should_retry`).
    pub async fn attempt(
        &self,
        route: &Route,
        body: bytes::Bytes,
        started: Instant,
        record: &mut Record,
    ) -> Attempt {
        let mut sent = started;
        let mut outcome = self
            .http
            .post(self.url_for(route))
            .body(body.clone())
            .send()
            .await;
        if let Err(e) = &outcome
            && is_closed_connection(e)
            && sent.elapsed() < RECONNECT_WINDOW
        {
            tracing::debug!(error = %describe(e), "pooled connection was closed: sending again on a new one");
            record.reconnects += 1;
            sent = Instant::now();
            outcome = self.fresh.post(self.url_for(route)).body(body).send().await;
        }
        let response = match outcome {
            Ok(response) => response,
            Err(e) => {
                let end = Instant::now();
                record.latency_ms = Some(millis(end - sent));
                let (status, kind, message) = self.transport_error(&e, None);
                record.fail(status, kind, message);
                return Attempt {
                    hints: retry::Hints::default(),
                    sent,
                    end,
                };
            }
        };
        let hints = retry::Hints::from_headers(response.headers());
        let headers_at = sent.elapsed();
        record.ttfb_ms = Some(millis(headers_at));
        let http_status = response.status();
        record.http_status = Some(http_status.as_u16());
        record.request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let end = if http_status.is_success() {
            self.read_answer(response, sent, headers_at, record).await
        } else {
            let body = response.bytes().await;
            let end = Instant::now();
            match body {
                Ok(body) => {
                    read_error_body(http_status.as_u16(), &body, record);
                    if self.save_responses {
                        record.response = Some(saved_body(&body));
                    }
                }
                Err(e) => {
                    let (status, kind, message) = self.transport_error(&e, Some(headers_at));
                    record.fail(status, kind, message);
                }
            }
            end
        };
        record.latency_ms = Some(millis(end.saturating_duration_since(sent)));
        Attempt { hints, sent, end }
    }

    /// Reads a 2xx answer, deciding from its first bytes (not its Content-Type, which is only a
    /// hint) whether it is an SSE stream or one JSON body; returns when the answer ended.
    async fn read_answer(
        &self,
        mut response: reqwest::Response,
        sent: Instant,
        headers_at: Duration,
        record: &mut Record,
    ) -> Instant {
        let labelled_sse = is_event_stream(response.headers());
        // Kept (a reference-counted copy) to name it should the body disagree.
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let mut body = Body::Undecided(Vec::new());
        // Made when the body turns out to be a stream (kept beside `body`, not boxed inside it).
        let mut assembler: Option<stream::StreamAssembler> = None;
        let mut saved = (self.save_responses).then(Vec::new);
        let mut broken = None;
        let mut ended = false;
        let mut last_byte;
        loop {
            let chunk = response.chunk().await;
            let at = Instant::now();
            last_byte = at;
            let bytes = match chunk {
                Ok(Some(bytes)) => bytes,
                Ok(None) => break,
                Err(e) => {
                    broken = Some(self.transport_error(&e, Some(headers_at)));
                    break;
                }
            };
            if let Some(saved) = &mut saved {
                saved.extend_from_slice(&bytes);
            }
            let fed = match &mut body {
                Body::Whole(buf) => {
                    buf.extend_from_slice(&bytes);
                    Ok(false)
                }
                Body::Stream(parser) => {
                    let assembler =
                        assembler.get_or_insert_with(|| stream::StreamAssembler::new(sent));
                    feed(parser, assembler, &bytes, at, record)
                }
                Body::Undecided(buf) => {
                    // The common case (the first chunk decides) sniffs the chunk without a copy.
                    let sniffed = if buf.is_empty() {
                        sniff(&bytes, labelled_sse)
                    } else {
                        buf.extend_from_slice(&bytes);
                        sniff(buf, labelled_sse)
                    };
                    let head = match sniffed {
                        Sniffed::Sse => std::mem::take(buf),
                        _ => {
                            if buf.is_empty() {
                                buf.extend_from_slice(&bytes);
                            }
                            if sniffed == Sniffed::Whole {
                                body = Body::Whole(std::mem::take(buf));
                            }
                            continue;
                        }
                    };
                    let mut parser = sse::SseParser::new();
                    let assembler = assembler.insert(stream::StreamAssembler::new(sent));
                    let input: &[u8] = if head.is_empty() { &bytes } else { &head };
                    let fed = feed(&mut parser, assembler, input, at, record);
                    body = Body::Stream(parser);
                    fed
                }
            };
            match fed {
                Ok(false) => {}
                Ok(true) => {
                    ended = true;
                    break;
                }
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        if ended {
            release_after_end(response);
        }
        let body_end = Instant::now();
        // A body of nothing (or only blank lines) labelled as a stream is a stream without events.
        if labelled_sse && broken.is_none() && matches!(body, Body::Undecided(_)) {
            body = Body::Stream(sse::SseParser::new());
        }
        let label = || match &content_type {
            Some(value) => format!("labelled {:?}", String::from_utf8_lossy(value.as_bytes())),
            None => "without a Content-Type".to_string(),
        };
        let mismatch = match (&body, labelled_sse) {
            (Body::Stream(..), false) => Some(format!("{} but the body is an SSE stream", label())),
            (Body::Whole(_), true) if broken.is_none() => {
                Some(format!("{} but the body is not an SSE stream", label()))
            }
            _ => None,
        };
        let streamed = matches!(body, Body::Stream(..));
        let end = match body {
            Body::Stream(mut parser) => {
                let mut assembler = assembler.unwrap_or_else(|| stream::StreamAssembler::new(sent));
                if !ended
                    && broken.is_none()
                    && let Some(event) = parser.finish()
                {
                    assembler.on_event(&event, body_end, record);
                }
                assembler.finish(body_end, broken, record)
            }
            Body::Whole(buf) | Body::Undecided(buf) => {
                match broken {
                    Some((status, kind, message)) => record.fail(status, kind, message),
                    None => read_success_body(&buf, record),
                }
                last_byte
            }
        };
        if let Some(note) = mismatch {
            if let Some(error) = &mut record.error {
                error.message.push_str(&format!(" ({note})"));
            }
            record.notes.push(note);
        }
        if let Some(saved) = saved {
            record.response = Some(if streamed || labelled_sse {
                SavedBody::Text(String::from_utf8_lossy(&saved).into_owned())
            } else {
                saved_body(&saved)
            });
        }
        end
    }

    /// A transport failure as a record's status, kind and message. `headers_after` is when the
    /// answer's headers had arrived, if they had (a failure after them broke the body).
    fn transport_error(
        &self,
        e: &reqwest::Error,
        headers_after: Option<Duration>,
    ) -> (Status, &'static str, String) {
        if e.is_timeout() {
            let message = match headers_after {
                None => format!(
                    "no answer within {}",
                    humantime::format_duration(self.timeout)
                ),
                Some(after) => format!(
                    "answer not complete within {} (its headers came after {:.3} s)",
                    humantime::format_duration(self.timeout),
                    after.as_secs_f64()
                ),
            };
            return (Status::Timeout, "timeout", message);
        }
        let (status, kind) = classify(e);
        let status = if headers_after.is_some() && status == Status::ConnectError {
            Status::Truncated
        } else {
            status
        };
        (status, kind, describe(e))
    }
}

/// What the first bytes of a 2xx body are.
#[derive(Debug, PartialEq)]
enum Sniffed {
    /// Only whitespace (or the start of a field name) so far.
    Undecided,
    Sse,
    /// One JSON document, or something else to read whole (HTML, text).
    Whole,
}

/// A 2xx body as it is being read: not yet recognised, one whole body, or an SSE stream.
enum Body {
    Undecided(Vec<u8>),
    Whole(Vec<u8>),
    Stream(sse::SseParser),
}

/// Feeds bytes that arrived at `at` to a stream; true when an event ended the answer.
fn feed(
    parser: &mut sse::SseParser,
    assembler: &mut stream::StreamAssembler,
    bytes: &[u8],
    at: Instant,
    record: &mut Record,
) -> Result<bool, (Status, &'static str, String)> {
    if parser.push(bytes).is_err() {
        return Err((
            Status::InvalidResponse,
            "sse_line_too_long",
            "an SSE line exceeds 64 MiB".to_string(),
        ));
    }
    while let Some(event) = parser.next_event() {
        if assembler.on_event(&event, at, record).is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// After the answer's terminal event: when the body has ended too, the connection goes back to
/// the pool at once; otherwise the rest is drained off the request's path for at most
/// `BODY_END_GRACE` (HTTP/1.1 reuses the connection if it ends; past that, dropping the response
/// closes an HTTP/1.1 connection and resets an HTTP/2 stream). Nothing read there counts.
fn release_after_end(mut response: reqwest::Response) {
    use futures_util::FutureExt;
    if let Some(Ok(None)) = response.chunk().now_or_never() {
        return;
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(BODY_END_GRACE, async {
            while let Ok(Some(_)) = response.chunk().await {}
        })
        .await;
    });
}

/// Decides from the bytes, not the label: `{` or `[` first is one JSON body; an SSE field line
/// (`data:`, `event:`, `id:`, `retry:`, or a `:` comment) is a stream. Anything else is read whole
/// unless labelled `text/event-stream`.
fn sniff(head: &[u8], labelled_sse: bool) -> Sniffed {
    let start = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let Some(first) = start.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Sniffed::Undecided;
    };
    let rest = &start[first..];
    match rest[0] {
        b'{' | b'[' => return Sniffed::Whole,
        b':' => return Sniffed::Sse,
        _ => {}
    }
    for field in [&b"data:"[..], b"event:", b"id:", b"retry:"] {
        if rest.starts_with(field) {
            return Sniffed::Sse;
        }
        if field.starts_with(rest) {
            return Sniffed::Undecided;
        }
    }
    if labelled_sse {
        Sniffed::Sse
    } else {
        Sniffed::Whole
    }
}

/// The server closed (or reset) a connection before any byte of the answer: on a pooled
/// connection this is the keep-alive race (the server timed the idle connection out as the
/// request went out), not a failure of the request. A failed connect is not this.
fn is_closed_connection(e: &reqwest::Error) -> bool {
    if e.is_connect() || e.is_timeout() {
        return false;
    }
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            )
        {
            return true;
        }
        source = cause.source();
    }
    false
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

/// `url` as it may be shown or kept (run.json, messages, the resume command): no user or password,
/// and a query, which may carry a key, replaced by `<redacted>`.
pub fn redacted_url(url: &Url) -> Url {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("<redacted>"));
    }
    shown
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
    fn the_first_bytes_decide_between_a_stream_and_one_body() {
        for (head, labelled_sse, expected) in [
            (&b"  \r\n{\"id\":1}"[..], true, Sniffed::Whole),
            (b"\xEF\xBB\xBF[1]", true, Sniffed::Whole),
            (b"data: {}\n\n", false, Sniffed::Sse),
            (b"\nevent: x\n", false, Sniffed::Sse),
            (b": keep-alive\n", false, Sniffed::Sse),
            (b"da", false, Sniffed::Undecided),
            (b"\n\n", false, Sniffed::Undecided),
            (b"<html>", false, Sniffed::Whole),
            (b"<html>", true, Sniffed::Sse),
        ] {
            assert_eq!(
                sniff(head, labelled_sse),
                expected,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn api_key_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ApiKey::new("sk-secret".into())),
            "ApiKey(<redacted>)"
        );
    }
}
