//! The embedded OpenAI-compatible mock endpoint: `/v1/responses` and `/v1/chat/completions` on loopback.

mod answer;
pub mod batch;
mod faults;
pub mod metrics;
mod stream;
mod vectors;

pub use faults::Fault;

use answer::{Answer, AnswerKnobs, ApiShape, Prompt};
use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::BytesMut;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stream::{AnswerStream, Pace, Wire};
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
    /// Time from the request to the first generated token (after `latency` and jitter).
    pub ttft: Duration,
    /// Time between generated tokens.
    pub itl: Duration,
    /// Tokens per streamed chunk (at least 1); chunks go out every `itl × tokens_per_chunk`.
    pub tokens_per_chunk: u32,
    /// Reasoning tokens generated, and streamed, before the answer.
    pub reasoning_tokens: u32,
    /// Fixed answer length in tokens (default: 8–64, depending on the prompt).
    pub output_tokens: Option<u32>,
    /// Share of requests (0–1) answered with one of `faults` instead.
    pub fault_rate: f64,
    pub faults: Vec<Fault>,
    /// How long the `stall` fault holds its answer: just past the client's `--timeout` in-process,
    /// an hour for `llmvolley mock`.
    pub fault_stall: Duration,
    /// Once, `stall_at` after the first request, answer nothing for `stall_for`: answers due in
    /// that window go out when it ends (a server pausing, e.g. for garbage collection or a reload).
    pub stall_at: Duration,
    pub stall_for: Duration,
    /// Make every streamed write end in the middle of an event (each event completes with the
    /// next write), as arbitrary TCP segmentation does: for parser robustness and memory, not timing.
    pub split_events: bool,
    /// At most this many answers generated at once (0: no limit): the rest wait in a first-come
    /// queue, as in a real server's scheduler with a fixed batch, and the wait shows in their TTFT.
    pub slots: usize,
    /// How long a Batch API batch takes from `in_progress` to its end (the real API: up to 24 h).
    pub batch_time: Duration,
    /// What goes wrong with batches.
    pub batch_faults: Vec<batch::BatchFault>,
}

impl MockConfig {
    fn pace(&self, key: u64) -> Pace {
        let mut first = self.latency + self.ttft;
        if !self.jitter.is_zero() {
            let mut rng = SmallRng::seed_from_u64(key);
            first += self.jitter.mul_f64(rng.random_range(0.0..1.0));
        }
        let tokens_per_chunk = self.tokens_per_chunk.max(1);
        Pace {
            first,
            step: self.itl * tokens_per_chunk,
            tokens_per_chunk: tokens_per_chunk as usize,
        }
    }
}

struct MockState {
    config: MockConfig,
    /// `MockConfig::slots`: a generation holds a permit from its first token to its last.
    slots: Option<Arc<tokio::sync::Semaphore>>,
    requests: AtomicU64,
    first_request: std::sync::OnceLock<tokio::time::Instant>,
    /// Input tokens of each distinct body seen (a benchmark cycles its workload): counted once.
    input_counts: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
    /// What `GET /metrics` shows.
    metrics: Arc<metrics::Metrics>,
    /// `/v1/files` and `/v1/batches`.
    batch: batch::Store,
}

/// Bodies longer than this are counted on the blocking pool, not on the mock's one thread, so
/// other connections' answers keep their timing while a long prompt is tokenized.
const COUNT_OFF_THREAD_BYTES: usize = 64 * 1024;
/// Distinct bodies whose counts are kept; beyond, the cache starts over.
const CACHED_COUNTS: usize = 100_000;

impl MockState {
    /// When an answer due at `due` may go out: at the end of the stall if it falls inside it.
    fn after_stall(&self, due: tokio::time::Instant) -> tokio::time::Instant {
        if self.config.stall_for.is_zero() {
            return due;
        }
        let first = *self.first_request.get_or_init(tokio::time::Instant::now);
        let start = first + self.config.stall_at;
        let end = start + self.config.stall_for;
        if (start..end).contains(&due) {
            end
        } else {
            due
        }
    }
}

/// The mock's routes, for embedding in another server or driving with `tower::ServiceExt`.
pub fn router(config: MockConfig) -> Router {
    let slots = (config.slots > 0).then(|| Arc::new(tokio::sync::Semaphore::new(config.slots)));
    let state = Arc::new(MockState {
        slots,
        config,
        requests: AtomicU64::new(0),
        first_request: std::sync::OnceLock::new(),
        input_counts: std::sync::Mutex::default(),
        metrics: Arc::default(),
        batch: batch::Store::default(),
    });
    Router::new()
        // Under /v1 only, as the real API: a base URL missing /v1 fails against the mock too.
        .route("/v1/responses", post(responses))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/moderations", post(moderations))
        // Many clients list the models first (the SDKs' `models.list()`, health checks).
        .route("/v1/models", axum::routing::get(models))
        .route("/v1/models/{id}", axum::routing::get(model))
        // The Batch API: files in, batches run by the mock's own answer engine, files out.
        .route("/v1/files", post(batch::upload).get(batch::files))
        .route("/v1/files/{id}", axum::routing::get(batch::file))
        .route("/v1/files/{id}/content", axum::routing::get(batch::content))
        .route("/v1/batches", post(batch::create).get(batch::batches))
        .route("/v1/batches/{id}", axum::routing::get(batch::batch))
        .route("/v1/batches/{id}/cancel", post(batch::cancel))
        // At the root, as vLLM serves it.
        .route("/metrics", axum::routing::get(prometheus))
        .route("/version", axum::routing::get(version))
        .fallback(not_found)
        // Long-context prompts of several MB are normal; axum's default cap is 2 MB.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Loads `o200k_base` (0.15 s) before the first request, not during it: the mock counts every
/// request's input tokens with it.
fn preload_tokenizer() {
    crate::tokenize::Encoding::O200kBase.count("");
    // Older models' encoding, in the background: a request that needs it before it is loaded
    // waits for it (once).
    let _ = std::thread::Builder::new()
        .name("llmvolley-cl100k".into())
        .spawn(|| crate::tokenize::Encoding::Cl100kBase.count(""));
}

/// The largest request body the mock accepts (64 MiB); larger ones get a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Binds 127.0.0.1:`port` (0 picks a free port) with a deep accept queue, so a client opening
/// thousands of connections at once is not left waiting on SYN retransmits.
pub fn bind_loopback(port: u16) -> std::io::Result<TcpListener> {
    bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Listens on `addr` (IPv4 or IPv6) with a deep backlog, for `llmvolley mock --host`.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// The mock running on a thread of its own with a single-threaded runtime: in-process runs then do
/// not share the client's scheduler (and its cross-thread wake-ups) with the server side.
pub struct MockThread {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockThread {
    /// CPU time the mock's thread has used so far (to leave it out of the client's self-check).
    #[cfg(unix)]
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        use std::os::unix::thread::JoinHandleExt;
        crate::cpu::thread_cpu_time(self.thread.as_ref()?.as_pthread_t())
    }

    #[cfg(not(unix))]
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        None
    }

    pub fn start(config: MockConfig, port: u16) -> std::io::Result<MockThread> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("llmvolley-mock".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    preload_tokenizer();
                    let listener = match bind_loopback(port) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(listener.local_addr());
                    let _ = serve(listener, config, async {
                        let _ = stopped.await;
                    })
                    .await;
                });
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the mock thread stopped before listening"))??;
        Ok(MockThread {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for MockThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves the mock on an already bound listener until `shutdown` completes, then lets open answers
/// finish (for at most five seconds).
///
/// HTTP/1.1 and cleartext HTTP/2 (prior knowledge) are both spoken, with no cap on concurrent
/// HTTP/2 streams, so one connection can carry thousands of streamed answers.
pub async fn serve(
    listener: TcpListener,
    config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    preload_tokenizer();
    let app = router(config);
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(None::<u32>);
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before accept: keep serving the rest.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small SSE writes must leave at once, not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(connections.watch(connection));
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.shutdown()).await;
    Ok(())
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

async fn completions(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    answer(&state, body, ApiShape::Completions, ApiShape::Completions).await
}

async fn embeddings(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    classified(&state, body, vectors::Kind::Embeddings).await
}

async fn moderations(State(state): State<Arc<MockState>>, body: Bytes) -> Response {
    classified(&state, body, vectors::Kind::Moderations).await
}

/// Embeddings and moderations: one answer per input, after the configured latency, through the
/// same faults as the other routes.
async fn classified(state: &MockState, body: Bytes, kind: vectors::Kind) -> Response {
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the request body must be a JSON object",
                n,
            );
        }
    };
    let answer = match vectors::answer(&request, kind) {
        Ok(answer) => answer,
        Err((param, message)) => {
            return refused(param, &message, n);
        }
    };
    let arrived = tokio::time::Instant::now();
    state.first_request.get_or_init(|| arrived);
    let config = &state.config;
    let key = xxhash_rust::xxh3::xxh3_64_with_seed(&body, config.seed);
    let bytes = serde_json::to_vec(&answer).unwrap_or_default();
    if let Some(fault) = faults::draw(config.fault_rate, &config.faults, config.seed, n) {
        let good = move || (bytes, "application/json");
        return with_request_id(faults::respond(fault, config.fault_stall, good).await, n);
    }
    let due = state.after_stall(arrived + config.pace(key).first);
    if due > arrived {
        tokio::time::sleep_until(tick_nearest(due)).await;
    }
    with_request_id(
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        n,
    )
}

async fn answer(
    state: &MockState,
    body: Bytes,
    request_shape: ApiShape,
    answer_shape: ApiShape,
) -> Response {
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
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
    // The tool round is read once: refused here when its history is broken, used below.
    let round = refusal(&request, request_shape).map_or_else(
        || {
            answer::tool_round(&request, request_shape).map_err(|message| match request_shape {
                ApiShape::Responses => ("input", message),
                ApiShape::Chat => ("messages", message),
                ApiShape::Completions => ("prompt", message),
            })
        },
        Err,
    );
    let round = match round {
        Ok(round) => round,
        Err((param, message)) => {
            return refused(param, &message, n);
        }
    };
    let arrived = tokio::time::Instant::now();
    state.first_request.get_or_init(|| arrived);
    let key = xxhash_rust::xxh3::xxh3_64_with_seed(&body, state.config.seed);
    let config = &state.config;
    let pace = config.pace(key);
    let cached = state
        .input_counts
        .lock()
        .ok()
        .and_then(|counts| counts.get(&key).copied());
    let (request, input_tokens) = match cached {
        Some(n) => (request, n),
        None => {
            let (request, n) = if body.len() > COUNT_OFF_THREAD_BYTES {
                let counting = tokio::task::spawn_blocking(move || {
                    let n = answer::count_input(&request, request_shape);
                    (request, n)
                });
                match counting.await {
                    Ok(counted) => counted,
                    Err(_) => {
                        return error(StatusCode::INTERNAL_SERVER_ERROR, "counting failed", n);
                    }
                }
            } else {
                let n = answer::count_input(&request, request_shape);
                (request, n)
            };
            if let Ok(mut counts) = state.input_counts.lock() {
                if counts.len() >= CACHED_COUNTS {
                    counts.clear();
                }
                counts.insert(key, n);
            }
            (request, n)
        }
    };
    let prompt = Prompt::read_counted(&request, input_tokens, round);
    let knobs = AnswerKnobs {
        output_tokens: config.output_tokens,
        reasoning_tokens: config.reasoning_tokens,
    };
    let mut answer = Answer::generate(&prompt, key, knobs);
    let mut fault = faults::draw(config.fault_rate, &config.faults, config.seed, n);
    // A breakage of the answer's JSON is the answer's, not the transport's.
    if let Some(how) = fault.and_then(faults::Fault::breakage) {
        answer.break_structured(&prompt, how);
        fault = None;
    }
    let streamed = request.get("stream").and_then(Value::as_bool) == Some(true);
    let wire = match answer_shape {
        ApiShape::Responses => Wire::Responses,
        ApiShape::Chat => Wire::Chat {
            include_usage: request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true),
        },
        ApiShape::Completions => Wire::Completions {
            include_usage: request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true),
        },
    };
    if let Some(fault) = fault {
        let good_answer = move || {
            if streamed {
                let mut stream = AnswerStream::new(wire, answer, request, prompt, key, pace);
                let mut bytes = Vec::new();
                for _ in 0..4 {
                    if let Some((_, frame)) = stream.next_frame() {
                        bytes.extend_from_slice(&frame);
                    }
                }
                (bytes, "text/event-stream")
            } else {
                let body = match answer_shape {
                    ApiShape::Responses => answer.responses_body(&request, &prompt, key),
                    ApiShape::Chat => answer.chat_body(&prompt, key),
                    ApiShape::Completions => answer.completion_body(&prompt, key),
                };
                (
                    serde_json::to_vec(&body).unwrap_or_default(),
                    "application/json",
                )
            }
        };
        return with_request_id(
            faults::respond(fault, config.fault_stall, good_answer).await,
            n,
        );
    }
    let mut generation = metrics::Generation::new(
        state.metrics.clone(),
        arrived,
        prompt.input_tokens(),
        answer.output_tokens,
    );
    if streamed {
        let stream = AnswerStream::new(wire, answer, request, prompt, key, pace);
        let split = state.config.split_events;
        return with_request_id(
            sse_response(
                stream,
                state.after_stall(arrived),
                split,
                state.slots.clone(),
                generation,
            ),
            n,
        );
    }
    // A whole answer arrives when its last token would have been streamed, counted from when it
    // got a generation slot.
    let slot = match &state.slots {
        Some(slots) => slots.clone().acquire_owned().await.ok(),
        None => None,
    };
    generation.start();
    let started = arrived.max(tokio::time::Instant::now());
    let chunks = answer.chunk_count(pace.tokens_per_chunk as u64);
    let done_at = pace.first + pace.step * (chunks.saturating_sub(1) as u32);
    // Its first token when it would have been streamed: a client gone before then counts none.
    let first = state.after_stall(started + pace.first);
    if first > arrived {
        tokio::time::sleep_until(tick_nearest(first)).await;
    }
    generation.first_token(tokio::time::Instant::now());
    let due = state.after_stall(started + done_at);
    if due > first {
        tokio::time::sleep_until(tick_nearest(due)).await;
    }
    generation.finish();
    drop(slot);
    // One buffer sized for a typical answer, not axum::Json's small writes into a growing one.
    let mut body = Vec::with_capacity(2048);
    let written = match answer_shape {
        ApiShape::Responses => {
            serde_json::to_writer(&mut body, &answer.responses_answer(&request, &prompt, key))
        }
        ApiShape::Chat => serde_json::to_writer(&mut body, &answer.chat_body(&prompt, key)),
        ApiShape::Completions => {
            serde_json::to_writer(&mut body, &answer.completion_body(&prompt, key))
        }
    };
    let response = match written {
        Ok(()) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), n),
    };
    with_request_id(response, n)
}

/// tokio's timer fires on whole-millisecond ticks, at the first tick at or after a deadline: asking
/// for half a millisecond earlier makes it fire at the tick nearest the deadline, so the mock's own
/// timing error is within ±0.5 ms and unbiased instead of up to +1 ms late. Ticks also batch the
/// writes of many concurrent streams, which a sub-millisecond timer would not.
fn tick_nearest(deadline: tokio::time::Instant) -> tokio::time::Instant {
    deadline
        .checked_sub(Duration::from_micros(500))
        .unwrap_or(deadline)
}

/// Streams an answer, each frame written when its time (counted from the request's arrival) comes.
/// With `split`, every write ends in the middle of an event: the second half of each frame goes out
/// with the first half of the next one (and the last half on its own, right after).
/// One stream's progress: its frames, their timer, the half frame carried over (`split`), and the
/// generation slot it holds (`MockConfig::slots`) until its last frame.
struct Streaming {
    stream: AnswerStream,
    timer: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// When the answer's clock starts: its arrival, or the moment it got a slot.
    start: tokio::time::Instant,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    carried: Option<Bytes>,
    done: bool,
    /// For `/metrics`: finished with the last frame; dropped with the stream when the client goes.
    generation: Option<metrics::Generation>,
}

fn sse_response(
    stream: AnswerStream,
    arrived: tokio::time::Instant,
    split: bool,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    generation: metrics::Generation,
) -> Response {
    let state = Streaming {
        stream,
        timer: Box::pin(tokio::time::sleep_until(arrived)),
        start: arrived,
        slots,
        slot: None,
        carried: None,
        done: false,
        generation: Some(generation),
    };
    let events = futures_util::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        // The headers went out at once; the first frame waits for a slot, as a queued request
        // in a real server's scheduler does.
        if let Some(slots) = s.slots.take() {
            s.slot = slots.acquire_owned().await.ok();
            s.start = s.start.max(tokio::time::Instant::now());
        }
        if let Some(g) = s.generation.as_mut() {
            g.start();
        }
        let Some((at, frame)) = s.stream.next_frame() else {
            // The last half, if any, right after the last frame.
            s.done = true;
            if let Some(g) = s.generation.take() {
                g.finish();
            }
            s.slot = None;
            return s.carried.take().map(|rest| (Ok(rest), s));
        };
        s.timer.as_mut().reset(tick_nearest(s.start + at));
        s.timer.as_mut().await;
        if let Some(g) = s.generation.as_mut().filter(|_| s.stream.tokens_sent()) {
            g.first_token(tokio::time::Instant::now());
        }
        if !split {
            return Some((Ok::<_, std::convert::Infallible>(frame), s));
        }
        let mut frame = BytesMut::from(&frame[..]);
        let second = frame.split_off(frame.len() / 2).freeze();
        let write = match s.carried.take() {
            Some(rest) => {
                let mut joined = BytesMut::with_capacity(rest.len() + frame.len());
                joined.extend_from_slice(&rest);
                joined.extend_from_slice(&frame);
                joined.freeze()
            }
            None => frame.freeze(),
        };
        s.carried = Some(second);
        Some((Ok(write), s))
    });
    let mut response = Response::new(Body::from_stream(events));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

/// `GET /version`, as vLLM serves it: `{"version": ...}`.
async fn version() -> Response {
    axum::Json(json!({"version": concat!("llmvolley-mock ", env!("CARGO_PKG_VERSION"))}))
        .into_response()
}

/// `GET /metrics`: the mock's state in vLLM's Prometheus text format.
async fn prometheus(State(state): State<Arc<MockState>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// When the mock's models were "created" (Unix seconds): a fixed date, so answers are stable.
const MODELS_CREATED: u64 = 1_735_689_600;

/// A model object as `GET /v1/models` gives it (OpenAI API reference, "The model object").
fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODELS_CREATED, "owned_by": "llmvolley-mock"})
}

/// `GET /v1/models`: the models llmvolley has prices for (the mock answers any model name).
async fn models() -> Response {
    let mut ids: Vec<String> = crate::cost::PriceTable::default()
        .models()
        .filter(|id| !id.starts_with('_') && !id.starts_with("ft:"))
        .map(str::to_string)
        .collect();
    ids.sort();
    let data: Vec<Value> = ids.iter().map(|id| model_object(id)).collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1/models/{id}`: any id, since the mock answers requests for any model.
async fn model(axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    axum::Json(model_object(&id)).into_response()
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let hint = if matches!(path, "/responses" | "/chat/completions") {
        " (the API lives under /v1: the base URL should end in /v1)"
    } else {
        " (the mock serves POST /v1/responses, /v1/chat/completions, /v1/completions, /v1/embeddings and /v1/moderations, GET /v1/models)"
    };
    error(
        StatusCode::NOT_FOUND,
        &format!("Invalid URL ({method} {path}){hint}"),
        0,
    )
}

/// Why a body cannot be taken by its route, as the real API says it (400 invalid_request_error):
/// no model, a Chat body on the Responses API or the other way round.
fn refusal(request: &Value, route: ApiShape) -> Option<(&'static str, String)> {
    let has = |key: &str| request.get(key).is_some();
    if !has("model") {
        return Some(("model", "you must provide a model parameter".to_string()));
    }
    match route {
        ApiShape::Responses if has("messages") && !has("input") => Some((
            "messages",
            "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved to 'input'. (a Chat Completions body: send it to /v1/chat/completions, or --api chat)".to_string(),
        )),
        ApiShape::Completions if !has("prompt") => Some((
            "prompt",
            "Missing required parameter: 'prompt'.".to_string(),
        )),
        ApiShape::Chat if !has("messages") => Some((
            "messages",
            if has("input") {
                "Missing required parameter: 'messages'. (a Responses body: send it to /v1/responses, or --api responses)".to_string()
            } else {
                "Missing required parameter: 'messages'.".to_string()
            },
        )),
        _ => None,
    }
}

/// A 400 `invalid_request_error` naming the parameter at fault, as the API answers it.
fn refused(param: &str, message: &str, n: u64) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}});
    with_request_id(
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
        n,
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
