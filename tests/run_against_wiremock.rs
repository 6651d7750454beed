//! End to end against an independent HTTP mock (wiremock) serving canned bodies, and raw TCP peers.

use crate::common::scripted::self_signed_tls;
use crate::common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SEED_RESPONSE: &str = r#"{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.","annotations":[]}]}],"parallel_tool_calls":true,"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123},"user":null,"metadata":{}}"#;
const SEED_CHAT: &str = r#"{"id":"chatcmpl-123","object":"chat.completion","created":1677652288,"choices":[{"index":0,"message":{"role":"assistant","content":"\n\nHello there, how may I assist you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
const SEED_FUNCTION_CALL: &str = r#"{"id":"resp_68ac","object":"response","created_at":1756108120,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-4.1-data","output":[{"id":"fc_68ac","type":"function_call","status":"completed","arguments":"{\"sign\":\"Aquarius\"}","call_id":"call_6kbB2GTk62PPUNdGuBJPx9KQ","name":"get_horoscope"}],"usage":{"input_tokens":62,"input_tokens_details":{"cached_tokens":0},"output_tokens":18,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":80}}"#;

fn canned(status: u16, body: &str, content_type: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), content_type)
}

async fn mount_json(server: &MockServer, route: &str, status: u16, body: &str) {
    mount(server, route, canned(status, body, "application/json")).await;
}

/// Serves `response` at `route`; a `/v1/case/NAME` route is the requests whose body names that
/// case (`with_case`), whatever their path.
async fn mount(server: &MockServer, route: &str, response: ResponseTemplate) {
    let given = Mock::given(method("POST"));
    let given = match route.strip_prefix("/v1/case/") {
        Some(case) => given.and(wiremock::matchers::body_string_contains(format!(
            r#""case":"{case}""#
        ))),
        None => given.and(path(route)),
    };
    given.respond_with(response).mount(server).await;
}

/// A Batch workload with one line per case; each case's body names it, which routes it to its own
/// canned answer.
fn batch_workload(dir: &std::path::Path, cases: &[&str]) -> std::path::PathBuf {
    let workload = dir.join("cases.jsonl");
    let lines: Vec<String> = cases
        .iter()
        .map(|case| {
            format!(r#"{{"custom_id":"{case}","method":"POST","url":"/v1/responses","body":{{"case":"{case}","model":"gpt-4.1","input":"hi"}}}}"#)
        })
        .collect();
    std::fs::write(&workload, lines.join("\n") + "\n").unwrap();
    workload
}

#[tokio::test]
async fn seed_bodies_in_both_shapes_are_read_exactly() {
    let server = MockServer::start().await;
    mount_json(&server, "/v1/case/responses", 200, SEED_RESPONSE).await;
    mount_json(&server, "/v1/case/chat", 200, SEED_CHAT).await;
    mount_json(&server, "/v1/case/tools", 200, SEED_FUNCTION_CALL).await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = batch_workload(tmp.path(), &["responses", "chat", "tools"]);
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(&endpoint, &workload, &[], &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);

    let r = run.by_id("responses");
    assert_eq!(r["status"], "ok");
    assert_eq!(r["model"], "gpt-4.1-2025-04-14");
    assert_eq!(
        r["output_text"],
        "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool."
    );
    assert_eq!(token_counts(r), (Some(36), Some(87), Some(123)));
    assert_eq!(r["finish"], "completed");

    let c = run.by_id("chat");
    assert_eq!(
        c["output_text"],
        "\n\nHello there, how may I assist you today?"
    );
    assert_eq!(token_counts(c), (Some(9), Some(12), Some(21)));
    assert_eq!(c["finish"], "stop");

    let t = run.by_id("tools");
    assert_eq!(t["tool_calls"][0]["name"], "get_horoscope");
    assert_eq!(
        t["tool_calls"][0]["call_id"],
        "call_6kbB2GTk62PPUNdGuBJPx9KQ"
    );
    assert_eq!(t["tool_calls"][0]["arguments"], "{\"sign\":\"Aquarius\"}");
    assert_eq!(run.summary["tokens"]["input"], 36 + 9 + 62);
}

#[tokio::test]
async fn error_answers_become_records_with_status_and_message() {
    let server = MockServer::start().await;
    let json_error = r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#;
    let rate_limit = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let html = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>";
    mount_json(&server, "/v1/case/500", 500, json_error).await;
    mount_json(&server, "/v1/case/429", 429, rate_limit).await;
    mount(&server, "/v1/case/502", canned(502, html, "text/html")).await;
    mount(&server, "/v1/case/503", canned(503, "", "text/plain")).await;
    mount_json(&server, "/v1/case/truncated", 200, &SEED_RESPONSE[..200]).await;
    mount(&server, "/v1/case/html200", canned(200, html, "text/html")).await;
    mount(&server, "/v1/case/error200", canned(200, r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#, "application/json")).await;
    mount(&server, "/v1/case/failed", canned(200, r#"{"object":"response","status":"failed","error":{"code":"server_error","message":"model crashed"},"output":[]}"#, "application/json")).await;
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        "500",
        "429",
        "502",
        "503",
        "truncated",
        "html200",
        "error200",
        "failed",
        "unmounted",
    ];
    let workload = batch_workload(tmp.path(), &cases);
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "0", "-c", "4"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.code, 1);

    let expect = |id: &str, status: &str, http: Option<u64>, kind: &str, message: &str| {
        let r = run.by_id(id);
        assert_eq!(r["status"], status, "{id}: {r}");
        assert_eq!(r["http_status"].as_u64(), http, "{id}");
        assert_eq!(
            r["model"], "gpt-4.1",
            "{id}: the request's model when the answer names none"
        );
        assert_eq!(r["error"]["kind"], kind, "{id}: {r}");
        let got = r["error"]["message"].as_str().unwrap();
        assert!(got.contains(message), "{id}: {got:?} lacks {message:?}");
    };
    expect(
        "500",
        "http_error",
        Some(500),
        "server_error",
        "HTTP 500: The server had an error",
    );
    expect(
        "429",
        "http_error",
        Some(429),
        "rate_limit_exceeded",
        "HTTP 429: Rate limit reached",
    );
    expect(
        "502",
        "http_error",
        Some(502),
        "http_502",
        "HTTP 502: HTML page \"502 Bad Gateway\"",
    );
    expect(
        "503",
        "http_error",
        Some(503),
        "http_503",
        "HTTP 503: empty body",
    );
    expect(
        "truncated",
        "invalid_response",
        Some(200),
        "truncated_json",
        "ends mid-JSON after 200 bytes",
    );
    expect(
        "html200",
        "invalid_response",
        Some(200),
        "html_body",
        "502 Bad Gateway",
    );
    expect(
        "error200",
        "api_error",
        Some(200),
        "insufficient_quota",
        "exceeded your current quota",
    );
    expect(
        "failed",
        "api_error",
        Some(200),
        "server_error",
        "model crashed",
    );
    expect("unmounted", "http_error", Some(404), "http_404", "HTTP 404");
    assert_eq!(run.summary["requests"]["by_http_status"]["200"], 4);
    assert_eq!(run.summary["errors_by_kind"]["http_502"], 1);
}

#[tokio::test]
async fn key_and_headers_are_sent_and_the_key_is_written_nowhere() {
    let secret = "sk-test-DO-NOT-LEAK-7f3a9c";
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .and(header("authorization", format!("Bearer {secret}").as_str()))
        .and(header("x-team", "research"))
        .and(header("content-type", "application/json"))
        .and(body_json(serde_json::json!({"model": "gpt-5.1", "input": [{"role": "user", "content": "Write a one-sentence bedtime story about a unicorn."}]})))
        .respond_with(canned(200, SEED_RESPONSE, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let mut cmd = llmvolley();
    cmd.env("OPENAI_API_KEY", secret)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.uri()));
    let run = run_async(
        cmd,
        &[
            workload.to_str().unwrap(),
            "-H",
            "X-Team: research",
            "-v",
            "--save-responses",
        ],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for entry in files_under(&run.dir) {
        let text = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains(secret),
            "key leaked into {}",
            entry.display()
        );
    }
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    assert!(
        run.stderr.contains("attempt finished"),
        "-v logs every attempt: {}",
        run.stderr
    );
    let info = std::fs::read_to_string(run.dir.join("run.json")).unwrap();
    assert!(
        info.contains("\"api_key\": \"env:OPENAI_API_KEY\""),
        "{info}"
    );
    assert!(info.contains("\"x-team\": \"research\""), "{info}");
}

#[tokio::test]
async fn api_key_file_is_read_and_secret_headers_are_redacted() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", "Bearer sk-from-file"))
        .and(header("x-api-key", "hdr-secret-123"))
        .respond_with(canned(200, SEED_CHAT, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("key.txt");
    std::fs::write(&key_file, "sk-from-file\n").unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &[
            "--api-key-file",
            key_file.to_str().unwrap(),
            "-H",
            "X-Api-Key: hdr-secret-123",
        ],
        &tmp.path().join("out"),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let info = std::fs::read_to_string(run.dir.join("run.json")).unwrap();
    assert!(
        !info.contains("hdr-secret-123") && !info.contains("sk-from-file"),
        "{info}"
    );
    assert!(info.contains("\"x-api-key\": \"<redacted>\""), "{info}");
}

#[tokio::test]
async fn batch_url_joins_the_base_without_doubling_v1() {
    let server = MockServer::start().await;
    mount_json(&server, "/v1/responses", 200, SEED_RESPONSE).await;
    mount_json(&server, "/v1/chat/completions", 200, SEED_CHAT).await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/batch.jsonl");
    let endpoint = format!("{}/v1/", server.uri());
    let run = run_endpoint(&endpoint, &workload, &[], &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.summary["requests"]["ok"], 5);
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        paths
            .iter()
            .all(|p| p == "/v1/responses" || p == "/v1/chat/completions"),
        "{paths:?}"
    );
}

#[tokio::test]
async fn unwritable_output_fails_before_any_request() {
    let server = MockServer::start().await;
    mount_json(&server, "/v1/responses", 200, SEED_RESPONSE).await;
    let tmp = tempfile::tempdir().unwrap();
    let taken = tmp.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("records.jsonl"), "{}\n").unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(&endpoint, &workload, &[], &taken).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("never overwritten"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(taken.join("records.jsonl")).unwrap(),
        "{}\n",
        "the old run is untouched"
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let run = run_endpoint(&endpoint, &workload, &[], &file.join("sub")).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn slow_answers_end_as_timeouts() {
    let server = MockServer::start().await;
    mount(
        &server,
        "/v1/responses",
        canned(200, SEED_RESPONSE, "application/json").set_delay(Duration::from_secs(3)),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "0", "--timeout", "200ms"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    let r = &run.records[0];
    assert_eq!(r["status"], "timeout", "{r}");
    assert!(r["latency_ms"].as_f64().unwrap() >= 200.0);
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/chat.jsonl");
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "0", "--api", "chat"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert!(
        run.records
            .iter()
            .all(|r| r["status"] == "connect_error" && r["http_status"].is_null())
    );
}

#[tokio::test]
async fn connection_closed_mid_body_is_truncated() {
    // A raw peer: promises 2,000 bytes, sends 40, hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut request)).await;
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2000\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        socket
            .write_all(&SEED_RESPONSE.as_bytes()[..40])
            .await
            .unwrap();
    });
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "0"],
        &tmp.path().join("out"),
    )
    .await;
    peer.await.unwrap();
    assert_run_invariants(&run, &workload);
    let r = &run.records[0];
    assert_eq!(r["status"], "truncated", "{r}");
    assert_eq!(r["http_status"], 200);
}

/// A minimal keep-alive HTTP/1.1 peer: answers every request on a connection with `body`, counts connections.
async fn keep_alive_peer(
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut socket = tokio::io::BufStream::new(socket);
                loop {
                    let mut content_length = 0usize;
                    loop {
                        let mut line = String::new();
                        if tokio::io::AsyncBufReadExt::read_line(&mut socket, &mut line)
                            .await
                            .unwrap_or(0)
                            == 0
                        {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            content_length = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut request_body = vec![0u8; content_length];
                    socket.read_exact(&mut request_body).await.unwrap();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    socket.write_all(head.as_bytes()).await.unwrap();
                    socket.write_all(body.as_bytes()).await.unwrap();
                    socket.flush().await.unwrap();
                }
            });
        }
    });
    (endpoint, connections)
}

#[tokio::test]
async fn connections_are_reused_across_requests() {
    let (endpoint, connections) = keep_alive_peer(SEED_CHAT).await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let run = run_endpoint(&endpoint, &workload, &["-c", "4"], &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);
    let opened = connections.load(std::sync::atomic::Ordering::SeqCst);
    // A connection goes back to the pool a moment after its body ends, so a request can race it and
    // open one more; without reuse, 1,000 requests would open 1,000 connections.
    assert!(
        opened <= 8,
        "1,000 requests at -c 4 opened {opened} connections"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_so_the_key_stays_with_its_host() {
    let elsewhere = MockServer::start().await;
    mount_json(&elsewhere, "/v1/responses", 200, SEED_RESPONSE).await;
    let server = MockServer::start().await;
    mount(
        &server,
        "/v1/responses",
        ResponseTemplate::new(307).insert_header(
            "location",
            format!("{}/v1/responses", elsewhere.uri()).as_str(),
        ),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let mut cmd = llmvolley();
    cmd.env("OPENAI_API_KEY", "sk-test-stays-home");
    let endpoint = format!("{}/v1", server.uri());
    let run = run_async(
        cmd,
        &[workload.to_str().unwrap(), "--endpoint", &endpoint],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.records[0]["http_status"], 307);
    assert_eq!(run.records[0]["status"], "http_error");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "nothing, and no key, went to the other host"
    );
}

/// A TLS peer with a freshly made self-signed certificate, answering every request with `body`.
async fn self_signed_tls_peer(body: &'static str) -> String {
    self_signed_tls_peer_after(body, Duration::ZERO).await
}

/// `self_signed_tls_peer` whose every handshake starts `handshake_delay` after the connection.
pub(crate) async fn self_signed_tls_peer_after(
    body: &'static str,
    handshake_delay: Duration,
) -> String {
    let (acceptor, listener, endpoint) = self_signed_tls(&[]).await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                tokio::time::sleep(handshake_delay).await;
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = vec![0u8; 64 * 1024];
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), tls.read(&mut request)).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    endpoint
}

#[tokio::test]
async fn tls_certificates_are_verified_unless_insecure() {
    let endpoint = self_signed_tls_peer(SEED_RESPONSE).await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let strict = run_endpoint(
        &endpoint,
        &workload,
        &["--max-retries", "0"],
        &tmp.path().join("strict"),
    )
    .await;
    assert_run_invariants(&strict, &workload);
    assert_eq!(
        strict.records[0]["status"], "connect_error",
        "{}",
        strict.records[0]
    );
    assert!(
        strict.records[0]["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("certificate"),
        "{}",
        strict.records[0]
    );
    let insecure = run_endpoint(
        &endpoint,
        &workload,
        &["--insecure"],
        &tmp.path().join("insecure"),
    )
    .await;
    assert_run_invariants(&insecure, &workload);
    assert_eq!(
        insecure.records[0]["status"], "ok",
        "{}",
        insecure.records[0]
    );
    let info = std::fs::read_to_string(insecure.dir.join("run.json")).unwrap();
    assert!(info.contains("\"insecure\": true"), "{info}");
}

/// A forward proxy on 127.0.0.1: CONNECT tunnels, and plain requests in absolute form passed on
/// as they came. Returns its URL and the request heads it saw.
async fn forward_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                heads.lock().unwrap().push(text.clone());
                let target = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let authority = match target.strip_prefix("http://") {
                    Some(rest) => rest.split('/').next().unwrap_or("").to_string(),
                    None => target,
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(&authority).await else {
                    return;
                };
                if text.starts_with("CONNECT ") {
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                } else {
                    let _ = server.write_all(&head).await;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn proxies_named_in_the_environment_carry_the_requests() {
    let server = MockServer::start().await;
    mount_json(&server, "/v1/responses", 200, SEED_RESPONSE).await;
    let tls_peer = self_signed_tls_peer(SEED_RESPONSE).await;
    let (proxy, seen) = forward_proxy().await;
    let with_credentials = proxy.replace("http://", "http://user:secret@");
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let endpoint = format!("{}/v1", server.uri());

    let mut cmd = llmvolley();
    cmd.env("HTTP_PROXY", &with_credentials).env("NO_PROXY", "");
    let args = [workload.to_str().unwrap(), "--endpoint", &endpoint];
    let plain = run_async(cmd, &args, &tmp.path().join("plain")).await;
    assert_run_invariants(&plain, &workload);
    assert_eq!(plain.records[0]["status"], "ok", "{}", plain.records[0]);
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads[0].starts_with(&format!("POST {endpoint}/responses HTTP/1.1")),
        "a plain-HTTP proxy is asked in absolute form: {heads:?}"
    );
    assert!(
        heads[0]
            .to_lowercase()
            .contains("proxy-authorization: basic dxnlcjpzzwnyzxq="),
        "{heads:?}"
    );

    let mut cmd = llmvolley();
    cmd.env("HTTPS_PROXY", &proxy).env("NO_PROXY", "");
    let args = [
        workload.to_str().unwrap(),
        "--endpoint",
        &tls_peer,
        "--insecure",
    ];
    let tunnelled = run_async(cmd, &args, &tmp.path().join("tls")).await;
    assert_run_invariants(&tunnelled, &workload);
    assert_eq!(
        tunnelled.records[0]["status"], "ok",
        "{}",
        tunnelled.records[0]
    );
    let heads = seen.lock().unwrap().clone();
    let port = tls_peer.rsplit(':').next().unwrap().trim_end_matches("/v1");
    assert!(
        heads
            .last()
            .unwrap()
            .starts_with(&format!("CONNECT localhost:{port} HTTP/1.1")),
        "an https:// endpoint goes through a CONNECT tunnel: {heads:?}"
    );
    for file in ["run.json", "records.jsonl", "summary.json"] {
        let text = std::fs::read_to_string(plain.dir.join(file)).unwrap();
        assert!(!text.contains("secret"), "{file} holds the proxy password");
    }

    // A proxy scheme that is not spoken is refused before anything is sent, credentials unshown.
    let mut cmd = llmvolley();
    cmd.env("HTTPS_PROXY", "socks5://user:secret@127.0.0.1:9")
        .env("NO_PROXY", "");
    let args = [
        workload.to_str().unwrap(),
        "--endpoint",
        &tls_peer,
        "--insecure",
    ];
    let refused = run_async(cmd, &args, &tmp.path().join("socks")).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("socks5://127.0.0.1 is not supported"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("secret"), "{}", refused.stderr);
}

#[tokio::test]
async fn credentials_in_the_endpoint_url_are_sent_as_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        // base64("user:p@ss") – the password percent-decoded, as curl sends it.
        .and(header("authorization", "Basic dXNlcjpwQHNz"))
        .respond_with(canned(200, SEED_RESPONSE, "application/json"))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let endpoint = format!("{}/v1", server.uri()).replace("http://", "http://user:p%40ss@");
    let run = run_endpoint(&endpoint, &workload, &[], &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.records[0]["status"], "ok", "{}", run.records[0]);
    let sent = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        sent.url.username(),
        "",
        "no credentials in the request line"
    );
    let info = std::fs::read_to_string(run.dir.join("run.json")).unwrap();
    assert!(!info.contains("p%40ss") && !info.contains("p@ss"), "{info}");
}

#[tokio::test]
async fn a_stalled_tls_handshake_ends_as_a_timeout() {
    // Accepts, then never answers the TLS hello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!(
        "https://127.0.0.1:{}/v1",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let args = [
        "--timeout",
        "1s",
        "--max-retries",
        "0",
        "--give-up-after",
        "0",
    ];
    let run = run_endpoint(&endpoint, &workload, &args, &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);
    let record = &run.records[0];
    // The connection's own limit or the request's deadline, whichever fires first: the same 1 s.
    assert_eq!(record["status"], "timeout", "{record}");
    let message = record["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no connection within 1s") || message.contains("no answer within 1s"),
        "{record}"
    );
    assert!(ms(record, "latency_ms") < 5000.0, "{record}");
}

#[tokio::test]
async fn https_endpoints_negotiate_http2() {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::{Arc, Mutex};
    // As OpenAI's and most gateways' TLS endpoints offer it.
    let (acceptor, listener, endpoint) = self_signed_tls(&[b"h2", b"http/1.1"]).await;
    let versions = Arc::new(Mutex::new(Vec::new()));
    let seen = versions.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    seen.lock().unwrap().push(request.version());
                    async {
                        http::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(bytes::Bytes::from_static(
                                SEED_RESPONSE.as_bytes(),
                            )))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/unicorn.jsonl");
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--insecure"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.records[0]["status"], "ok", "{}", run.records[0]);
    assert_eq!(*versions.lock().unwrap(), vec![http::Version::HTTP_2]);
}
