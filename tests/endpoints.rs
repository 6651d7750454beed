//! Every url the OpenAI Batch API takes: completions, embeddings and moderations beside Responses
//! and Chat, each answer read for what it is (text and timings, vectors, flags), against the mock
//! and against answers copied byte for byte from the API reference.

use crate::common::scripted::*;
use crate::common::*;

fn workload(dir: &std::path::Path, lines: &[&str]) -> std::path::PathBuf {
    let path = dir.join("w.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

const COMPLETION: &str = r#"{"custom_id":"cmpl","method":"POST","url":"/v1/completions","body":{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","max_tokens":20}}"#;
const EMBEDDING: &str = r#"{"custom_id":"emb","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":["first document","second document"]}}"#;
const EMBEDDING_B64: &str = r#"{"custom_id":"emb64","method":"POST","url":"/v1/embeddings","body":{"model":"text-embedding-3-small","input":"a document","encoding_format":"base64","dimensions":256}}"#;
const MODERATION: &str = r#"{"custom_id":"mod","method":"POST","url":"/v1/moderations","body":{"model":"omni-moderation-latest","input":["I will kill the process","hello"]}}"#;

#[test]
fn completions_are_recorded_with_text_usage_and_streamed_timings() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), &[COMPLETION]);
    let plain = run(
        llmvolley(),
        &[w.to_str().unwrap(), "--mock", "-q"],
        &tmp.path().join("plain"),
    );
    let r = plain.by_id("cmpl");
    assert_eq!(r["status"], "ok", "{r}");
    assert!(!r["output_text"].as_str().unwrap().is_empty(), "{r}");
    assert!(r["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(r["token_source"], "server");
    let streamed = run(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--mock",
            "-q",
            "--stream",
            "--mock-ttft",
            "30ms",
        ],
        &tmp.path().join("streamed"),
    );
    let r = streamed.by_id("cmpl");
    assert_eq!(r["status"], "ok", "{r}");
    assert!(ms(r, "ttft_ms") >= 30.0, "{r}");
    assert!(r["chunks"].as_u64().unwrap() > 1, "{r}");
    assert_eq!(
        r["token_source"], "server",
        "usage from the last chunk: {r}"
    );
    assert!(streamed.summary["ttft_ms"]["count"].as_u64() == Some(1));
}

#[test]
fn embeddings_record_inputs_and_dimensions_and_no_output_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), &[EMBEDDING, EMBEDDING_B64]);
    let run = run(
        llmvolley(),
        &[w.to_str().unwrap(), "--mock", "-q", "--batch-output"],
        &tmp.path().join("out"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let floats = run.by_id("emb");
    assert_eq!(floats["status"], "ok", "{floats}");
    assert_eq!(floats["items"], 2);
    assert_eq!(floats["dimensions"], 1536);
    assert!(floats["output_tokens"].is_null(), "not 0: {floats}");
    assert!(floats["input_tokens"].as_u64().unwrap() > 0);
    assert!(
        floats["cost_usd"].as_f64().is_some(),
        "priced by input: {floats}"
    );
    let base64 = run.by_id("emb64");
    assert_eq!(
        (base64["items"].as_u64(), base64["dimensions"].as_u64()),
        (Some(1), Some(256))
    );
    let items = &run.summary["items"];
    assert_eq!(items["items"], 3, "{items}");
    assert!(items["items_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(run.summary["tokens"]["output_unknown_requests"], 0);
    // The Batch output carries them as answers, not errors.
    let output = std::fs::read_to_string(run.dir.join("output.jsonl")).unwrap();
    assert_eq!(output.lines().count(), 2);
    assert!(output.contains("\"object\":\"list\""));
}

#[test]
fn moderations_are_ok_with_their_flagged_categories_counted_and_priced_at_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let w = workload(tmp.path(), &[MODERATION]);
    let run = run(
        llmvolley(),
        &[w.to_str().unwrap(), "--mock", "-q"],
        &tmp.path().join("out"),
    );
    let r = run.by_id("mod");
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["items"], 2);
    assert_eq!(r["flagged_categories"], serde_json::json!(["violence"]));
    assert_eq!(r["cost_usd"], 0.0);
    assert_eq!(run.summary["items"]["flagged_by_category"]["violence"], 1);
}

#[test]
fn a_batch_url_llmvolley_cannot_read_is_refused_before_anything_is_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let images = r#"{"custom_id":"img","method":"POST","url":"/v1/images/generations","body":{"model":"dall-e-3","prompt":"a cat"}}"#;
    let w = workload(tmp.path(), &[EMBEDDING, images]);
    let w = w.to_str().unwrap();
    let expected = format!("{w}:2: Batch line url \"/v1/images/generations\"");
    for args in [
        vec!["run", w, "--mock"],
        vec!["run", w, "--mock", "--strict"],
        vec!["estimate", w],
    ] {
        let output = llmvolley()
            .args(&args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let (_, stderr) = output_text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&expected) && stderr.contains("/v1/embeddings, /v1/moderations"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        !tmp.path().join("results").exists(),
        "no run folder: nothing was sent"
    );
}

/// Answers as the API reference shows them, served byte for byte.
#[tokio::test]
async fn answers_copied_from_the_api_reference_are_read_for_each_endpoint() {
    let server = serve(|seen| match case_of(seen) {
        "completion_stream" => vec![
            chunked_head("text/event-stream", ""),
            data(r#"{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":"This","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb"}"#),
            wait_ms(20),
            data(r#"{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[{"text":" is a test.","index":0,"logprobs":null,"finish_reason":"stop"}],"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb"}"#),
            data(r#"{"id":"cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe","object":"text_completion","created":1690759702,"choices":[],"model":"gpt-3.5-turbo-instruct","usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#),
            data("[DONE]"),
            Step::End,
        ],
        "completion" => vec![whole(
            200,
            "application/json",
            "",
            r#"{"id":"cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7","object":"text_completion","created":1589478378,"model":"gpt-3.5-turbo-instruct","system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\n\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
        )],
        "completion_n2" => vec![whole(
            200,
            "application/json",
            "",
            // Two choices (`n: 2`), and logprobs as Python's json.dumps writes them (-Infinity).
            r#"{"id":"cmpl-n2","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":" first","index":0,"logprobs":{"tokens":[" first"],"token_logprobs":[-Infinity]},"finish_reason":"stop"},{"text":" second","index":1,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}}"#,
        )],
        "embedding" => vec![whole(
            200,
            "application/json",
            "",
            r#"{"object":"list","data":[{"object":"embedding","embedding":[0.0023064255,-0.009327292,-0.0028842222],"index":0}],"model":"text-embedding-ada-002","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
        )],
        "embedding_base64" => vec![whole(
            200,
            "application/json",
            "",
            // Two float32s (8 bytes) in base64.
            r#"{"object":"list","data":[{"object":"embedding","embedding":"AACAPwAAAEA=","index":0}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
        )],
        _ => vec![whole(
            200,
            "application/json",
            "",
            r#"{"id":"modr-0d9740456c391e43c445bf0f010940c7","model":"omni-moderation-latest","results":[{"flagged":true,"categories":{"harassment":true,"harassment/threatening":true,"sexual":false,"hate":false,"hate/threatening":false,"illicit":false,"illicit/violent":false,"self-harm/intent":false,"self-harm/instructions":false,"self-harm":false,"sexual/minors":false,"violence":true,"violence/graphic":true},"category_scores":{"harassment":0.8189693396524255,"violence":0.9971134250089588},"category_applied_input_types":{"harassment":["text"],"violence":["image","text"]}}]}"#,
        )],
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"custom_id":"completion_stream","url":"/v1/completions","body":{"case":"completion_stream","model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","stream":true}}"#,
        r#"{"custom_id":"completion","url":"/v1/completions","body":{"case":"completion","model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test"}}"#,
        r#"{"custom_id":"completion_n2","url":"/v1/completions","body":{"case":"completion_n2","model":"gpt-3.5-turbo-instruct","prompt":"Say","n":2,"logprobs":1}}"#,
        r#"{"custom_id":"embedding","url":"/v1/embeddings","body":{"case":"embedding","model":"text-embedding-ada-002","input":"The food was delicious"}}"#,
        r#"{"custom_id":"embedding_base64","url":"/v1/embeddings","body":{"case":"embedding_base64","model":"text-embedding-3-small","input":"x","encoding_format":"base64"}}"#,
        r#"{"custom_id":"moderation","url":"/v1/moderations","body":{"case":"moderation","input":"I want to hurt them."}}"#,
    ];
    let w = workload(tmp.path(), &lines);
    let run = run_async(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--endpoint",
            &server.endpoint(),
            "-q",
            "--max-retries",
            "0",
        ],
        &tmp.path().join("out"),
    )
    .await;
    let stream = run.by_id("completion_stream");
    assert_eq!(stream["status"], "ok", "{stream}");
    assert_eq!(stream["output_text"], "This is a test.");
    assert_eq!(
        stream["output_tokens"], 7,
        "usage from the last, choice-less chunk"
    );
    assert_eq!(stream["finish"], "stop");
    assert!(
        ms(stream, "ttft_ms") > 0.0 && ms(stream, "tpot_ms") > 0.0,
        "{stream}"
    );
    let whole_answer = run.by_id("completion");
    assert_eq!(whole_answer["output_text"], "\n\nThis is indeed a test");
    assert_eq!(whole_answer["finish"], "length");
    let several = run.by_id("completion_n2");
    assert_eq!(several["status"], "ok", "{several}");
    assert_eq!(several["output_text"], " first", "the first choice's text");
    assert_eq!(
        several["flags"],
        serde_json::json!(["non_finite_numbers", "several_choices"]),
        "{several}"
    );
    let embedding = run.by_id("embedding");
    assert_eq!(
        (
            embedding["items"].as_u64(),
            embedding["dimensions"].as_u64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(embedding["input_tokens"], 8);
    assert!(embedding["output_tokens"].is_null());
    assert_eq!(run.by_id("embedding_base64")["dimensions"], 2);
    let moderation = run.by_id("moderation");
    assert_eq!(moderation["status"], "ok", "{moderation}");
    assert_eq!(
        moderation["flagged_categories"],
        serde_json::json!([
            "harassment",
            "harassment/threatening",
            "violence",
            "violence/graphic"
        ])
    );
}

#[test]
fn generate_writes_completions_and_embeddings_workloads_the_mock_answers() {
    let tmp = tempfile::tempdir().unwrap();
    for (api, model) in [
        ("completions", "gpt-3.5-turbo-instruct"),
        ("embeddings", "text-embedding-3-small"),
    ] {
        let file = tmp.path().join(format!("{api}.jsonl"));
        let output = llmvolley()
            .args([
                "generate",
                "--model",
                model,
                "--api",
                api,
                "--input-tokens",
                "30",
                "--count",
                "5",
                "--out",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", output_text(&output).1);
        let run = run(
            llmvolley(),
            &[file.to_str().unwrap(), "--mock", "-q"],
            &tmp.path().join(api),
        );
        assert_eq!(run.code, 0, "{api}: {}", run.stdout);
        assert_eq!(run.summary["requests"]["ok"], 5, "{api}");
    }
}
