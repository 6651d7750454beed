//! A raw HTTP/1.1 peer on 127.0.0.1 that plays a script of timed writes per request: the exact
//! byte sequences (and the gaps between them) that real servers send, which a canned-body mock
//! cannot reproduce; and an h2c twin that plays a script's chunks and waits as DATA frames.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// One step of an answer.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes as they are.
    Raw(Vec<u8>),
    /// Write these bytes as one HTTP/1.1 chunk (`transfer-encoding: chunked`), or one HTTP/2
    /// DATA frame (`serve_h2c_with_nagle`).
    Chunk(Vec<u8>),
    /// Write the chunked terminator (on HTTP/2, end the stream): the body ended cleanly.
    End,
    /// Wait this long before the next step.
    Wait(Duration),
    /// Close the connection (no terminator if the body was chunked).
    Close,
}

/// What the script sees of a request.
pub struct Seen {
    /// The request's path, e.g. `/v1/responses`.
    pub path: String,
    /// 0-based index of the request among all this server received.
    pub n: usize,
    /// 0-based index of the request on its connection.
    pub on_connection: usize,
    /// The request's body, as text.
    pub body: String,
    /// Its `Host` header, if it had one.
    pub host: Option<String>,
}

pub struct Scripted {
    pub addr: SocketAddr,
    /// Served over TLS (a self-signed certificate: runs need `--insecure`).
    pub tls: bool,
    /// Requests read, and connections accepted.
    pub requests: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    /// Answers the client stopped reading before their last byte (a write failed: the peer closed).
    pub cut_by_client: Arc<AtomicUsize>,
}

impl Scripted {
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/v1", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn cut_by_client(&self) -> usize {
        self.cut_by_client.load(Ordering::SeqCst)
    }
}

type Script = dyn Fn(&Seen) -> Vec<Step> + Send + Sync;

/// Serves every request with `script(seen)`; a connection stays open for the next request unless
/// the script closes it. With `idle_close`, a connection idle that long is closed as its next
/// request arrives, unanswered: the keep-alive race a server with that idle timeout loses to a
/// client that sends on the connection just as the server closes it (made certain here).
pub async fn serve_with(
    idle_close: Option<Duration>,
    script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static,
) -> Scripted {
    serve_opts(idle_close, true, script).await
}

/// `serve`, on sockets without TCP_NODELAY: Nagle's algorithm holds each small write while an
/// earlier one is unacknowledged, as in servers that never set it.
pub async fn serve_with_nagle(
    script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static,
) -> Scripted {
    serve_opts(None, false, script).await
}

/// An h2c server (HTTP/2 with prior knowledge, no TLS) on sockets without TCP_NODELAY, answering
/// every request `200 text/event-stream` with `script`'s chunks as DATA frames and its waits
/// between them, ending the stream at `End`. Scripts hold only `Chunk`, `Wait` and `End`.
pub async fn serve_h2c_with_nagle(script: Vec<Step>) -> Scripted {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let script = Arc::new(script);
    let (counted, accepted) = (requests.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let _ = socket.set_nodelay(false);
            let (script, counted) = (script.clone(), counted.clone());
            let service = hyper::service::service_fn(move |_: http::Request<_>| {
                counted.fetch_add(1, Ordering::SeqCst);
                let frames = futures_util::stream::unfold(
                    (script.clone(), 0),
                    |(script, mut i)| async move {
                        loop {
                            match script.get(i)? {
                                Step::Wait(gap) => tokio::time::sleep(*gap).await,
                                Step::Chunk(bytes) => {
                                    let frame =
                                        hyper::body::Frame::data(bytes::Bytes::from(bytes.clone()));
                                    return Some((
                                        Ok::<_, std::convert::Infallible>(frame),
                                        (script, i + 1),
                                    ));
                                }
                                Step::End => return None,
                                other => panic!("an HTTP/2 script has no {other:?}"),
                            }
                            i += 1;
                        }
                    },
                );
                async move {
                    http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(http_body_util::StreamBody::new(frames))
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    Scripted {
        addr,
        tls: false,
        requests,
        connections,
        cut_by_client: Arc::new(AtomicUsize::new(0)),
    }
}

/// `serve_with` over TLS 1.2/1.3 (HTTP/1.1, no ALPN), with a freshly made self-signed certificate:
/// the path a run takes to an https:// endpoint (hyper-util's pooled client).
pub async fn serve_tls_with(
    idle_close: Option<Duration>,
    script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static,
) -> Scripted {
    let (acceptor, listener, _) = self_signed_tls(&[]).await;
    serve_on(listener, Some(acceptor), idle_close, true, script)
}

async fn serve_opts(
    idle_close: Option<Duration>,
    nodelay: bool,
    script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static,
) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_on(listener, None, idle_close, nodelay, script)
}

fn serve_on(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle_close: Option<Duration>,
    nodelay: bool,
    script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static,
) -> Scripted {
    let addr = listener.local_addr().unwrap();
    let over_tls = tls.is_some();
    let requests = Arc::new(AtomicUsize::new(0));
    let connections = Arc::new(AtomicUsize::new(0));
    let cut_by_client = Arc::new(AtomicUsize::new(0));
    let script: Arc<Script> = Arc::new(script);
    let (counted, accepted, cut) = (requests.clone(), connections.clone(), cut_by_client.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let (script, counted, cut) = (script.clone(), counted.clone(), cut.clone());
            let _ = socket.set_nodelay(nodelay);
            match tls.clone() {
                None => drop(tokio::spawn(connection(
                    socket, script, counted, cut, idle_close,
                ))),
                Some(acceptor) => drop(tokio::spawn(async move {
                    if let Ok(socket) = acceptor.accept(socket).await {
                        connection(socket, script, counted, cut, idle_close).await;
                    }
                })),
            }
        }
    });
    Scripted {
        addr,
        tls: over_tls,
        requests,
        connections,
        cut_by_client,
    }
}

pub async fn serve(script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static) -> Scripted {
    serve_with(None, script).await
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    script: Arc<Script>,
    counted: Arc<AtomicUsize>,
    cut: Arc<AtomicUsize>,
    idle_close: Option<Duration>,
) {
    let mut buf = Vec::new();
    let mut answered = std::time::Instant::now();
    for on_connection in 0.. {
        let Some((path, host, body)) = read_request(&mut socket, &mut buf).await else {
            return;
        };
        if on_connection > 0 && idle_close.is_some_and(|idle| answered.elapsed() >= idle) {
            return;
        }
        let n = counted.fetch_add(1, Ordering::SeqCst);
        for step in script(&Seen {
            path,
            n,
            on_connection,
            body,
            host,
        }) {
            let written = match step {
                Step::Raw(bytes) => socket.write_all(&bytes).await,
                Step::Chunk(bytes) => {
                    let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
                    framed.extend_from_slice(&bytes);
                    framed.extend_from_slice(b"\r\n");
                    socket.write_all(&framed).await
                }
                Step::End => socket.write_all(b"0\r\n\r\n").await,
                Step::Wait(d) => {
                    tokio::time::sleep(d).await;
                    Ok(())
                }
                Step::Close => return,
            };
            if written.is_err() {
                cut.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        answered = std::time::Instant::now();
    }
}

/// Reads one request (head and Content-Length body): its path, `Host` header and body, or None
/// when the peer closed.
async fn read_request(
    socket: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> Option<(String, Option<String>, String)> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let host = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("host")
            .then(|| value.trim().to_string())
    });
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
    buf.drain(..head_end + length);
    Some((path, host, body))
}

/// The head of a chunked 200 answer with this Content-Type (and extra header lines).
pub fn chunked_head(content_type: &str, extra: &str) -> Step {
    Step::Raw(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n{extra}\r\n"
        )
        .into_bytes(),
    )
}

/// A whole answer with a Content-Length body.
pub fn whole(status: u16, content_type: &str, extra: &str, body: &str) -> Step {
    Step::Raw(
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// A completed Responses body with usage 1 in, 1 out.
pub const COMPLETED: &str = r#"{"object":"response","status":"completed","output":[],"usage":{"input_tokens":1,"output_tokens":1}}"#;

/// A 200 answer with `COMPLETED` as its JSON body.
pub fn ok_whole() -> Step {
    whole(200, "application/json", "", COMPLETED)
}

/// An SSE `data:` event as one chunk.
pub fn data(json: &str) -> Step {
    Step::Chunk(format!("data: {json}\n\n").into_bytes())
}

/// A named SSE event as one chunk.
pub fn event(name: &str, json: &str) -> Step {
    Step::Chunk(format!("event: {name}\ndata: {json}\n\n").into_bytes())
}

pub fn wait_ms(ms: u64) -> Step {
    Step::Wait(Duration::from_millis(ms))
}

/// A Chat chunk whose first choice carries `delta` (JSON object text) and `finish` (JSON).
pub fn chat_chunk(delta: &str, finish: &str) -> Step {
    data(&format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
    ))
}

/// The Chat usage chunk (`choices: []`).
pub fn chat_usage(input: u64, output: u64) -> Step {
    data(&format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{{"prompt_tokens":{input},"completion_tokens":{output},"total_tokens":{}}}}}"#,
        input + output
    ))
}

/// A Responses text delta event.
pub fn text_delta(delta: &str) -> Step {
    event(
        "response.output_text.delta",
        &format!(
            r#"{{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":{}}}"#,
            serde_json::to_string(delta).unwrap()
        ),
    )
}

/// A Responses `response.completed` event with this usage.
pub fn completed(input: u64, output: u64) -> Step {
    event(
        "response.completed",
        &format!(
            r#"{{"type":"response.completed","response":{{"id":"resp_1","object":"response","model":"m","status":"completed","output":[],"usage":{{"input_tokens":{input},"output_tokens":{output},"total_tokens":{}}}}}}}"#,
            input + output
        ),
    )
}

/// A Responses `response.created` event.
pub fn created() -> Step {
    event(
        "response.created",
        r#"{"type":"response.created","response":{"id":"resp_1","object":"response","model":"m","status":"in_progress","output":[],"usage":null}}"#,
    )
}

/// A workload of Batch lines, one per case, each with `body` naming its case (`with_case`).
pub fn case_workload(dir: &std::path::Path, cases: &[&str], body: &str) -> std::path::PathBuf {
    let path = dir.join("cases.jsonl");
    let lines: Vec<String> = cases
        .iter()
        .map(|case| {
            format!(
                r#"{{"custom_id":"{case}","method":"POST","body":{}}}"#,
                with_case(body, case)
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// `body` (a JSON object's text) with `"case": CASE` as its first field: the test servers answer
/// by it (a line's `url` must be one of the API's).
pub fn with_case(body: &str, case: &str) -> String {
    let rest = body.trim_start().strip_prefix('{').unwrap_or(body);
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!(r#"{{"case":"{case}"{sep}{rest}"#)
}

/// The case a request's body names (`with_case`).
pub fn case_of(seen: &Seen) -> &str {
    let Some(at) = seen.body.find(r#""case":""#) else {
        return "";
    };
    let rest = &seen.body[at + 8..];
    &rest[..rest.find('"').unwrap_or(0)]
}

/// Runs `cases` (one Batch line each, its body naming its case) against `server`, and checks
/// that every line ended as one record.
pub async fn run_cases(
    server: &Scripted,
    cases: &[&str],
    body: &str,
    args: &[&str],
) -> (super::Run, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let workload = case_workload(tmp.path(), cases, body);
    let run =
        super::run_endpoint(&server.endpoint(), &workload, args, &tmp.path().join("out")).await;
    super::assert_run_invariants(&run, &workload);
    (run, tmp)
}

/// A TLS acceptor with a freshly made self-signed certificate for localhost and 127.0.0.1,
/// offering `alpn` (none: HTTP/1.1 without negotiation), and a listener with its https:// base URL.
pub async fn self_signed_tls(
    alpn: &[&[u8]],
) -> (tokio_rustls::TlsAcceptor, tokio::net::TcpListener, String) {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!(
        "https://localhost:{}/v1",
        listener.local_addr().unwrap().port()
    );
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        listener,
        endpoint,
    )
}
