//! Round 3 of the ways real servers differ from the spec (speculative decoding, compressing and
//! buffering proxies, strict gateways, reasoning and cache usage conventions, answers that are not
//! answers), each served byte for byte and gap for gap by a raw local peer, with what must be
//! recorded asserted. Timing assertions are lower bounds with generous margins, or compare
//! recorded values with each other.

use crate::common::scripted::*;
use crate::common::*;
use std::time::Duration;

const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;

/// Runs Batch lines with these ids, each posting `body` to `/v1/chat/completions`.
async fn run_chat_lines(
    server: &Scripted,
    ids: &[&str],
    body: &str,
    args: &[&str],
) -> (Run, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("chat.jsonl");
    let lines: String = ids
        .iter()
        .map(|id| {
            format!(
                "{{\"custom_id\":\"{id}\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{body}}}\n"
            )
        })
        .collect();
    std::fs::write(&workload, lines).unwrap();
    let run = run_endpoint(&server.endpoint(), &workload, args, &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);
    (run, tmp)
}

fn f(value: &serde_json::Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("a number: {value}"))
}

// ---- 5. Several tokens per event ----------------------------------------------------------------

#[tokio::test]
async fn several_tokens_per_event_give_a_per_token_itl_and_the_event_gap_under_its_own_name() {
    // Speculative decoding: every event carries 4 tokens, 60 ms apart. Before, ITL p50 was the
    // 60 ms gap between events; per token it is 15 ms.
    let server = serve(|_| {
        let mut steps = vec![chunked_head("text/event-stream", "")];
        for i in 0..6 {
            if i > 0 {
                steps.push(wait_ms(60));
            }
            steps.push(chat_chunk(r#"{"content":"one two three four "}"#, "null"));
        }
        steps.extend([
            chat_chunk("{}", r#""stop""#),
            chat_usage(5, 24),
            data("[DONE]"),
            Step::End,
        ]);
        steps
    })
    .await;
    let (run, tmp) = run_cases(
        &server,
        &["spec_decode"],
        CHAT,
        &["--max-retries", "0", "--fail-on", "itl.p50>40ms"],
    )
    .await;
    let r = &run.records[0];
    assert_eq!(
        (r["status"].as_str(), r["chunks"].as_u64()),
        (Some("ok"), Some(6)),
        "{r}"
    );
    let s = &run.summary;
    assert_eq!(s["tokens_per_chunk"], 4.0);
    let (gap, itl) = (&s["chunk_gap_ms"], &s["itl_ms"]);
    assert_eq!(
        (gap["count"].as_u64(), itl["count"].as_u64()),
        (Some(5), Some(5))
    );
    assert!(f(&gap["min"]) >= 50.0, "the event gap as it arrived: {gap}");
    let ratio = f(&gap["p50"]) / f(&itl["p50"]);
    assert!(
        (ratio - 4.0).abs() < 0.05,
        "ITL is per token: {itl} vs {gap}"
    );
    assert_eq!(
        run.code, 0,
        "the per-token ITL passes a 40 ms gate: {}",
        run.stdout
    );
    assert!(run.stdout.contains("chunk gap ms"), "{}", run.stdout);
    // The gap is gateable under its own name.
    let gated = run_endpoint(
        &server.endpoint(),
        &tmp.path().join("cases.jsonl"),
        &["--max-retries", "0", "--fail-on", "chunk_gap.p50>40ms"],
        &tmp.path().join("gated"),
    )
    .await;
    assert_eq!(gated.code, 3, "{}", gated.stdout);
}

// ---- 6. A compressed or buffered stream ---------------------------------------------------------

/// `text` gzipped, cut into `parts` pieces of about equal size.
fn gzipped(text: &str, parts: usize) -> Vec<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    let gz = encoder.finish().unwrap();
    gz.chunks(gz.len().div_ceil(parts))
        .map(<[u8]>::to_vec)
        .collect()
}

#[tokio::test]
async fn a_gzipped_stream_sent_without_accept_encoding_is_decoded_and_flagged() {
    // Before: "truncated: stream ended without any event".
    let sse = [
        r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#,
        r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}]}"#,
        r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
        "[DONE]",
    ]
    .iter()
    .map(|e| format!("data: {e}\n\n"))
    .collect::<String>();
    let parts = gzipped(&sse, 3);
    let server = serve(move |_| {
        let mut steps = vec![chunked_head(
            "text/event-stream",
            "content-encoding: gzip\r\n",
        )];
        for part in &parts {
            steps.push(Step::Chunk(part.clone()));
            steps.push(wait_ms(30));
        }
        steps.push(Step::End);
        steps
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["gzip"], CHAT, &["--max-retries", "0"]).await;
    let r = &run.records[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["output_text"], "Hello there");
    assert_eq!(r["output_tokens"], 2);
    assert_eq!(r["flags"], serde_json::json!(["compressed"]));
    assert_eq!(run.summary["flags"]["compressed"], 1);
}

#[tokio::test]
async fn a_stream_whose_events_all_arrive_in_one_burst_is_flagged_buffered() {
    // A buffering proxy: nothing for 400 ms, then the whole stream in one write.
    let server = serve(|seen| {
        let burst: String = (0..8)
            .map(|i| {
                format!(
                    "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}},\"finish_reason\":null}}]}}\n\n"
                )
            })
            .collect::<String>()
            + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let mut steps = vec![chunked_head("text/event-stream", "")];
        if case_of(seen) == "buffered" {
            steps.extend([wait_ms(400), Step::Chunk(burst.into_bytes())]);
        } else {
            // The same events as a model streams them: not flagged.
            for i in 0..8 {
                steps.push(wait_ms(15));
                steps.push(chat_chunk(&format!(r#"{{"content":"w{i} "}}"#), "null"));
            }
            steps.extend([chat_chunk("{}", r#""stop""#), data("[DONE]")]);
        }
        steps.push(Step::End);
        steps
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["buffered", "streamed"],
        CHAT,
        &["--max-retries", "0"],
    )
    .await;
    let buffered = run.by_id("buffered");
    assert_eq!(buffered["status"], "ok", "{buffered}");
    assert_eq!(buffered["flags"], serde_json::json!(["buffered"]));
    assert!(f(&buffered["ttft_ms"]) >= 350.0);
    assert!(
        run.by_id("streamed")["flags"].is_null(),
        "{}",
        run.by_id("streamed")
    );
    assert_eq!(run.summary["flags"]["buffered"], 1);
    assert!(
        run.stdout
            .contains("buffered     1 answers: every chunk arrived in one burst"),
        "{}",
        run.stdout
    );
}

// ---- 7. response.incomplete -----------------------------------------------------------------------

#[tokio::test]
async fn incomplete_answers_are_counted_by_reason_and_arguments_cut_by_the_limit_are_truncated() {
    let server = serve(|seen| {
        let mut steps = vec![chunked_head("text/event-stream", "")];
        match case_of(seen) {
            "cut_call" => steps.extend([
                event(
                    "response.output_item.added",
                    r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":""}}"#,
                ),
                event(
                    "response.function_call_arguments.delta",
                    r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":0,"delta":"{\"city\": \"Par"}"#,
                ),
                event(
                    "response.incomplete",
                    r#"{"type":"response.incomplete","response":{"id":"r","object":"response","model":"m","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":{"input_tokens":9,"output_tokens":16,"total_tokens":25}}}"#,
                ),
            ]),
            "empty_completed" => steps.extend([
                event(
                    "response.completed",
                    r#"{"type":"response.completed","response":{"id":"r","object":"response","model":"m","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":""}]}],"usage":{"input_tokens":9,"output_tokens":40,"output_tokens_details":{"reasoning_tokens":40},"total_tokens":49}}}"#,
                ),
            ]),
            _ => steps.extend([text_delta("Fine."), completed(9, 2)]),
        }
        steps.push(Step::End);
        steps
    })
    .await;
    let body = r#"{"model":"m","input":"hi","stream":true,"max_output_tokens":16,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}"#;
    let tmp = tempfile::tempdir().unwrap();
    let workload = case_workload(tmp.path(), &["cut_call", "empty_completed", "fine"], body);
    let args = [
        "--max-retries",
        "0",
        "--fail-on",
        "incomplete.max_output_tokens>0",
    ];
    let run = run_endpoint(
        &server.endpoint(),
        &workload,
        &args,
        &tmp.path().join("out"),
    )
    .await;
    let cut = run.by_id("cut_call");
    assert_eq!(cut["status"], "ok", "{cut}");
    assert_eq!(cut["incomplete_reason"], "max_output_tokens");
    assert_eq!(cut["tool_call_problems"][0]["fault"], "truncated", "{cut}");
    let s = &run.summary;
    assert_eq!(
        s["incomplete"]["max_output_tokens"], 1,
        "{}",
        s["incomplete"]
    );
    assert_eq!(s["incomplete"]["total"], 1);
    assert_eq!(s["tool_calls"]["faults"]["truncated"], 1);
    assert_eq!(s["tool_calls"]["faults"]["invalid_json"], 0);
    let empty = run.by_id("empty_completed");
    assert_eq!(empty["status"], "ok", "{empty}");
    assert_eq!(empty["flags"], serde_json::json!(["empty_completed"]));
    assert_eq!(s["flags"]["empty_completed"], 1);
    assert!(
        run.stdout
            .contains("incomplete   1 ok answers were cut short (max_output_tokens 1)"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 3, "the incomplete gate fails the run");
}

// ---- 11. A 200 that is not an answer --------------------------------------------------------------

#[tokio::test]
async fn a_stream_of_only_the_role_chunk_is_an_empty_answer_and_a_refusal_is_an_answer() {
    let server = serve(|seen| match case_of(seen) {
        "role_only" => vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"role":"assistant","content":""}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ],
        "refusal_stream" => vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"role":"assistant","refusal":"I can't help"}"#, "null"),
            chat_chunk(r#"{"refusal":" with that."}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ],
        _ => vec![whole(
            200,
            "application/json",
            "",
            r#"{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"No."},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#,
        )],
    })
    .await;
    let (run, _tmp) = run_cases(
        &server,
        &["role_only", "refusal_stream", "refusal_body"],
        CHAT,
        &["--max-retries", "0"],
    )
    .await;
    let empty = run.by_id("role_only");
    assert_eq!(empty["status"], "invalid_response", "{empty}");
    assert_eq!(empty["error"]["kind"], "empty_answer");
    let stream = run.by_id("refusal_stream");
    assert_eq!(stream["status"], "ok", "{stream}");
    assert_eq!(stream["refusal"], "I can't help with that.");
    let body = run.by_id("refusal_body");
    assert_eq!(
        (body["status"].as_str(), body["refusal"].as_str()),
        (Some("ok"), Some("No."))
    );
    // The empty answer is a failure: not in the latency percentiles of ok answers.
    assert_eq!(run.summary["latency_ms"]["count"], 2);
    assert_eq!(run.summary["requests"]["failed"], 1);
}

// ---- 8. A server that refuses stream_options ---------------------------------------------------------

/// A strict gateway (Pydantic `extra="forbid"`): 422 for any body with `stream_options`, else a
/// stream without usage.
async fn strict_server() -> Scripted {
    serve(|seen| {
        if seen.body.contains("stream_options") {
            let detail = r#"{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs are not permitted","input":{"include_usage":true}}]}"#;
            return vec![whole(422, "application/json", "", detail)];
        }
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"Hello there"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ]
    })
    .await
}

#[tokio::test]
async fn a_server_refusing_the_stream_options_llmvolley_added_gets_the_body_without_it() {
    // Before: every request failed with the 422.
    let server = strict_server().await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let (run, _tmp) = run_chat_lines(
        &server,
        &["a", "b", "c", "d"],
        body,
        &["--max-retries", "0", "--stream", "-c", "1"],
    )
    .await;
    assert_eq!(run.summary["requests"]["ok"], 4, "{}", run.stdout);
    for r in &run.records {
        assert_eq!(r["token_source"], "estimated", "{r}");
        assert_eq!(r["output_tokens"], 2, "{r}");
        assert_eq!(
            r["flags"],
            serde_json::json!(["usage_option_refused"]),
            "{r}"
        );
    }
    // Sent again once without it; remembered for the endpoint after that.
    assert_eq!(run.by_id("a")["attempts"], 2);
    assert_eq!(run.by_id("d")["attempts"], 1);
    assert_eq!(server.requests(), 5);
    // A second request was sent, but --max-retries 0 did not stop it: it is not a retry.
    assert_eq!(run.summary["retries"], 1);
    assert!(
        run.stdout.contains("the server refused stream_options"),
        "{}",
        run.stdout
    );
}

/// Once the endpoint is known to refuse the field, later requests go without it from the start:
/// none of them is a resend, so `--max-retries 0` still means no retry.
#[tokio::test]
async fn requests_sent_without_stream_options_from_the_start_get_no_extra_retry() {
    let server = serve(|seen| {
        if seen.body.contains("stream_options") {
            let detail = r#"{"detail":[{"type":"extra_forbidden","loc":["body","stream_options"],"msg":"Extra inputs are not permitted"}]}"#;
            return vec![whole(422, "application/json", "", detail)];
        }
        if seen.n >= 2 {
            return vec![whole(500, "application/json", "", r#"{"error":{"message":"boom"}}"#)];
        }
        vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(r#"{"content":"Hello"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
            data("[DONE]"),
            Step::End,
        ]
    })
    .await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let (run, _tmp) = run_chat_lines(
        &server,
        &["a", "b"],
        body,
        &[
            "--max-retries",
            "0",
            "--stream",
            "-c",
            "1",
            "--give-up-after",
            "0",
        ],
    )
    .await;
    assert_eq!(run.by_id("a")["status"], "ok");
    let b = run.by_id("b");
    assert_eq!(
        (b["http_status"].as_u64(), b["attempts"].as_u64()),
        (Some(500), Some(1)),
        "{b}"
    );
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn stream_options_the_users_body_carries_are_the_users_and_their_errors_stand() {
    let server = strict_server().await;
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
    let (run, _tmp) = run_chat_lines(
        &server,
        &["a", "b"],
        body,
        &["--max-retries", "0", "--stream"],
    )
    .await;
    assert_eq!(run.summary["requests"]["ok"], 0);
    assert!(
        run.records
            .iter()
            .all(|r| r["http_status"] == 422 && r["attempts"] == 1)
    );
}

// ---- 9. Reasoning tokens counted three ways ----------------------------------------------------------

fn usage_chunk(completion: u64, reasoning: u64, total: u64) -> Step {
    data(&format!(
        r#"{{"id":"c","object":"chat.completion.chunk","model":"gpt-4.1-mini","choices":[],"usage":{{"prompt_tokens":10,"completion_tokens":{completion},"total_tokens":{total},"completion_tokens_details":{{"reasoning_tokens":{reasoning}}}}}}}"#
    ))
}

const THOUGHT: &str = "Let me think about this step by step before I answer the question.";

#[tokio::test]
async fn reasoning_tokens_inside_beside_or_missing_from_usage_give_the_same_output_tokens() {
    let thought_tokens = tiktoken_rs::o200k_base()
        .unwrap()
        .encode_ordinary(THOUGHT)
        .len() as u64;
    let server = serve(move |seen| {
        if case_of(seen) == "whole_missing" {
            let body = format!(
                r#"{{"object":"chat.completion","model":"gpt-4.1-mini","choices":[{{"index":0,"message":{{"role":"assistant","reasoning_content":"{THOUGHT}","content":"Hello there"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#
            );
            return vec![whole(200, "application/json", "", &body)];
        }
        let mut steps = vec![
            chunked_head("text/event-stream", ""),
            chat_chunk(&format!(r#"{{"reasoning_content":"{THOUGHT}"}}"#), "null"),
            chat_chunk(r#"{"content":"Hello there"}"#, "null"),
            chat_chunk("{}", r#""stop""#),
        ];
        let n = thought_tokens;
        steps.push(match case_of(seen) {
            // OpenAI: reasoning inside completion_tokens.
            "inside" => usage_chunk(n + 2, n, 10 + n + 2),
            // Some providers: reasoning beside completion_tokens, which holds the visible part.
            "beside" => usage_chunk(2, n, 10 + 2 + n),
            // Some open servers: reasoning reported as 0 while reasoning_content arrives.
            "missing" => usage_chunk(2, 0, 12),
            // ... or 0 reasoning, but a completion count that covers it.
            _ => usage_chunk(n + 2, 0, 10 + n + 2),
        });
        steps.extend([data("[DONE]"), Step::End]);
        steps
    })
    .await;
    let body =
        r#"{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let (run, _tmp) = run_cases(
        &server,
        &[
            "inside",
            "beside",
            "missing",
            "missing_but_counted",
            "whole_missing",
        ],
        body,
        &["--max-retries", "0"],
    )
    .await;
    let want = thought_tokens + 2;
    let cost = run.by_id("inside")["cost_usd"].as_f64().unwrap();
    for id in [
        "inside",
        "beside",
        "missing",
        "missing_but_counted",
        "whole_missing",
    ] {
        let r = run.by_id(id);
        assert_eq!(r["output_tokens"], want, "{id}: {r}");
        assert_eq!(r["reasoning_tokens"], thought_tokens, "{id}: {r}");
        assert!(
            (r["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12,
            "{id}: {r}"
        );
    }
    assert_eq!(run.by_id("inside")["token_source"], "server");
    assert_eq!(run.by_id("beside")["token_source"], "server");
    assert_eq!(run.by_id("missing")["token_source"], "estimated");
    assert_eq!(
        run.by_id("missing_but_counted")["token_source"],
        "estimated"
    );
    assert_eq!(run.by_id("whole_missing")["token_source"], "estimated");
    assert_eq!(run.summary["tokens"]["output"], want * 5);
}

// ---- 10. Cached prompt tokens reported the additive way ----------------------------------------------

#[tokio::test]
async fn cache_reads_and_writes_reported_beside_the_input_count_as_input_and_are_priced_as_such() {
    // Anthropic-style usage passed through a gateway: `input_tokens` after the cache. Before: input
    // 7 tokens instead of 10,000, and the cache ignored.
    let server = serve(|seen| {
        let usage = match case_of(seen) {
            "read" => r#"{"input_tokens":7,"cache_read_input_tokens":9993,"cache_creation_input_tokens":0,"output_tokens":5}"#,
            "write" => r#"{"input_tokens":7,"cache_read_input_tokens":0,"cache_creation_input_tokens":9993,"output_tokens":5}"#,
            // A translating gateway fills both conventions, equal: counted once.
            _ => r#"{"prompt_tokens":10000,"completion_tokens":5,"total_tokens":10005,"prompt_tokens_details":{"cached_tokens":9993},"cache_read_input_tokens":9993}"#,
        };
        let body = format!(
            r#"{{"object":"response","status":"completed","model":"claude-x","output":[{{"type":"message","content":[{{"type":"output_text","text":"Hi"}}]}}],"usage":{usage}}}"#
        );
        vec![whole(200, "application/json", "", &body)]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let prices = tmp.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"models":{"claude-x":{"input":3.0,"output":15.0,"cached_input":0.3,"cache_write":3.75}}}"#,
    )
    .unwrap();
    let body = r#"{"model":"claude-x","input":"hi"}"#;
    let (run, _tmp) = run_cases(
        &server,
        &["read", "write", "both"],
        body,
        &["--max-retries", "0", "--prices", prices.to_str().unwrap()],
    )
    .await;
    let per_m = |tokens: f64, usd: f64| tokens * usd / 1e6;
    for (id, cached, written, cost) in [
        (
            "read",
            9993,
            0,
            per_m(7.0, 3.0) + per_m(9993.0, 0.3) + per_m(5.0, 15.0),
        ),
        (
            "write",
            0,
            9993,
            per_m(7.0, 3.0) + per_m(9993.0, 3.75) + per_m(5.0, 15.0),
        ),
        (
            "both",
            9993,
            0,
            per_m(7.0, 3.0) + per_m(9993.0, 0.3) + per_m(5.0, 15.0),
        ),
    ] {
        let r = run.by_id(id);
        assert_eq!(r["input_tokens"], 10_000, "{id}: {r}");
        assert_eq!(
            r["cached_tokens"].as_u64().unwrap_or(0),
            cached,
            "{id}: {r}"
        );
        assert_eq!(
            r["cache_write_tokens"].as_u64().unwrap_or(0),
            written,
            "{id}: {r}"
        );
        assert_eq!(r["total_tokens"], 10_005, "{id}: {r}");
        assert!(
            (f(&r["cost_usd"]) - cost).abs() < 1e-9,
            "{id}: {r} vs {cost}"
        );
    }
}

// ---- 12. NaN and Infinity in a JSON answer -----------------------------------------------------------

#[tokio::test]
async fn nan_and_infinity_in_an_answer_are_read_as_null_and_the_answer_kept() {
    // Before: the whole answer was invalid_json and lost.
    let server = serve(|seen| match case_of(seen) {
        "whole" => vec![whole(
            200,
            "application/json",
            "",
            r#"{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Yes"},"logprobs":{"content":[{"token":"Yes","logprob":-Infinity,"top_logprobs":[{"token":"No","logprob":NaN}]}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
        )],
        _ => vec![
            chunked_head("text/event-stream", ""),
            data(r#"{"choices":[{"index":0,"delta":{"content":"Yes"},"logprobs":{"content":[{"token":"Yes","logprob":NaN}]},"finish_reason":null}]}"#),
            chat_chunk("{}", r#""stop""#),
            chat_usage(3, 1),
            data("[DONE]"),
            Step::End,
        ],
    })
    .await;
    let (run, _tmp) = run_cases(&server, &["whole", "stream"], CHAT, &["--max-retries", "0"]).await;
    for id in ["whole", "stream"] {
        let r = run.by_id(id);
        assert_eq!(r["status"], "ok", "{id}: {r}");
        assert_eq!(r["output_text"], "Yes");
        assert_eq!(r["output_tokens"], 1);
        assert_eq!(r["flags"][0], "non_finite_numbers", "{id}: {r}");
    }
    assert_eq!(run.summary["flags"]["non_finite_numbers"], 2);
}

// ---- 13. Rate-limit waits in more places -----------------------------------------------------------

#[tokio::test]
async fn a_429_waits_for_the_longest_applicable_reset_including_one_named_in_the_body() {
    // Before: a spent token window with requests left waited the 0.5 s back-off, and a wait
    // named only in the error body was ignored.
    let serve_case = || {
        serve(|seen| {
            let first = seen.n == 0;
            match (case_of(seen), first) {
                ("tokens", true) => vec![whole(
                    429,
                    "application/json",
                    "x-ratelimit-remaining-requests: 59\r\nx-ratelimit-reset-requests: 1s\r\nx-ratelimit-remaining-tokens: 0\r\nx-ratelimit-reset-tokens: 2s\r\n",
                    r#"{"error":{"message":"Rate limit reached for tokens","type":"tokens","code":"rate_limit_exceeded"}}"#,
                )],
                ("body", true) => vec![whole(
                    429,
                    "application/json",
                    "",
                    r#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 1.5s. Visit the docs.","code":"rate_limit_exceeded"}}"#,
                )],
                _ => vec![ok_whole()],
            }
        })
    };
    let body = r#"{"model":"m","input":"hi"}"#;
    for case in ["tokens", "body"] {
        let server = serve_case().await;
        let (run, _tmp) = run_cases(&server, &[case], body, &["-c", "1"]).await;
        let r = &run.records[0];
        assert_eq!(
            (r["status"].as_str(), r["attempts"].as_u64()),
            (Some("ok"), Some(2)),
            "{r}"
        );
        let want = if case == "tokens" { 1950.0 } else { 1450.0 };
        assert!(ms(r, "retry_wait_ms") >= want, "{case}: {r}");
    }
}

#[tokio::test]
async fn a_rate_limit_that_resets_hours_away_ends_the_run_with_a_clear_message() {
    let server = serve(|_| {
        vec![whole(
            429,
            "application/json",
            "x-ratelimit-remaining-tokens: 0\r\nx-ratelimit-reset-tokens: 5h0m0s\r\n",
            r#"{"error":{"message":"You exceeded your daily token quota","code":"rate_limit_exceeded"}}"#,
        )]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(&workload, "{\"model\":\"m\",\"input\":\"hi\"}\n".repeat(20)).unwrap();
    let run = run_endpoint(
        &server.endpoint(),
        &workload,
        &["-c", "1"],
        &tmp.path().join("out"),
    )
    .await;
    assert_eq!(run.records.len(), 20, "every line ends as one record");
    assert!(
        server.requests() <= 2,
        "not retried line by line: {}",
        server.requests()
    );
    let first = run.by_id("1");
    assert_eq!(first["attempts"], 1, "{first}");
    assert!(
        first["error"]["message"]
            .as_str()
            .unwrap()
            .contains("asks to wait 5h"),
        "{first}"
    );
    let verdict = run.summary["gave_up"].as_str().unwrap();
    assert!(
        verdict.contains("x-ratelimit-reset-tokens") && verdict.contains("--resume"),
        "{verdict}"
    );
    assert!(
        run.stdout.contains("the run gave up: rate limited"),
        "{}",
        run.stdout
    );
    assert_ne!(run.code, 0);
}

// ---- 14. Connection set-up apart from TTFT -----------------------------------------------------------

#[tokio::test]
async fn connection_set_up_is_recorded_apart_for_the_request_that_opened_it() {
    // A TLS server at `localhost` (which resolves to ::1 first where ::1 exists; it listens on
    // 127.0.0.1 only) whose handshake takes 300 ms, closing each connection after its answer.
    let endpoint = crate::run_against_wiremock::self_signed_tls_peer_after(
        r#"{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":1,"output_tokens":1}}"#,
        Duration::from_millis(300),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(&workload, "{\"model\":\"m\",\"input\":\"hi\"}\n".repeat(2)).unwrap();
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--insecure", "-c", "1"],
        &tmp.path().join("tls"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    for r in &run.records {
        let connect = f(&r["connect_ms"]);
        assert!(connect >= 290.0, "the handshake's 300 ms: {r}");
        assert!(
            f(&r["ttfb_ms"]) >= connect,
            "inside TTFB, which counts from the send: {r}"
        );
    }
    assert_eq!(run.summary["connect_ms"]["count"], 2);
    assert!(run.stdout.contains("connect ms"), "{}", run.stdout);

    // A kept-alive connection: only the request that opened it has a set-up time.
    let server = serve(|_| vec![ok_whole()]).await;
    let (run, _tmp) = run_cases(
        &server,
        &["a", "b", "c"],
        r#"{"model":"m","input":"hi"}"#,
        &["-c", "1"],
    )
    .await;
    assert_eq!(server.connections(), 1);
    let opened: Vec<_> = run
        .records
        .iter()
        .filter(|r| r["connect_ms"].is_number())
        .collect();
    assert_eq!(opened.len(), 1, "{:?}", run.records);
}

// ---- 15. An endpoint that never streams ----------------------------------------------------------------

#[tokio::test]
async fn an_endpoint_that_answers_whole_bodies_to_stream_requests_leaves_ttft_slos_unjudged() {
    // Before: "ttft <= 500 ms 0.0%", goodput 0.00, and a hint to add --stream (it was given).
    let server = serve(|_| {
        vec![whole(
            200,
            "application/json",
            "",
            r#"{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hi there"}]}],"usage":{"input_tokens":3,"output_tokens":2}}"#,
        )]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(&workload, "{\"model\":\"m\",\"input\":\"hi\"}\n").unwrap();
    let (endpoint, dir) = (server.endpoint(), tmp.path().join("out"));
    let w = workload.to_str().unwrap().to_string();
    let run = tokio::task::spawn_blocking(move || {
        bench(
            &[
                &w,
                "--endpoint",
                &endpoint,
                "--stream",
                "--slo",
                "ttft=500ms",
                "--requests",
                "6",
                "-c",
                "2",
            ],
            &dir,
        )
    })
    .await
    .unwrap();
    assert_eq!(run.records.len(), 6);
    for r in &run.records {
        assert_eq!(r["status"], "ok", "{r}");
        assert!(r["ttft_ms"].is_null(), "TTFT does not apply: {r}");
        assert_eq!(r["flags"], serde_json::json!(["not_streamed"]), "{r}");
    }
    let slo = &run.summary["slo"];
    assert!(slo["share_ttft"].is_null(), "{slo}");
    assert_eq!(
        (slo["whole_answers"].as_u64(), slo["unjudged"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(run.summary["flags"]["not_streamed"], 6);
    let text = std::fs::read_to_string(run.dir.join("summary.txt")).unwrap_or_default();
    let shown = if text.is_empty() { &run.stdout } else { &text };
    assert!(shown.contains("ttft <= 500 ms not judged"), "{shown}");
    assert!(
        shown.contains("the server answered whole bodies"),
        "{shown}"
    );
    assert!(!shown.contains("ttft <= 500 ms 0.0%"), "{shown}");
}

// ---- 16. The throughput window of a timed bench --------------------------------------------------------

#[test]
fn a_timed_bench_rates_its_window_up_to_the_deadline_and_gives_the_steady_state() {
    // 5 slots, 1 s answers, 2.5 s: the answers at 1 s and 2 s (10) are in the window, the 5 at
    // 3 s after it. Before, all 15 counted over 3 s, ramp-up and drain inside the window (with
    // 2 s answers and 5 s: 1.9 req/s for a server that does 2.5).
    let tmp = tempfile::tempdir().unwrap();
    let w = workspace_file("workloads/varied-1000.jsonl");
    let run = bench(
        &[
            w.to_str().unwrap(),
            "--mock",
            "--mock-latency",
            "1s",
            "-c",
            "5",
            "--duration",
            "2500ms",
            "--slo",
            "e2e=10s",
        ],
        &tmp.path().join("out"),
    );
    assert_eq!(
        run.summary["requests"]["ok"], 15,
        "kept and counted in the totals"
    );
    let window = f(&run.summary["window_s"]);
    assert!(
        (window - 2.5).abs() < 0.05,
        "the window ends at the deadline: {window}"
    );
    let rate = f(&run.summary["requests_per_s"]);
    assert!(
        (rate - 10.0 / window).abs() < 0.01,
        "answers after the deadline are out of the rate: {rate}"
    );
    let steady = &run.summary["steady_state"];
    assert_eq!(steady["answers_after_window"], 5);
    let steady_rate = f(&steady["requests_per_s"]);
    assert!(
        (4.7..=5.05).contains(&steady_rate),
        "the server does 5 req/s: {steady}"
    );
    // Goodput is over the same window: the answers after the deadline are not in it.
    let goodput = f(&run.summary["slo"]["goodput_per_s"]);
    assert!((goodput - rate).abs() < 1e-9, "goodput {goodput} vs {rate}");
}

// ---- 17. TTFT against a server that does not set TCP_NODELAY ---------------------------------------------

/// Six small events 5 ms apart, then the end of a Chat stream: each a write of its own.
fn paced_small_events() -> Vec<Step> {
    let mut steps = Vec::new();
    for i in 0..6 {
        steps.push(wait_ms(5));
        steps.push(chat_chunk(&format!(r#"{{"content":"w{i} "}}"#), "null"));
    }
    steps.extend([
        chat_chunk("{}", r#""stop""#),
        chat_usage(3, 6),
        data("[DONE]"),
        Step::End,
    ]);
    steps
}

/// Eight of those answers, one at a time, timed as the server sent them: 5 ms to the first event
/// and 30 ms to the last, with margin; 40 ms delayed ACKs would show.
async fn assert_paced_events_not_delayed(server: &Scripted, args: &[&str]) {
    let ids: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut all = vec!["-c", "1", "--max-retries", "0"];
    all.extend(args);
    let (run, _tmp) = run_chat_lines(server, &ids, CHAT, &all).await;
    assert_eq!(run.summary["requests"]["ok"], 8, "{}", run.summary);
    let ttft = &run.summary["ttft_ms"];
    let latency = &run.summary["latency_ms"];
    assert!(f(&ttft["p50"]) < 25.0, "TTFT {ttft}");
    assert!(f(&latency["p50"]) < 60.0, "latency {latency}");
}

#[tokio::test]
async fn a_server_without_tcp_nodelay_gets_its_small_events_acknowledged_at_once() {
    // Every event a small write 5 ms after the one before, with Nagle's algorithm on: a write
    // waits until the one before is acknowledged, so a client that delays its ACKs (Linux: 40 ms)
    // delays every event, TTFT included.
    let server = serve_with_nagle(|_| {
        let mut steps = vec![chunked_head("text/event-stream", "")];
        steps.extend(paced_small_events());
        steps
    })
    .await;
    assert_paced_events_not_delayed(&server, &[]).await;
}

#[tokio::test]
async fn an_h2c_server_without_tcp_nodelay_gets_its_small_events_acknowledged_at_once() {
    // The same over HTTP/2 (`--http2`, hyper-util's client), where the connection acknowledges
    // every read (other streams' requests would put it back in delayed-ACK mode between reads);
    // one stream at a time here shows that it does at all: TTFT p50 44 ms without.
    let server = serve_h2c_with_nagle(paced_small_events()).await;
    assert_paced_events_not_delayed(&server, &["--http2"]).await;
    assert_eq!(server.connections(), 1, "one h2c connection for all");
}

#[tokio::test]
async fn an_answer_with_a_head_of_several_kilobytes_is_read() {
    // Gateways add cookies, trace and policy headers: a 12 KB head, past a 4 KB or 8 KB read
    // buffer, must still be read (hyper refuses a head larger than a fixed buffer).
    let padding: String = (0..60)
        .map(|i| format!("x-gateway-trace-{i}: {}\r\n", "t".repeat(180)))
        .collect();
    assert!(padding.len() > 12_000);
    let server = serve(move |_| vec![whole(200, "application/json", &padding, COMPLETED)]).await;
    let (run, _tmp) = run_chat_lines(&server, &["big-head"], CHAT, &["--max-retries", "0"]).await;
    assert_eq!(run.records[0]["status"], "ok", "{}", run.records[0]);
    assert_eq!(run.records[0]["output_tokens"], 1);
}

// ---- 18. Server-side conversation state silently ignored ----------------------------------------------

#[tokio::test]
async fn a_server_that_drops_previous_response_id_is_caught_and_the_history_carried_whole() {
    // A gateway that accepts previous_response_id and drops it: 200s whose answers lost their
    // context, input flat at 37. Before: 15/15 ok, silently wrong. Two ways it shows: an echoed
    // previous_response_id other than the one sent, or input that does not grow.
    for echo in [true, false] {
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen_bodies = bodies.clone();
        let server = serve(move |seen| {
            seen_bodies.lock().unwrap().push(seen.body.clone());
            let echoed = if echo { r#""previous_response_id":"resp_other","# } else { "" };
            let body = format!(
                r#"{{"id":"resp_{}","object":"response","status":"completed",{echoed}"output":[{{"type":"message","content":[{{"type":"output_text","text":"The color of the universe is a mystery."}}]}}],"usage":{{"input_tokens":37,"output_tokens":9}}}}"#,
                seen.n
            );
            vec![whole(200, "application/json", "", &body)]
        })
        .await;
        let tmp = tempfile::tempdir().unwrap();
        let workload = tmp.path().join("talk.jsonl");
        std::fs::write(
            &workload,
            r#"{"custom_id":"talk","method":"POST","url":"/v1/responses","body":{"model":"m","input":"I see a red ball."},"turns":["What color is it?","Are you sure?"]}"#.to_string() + "\n",
        )
        .unwrap();
        let run = run_endpoint(
            &server.endpoint(),
            &workload,
            &["--responses-state", "server"],
            &tmp.path().join("out"),
        )
        .await;
        assert_run_invariants(&run, &workload);
        let mut turns: Vec<&serde_json::Value> = run.records.iter().collect();
        turns.sort_by_key(|r| r["turn"].as_u64());
        assert_eq!(turns.len(), 3, "{:?}", run.records);
        assert_eq!(
            turns[1]["flags"],
            serde_json::json!(["server_state_ignored"]),
            "echo {echo}: {}",
            turns[1]
        );
        assert!(
            turns[1]["notes"][0]
                .as_str()
                .unwrap()
                .contains("lost the conversation's context")
        );
        assert_eq!(run.summary["flags"]["server_state_ignored"], 1);
        let sent = bodies.lock().unwrap().clone();
        let third: serde_json::Value = serde_json::from_str(&sent[2]).unwrap();
        assert!(third.get("previous_response_id").is_none(), "{third}");
        let history = third["input"].as_array().unwrap();
        assert!(
            history.len() >= 5 && sent[2].contains("I see a red ball."),
            "the third turn carries the whole history: {third}"
        );
    }
}
