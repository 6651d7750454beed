//! The twelve kinds of server behaviour that made records wrong on real servers (vLLM, SGLang,
//! llama.cpp, gateways, proxies), each served byte for byte (and gap for gap) by a raw local peer,
//! with the right value asserted. Timing assertions are lower bounds with generous margins, or
//! compare recorded values with each other.

use crate::common::scripted::*;
use crate::common::*;
use serde_json::Value;
use std::time::Duration;

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
const RESPONSES: &str = r#"{"model":"m","input":"hi","stream":true}"#;

fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

// ---- 1. Only frames that carry generated text count -------------------------------------------

#[tokio::test]
async fn only_events_with_generated_text_are_chunks_and_start_the_clock() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            created(),
            wait_ms(80),
            text_delta(""),
            wait_ms(320),
            text_delta("Hello"),
            wait_ms(50),
            text_delta(" world"),
            wait_ms(55),
            completed(10, 2),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["empty_first_delta"],
        RESPONSES,
        &["--max-retries", "0"],
    )
    .await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    let (ttft, latency) = (ms(r, "ttft_ms"), ms(r, "latency_ms"));
    assert!(
        ttft >= 380.0,
        "the empty delta at 80 ms starts no clock: TTFT {ttft}"
    );
    assert_eq!(r["ttfo_ms"], r["ttft_ms"]);
    assert_eq!(r["chunks"], 2);
    assert_eq!(
        run.summary["itl_ms"]["count"], 1,
        "one gap between two chunks"
    );
    assert!(run.summary["itl_ms"]["max"].as_f64().unwrap() >= 10.0);
    // TPOT = (latency − TTFT) / (2 − 1): the last ~105 ms, not (latency − 80 ms) / 2.
    assert!(approx(ms(r, "tpot_ms"), latency - ttft), "{r}");
    assert!(ms(r, "tpot_ms") >= 90.0, "{r}");
}

#[tokio::test]
async fn one_event_is_one_chunk_whatever_it_carries() {
    // One Chat event carries reasoning and content: one chunk, TTFT and TTFO both at it, no 0 ms gap.
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"role":"assistant","content":""}"#, "null"),
            wait_ms(200),
            chat_chunk(r#"{"reasoning_content":".","content":"The"}"#, "null"),
            wait_ms(200),
            chat_chunk(r#"{"content":" end"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            chat_usage(5, 2),
            data("[DONE]"),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["both_fields"], CHAT, &["--max-retries", "0"]).await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["chunks"], 2);
    assert_eq!(r["output_text"], "The end");
    assert!(
        ms(r, "ttft_ms") >= 190.0,
        "the role-only chunk is no chunk: {r}"
    );
    assert_eq!(r["ttft_ms"], r["ttfo_ms"]);
    let gap = &run.summary["chunk_gap_ms"];
    assert_eq!(gap["count"], 1);
    assert!(gap["min"].as_f64().unwrap() >= 150.0, "no 0 ms gap: {gap}");
}

#[tokio::test]
async fn a_tool_name_alone_starts_no_clock_on_either_api() {
    // The same answer on both APIs: the call is announced (name, no arguments) at once, its
    // arguments arrive 250 ms later. TTFT is the arguments' arrival on both.
    let server = serve(|seen| {
        let mut steps = vec![chunked_head("text/event-stream", "")];
        if case_of(seen) == "chat" {
            steps.extend([
                chat_chunk(
                    r#"{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}"#,
                    "null",
                ),
                wait_ms(250),
                chat_chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]}"#, "null"),
                chat_chunk("{}", r#""tool_calls""#),
                chat_usage(5, 9),
                data("[DONE]"),
            ]);
        } else {
            steps.extend([
                event(
                    "response.output_item.added",
                    r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":""}}"#,
                ),
                wait_ms(250),
                event(
                    "response.function_call_arguments.delta",
                    r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":0,"delta":"{\"city\":\"Paris\"}"}"#,
                ),
                completed(5, 9),
            ]);
        }
        steps.push(Step::End);
        steps
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["chat", "responses"],
        CHAT,
        &["--max-retries", "0"],
    )
    .await;
    for id in ["chat", "responses"] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["chunks"], 1, "{id}");
        assert!(ms(r, "ttft_ms") >= 240.0, "{id}: {r}");
        assert_eq!(r["tool_calls"][0]["name"], "get_weather");
        assert_eq!(r["tool_calls"][0]["arguments"], r#"{"city":"Paris"}"#);
    }
}

// ---- 2. The answer ends at its terminal event ---------------------------------------------------

fn chat_answer_then(after_done: Vec<Step>) -> Vec<Step> {
    let mut steps = vec![
        chunked_head("text/event-stream", ""),
        chat_chunk(r#"{"role":"assistant","content":""}"#, "null"),
        wait_ms(100),
        chat_chunk(r#"{"content":"Hi"}"#, "null"),
        wait_ms(100),
        chat_chunk(r#"{"content":" there"}"#, "null"),
        wait_ms(100),
        chat_chunk("{}", r#""stop""#),
        chat_usage(5, 2),
        data("[DONE]"),
    ];
    steps.extend(after_done);
    steps
}

#[tokio::test]
async fn the_answer_ends_at_done_whatever_the_connection_does_after() {
    let server = serve(|seen| match case_of(seen) {
        // Keep-alive comments for 6 s after [DONE], then the clean end.
        "comments" => chat_answer_then(vec![
            wait_ms(2000),
            Step::Chunk(b": keep-alive\n\n".to_vec()),
            wait_ms(2000),
            Step::Chunk(b": keep-alive\n\n".to_vec()),
            wait_ms(2000),
            Step::Chunk(b": keep-alive\n\n".to_vec()),
            Step::End,
        ]),
        // The connection is cut right after [DONE], without the chunked terminator.
        _ => chat_answer_then(vec![Step::Close]),
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["comments", "cut"],
        CHAT,
        &["--max-retries", "5", "-c", "2"],
    )
    .await;
    for id in ["comments", "cut"] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "ok", "{id}: {r}");
        assert_eq!(
            r["attempts"], 1,
            "{id}: a complete answer is never requested again"
        );
        let latency = ms(r, "latency_ms");
        assert!(latency >= 290.0, "{id}: {latency}");
        assert!(
            latency < 1000.0,
            "{id}: timing stopped at [DONE], before anything after it: {latency}"
        );
        assert!(approx(ms(r, "tpot_ms"), latency - ms(r, "ttft_ms")), "{r}");
        assert_eq!(r["finish"], "stop");
    }
    assert_eq!(server.requests(), 2, "each answer was requested once");
    // Reading stopped at [DONE] too: the comments went on for 6 s after it.
    let wall = run.summary["wall_time_s"].as_f64().unwrap();
    assert!(
        wall < 4.5,
        "the run did not wait for the comments to end: {wall} s"
    );
}

#[tokio::test]
async fn a_chat_answer_cut_after_its_finish_reason_is_complete_and_ends_at_its_last_event() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"All"}"#, "null"),
            wait_ms(200),
            chat_chunk(r#"{"content":" done"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            wait_ms(3000),
            Step::Close,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["cut"], CHAT, &["--max-retries", "3"]).await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["attempts"], 1);
    assert!(
        ms(r, "latency_ms") < 2000.0,
        "the answer ended at its finish chunk, not at the cut: {r}"
    );
    assert!(
        r["notes"][0]
            .as_str()
            .unwrap()
            .contains("broke off after its finish_reason"),
        "{r}"
    );
}

#[tokio::test]
async fn a_terminal_event_whose_response_names_no_object_still_completes_the_answer() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            text_delta("Short"),
            event(
                "response.completed",
                r#"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":2,"output_tokens":1}}}"#,
            ),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["bare"], RESPONSES, &["--max-retries", "0"]).await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["output_text"], "Short");
    assert_eq!(r["finish"], "completed");
    assert_eq!(r["output_tokens"], 1);
}

#[tokio::test]
async fn a_stream_that_ends_cleanly_keeps_its_connection_for_the_next_request() {
    let server = serve(|_| chat_answer_then(vec![Step::End])).await;
    let (run, _tmp) = run_cases(&server, &["a", "b", "c"], CHAT, &["-c", "1"]).await;
    assert_eq!(run.summary["requests"]["ok"], 3);
    assert_eq!(
        server.connections(),
        1,
        "the body ended cleanly: the connection was reused"
    );
}

#[tokio::test]
async fn a_closed_loop_keeps_one_connection_per_slot_and_times_each_set_up_once() {
    // 200 answers at -c 8: the load's connections go back to the pool after every answer, so at
    // most 8 are ever opened, and each one's set-up time is on exactly one record.
    let server = serve(|_| vec![ok_whole()]).await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = questions(tmp.path(), 200);
    let run = run_endpoint(
        &server.endpoint(),
        &workload,
        &["-c", "8", "--max-retries", "0"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.summary["requests"]["ok"], 200, "{}", run.stdout);
    let opened = server.connections();
    assert!((1..=8).contains(&opened), "{opened} connections for -c 8");
    let timed = run
        .records
        .iter()
        .filter(|r| r["connect_ms"].is_number())
        .count();
    assert_eq!(timed, opened, "one set-up time per connection");
    assert!(
        run.records
            .iter()
            .all(|r| r["reconnects"].as_u64().unwrap_or(0) == 0)
    );
}

#[tokio::test]
async fn each_request_names_the_endpoints_host_in_origin_form_unless_a_host_is_given() {
    // The load's own connections write the request themselves: the `Host` header (which servers
    // behind virtual hosts, and nginx, require) and a path-only target, as hyper-util's client did.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, Option<String>)>::new()));
    let log = seen.clone();
    let server = serve(move |s| {
        log.lock().unwrap().push((s.path.clone(), s.host.clone()));
        vec![ok_whole()]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = questions(tmp.path(), 3);
    // With --scrape, the run also asks the endpoint who it is (`/v1/models`, `/version`) on a
    // connection of its own (hyper-util's client, which sets the `Host` itself): the same Host.
    let metrics = serve(|_| {
        vec![whole(
            200,
            "text/plain",
            "",
            "# TYPE t counter\nt_total 1\n",
        )]
    })
    .await;
    let scrape = format!("http://{}/metrics", metrics.addr);
    let authority = server.addr.to_string();
    for (args, host, side) in [
        (vec!["-c", "2"], authority.as_str(), 0),
        (
            vec!["-c", "2", "-H", "Host: models.example"],
            "models.example",
            0,
        ),
        (vec!["-c", "2", "--scrape", &scrape], authority.as_str(), 2),
    ] {
        seen.lock().unwrap().clear();
        let out = tmp.path().join(format!("out-{host}-{side}"));
        let run = run_endpoint(&server.endpoint(), &workload, &args, &out).await;
        assert_eq!(run.summary["requests"]["ok"], 3, "{}", run.stdout);
        let seen = seen.lock().unwrap().clone();
        let load = seen.iter().filter(|(path, _)| path == "/v1/responses");
        assert_eq!(load.count(), 3, "{seen:?}");
        assert_eq!(seen.len(), 3 + side, "{args:?}: {seen:?}");
        for (path, sent) in seen {
            assert_eq!(sent.as_deref(), Some(host), "{args:?}: {path}");
        }
    }
}

#[tokio::test]
async fn silence_after_the_terminal_event_is_no_timeout() {
    // response.completed, then nothing for longer than --timeout.
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            created(),
            wait_ms(200),
            text_delta("Done"),
            completed(3, 1),
            wait_ms(5000),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["silent"],
        RESPONSES,
        &["--max-retries", "2", "--timeout", "2s"],
    )
    .await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["attempts"], 1);
    assert!(ms(r, "latency_ms") < 2000.0, "{r}");
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn a_chat_stream_ending_cleanly_after_its_finish_chunk_is_complete() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"Fine"}"#, "null"),
            chat_chunk("{}", r#""length""#),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["no_done"], CHAT, &["--max-retries", "0"]).await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["finish"], "length");
}

// ---- 3. Every shape of in-band error is a failure -----------------------------------------------

#[tokio::test]
async fn every_shape_of_in_band_error_is_an_api_error_and_never_retried() {
    let server = serve(|seen| {
        let error = match case_of(seen) {
            "string" => data(r#"{"error": "upstream model crashed", "id": "chatcmpl-1"}"#),
            "object" => data(r#"{"error": {"message": "Internal error", "type": "server_error"}}"#),
            "vllm" => data(r#"{"object": "error", "message": "max_tokens is too large", "type": "BadRequestError", "param": null, "code": 400}"#),
            "responses_type" => data(r#"{"type": "error", "code": "rate_limit_exceeded", "message": "Too many tokens", "param": null}"#),
            _ => Step::Chunk(b"event: error\ndata: the backend went away\n\n".to_vec()),
        };
        vec![
            chunked_head("text/event-stream", "x-should-retry: true\r\n"),
            chat_chunk(r#"{"content":"Hel"}"#, "null"),
            chat_chunk(r#"{"content":"lo"}"#, "null"),
            error,
            Step::End,
        ]
    })
    .await;
    let cases = ["string", "object", "vllm", "responses_type", "event_error"];
    // The server also says `x-should-retry: true`: a rejected request is still not sent again.
    let (run, _tmp) = run_cases(&server, &cases, CHAT, &["--max-retries", "5", "-c", "5"]).await;
    let expected = [
        ("string", "error", "upstream model crashed"),
        ("object", "server_error", "Internal error"),
        ("vllm", "BadRequestError", "max_tokens is too large"),
        ("responses_type", "rate_limit_exceeded", "Too many tokens"),
        ("event_error", "stream_error", "the backend went away"),
    ];
    for (id, kind, message) in expected {
        let r = run.by_id(id);
        assert_eq!(r["status"], "api_error", "{id}: {r}");
        assert_eq!(r["error"]["kind"], kind, "{id}");
        assert_eq!(r["error"]["message"], message, "{id}");
        assert_eq!(
            r["attempts"], 1,
            "{id}: a rejected request is not sent again"
        );
        assert_eq!(r["finish"], Value::Null, "{id}: no finish reason was sent");
        assert_eq!(r["output_text"], "Hello", "{id}: what arrived is kept");
    }
    assert_eq!(server.requests(), 5);
}

#[tokio::test]
async fn an_error_document_in_a_2xx_body_is_an_api_error() {
    let server = serve(|seen| match case_of(seen) {
        "vllm" => vec![whole(
            200,
            "application/json",
            "",
            r#"{"object":"error","message":"model not loaded","type":"NotFoundError","code":404}"#,
        )],
        _ => vec![whole(
            200,
            "application/json",
            "",
            r#"{"error":"quota exhausted"}"#,
        )],
    })
    .await;
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(&server, &["vllm", "string"], body, &["--max-retries", "0"]).await;
    assert_eq!(run.by_id("vllm")["status"], "api_error");
    assert_eq!(run.by_id("vllm")["error"]["message"], "model not loaded");
    assert_eq!(run.by_id("string")["status"], "api_error");
    assert_eq!(run.by_id("string")["error"]["message"], "quota exhausted");
}

// ---- 4. Failed requests add nothing to throughput figures ---------------------------------------

#[tokio::test]
async fn failed_requests_add_nothing_to_token_totals_or_rates() {
    let server = serve(|seen| {
        let mut steps = vec![chunked_head("text/event-stream", "")];
        if case_of(seen) == "ok" {
            steps.extend([
                chat_chunk(
                    r#"{"content":"one two three four five six seven eight nine ten"}"#,
                    "null",
                ),
                chat_chunk("{}", r#""stop""#),
                chat_usage(4, 10),
                data("[DONE]"),
                Step::End,
            ]);
        } else {
            for word in ["alpha", " beta", " gamma", " delta", " epsilon"] {
                steps.push(chat_chunk(&format!(r#"{{"content":"{word}"}}"#), "null"));
            }
            steps.push(Step::Close);
        }
        steps
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["ok", "cut_a", "cut_b"],
        CHAT,
        &["--max-retries", "0", "-c", "3"],
    )
    .await;
    let tokens = &run.summary["tokens"];
    assert_eq!(
        tokens["output"], 10,
        "only the ok request's tokens: {tokens}"
    );
    assert_eq!(tokens["input"], 4);
    let window = run.summary["window_s"].as_f64().unwrap();
    assert!(
        approx(tokens["output_per_s"].as_f64().unwrap(), 10.0 / window),
        "{tokens}"
    );
    for id in ["cut_a", "cut_b"] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "truncated", "{r}");
        assert_eq!(r["output_tokens"], Value::Null, "{r}");
        assert_eq!(r["partial_output_tokens"], 5, "{r}");
    }
    assert_eq!(tokens["failed_output"], 10);
    assert_eq!(tokens["failed_requests_with_output"], 2);
    assert!(
        run.stdout
            .contains("10 output tokens received by 2 failed requests"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_failed_response_with_usage_stays_out_of_the_totals() {
    let server = serve(|seen| {
        if case_of(seen) == "ok" {
            return vec![
                chunked_head("text/event-stream", ""),
                text_delta("Fine"),
                completed(3, 1),
                Step::End,
            ];
        }
        vec![
            chunked_head("text/event-stream", ""),
            text_delta("Par"),
            event(
                "response.failed",
                r#"{"type":"response.failed","response":{"id":"r","object":"response","status":"failed","error":{"code":"server_error","message":"crashed"},"output":[],"usage":{"input_tokens":3,"output_tokens":7,"total_tokens":10}}}"#,
            ),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["ok", "failed"],
        RESPONSES,
        &["--max-retries", "0"],
    )
    .await;
    assert_eq!(run.by_id("failed")["status"], "api_error");
    assert_eq!(
        run.by_id("failed")["output_tokens"],
        7,
        "the server's count stays on the record"
    );
    let tokens = &run.summary["tokens"];
    assert_eq!(
        (tokens["output"].as_u64(), tokens["input"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(tokens["failed_output"], 7);
}

// ---- 5. One bounded policy for every wait the server asks for -----------------------------------

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_capped_and_said() {
    let server = serve(|seen| {
        if seen.n == 0 {
            return vec![whole(
                429,
                "application/json",
                "retry-after: 20\r\n",
                r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
            )];
        }
        vec![ok_whole()]
    })
    .await;
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(
        &server,
        &["a", "b"],
        body,
        &["-c", "1", "--max-server-wait", "3s", "-v"],
    )
    .await;
    assert_eq!(run.summary["requests"]["ok"], 2);
    let retried = run
        .records
        .iter()
        .find(|r| r["attempts"] == 2)
        .expect("one request was retried");
    assert!(ms(retried, "retry_wait_ms") >= 2900.0, "{retried}");
    let pacing = &run.summary["server_pacing"];
    assert_eq!(
        pacing["capped_waits"], 1,
        "one capped wait, counted once: {pacing}"
    );
    assert_eq!(pacing["max_server_wait_s"], 3.0);
    assert!(
        pacing["longest_wait_source"]
            .as_str()
            .unwrap()
            .contains("retry-after: 20s asked, capped at 3s"),
        "{pacing}"
    );
    assert!(
        run.stderr.contains("waiting as the server asked"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("retry-after: 20s asked, capped at 3s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("the server slowed this run"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn an_exhausted_rate_limit_window_pauses_no_longer_than_the_cap() {
    let server = serve(|seen| {
        let extra = if seen.n == 0 {
            "x-ratelimit-remaining-requests: 0\r\nx-ratelimit-reset-requests: 6m0s\r\n"
        } else {
            ""
        };
        vec![whole(200, "application/json", extra, COMPLETED)]
    })
    .await;
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(
        &server,
        &["a", "b"],
        body,
        &["-c", "1", "--max-server-wait", "1s"],
    )
    .await;
    assert_eq!(run.summary["requests"]["ok"], 2);
    let pacing = &run.summary["server_pacing"];
    assert_eq!(pacing["pauses"], 1, "{pacing}");
    assert_eq!(pacing["capped_waits"], 1, "{pacing}");
    assert!(
        pacing["paused_s"].as_f64().unwrap() <= 1.0 + 1e-9,
        "{pacing}"
    );
    assert!(run.summary["window_s"].as_f64().unwrap() >= 0.95);
}

// ---- 6. A pooled connection the server closed is not the server's failure -----------------------

#[tokio::test]
async fn a_request_on_a_pooled_connection_the_server_closed_is_sent_again_on_a_new_one() {
    // The first connection's second request meets a server that closes as it arrives (the
    // keep-alive race): the server never read it.
    let server = serve(|seen| {
        if seen.n == 1 && seen.on_connection == 1 {
            return vec![Step::Close];
        }
        vec![ok_whole()]
    })
    .await;
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(
        &server,
        &["a", "b", "c"],
        body,
        &["-c", "1", "--max-retries", "0"],
    )
    .await;
    assert_eq!(run.summary["requests"]["ok"], 3, "{:?}", run.records);
    let reconnected: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["reconnects"] == 1)
        .collect();
    assert_eq!(reconnected.len(), 1);
    assert_eq!(reconnected[0]["attempts"], 1, "not a retry");
    assert_eq!(reconnected[0]["error"], Value::Null, "not an error");
    assert_eq!(run.summary["reconnects"], 1);
    assert_eq!(run.summary["retries"], 0);
}

#[tokio::test]
async fn a_server_closing_idle_connections_after_100ms_loses_no_request() {
    // Every connection idle for 100 ms is closed as the next request arrives. Sent 200 ms apart on a
    // pool that keeps connections 30 s, each request meets a closed connection and is sent again on
    // a new one; with the pool's idle timeout below the server's (50 ms), none is. Over plain HTTP
    // (the load's own connections) and over TLS (hyper-util's pooled client) alike.
    let idle_close = Some(Duration::from_millis(100));
    let plain = serve_with(idle_close, |_| vec![ok_whole()]).await;
    let tls = serve_tls_with(idle_close, |_| vec![ok_whole()]).await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = questions(tmp.path(), 20);
    for server in [&plain, &tls] {
        for (idle, reconnects) in [("30s", true), ("50ms", false)] {
            let run = run_endpoint(
                &server.endpoint(),
                &workload,
                &[
                    "--rps",
                    "5",
                    "-c",
                    "4",
                    "--max-retries",
                    "0",
                    "--insecure",
                    "--pool-idle-timeout",
                    idle,
                ],
                &tmp.path().join(format!("out-{}-{idle}", server.tls)),
            )
            .await;
            let over = server.endpoint();
            assert_run_invariants(&run, &workload);
            assert_eq!(run.summary["requests"]["ok"], 20, "{over}: {}", run.stdout);
            assert_eq!(run.summary["retries"], 0, "{over}");
            let count = run.summary["reconnects"].as_u64().unwrap();
            assert_eq!(
                count > 0,
                reconnects,
                "{over} --pool-idle-timeout {idle}: {count} reconnects"
            );
        }
    }
    assert!(tls.connections() > 0, "the TLS server was reached");
}

// ---- 7. Parse what arrived, not only its label --------------------------------------------------

#[tokio::test]
async fn the_body_decides_between_sse_and_json_and_a_disagreeing_label_is_noted() {
    let server = serve(|seen| match case_of(seen) {
        "sse_as_json" => {
            let mut steps = chat_answer_then(vec![Step::End]);
            steps[0] = chunked_head("application/json", "");
            steps
        }
        "empty_sse" => vec![whole(200, "text/event-stream", "", "\n")],
        "json_as_sse" => vec![whole(
            200,
            "text/event-stream",
            "",
            r#"{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Whole"}]}],"usage":{"input_tokens":2,"output_tokens":1}}"#,
        )],
        _ => {
            let mut steps = chat_answer_then(vec![Step::End]);
            steps[0] = Step::Raw(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec());
            steps
        }
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["sse_as_json", "json_as_sse", "empty_sse", "unlabelled"],
        CHAT,
        &["--max-retries", "0"],
    )
    .await;
    let sse = run.by_id("sse_as_json");
    assert_eq!(sse["status"], "ok", "{sse}");
    assert_eq!(sse["output_text"], "Hi there");
    assert_eq!(sse["chunks"], 2);
    assert_eq!(
        sse["notes"][0],
        r#"labelled "application/json" but the body is an SSE stream"#
    );
    let json = run.by_id("json_as_sse");
    assert_eq!(json["status"], "ok", "{json}");
    assert_eq!(json["output_text"], "Whole");
    assert_eq!(
        json["notes"][0],
        r#"labelled "text/event-stream" but the body is not an SSE stream"#
    );
    let empty = run.by_id("empty_sse");
    assert_eq!(
        empty["status"], "truncated",
        "an empty stream is a stream without events: {empty}"
    );
    assert_eq!(empty["error"]["message"], "stream ended without any event");
    let unlabelled = run.by_id("unlabelled");
    assert_eq!(unlabelled["status"], "ok");
    assert_eq!(
        unlabelled["notes"][0],
        "without a Content-Type but the body is an SSE stream"
    );
}

// ---- 9. A broken event breaks the answer --------------------------------------------------------

#[tokio::test]
async fn an_event_that_is_not_json_makes_the_answer_invalid() {
    let server = serve(|seen| {
        let mut steps = vec![chunked_head("text/event-stream", "")];
        if case_of(seen) == "chat" {
            steps.extend([
                chat_chunk(r#"{"role":"assistant","content":""}"#, "null"),
                chat_chunk(r#"{"content":"The"}"#, "null"),
                chat_chunk(r#"{"content":" quick"}"#, "null"),
                Step::Chunk(b"data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\" brown\"\n\n".to_vec()),
                chat_chunk(r#"{"content":" fox"}"#, "null"),
                chat_chunk("{}", r#""stop""#),
                data("[DONE]"),
            ]);
        } else {
            steps.extend([
                created(),
                Step::Chunk(b"data:\n\n".to_vec()),
                text_delta("Hi"),
                Step::Chunk(b"event: response.output_text.delta\ndata: <html>oops</html>\n\n".to_vec()),
                completed(1, 1),
            ]);
        }
        steps.push(Step::End);
        steps
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["chat", "responses"],
        CHAT,
        &["--max-retries", "5"],
    )
    .await;
    let chat = run.by_id("chat");
    assert_eq!(chat["status"], "invalid_response", "{chat}");
    assert_eq!(chat["error"]["kind"], "malformed_event");
    let message = chat["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("stream event 4 is not valid JSON"),
        "{message}"
    );
    assert!(message.contains(r#"{\"id\":\"chatcmpl-1\""#), "{message}");
    assert_eq!(chat["attempts"], 1, "not retried, as the SDK does not");
    assert_eq!(chat["output_text"], "The quick");
    let responses = run.by_id("responses");
    assert_eq!(
        responses["status"], "invalid_response",
        "an empty data line is skipped, HTML is not: {responses}"
    );
    assert!(
        responses["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<html>oops")
    );
}

#[tokio::test]
async fn valid_json_with_an_unexpected_field_type_is_skipped_and_noted_not_fatal() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"Fine"}"#, "null"),
            data(r#"{"id":123,"choices":[{"index":0,"delta":{"content":{"odd":true}}}]}"#),
            chat_chunk(r#"{"content":" anyway"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["odd"], CHAT, &["--max-retries", "0"]).await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["output_text"], "Fine anyway");
    assert!(
        r["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("stream event 2 was skipped"),
        "{r}"
    );
}

// ---- 10. Nothing blocks the runtime mid-stream --------------------------------------------------

/// A Chat stream without usage: `pieces` text chunks 200 ms apart, then the finish and `[DONE]`.
fn paced_chat_without_usage(pieces: impl IntoIterator<Item = String>) -> Vec<Step> {
    let mut steps = vec![chunked_head("text/event-stream", "")];
    for piece in pieces {
        steps.push(wait_ms(200));
        steps.push(chat_chunk(&format!(r#"{{"content":{piece:?}}}"#), "null"));
    }
    steps.extend([chat_chunk("{}", r#""stop""#), data("[DONE]"), Step::End]);
    steps
}

#[tokio::test]
async fn counting_tokens_of_streams_without_usage_never_stalls_another_stream() {
    // Short answers finish (and need their tokens counted) while a long one streams a chunk every
    // 200 ms: its gaps stay near 200 ms.
    let server = serve(|seen| {
        let words = if case_of(seen) == "long" { 12 } else { 2 };
        paced_chat_without_usage((0..words).map(|i| format!(" word{i}")))
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["long", "short1", "short2", "short3"],
        CHAT,
        &["-c", "4", "--max-retries", "0"],
    )
    .await;
    let long = run.by_id("long");
    assert_eq!(long["status"], "ok");
    assert_eq!(long["token_source"], "estimated");
    assert!(long["output_tokens"].as_u64().unwrap() >= 12, "{long}");
    let itl_max = run.summary["itl_ms"]["max"].as_f64().unwrap();
    // Gaps are 200 ms; loading tiktoken inside a request stalled them to 0.8–1.9 s. The bound sits
    // below the stall, with room for a loaded machine.
    assert!(
        itl_max < 750.0,
        "no stream stalled for a tokenizer load: ITL max {itl_max}"
    );
}

#[tokio::test]
async fn streams_counted_with_a_tokenizer_file_stall_nothing_either() {
    let server = serve(|seen| {
        let pieces = if case_of(seen) == "long" { 8 } else { 1 };
        paced_chat_without_usage((0..pieces).map(|_| " Hello there, friend".to_string()))
    })
    .await;
    let tokenizer = workspace_file("tests/fixtures/tokenizer.json");
    let args = [
        "-c",
        "3",
        "--stream",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
    ];
    let (run, _tmp) = run_cases(&server, &["long", "short1", "short2"], CHAT, &args).await;
    let short = run.by_id("short1");
    assert_eq!(short["tokenizer"], "hf:tokenizer.json");
    assert_eq!(short["output_tokens"], 4, "{short}");
    let itl_max = run.summary["itl_ms"]["max"].as_f64().unwrap();
    assert!(itl_max < 750.0, "ITL max {itl_max}");
}

// ---- 11. Retries are inside the rates and apart from the queue ----------------------------------

#[tokio::test]
async fn retries_count_in_the_rate_window_and_their_waits_are_their_own_figure() {
    let server = serve(|seen| {
        if seen.n < 2 {
            return vec![whole(
                429,
                "application/json",
                "retry-after: 1\r\n",
                r#"{"error":{"message":"slow","code":"rate_limit_exceeded"}}"#,
            )];
        }
        vec![ok_whole()]
    })
    .await;
    let cases: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
    let cases: Vec<&str> = cases.iter().map(String::as_str).collect();
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(&server, &cases, body, &["-c", "1", "--max-retries", "5"]).await;
    assert_eq!(run.summary["requests"]["ok"], 10);
    let window = run.summary["window_s"].as_f64().unwrap();
    assert!(
        window >= 1.9,
        "the window starts at the first attempt: {window}"
    );
    let rate = run.summary["requests_per_s"].as_f64().unwrap();
    assert!(approx(rate * window, 10.0), "{rate} req/s over {window} s");
    let retried = run.by_id("l0");
    assert_eq!(retried["attempts"], 3);
    let wait = ms(retried, "retry_wait_ms");
    assert!(wait >= 1900.0, "{retried}");
    assert!(
        ms(retried, "queue_ms") < wait,
        "queue_ms is the first attempt's lag: {retried}"
    );
    assert!(
        ms(retried, "sent_at") - ms(retried, "first_sent_at") >= wait,
        "{retried}"
    );
    assert!(
        ms(retried, "latency_from_schedule_ms") >= wait + ms(retried, "latency_ms"),
        "{retried}"
    );
    assert_eq!(run.summary["retry_wait_ms"]["count"], 1);
}

#[tokio::test]
async fn a_back_off_between_attempts_is_a_retry_wait_not_queue_delay() {
    let server = serve(|seen| {
        if seen.n == 0 {
            return vec![whole(
                503,
                "text/html",
                "",
                "<html><title>503</title></html>",
            )];
        }
        vec![ok_whole()]
    })
    .await;
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(&server, &["a"], body, &["--max-retries", "1"]).await;
    let r = &run.records[0];
    assert_eq!(
        (r["status"].as_str(), r["attempts"].as_u64()),
        (Some("ok"), Some(2))
    );
    let wait = ms(r, "retry_wait_ms");
    assert!(
        wait >= 375.0,
        "the SDK back-off of 0.5 s less up to 25%: {r}"
    );
    assert!(ms(r, "queue_ms") < wait, "{r}");
    assert!(run.stdout.contains("retry wait ms"), "{}", run.stdout);
}

// ---- 12. Unknown is not zero, estimated is not measured -----------------------------------------

#[tokio::test]
async fn tokens_a_server_did_not_report_are_unknown_and_estimates_say_so() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"Hello there"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["a", "b", "c", "d"],
        CHAT,
        &["--max-retries", "0"],
    )
    .await;
    let tokens = &run.summary["tokens"];
    assert_eq!(tokens["input"], Value::Null, "{tokens}");
    assert_eq!(tokens["total"], Value::Null);
    assert_eq!(tokens["output"], 8);
    assert_eq!(tokens["input_unknown_requests"], 4);
    assert_eq!(tokens["estimated_output_requests"], 4);
    assert_eq!(tokens["estimated_share"], 1.0);
    assert_eq!(tokens["tokenizers"][0], "o200k_base");
    assert_eq!(
        run.summary["tokens_per_chunk"],
        Value::Null,
        "no server counts, no tokens per chunk"
    );
    for r in &run.records {
        assert_eq!(r["input_tokens"], Value::Null);
        assert_eq!(r["total_tokens"], Value::Null);
    }
    assert!(run.stdout.contains("input unknown"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("output tokens of 4 ok requests (100%) are local estimates (o200k_base)"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_server_reporting_zero_tokens_gets_a_warning_and_an_announced_limit_is_reported() {
    let server = serve(|_| {
        vec![whole(
            200,
            "application/json",
            "x-ratelimit-limit-requests: 6000\r\nx-ratelimit-remaining-requests: 5999\r\n",
            r#"{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":0,"output_tokens":0,"total_tokens":0}}"#,
        )]
    })
    .await;
    let body = r#"{"model":"m","input":"hi"}"#;
    let (run, _tmp) = run_cases(&server, &["a", "b", "c"], body, &["-c", "1"]).await;
    let warnings = run.summary["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("reported zero tokens (usage 0 in, 0 out) for 3 of 3 ok answers"),
        "{warnings:?}"
    );
    assert!(run.stdout.contains("WARNING"), "{}", run.stdout);
    let pacing = &run.summary["server_pacing"];
    assert_eq!(pacing["announced_requests_per_min"], 6000, "{pacing}");
    assert_eq!(pacing["paced_to_requests_per_min"], 5700.0);
    assert!(
        run.stdout.contains("paced to 5700 requests/min"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn estimated_output_tokens_count_reasoning_and_refusals_too() {
    let server = serve(|_| {
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"reasoning_content":"Hello there"}"#, "null"),
            chat_chunk(r#"{"content":"Hello there"}"#, "null"),
            chat_chunk(r#"{"refusal":"Hello there"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ]
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["mixed"], CHAT, &["--max-retries", "0"]).await;
    let r = &run.records[0];
    assert_eq!(r["output_text"], "Hello there");
    assert_eq!(
        r["output_tokens"], 6,
        "2 reasoning + 2 answer + 2 refusal tokens: {r}"
    );
}

// ---- Also: timeouts read as timeouts ------------------------------------------------------------

#[tokio::test]
async fn a_timeout_reads_as_a_timeout() {
    let server = serve(|seen| match case_of(seen) {
        "no_headers" => vec![wait_ms(3000), Step::Close],
        _ => vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"x"}"#, "null"),
            wait_ms(3000),
            Step::End,
        ],
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["no_headers", "slow_body"],
        CHAT,
        &["--max-retries", "0", "--timeout", "1s", "-c", "2"],
    )
    .await;
    let no_headers = run.by_id("no_headers");
    assert_eq!(no_headers["status"], "timeout");
    assert_eq!(no_headers["error"]["message"], "no answer within 1s");
    let slow = run.by_id("slow_body");
    assert_eq!(slow["status"], "timeout");
    let message = slow["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("answer not complete within 1s (its headers came after"),
        "{message}"
    );
}
