//! How a request is sent and read: one pooled HTTP client, URL joining, timing, and the answer parsers.

mod encoding;
mod parse;
mod pool;

pub mod retry;
pub use retry::{Asked, Hints as RateHints, Wait};
pub mod sse;
mod stream;
mod transport;

pub use parse::{read_error_body, read_success_body};

use crate::record::{Record, SavedBody, Status, millis};
use crate::workload::Route;
use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue,
    PROXY_AUTHORIZATION, USER_AGENT,
};
use http::{Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::time::Sleep;
pub use transport::Http;
use transport::Transport;
use url::Url;

/// An API key that never prints itself.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        ApiKey(key)
    }

    /// The key itself, for the one place that must know it to scrub it from what is written.
    pub fn expose(&self) -> &str {
        &self.0
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
    /// The most one answer may be, in decoded bytes (`--max-answer-bytes`).
    pub max_answer_bytes: usize,
    /// The credentials sent, scrubbed from a failed attempt's error before anything logs it.
    pub secrets: crate::secrets::Secrets,
    pub save_responses: bool,
    /// HTTP/2 without negotiation for http:// (h2c).
    pub http2_prior_knowledge: bool,
    /// No credential goes with the requests: a 401's error says so.
    pub no_credential: bool,

    /// Skip TLS certificate verification (`--insecure`, never the default).
    pub insecure: bool,
}

/// Sends requests and turns each answer (or failure) into a `Record`.
pub struct Client {
    http: Http,
    /// Plain-HTTP/1.1 endpoints without a proxy: the load's own connections (`pool`), instead
    /// of `http`'s.
    h1: Option<pool::H1Pool>,
    /// Each route's origin-form URI (its path), for `h1`'s connections.
    paths: Vec<Uri>,
    /// `headers` carries the endpoint's `Host` for `h1` (not one given with `-H`).
    host_added: bool,
    /// Keeps no connection: a re-send after a pooled connection was found closed gets a new one.
    fresh: Http,
    /// Sent with every request: content type, accept, user agent, the API key, `-H` headers.
    headers: HeaderMap,
    /// Each route's URI, by `Route as usize`: built once, cloned per request (a refcount).
    uris: Vec<Uri>,
    save_responses: bool,
    timeout: Duration,
    max_answer_bytes: usize,
    secrets: crate::secrets::Secrets,
    /// See `ClientConfig::no_credential`.
    no_credential: bool,
    /// h2c (`--http2` to http://): a server answering in HTTP/1.1 is told apart.
    http2_prior_knowledge: bool,
    /// An HTTP/2 answer has arrived: a connection failing later is not the protocol's fault.
    spoke_http2: std::sync::atomic::AtomicBool,
    epoch: Instant,
}

/// What a 401 adds when no credential went with the request.
pub const NO_KEY_SENT: &str =
    "no key was sent: OPENAI_API_KEY is unset (or give --api-key-env NAME or --api-key-file PATH)";

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

/// The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus
/// `NO_PROXY`), without its credentials; None: direct.
pub fn proxy_for(url: &Url) -> Option<String> {
    let uri = uri(url).ok()?;
    let proxy = transport::Matcher::from_env().intercept(&uri)?;
    let shown = proxy.uri();
    let authority = shown.authority().map_or("", |a| a.as_str());
    let host = authority.rsplit('@').next().unwrap_or(authority);
    Some(format!("{}://{host}", shown.scheme_str().unwrap_or("http")))
}

/// A small pool of its own for side requests (metrics scrapes): never the load's connections, so
/// a slow `/metrics` takes no slot a request could use. The environment's proxies apply as to
/// the load.
pub fn side_http(insecure: bool) -> anyhow::Result<Http> {
    Transport {
        connect_timeout: Duration::from_secs(5),
        max_idle: 4,
        idle_timeout: Duration::from_secs(30),
        http2_only: false,
        insecure,
        proxies: std::sync::Arc::new(transport::Matcher::from_env()),
    }
    .build()
}

impl Client {
    /// `epoch` is the run's start: record times count from it.
    pub fn new(config: &ClientConfig, epoch: Instant) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("llmvolley/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(ApiKey(key)) = &config.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                anyhow::anyhow!("the API key contains characters not allowed in an HTTP header")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        // `https://user:password@host/v1`: Basic auth, as reqwest and curl take it; the URL sent
        // carries no credentials.
        if !config.base_url.username().is_empty() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let pair = format!(
                "{}:{}",
                decode(config.base_url.username()),
                decode(config.base_url.password().unwrap_or(""))
            );
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let proxies = std::sync::Arc::new(transport::Matcher::from_env());
        let base_uri = uri(&config.base_url)?;
        if let Some(proxy) = proxies.intercept(&base_uri) {
            // An `https://` or `socks5://` proxy is refused before anything is sent, so its
            // credentials never go out in the clear.
            if let Some(e) = transport::unsupported_proxy(proxy.uri()) {
                anyhow::bail!("{e}");
            }
            // A plain-HTTP proxy sees each request, so its credentials go with each one.
            if base_uri.scheme_str() == Some("http")
                && let Some(auth) = proxy.basic_auth()
            {
                headers.insert(PROXY_AUTHORIZATION, auth.clone());
            }
        }
        for (name, value) in &config.headers {
            headers.insert(name.clone(), value.clone());
        }
        let transport = |max_idle: usize| Transport {
            connect_timeout: config.timeout.min(Duration::from_secs(30)),
            max_idle,
            idle_timeout: config.pool_idle_timeout,
            http2_only: config.http2_prior_knowledge,
            insecure: config.insecure,
            proxies: proxies.clone(),
        };
        let own = base_uri.scheme() == Some(&http::uri::Scheme::HTTP)
            && proxies.intercept(&base_uri).is_none()
            && !config.http2_prior_knowledge
            && config.max_connections > 0;
        let mut host_added = false;
        let h1 = match (own, base_uri.authority()) {
            (true, Some(authority)) => {
                // hyper's pooled client adds it; a connection driven directly does not. A `-H
                // Host:` stays.
                if !headers.contains_key(HOST) {
                    headers.insert(HOST, HeaderValue::from_str(authority.as_str())?);
                    host_added = true;
                }
                let destination = Uri::builder()
                    .scheme(http::uri::Scheme::HTTP)
                    .authority(authority.clone())
                    .path_and_query("/")
                    .build()?;
                Some(pool::H1Pool::new(
                    transport(config.max_connections).connector()?,
                    destination,
                    config.max_connections,
                    config.pool_idle_timeout,
                ))
            }
            _ => None,
        };
        let uris: Vec<Uri> = Route::ALL
            .iter()
            .map(|route| uri(&endpoint_url(&config.base_url, route)))
            .collect::<anyhow::Result<_>>()?;
        let paths = uris
            .iter()
            .map(|uri| {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                Uri::try_from(path).map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Client {
            http: transport(config.max_connections).build()?,
            h1,
            paths,
            host_added,
            fresh: transport(0).build()?,
            headers,
            uris,
            save_responses: config.save_responses,
            timeout: config.timeout,
            max_answer_bytes: config.max_answer_bytes,
            secrets: config.secrets.clone(),
            no_credential: config.no_credential,
            http2_prior_knowledge: config.http2_prior_knowledge,
            spoke_http2: std::sync::atomic::AtomicBool::new(false),
            epoch,
        })
    }

    /// `route`'s entry in `targets` (`uris` or `paths`, both by `Route as usize`).
    fn target(targets: &[Uri], route: &Route) -> Result<Uri, Failed> {
        targets
            .get(*route as usize)
            .cloned()
            .ok_or_else(|| Failed::Url(format!("no URI for {}", route.path())))
    }

    /// Sends one request on `via` at `sent` and waits for its answer's headers, at most until
    /// `deadline` fires; an answer on the load's own connections comes with the connection it
    /// holds.
    async fn send(
        &self,
        via: Via<'_>,
        route: &Route,
        body: Bytes,
        sent: Instant,
        deadline: Pin<&mut Sleep>,
    ) -> Result<(http::Response<Incoming>, Option<pool::Lease>), Failed> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.headers_mut() = self.headers.clone();
        let sending = async {
            match via {
                Via::Own(pool) => {
                    *request.uri_mut() = Self::target(&self.paths, route)?;
                    pool.send(request, sent)
                        .await
                        .map(|(answer, lease)| (answer, Some(lease)))
                        .map_err(|e| Failed::Send(SendError::Own(e)))
                }
                Via::Pooled(http) => {
                    *request.uri_mut() = Self::target(&self.uris, route)?;
                    http.request(request)
                        .await
                        .map(|answer| (answer, None))
                        .map_err(|e| Failed::Send(SendError::Pooled(e)))
                }
            }
        };
        tokio::select! {
            biased;
            answer = sending => {
                if self.http2_prior_knowledge
                    && answer.is_ok()
                    && !self.spoke_http2.load(std::sync::atomic::Ordering::Relaxed)
                {
                    self.spoke_http2.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                answer
            }
            () = deadline => Err(Failed::Timeout),
        }
    }

    /// A GET beside the load (the server's identity): with the client's headers (the key, `-H`),
    /// on a connection of its own, within `limit`, its body cut at 1 MiB. Errors name what went
    /// wrong, scrubbed of credentials.
    pub async fn side_get(
        &self,
        uri: Uri,
        limit: Duration,
    ) -> Result<(http::StatusCode, HeaderMap, Bytes), String> {
        self.side_request(Method::GET, uri, None, Bytes::new(), limit, 1 << 20)
            .await
    }

    /// A request beside the load (the Batch API's files and batches): `content_type` and `body`
    /// (none for a GET), with the client's headers, on a connection of its own, within `limit`,
    /// its answer's body at most `max_bytes`. Errors name what went wrong, scrubbed of
    /// credentials.
    pub async fn side_request(
        &self,
        method: Method,
        uri: Uri,
        content_type: Option<&str>,
        body: Bytes,
        limit: Duration,
        max_bytes: usize,
    ) -> Result<(http::StatusCode, HeaderMap, Bytes), String> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        // The load's `Host` is the endpoint's; a side request's may go elsewhere (a scrape's
        // port): hyper-util's client sets the right one.
        if self.host_added {
            request.headers_mut().remove(HOST);
        }
        match content_type.map(HeaderValue::from_str) {
            Some(Ok(value)) => {
                request.headers_mut().insert(CONTENT_TYPE, value);
            }
            Some(Err(e)) => return Err(format!("content type: {e}")),
            None => {
                request.headers_mut().remove(CONTENT_TYPE);
            }
        }
        let work = async {
            let response = self
                .fresh
                .request(request)
                .await
                .map_err(|e| describe(&e))?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, max_bytes)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok((parts.status, parts.headers, body))
        };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result.map_err(|mut e: String| {
                self.secrets.scrub(&mut e);
                e
            }),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(limit)
            )),
        }
    }

    /// Removes the credentials this client sends from `text` (a server's message may echo them).
    pub fn scrub(&self, text: &mut String) {
        self.secrets.scrub(text);
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
        // The timeout covers the whole answer, its body too: one timer, registered once.
        let deadline = tokio::time::sleep_until((sent + self.timeout).into());
        tokio::pin!(deadline);
        // A shared buffer: kept to tell, should the answer come whole, whether it asked to stream.
        let sent_body = body.clone();
        let via = match &self.h1 {
            Some(pool) => Via::Own(pool),
            None => Via::Pooled(&self.http),
        };
        let mut outcome = self
            .send(via, route, body.clone(), sent, deadline.as_mut())
            .await;
        if let Err(Failed::Send(e)) = &outcome
            && is_closed_connection(e)
            && sent.elapsed() < RECONNECT_WINDOW
        {
            tracing::debug!(error = %describe(e.as_error()), "pooled connection was closed: sending again on a new one");
            record.reconnects += 1;
            sent = Instant::now();
            deadline.as_mut().reset((sent + self.timeout).into());
            outcome = self
                .send(
                    Via::Pooled(&self.fresh),
                    route,
                    body,
                    sent,
                    deadline.as_mut(),
                )
                .await;
        }
        let (response, lease) = match outcome {
            Ok(answer) => answer,
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
        let (head, body) = response.into_parts();
        let mut hints = retry::Hints::from_headers(&head.headers);
        let headers_at = sent.elapsed();
        record.ttfb_ms = Some(millis(headers_at));
        record.connect_ms = match &lease {
            Some(lease) => lease.set_up,
            None => head
                .extensions
                .get::<transport::NewConnection>()
                .and_then(transport::NewConnection::take),
        }
        .map(millis);
        let ack = Acks {
            handle: match &lease {
                Some(lease) => lease.ack.as_ref(),
                None => head.extensions.get::<transport::QuickAck>(),
            },
            http2: head.version == http::Version::HTTP_2,
        };
        let http_status = head.status;
        record.http_status = Some(http_status.as_u16());
        record.request_id = head
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let end = if http_status.is_success() {
            let end = self
                .read_answer(
                    body,
                    Head {
                        headers: &head.headers,
                        ack,
                    },
                    sent,
                    headers_at,
                    deadline.as_mut(),
                    record,
                )
                .await;
            // Chunks are counted for streams only: an ok answer without them came whole.
            if record.status == Status::Ok && record.chunks.is_none() && asks_to_stream(&sent_body)
            {
                record.flag(crate::record::Flag::NotStreamed);
            }
            record.judge_emptiness();
            end
        } else {
            let limit = ERROR_BODY_LIMIT.min(self.max_answer_bytes);
            let body = read_bounded(body, limit, deadline.as_mut()).await;
            let end = Instant::now();
            // An error page compressed against the request's wishes is read decoded, else as is.
            let body = body.map(|body| {
                encoding::Decoder::of(&head.headers)
                    .and_then(|mut d| d.decode(body.clone(), limit))
                    .unwrap_or(body)
            });
            match body {
                Ok(body) => {
                    // Gateways name the wait in the body of a 429, and of a 503 when overloaded.
                    if matches!(http_status.as_u16(), 429 | 503) {
                        hints.read_body(&body);
                    }
                    read_error_body(http_status.as_u16(), &body, record);
                    if http_status == http::StatusCode::UNAUTHORIZED
                        && self.no_credential
                        && let Some(error) = &mut record.error
                    {
                        error.message = format!("{}; {NO_KEY_SENT}", error.message);
                    }
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
        // An error is logged (`-v`) before the collector scrubs the record: scrub it here. Answers
        // that succeeded are scrubbed on the collector's thread, off the request path.
        if let Some(error) = &mut record.error {
            self.secrets.scrub(&mut error.kind);
            self.secrets.scrub(&mut error.message);
        }
        if let (Some(pool), Some(lease)) = (&self.h1, lease) {
            pool.give_back(lease, end);
        }
        Attempt { hints, sent, end }
    }

    /// Reads a 2xx answer, deciding from its first bytes (not its Content-Type, which is only a
    /// hint) whether it is an SSE stream or one JSON body; returns when the answer ended.
    async fn read_answer(
        &self,
        mut response: Incoming,
        head: Head<'_>,
        sent: Instant,
        headers_at: Duration,
        mut deadline: Pin<&mut Sleep>,
        record: &mut Record,
    ) -> Instant {
        let Head { headers, ack } = head;
        let labelled_sse = is_event_stream(headers);
        // A stream's events are acknowledged as they come from its head on (`QuickAck`).
        let mut acked = if ack.http2 {
            ack.every_read()
        } else {
            labelled_sse && ack.now()
        };
        let mut decoder = match encoding::Decoder::of(headers) {
            Ok(decoder) => decoder,
            Err((kind, message)) => {
                record.fail(Status::InvalidResponse, kind, message);
                return Instant::now();
            }
        };
        if decoder.name().is_some() {
            record.flag(crate::record::Flag::Compressed);
        }
        // Kept (a reference-counted copy) to name it should the body disagree.
        let content_type = headers.get(CONTENT_TYPE).cloned();
        let mut body = Body::Undecided(Vec::new());
        // Made when the body turns out to be a stream (kept beside `body`, not boxed inside it).
        let mut assembler: Option<stream::StreamAssembler> = None;
        let mut saved = (self.save_responses).then(Vec::new);
        let mut broken = None;
        let mut ended = false;
        let mut last_byte;
        loop {
            let chunk = next_chunk(&mut response, deadline.as_mut()).await;
            let at = Instant::now();
            last_byte = at;
            let bytes = match chunk {
                Ok(Some(bytes)) => {
                    // More to come after this piece: what arrived is acknowledged now, once (it
                    // stays so until the next request is sent).
                    if !acked && !hyper::body::Body::is_end_stream(&response) {
                        acked = ack.now();
                    }
                    bytes
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(self.transport_error(&e, Some(headers_at)));
                    break;
                }
            };
            // Past `--max-answer-bytes` (decoded) the answer ends, and nothing more is held.
            let bytes = match decoder.decode(bytes, self.max_answer_bytes) {
                Ok(bytes) if bytes.is_empty() => continue,
                Ok(bytes) => bytes,
                Err((kind, message)) => {
                    broken = Some((Status::InvalidResponse, kind, message));
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
                    // Leading blank bytes decide nothing and are not kept: a body of whitespace is
                    // read in linear time, not sniffed again from its start at every chunk.
                    // (A byte-order mark before them is kept: the sniff skips it.)
                    let bom = if buf.starts_with(b"\xEF\xBB\xBF") {
                        3
                    } else {
                        0
                    };
                    if buf[bom..].iter().all(u8::is_ascii_whitespace)
                        && bytes.iter().all(u8::is_ascii_whitespace)
                    {
                        buf.truncate(bom);
                        continue;
                    }
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
        // A runaway answer's record keeps only the head of what arrived: records stay small.
        let runaway = record
            .error
            .as_ref()
            .is_some_and(|e| e.kind == "answer_too_large");
        if runaway {
            for text in [
                record.output_text.as_mut(),
                record.refusal.as_mut(),
                Some(&mut record.reasoning_text),
            ]
            .into_iter()
            .flatten()
            {
                cut_at_char(text, KEPT_OF_RUNAWAY);
            }
            for call in &mut record.tool_calls {
                cut_at_char(&mut call.arguments, KEPT_OF_RUNAWAY);
            }
        }
        if let Some(note) = mismatch {
            if let Some(error) = &mut record.error {
                error.message.push_str(&format!(" ({note})"));
            }
            record.notes.push(note);
        }
        if let Some(mut saved) = saved {
            // A runaway answer's saved body is cut like its text.
            if runaway {
                saved.truncate(KEPT_OF_RUNAWAY);
            }
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
        e: &Failed,
        headers_after: Option<Duration>,
    ) -> (Status, &'static str, String) {
        let (status, kind) = match e {
            Failed::Timeout => {
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
            Failed::Url(message) => return (Status::InvalidInput, "url", message.clone()),
            // As reqwest reported it, and as the request's own deadline would: a timeout.
            Failed::Send(e) if connect_timed_out(e) => {
                return (Status::Timeout, "timeout", describe(e.as_error()));
            }
            Failed::Send(e) if let Some(mismatch) = self.protocol_mismatch(e) => {
                return (
                    Status::ConnectError,
                    mismatch.kind(),
                    format!("{}: {}", describe(e.as_error()), mismatch.fix()),
                );
            }
            Failed::Send(e) if e.is_connect() => (Status::ConnectError, "connect"),
            Failed::Send(_) => (Status::ConnectError, "transport"),
            Failed::Body(_) => (Status::Truncated, "body_read"),
        };
        let status = if headers_after.is_some() && status == Status::ConnectError {
            Status::Truncated
        } else {
            status
        };
        let message = match e {
            Failed::Send(e) => describe(e.as_error()),
            Failed::Body(e) => describe(e),
            Failed::Timeout | Failed::Url(_) => unreachable!("returned above"),
        };
        (status, kind, message)
    }
}

impl Client {
    /// A failure that names a setting to change, not a server to wait for.
    fn protocol_mismatch(&self, e: &SendError) -> Option<ProtocolMismatch> {
        let e = e.as_error();
        // rustls read a plain-HTTP answer ("HTTP/1.1 400 ...") as a TLS record.
        if let Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) =
            find_cause::<rustls::Error>(e)
        {
            return Some(ProtocolMismatch::PlainHttp);
        }
        // h2 read an HTTP/1.1 answer to its preface as a frame header ("HTT" is a length far past
        // any frame's), and the requests waiting for that connection were cancelled with it
        // ("connection was not ready", "connection closed"), before any HTTP/2 answer ever came.
        // h2 does not expose its error types through hyper: its text is read.
        let text = describe(e);
        (self.http2_prior_knowledge
            && !self.spoke_http2.load(std::sync::atomic::Ordering::Relaxed)
            && (text.contains("frame with invalid size")
                || text.contains("connection was not ready")
                || text.contains("operation was canceled: connection closed")))
        .then_some(ProtocolMismatch::NoHttp2)
    }
}

/// The first error of type `T` among `e`'s causes, looking inside `io::Error`s too (their
/// `source` skips the error they wrap, and connectors wrap them in one another).
fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        next = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

/// A connection that failed because the two sides speak different protocols: never retried,
/// and the run gives up at once (`GiveUp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolMismatch {
    /// `https://` to a server that speaks plain HTTP.
    PlainHttp,
    /// `--http2` (prior knowledge) to a server that speaks only HTTP/1.1.
    NoHttp2,
}

impl ProtocolMismatch {
    /// The record's `error.kind`.
    pub fn kind(self) -> &'static str {
        match self {
            ProtocolMismatch::PlainHttp => "tls_to_plain_http",
            ProtocolMismatch::NoHttp2 => "http2_not_spoken",
        }
    }

    pub fn from_kind(kind: &str) -> Option<ProtocolMismatch> {
        [ProtocolMismatch::PlainHttp, ProtocolMismatch::NoHttp2]
            .into_iter()
            .find(|m| m.kind() == kind)
    }

    /// What to change.
    pub fn fix(self) -> &'static str {
        match self {
            ProtocolMismatch::PlainHttp => {
                "the server speaks plain HTTP: use http:// in --endpoint"
            }
            ProtocolMismatch::NoHttp2 => {
                "no HTTP/2 answer came: the server does not speak HTTP/2 without negotiation (prior knowledge): drop --http2"
            }
        }
    }
}

/// An error answer's body is read up to this much (its message is in the first bytes; nothing
/// larger is held): the rest is not read, and the connection is dropped.
const ERROR_BODY_LIMIT: usize = 1 << 20;

/// A body up to `limit` bytes (cut there: the response is dropped, which closes its connection),
/// at most until `deadline` fires.
async fn read_bounded(
    mut body: Incoming,
    limit: usize,
    mut deadline: Pin<&mut Sleep>,
) -> Result<Bytes, Failed> {
    let mut buf = Vec::new();
    while let Some(chunk) = next_chunk(&mut body, deadline.as_mut()).await? {
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() >= room {
            break;
        }
    }
    Ok(Bytes::from(buf))
}

/// The text a record keeps of an answer cut at `--max-answer-bytes`.
const KEPT_OF_RUNAWAY: usize = 64 * 1024;

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn cut_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut at = max;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
    }
}

/// Why an attempt got no (whole) answer.
enum Failed {
    /// The `--timeout` ran out.
    Timeout,
    /// The request's URL is not one HTTP can send to (a Batch line's `url`).
    Url(String),
    /// No answer: the connection could not be made, or broke before the answer's headers.
    Send(SendError),
    /// The answer's body broke off.
    Body(hyper::Error),
}

/// The next piece of a body (None at its end), waiting at most until `deadline` fires; trailers
/// are skipped.
async fn next_chunk(
    body: &mut Incoming,
    mut deadline: Pin<&mut Sleep>,
) -> Result<Option<Bytes>, Failed> {
    loop {
        let frame = tokio::select! {
            biased;
            frame = body.frame() => frame,
            () = deadline.as_mut() => return Err(Failed::Timeout),
        };
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(Failed::Body(e)),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Which connections a request goes on.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// The load's own HTTP/1.1 connections.
    Own(&'a pool::H1Pool),
    /// hyper-util's pooled client (HTTP/2, TLS, proxies; and the fresh connection of a re-send).
    Pooled(&'a Http),
}

/// Why a send got no answer head: from either kind of connection.
#[derive(Debug)]
enum SendError {
    Own(pool::PoolError),
    Pooled(legacy::Error),
}

impl SendError {
    /// The connection could not be set up (as opposed to failing under a request).
    fn is_connect(&self) -> bool {
        match self {
            SendError::Own(e) => matches!(e, pool::PoolError::Connect(_)),
            SendError::Pooled(e) => e.is_connect(),
        }
    }

    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        match self {
            SendError::Own(e) => e,
            SendError::Pooled(e) => e,
        }
    }
}

/// An answer's headers, and how its pieces are acknowledged.
struct Head<'a> {
    headers: &'a HeaderMap,
    ack: Acks<'a>,
}

/// How an answer's pieces are acknowledged: the connection's `QuickAck` (none for a connection
/// that is not ours, such as a test double), at most once per answer on HTTP/1.1; on HTTP/2 the
/// connection acknowledges each read itself.
#[derive(Clone, Copy)]
struct Acks<'a> {
    handle: Option<&'a transport::QuickAck>,
    http2: bool,
}

impl Acks<'_> {
    /// Acknowledges now; true when there was a connection to ask.
    fn now(self) -> bool {
        self.handle.inspect(|h| h.now()).is_some()
    }

    /// Has the connection acknowledge every read from now on (HTTP/2).
    fn every_read(self) -> bool {
        self.handle.inspect(|h| h.every_read()).is_some()
    }
}

/// A URL as hyper takes it, without user and password (they go in `Authorization`).
fn uri(url: &Url) -> anyhow::Result<Uri> {
    let bare;
    let url = if url.username().is_empty() && url.password().is_none() {
        url
    } else {
        let mut stripped = url.clone();
        let _ = stripped.set_username("");
        let _ = stripped.set_password(None);
        bare = stripped;
        &bare
    };
    url.as_str()
        .parse()
        .map_err(|e| anyhow::anyhow!("{} is not a URL HTTP can send to: {e}", redacted_url(url)))
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

/// Whether a request body says `"stream": true` (read only for an answer that came whole).
fn asks_to_stream(body: &[u8]) -> bool {
    memchr::memmem::find_iter(body, b"\"stream\"").any(|at| {
        let rest = &body[at + 8..];
        let rest = rest.trim_ascii_start();
        rest.strip_prefix(b":")
            .is_some_and(|v| v.trim_ascii_start().starts_with(b"true"))
    })
}

/// After the answer's terminal event: when the body has ended too, the connection goes back to
/// the pool at once; otherwise the rest is drained off the request's path for at most
/// `BODY_END_GRACE` (HTTP/1.1 reuses the connection if it ends; past that, dropping the response
/// closes an HTTP/1.1 connection and resets an HTTP/2 stream). Nothing read there counts.
fn release_after_end(mut response: Incoming) {
    use futures_util::FutureExt;
    use hyper::body::Body as _;
    if response.is_end_stream() {
        return;
    }
    if let Some(None) = response.frame().now_or_never() {
        return;
    }
    tokio::spawn(async move {
        let _ = tokio::time::timeout(BODY_END_GRACE, async {
            while let Some(Ok(_)) = response.frame().await {}
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

/// Whether setting the connection up ran out of time (TCP, proxy tunnel or TLS).
fn connect_timed_out(e: &SendError) -> bool {
    let mut source = Some(e.as_error());
    while let Some(cause) = source {
        if cause.is::<transport::ConnectTimedOut>()
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The server closed (or reset) a connection before any byte of the answer: on a pooled
/// connection this is the keep-alive race (the server timed the idle connection out as the
/// request went out), not a failure of the request. A failed connect is not this.
fn is_closed_connection(e: &SendError) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut source = Some(e.as_error());
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        // `UnexpectedEof`: over TLS, rustls' word for a peer that closed without close_notify, as
        // a server timing out an idle connection does (a scripted TLS server showed it: the
        // keep-alive race over HTTPS ended as connect_error before).
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
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
    let mut url = base.clone();
    url.set_path(&format!("{base_path}{}", route.path()));
    url
}

fn saved_body(body: &[u8]) -> SavedBody {
    match serde_json::from_slice(body) {
        Ok(raw) => SavedBody::Json(raw),
        Err(_) => SavedBody::Text(String::from_utf8_lossy(body).into_owned()),
    }
}

/// The error and its causes on one line. hyper's errors carry no URL (it may carry query
/// credentials).
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
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
        let route = Route::from_batch_url("/v1/embeddings").unwrap();
        assert_eq!(
            url("https://gw.example/v1", route),
            "https://gw.example/v1/embeddings"
        );
        assert_eq!(
            url("https://gw.example/openai/v1/", Route::Completions),
            "https://gw.example/openai/v1/completions"
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
