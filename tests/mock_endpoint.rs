//! The embedded mock, driven in-process (`mock::serve` on port 0) and as the `llmvolley mock` command.

use llmvolley::mock::{MockConfig, serve};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn start(
    config: MockConfig,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, config, async {
        let _ = stopped.await;
    }));
    (base, stop, server)
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn mock_serves_both_apis_with_usage_from_the_request() {
    let (base, stop, server) = start(MockConfig::default()).await;
    let short = json!({"model": "gpt-4.1", "input": "Hi"});
    let long = json!({"model": "gpt-4.1", "input": "Hi ".repeat(200)});
    let (status, a) = post(&base, "/responses", short.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(a["object"], "response");
    assert_eq!(a["model"], "gpt-4.1");
    let (_, b) = post(&base, "/responses", long).await;
    assert!(
        b["usage"]["input_tokens"].as_u64() > a["usage"]["input_tokens"].as_u64(),
        "input tokens grow with the prompt"
    );
    let usage = &a["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    let (_, again) = post(&base, "/responses", short).await;
    assert_eq!(
        again["output"], a["output"],
        "answers are deterministic per request body"
    );

    let (status, chat) = post(
        &base,
        "/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chat["object"], "chat.completion");
    assert_eq!(chat["choices"][0]["finish_reason"], "stop");
    assert!(chat["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let (status, error) = post(&base, "/nowhere", json!({})).await;
    assert_eq!(status, 404);
    assert!(error["error"]["message"].is_string());
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn mock_tool_choice_controls_the_calls() {
    let (base, stop, _server) = start(MockConfig::default()).await;
    let tools = json!([
        {"type": "function", "name": "a", "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "b", "parameters": {"type": "object", "properties": {}}}
    ]);
    let names = |body: &Value| -> Vec<String> {
        body["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] == "function_call")
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, parallel) = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "x", "tools": tools}),
    )
    .await;
    assert_eq!(names(&parallel), ["a", "b"]);
    let (_, single) = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "x", "tools": tools, "parallel_tool_calls": false}),
    )
    .await;
    assert_eq!(names(&single), ["a"]);
    let (_, named) = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "x", "tools": tools, "tool_choice": {"type": "function", "name": "b"}}),
    )
    .await;
    assert_eq!(names(&named), ["b"]);
    let (_, none) = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "x", "tools": tools, "tool_choice": "none"}),
    )
    .await;
    assert!(names(&none).is_empty());
    let (_, chat) = post(&base, "/chat/completions", json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "c", "parameters": {}}}]})).await;
    assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        chat["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "c"
    );
    stop.send(()).unwrap();
}

#[tokio::test]
async fn mock_latency_knobs_delay_answers() {
    let config = MockConfig {
        latency: Duration::from_millis(50),
        jitter: Duration::from_millis(100),
        seed: 3,
        ..MockConfig::default()
    };
    let (base, stop, _server) = start(config).await;
    // The first answer also waits for the mock's tokenizer to load: not measured.
    let _ = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "warm-up"}),
    )
    .await;
    let mut took = Vec::new();
    for i in 0..8 {
        let started = Instant::now();
        let _ = post(
            &base,
            "/responses",
            json!({"model": "gpt-4.1", "input": format!("x{i}")}),
        )
        .await;
        took.push(started.elapsed());
    }
    assert!(
        took.iter().all(|t| *t >= Duration::from_micros(49_500)),
        "at least the fixed latency (to the nearest millisecond tick): {took:?}"
    );
    // The jitter draws up to 100 ms more per answer: 8 answers spread over more than 20 ms
    // (scheduling noise on a loaded machine stays well under that; all 8 draws within 20 ms of
    // each other has a chance near 1 in 10,000).
    let spread = *took.iter().max().unwrap() - *took.iter().min().unwrap();
    assert!(
        spread >= Duration::from_millis(20),
        "jitter spreads the answers: {took:?}"
    );
    stop.send(()).unwrap();
}

#[tokio::test]
async fn mock_stall_holds_answers_due_inside_it_until_it_ends() {
    // Stall from 1 s to 2 s after the first request: wide enough that a loaded machine's delays
    // cannot move an answer across an edge.
    let (base, stop, _server) = start(MockConfig {
        stall_at: Duration::from_secs(1),
        stall_for: Duration::from_secs(1),
        ..MockConfig::default()
    })
    .await;
    let first = Instant::now();
    let _ = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "before"}),
    )
    .await;
    assert!(
        first.elapsed() < Duration::from_secs(1),
        "answered before the stall"
    );
    tokio::time::sleep_until((first + Duration::from_millis(1200)).into()).await;
    let _ = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "during"}),
    )
    .await;
    assert!(
        first.elapsed() >= Duration::from_millis(1999),
        "held until the stall ends: {:?}",
        first.elapsed()
    );
    let after = Instant::now();
    let _ = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "after"}),
    )
    .await;
    assert!(
        after.elapsed() < Duration::from_millis(900),
        "the stall happens once"
    );
    stop.send(()).unwrap();
}

#[tokio::test]
async fn mock_chat_shape_knob_answers_responses_in_chat_shape() {
    let (base, stop, _server) = start(MockConfig {
        chat_shape_for_responses: true,
        ..MockConfig::default()
    })
    .await;
    let (_, body) = post(
        &base,
        "/responses",
        json!({"model": "gpt-5.1", "input": "Hi"}),
    )
    .await;
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 1
    );
    stop.send(()).unwrap();
}

#[tokio::test]
async fn mock_command_listens_on_the_given_port() {
    let (mock, base) = crate::common::mock_process();
    let (status, body) = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": "Hi"}),
    )
    .await;
    drop(mock);
    assert_eq!(status, 200);
    assert_eq!(body["status"], "completed");
}

#[tokio::test]
async fn mock_accepts_long_context_bodies_of_several_megabytes() {
    let (base, stop, server) = start(MockConfig::default()).await;
    let prompt = "lorem ipsum ".repeat(5 * 1024 * 1024 / 12);
    let (status, body) = post(
        &base,
        "/responses",
        json!({"model": "gpt-4.1", "input": prompt}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // 436,906 repeats of two words: every one of them counted.
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 800_000);
    let too_big = "x".repeat(llmvolley::mock::MAX_BODY_BYTES + 1);
    let response = reqwest::Client::new()
        .post(format!("{base}/responses"))
        .body(too_big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_mock_lists_its_models_as_the_api_does_and_listens_on_the_given_host() {
    let mut child = crate::common::llmvolley()
        .args(["mock", "--host", "127.0.0.1", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first_line,
    )
    .unwrap();
    let base = first_line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .expect("prints its URL on the given host")
        .to_string();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(url).await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, list) = get("/models").await;
    let (one_status, one) = get("/models/gpt-4.1-mini").await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            assert!(m["created"].is_u64() && m["owned_by"].is_string());
            m["id"].as_str().unwrap()
        })
        .collect();
    assert!(ids.contains(&"gpt-4.1-mini"), "{ids:?}");
    assert_eq!(one_status, 200);
    assert_eq!(one["id"], "gpt-4.1-mini");
    assert_eq!(one["object"], "model");
}
