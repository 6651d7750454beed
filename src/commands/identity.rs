//! What a run ran on, for `run.json`: the server's identity (its `/v1/models` answer, `/version`
//! where served, its `server` and version-like headers), the client's machine, and the way the
//! client reached the server (a proxy from the environment, without credentials). Asked once,
//! before the load, each part best-effort: what cannot be read is said, never fatal.

use crate::client::Client;
use serde_json::{Value, json};
use std::time::Duration;
use url::Url;

/// How long each identity request may take.
const ASK_FOR: Duration = Duration::from_secs(5);
/// Model ids kept from a `/v1/models` answer (a public API lists hundreds).
const MODELS_KEPT: usize = 50;

/// `server`: what the server says it is.
pub async fn server(client: &Client, base_url: &Url) -> Value {
    let mut models_url = base_url.clone();
    models_url.set_path(&format!("{}/models", base_url.path().trim_end_matches('/')));
    let mut headers = serde_json::Map::new();
    let models = match ask(client, &models_url).await {
        Ok((status, answer_headers, body)) => {
            keep_identity_headers(&answer_headers, &mut headers);
            if status.is_success() {
                models_of(&body)
            } else {
                json!({"error": format!("HTTP {}", status.as_u16())})
            }
        }
        Err(e) => json!({"error": e}),
    };
    let origin = base_url.origin().ascii_serialization();
    // vLLM and SGLang serve their version at the origin's /version.
    let version = match Url::parse(&format!("{origin}/version")) {
        Ok(url) => match ask(client, &url).await {
            Ok((status, answer_headers, body)) if status.is_success() => {
                keep_identity_headers(&answer_headers, &mut headers);
                // The version string only: the page is the server's to fill.
                serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("version").and_then(Value::as_str).map(String::from))
                    .map_or(Value::Null, Value::String)
            }
            _ => Value::Null,
        },
        Err(_) => Value::Null,
    };
    json!({"models": models, "version": version, "headers": headers})
}

async fn ask(
    client: &Client,
    url: &Url,
) -> Result<(http::StatusCode, http::HeaderMap, bytes::Bytes), String> {
    let uri: http::Uri = url.as_str().parse().map_err(|e| format!("{e}"))?;
    client.side_get(uri, ASK_FOR).await
}

/// `{"count": N, "ids": [...]}` from an OpenAI-style list, or what the answer was instead.
fn models_of(body: &[u8]) -> Value {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return json!({"error": "the answer is not JSON"});
    };
    let Some(list) = answer.get("data").and_then(Value::as_array) else {
        return json!({"error": "the answer has no data list"});
    };
    let ids: Vec<&str> = list
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str))
        .take(MODELS_KEPT)
        .collect();
    // vLLM names the weights it serves and their context length.
    let detail: Vec<Value> = list
        .iter()
        .take(MODELS_KEPT)
        .filter(|m| m.get("root").is_some() || m.get("max_model_len").is_some())
        .map(|m| json!({"id": m.get("id"), "root": m.get("root"), "max_model_len": m.get("max_model_len"), "owned_by": m.get("owned_by")}))
        .collect();
    let mut out = json!({"count": list.len(), "ids": ids});
    if !detail.is_empty() {
        out["detail"] = Value::Array(detail);
    }
    out
}

/// `server`, and any header whose name says version, build or engine (`x-vllm-version`,
/// `openai-version`): what identifies the software, never a credential.
fn keep_identity_headers(headers: &http::HeaderMap, into: &mut serde_json::Map<String, Value>) {
    for (name, value) in headers {
        let n = name.as_str();
        let identifies = n == "server"
            || n == "via"
            || n.contains("version")
            || n.contains("build")
            || n.contains("engine");
        if identifies
            && !crate::config::is_secret_header(n)
            && let Ok(v) = value.to_str()
        {
            into.insert(n.to_string(), Value::String(v.to_string()));
        }
    }
}

/// `client`: the machine the client ran on.
pub fn client_machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cpu = read("/proc/cpuinfo").and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_string())
    });
    let memory_mib = read("/proc/meminfo").and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib / 1024)
    });
    json!({
        "tool_version": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "kernel": read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_string()),
        "cpu_model": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "memory_mib": memory_mib,
    })
}

/// `network`: how the client reached the server.
pub fn network(base_url: &Url) -> Value {
    match crate::client::proxy_for(base_url) {
        Some(proxy) => json!({"via": "proxy", "proxy": proxy}),
        None => json!({"via": "direct"}),
    }
}

/// Records what the run ran on in `run.json`: the client's machine and the network path always;
/// the server's identity when `--scrape` was given (it sends `GET /v1/models` and `GET /version`
/// to the server, which a run without it never does: scripted servers and request counts stay
/// exactly the load's).
///
/// Errors: run.json cannot be written.
pub async fn record(
    run_json: &mut super::target::RunJson,
    conn: &crate::config::Connection,
    base_url: &Url,
) -> anyhow::Result<()> {
    run_json.set("client_machine", client_machine())?;
    run_json.set("network", network(base_url))?;
    if !conn.scrape.is_empty() {
        let client = Client::new(
            &conn.client_config(base_url.clone(), 1),
            std::time::Instant::now(),
        )?;
        run_json.set("server_identity", server(&client, base_url).await)?;
    }
    Ok(())
}
