//! Each way a newcomer gets a setting wrong ends with a line naming the fix, as early as it can be
//! known: before sending when the settings show it, at the first answer otherwise.

use crate::common::scripted::*;
use crate::common::*;

fn workload(dir: &std::path::Path, lines: &[&str]) -> std::path::PathBuf {
    let path = dir.join("w.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

const RESPONSES_BODY: &str = r#"{"model":"gpt-4.1-mini","input":"hi"}"#;
const CHAT_BODY: &str = r#"{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"hi"}]}"#;

#[test]
fn a_pasted_full_url_is_refused_with_the_base_url_to_use() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), &[CHAT_BODY]);
    let run = run(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--endpoint",
            "http://127.0.0.1:9/v1/chat/completions",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("use the base URL http://127.0.0.1:9/v1 "),
        "{}",
        run.stderr
    );
}

#[test]
fn https_to_a_plain_http_server_says_use_http_and_is_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let (mock, base) = mock_process();
    let https = base.replacen("http://", "https://", 1);
    let w = workload(tmp.path(), &[RESPONSES_BODY, RESPONSES_BODY]);
    let run = run(
        llmvolley(),
        &[w.to_str().unwrap(), "--endpoint", &https, "-q"],
        &tmp.path().join("out"),
    );
    drop(mock);
    assert_eq!(run.records.len(), 2, "{}", run.stderr);
    let r = run.by_id("1");
    assert_eq!(
        r["error"]["kind"], "tls_to_plain_http",
        "{r}\n{}",
        run.stderr
    );
    assert_eq!(r["attempts"], 1, "not retried: {r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("the server speaks plain HTTP: use http:// in --endpoint"),
        "{r}"
    );
    assert_eq!(run.code, 2, "the run gives up at once: {}", run.stderr);
    assert!(run.stderr.contains("use http://"), "{}", run.stderr);
}

#[tokio::test]
async fn http2_to_an_http1_server_says_drop_http2_and_gives_up_at_once() {
    // An HTTP/1.1 server reads h2's preface as a request line it cannot serve: a 400 in HTTP/1.1.
    let server = serve(|_| {
        vec![
            whole(400, "text/plain", "connection: close\r\n", "Bad Request"),
            Step::Close,
        ]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<&str> = vec![RESPONSES_BODY; 10];
    let w = workload(tmp.path(), &lines);
    let run = run_async(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--endpoint",
            &server.endpoint(),
            "--http2",
            "-q",
            "-c",
            "1",
        ],
        &tmp.path().join("out"),
    )
    .await;
    assert_eq!(run.records.len(), 10, "{}", run.stderr);
    let r = run.by_id("1");
    assert_eq!(r["error"]["kind"], "http2_not_spoken", "{r}");
    // Under load hyper sometimes reports the refused preface as a bare cancel first (a transport
    // error, retried once) before the closed connection that names it: at most that one retry.
    assert!(
        r["attempts"].as_u64().unwrap() <= 2,
        "not retried line after line: {r}\n{}",
        run.stderr
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("drop --http2"), "{}", run.stderr);
    // The first line ends the run: its (at most two) attempts, each with at most the one re-send
    // on a new connection that a connection closed before any byte gets (by design) — never one
    // per line of the ten.
    assert!(
        server.connections() <= 4,
        "given up at the first answer, not retried line after line: {} connections",
        server.connections()
    );
}

#[tokio::test]
async fn a_401_with_no_key_sent_says_no_key_was_sent() {
    let server = serve(|_| {
        vec![whole(
            401,
            "application/json",
            "",
            r#"{"error":{"message":"Missing bearer authentication in header","type":"invalid_request_error","code":null}}"#,
        )]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), &[RESPONSES_BODY]);
    let args = |out: &str| -> Vec<String> {
        [
            w.to_str().unwrap(),
            "--endpoint",
            &server.endpoint(),
            "-q",
            "--give-up-after",
            "1",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([tmp.path().join(out).to_str().unwrap().to_string()])
        .collect()
    };
    let none = tokio::task::spawn_blocking({
        let args = args("none");
        move || llmvolley().arg("run").args(&args).output().unwrap()
    })
    .await
    .unwrap();
    let (_, stderr) = output_text(&none);
    assert_eq!(none.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no key was sent: OPENAI_API_KEY is unset"),
        "{stderr}"
    );
    let record = std::fs::read_to_string(tmp.path().join("none/records.jsonl")).unwrap();
    assert!(record.contains("no key was sent"), "{record}");
    // A key in a header of its own (Azure's api-key) is a key sent: the 401 is about it.
    let header = tokio::task::spawn_blocking({
        let args = args("header");
        move || {
            llmvolley()
                .arg("run")
                .args(&args)
                .args(["-H", "api-key: azure-key-0123456789"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let (_, stderr) = output_text(&header);
    assert!(stderr.contains("check the API key"), "{stderr}");
    assert!(!stderr.contains("no key was sent"), "{stderr}");
}

#[test]
fn bare_bodies_go_where_their_shape_says_and_a_forced_mismatch_is_refused_before_sending() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), &[RESPONSES_BODY, CHAT_BODY]);
    let w = w.to_str().unwrap();
    let routed = run(llmvolley(), &[w, "--mock", "-q"], &tmp.path().join("auto"));
    assert_eq!(routed.code, 0, "{}", routed.stderr);
    assert_eq!(
        routed.by_id("1")["response_id"].as_str().map(|s| &s[..5]),
        Some("resp_")
    );
    assert_eq!(
        routed.by_id("2")["response_id"].as_str().map(|s| &s[..9]),
        Some("chatcmpl-")
    );
    let forced = run(
        llmvolley(),
        &[w, "--mock", "-q", "--api", "responses"],
        &tmp.path().join("forced"),
    );
    assert_eq!(forced.code, 2, "{}", forced.stderr);
    assert!(
        forced
            .stderr
            .contains(&format!("{w}:2: a Chat Completions body"))
            && forced.stderr.contains("use --api chat"),
        "{}",
        forced.stderr
    );
    assert!(forced.records.is_empty(), "nothing was sent");
}

#[test]
fn run_dash_says_what_a_pipe_gets() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run(llmvolley(), &["-", "--mock"], &tmp.path().join("out"));
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("standard input") && run.stderr.contains("write it to a file first"),
        "{}",
        run.stderr
    );
}
