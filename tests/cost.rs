//! Dollars end to end: costs in records and summaries after a run, and `llmvolley estimate` before one.

use crate::common::*;
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn run_prices_every_record_and_totals_the_summary() {
    let (run, _tmp) = run_workload("workloads/varied-1000.jsonl", "--mock -c 16");
    let mut total = 0.0;
    for r in &run.records {
        let cost = r["cost_usd"]
            .as_f64()
            .expect("every model of the workload has a price");
        let (input, output) = (
            r["input_tokens"].as_f64().unwrap(),
            r["output_tokens"].as_f64().unwrap(),
        );
        let expected = match r["model"].as_str().unwrap() {
            "gpt-4.1" => input * 2.00e-6 + output * 8.00e-6,
            "gpt-4.1-mini" => input * 0.40e-6 + output * 1.60e-6,
            "gpt-4o-mini" => input * 0.15e-6 + output * 0.60e-6,
            "gpt-5.1" => input * 1.25e-6 + output * 10.00e-6,
            other => panic!("unexpected model {other}"),
        };
        assert!(close(cost, expected), "{r}");
        total += cost;
    }
    let cost = &run.summary["cost"];
    assert!(close(cost["total_usd"].as_f64().unwrap(), total));
    assert!(close(cost["per_1k_requests_usd"].as_f64().unwrap(), total));
    let by_model: f64 = cost["by_model"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(close(by_model, total));
    assert!(run.stdout.contains("cost "), "{}", run.stdout);
}

#[tokio::test]
async fn service_tier_and_cached_tokens_decide_the_price_and_unknown_models_get_none() {
    let server = MockServer::start().await;
    let flex = r#"{"object":"response","status":"completed","model":"gpt-4.1-2025-04-14","service_tier":"flex","output":[],
        "usage":{"input_tokens":1000,"input_tokens_details":{"cached_tokens":400},"output_tokens":500,"output_tokens_details":{"reasoning_tokens":200},"total_tokens":1500}}"#;
    let unknown = r#"{"object":"response","status":"completed","model":"gpt-4.1-data","output":[],"usage":{"input_tokens":62,"output_tokens":18,"total_tokens":80}}"#;
    let no_tier = r#"{"object":"response","status":"completed","model":"gpt-4.1","output":[],"usage":{"input_tokens":1000,"output_tokens":500,"total_tokens":1500}}"#;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(
            r#""case":"no_tier""#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(no_tier, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(r#""case":"flex""#))
        .respond_with(ResponseTemplate::new(200).set_body_raw(flex, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains(
            r#""case":"unknown""#,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(unknown, "application/json"))
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(
        &workload,
        "{\"custom_id\":\"flex\",\"url\":\"/v1/responses\",\"body\":{\"case\":\"flex\",\"input\":\"a\"}}\n{\"custom_id\":\"unknown\",\"url\":\"/v1/responses\",\"body\":{\"case\":\"unknown\",\"input\":\"b\"}}\n{\"custom_id\":\"unknown2\",\"url\":\"/v1/responses\",\"body\":{\"case\":\"unknown\",\"input\":\"c\"}}\n{\"custom_id\":\"no_tier\",\"url\":\"/v1/responses\",\"body\":{\"case\":\"no_tier\",\"input\":\"d\"}}\n",
    )
    .unwrap();
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(
        &endpoint,
        &workload,
        &["--tier", "batch"],
        &tmp.path().join("out"),
    )
    .await;
    assert_run_invariants(&run, &workload);
    // No service_tier in the answer: --tier batch applies, half of (1000 × $2 + 500 × $8) / 1M.
    assert!(close(
        run.by_id("no_tier")["cost_usd"].as_f64().unwrap(),
        0.003
    ));
    // Flex bills at batch prices: (600 × $2 + 400 × $0.50 + 500 × $8) / 1M / 2.
    assert!(close(
        run.by_id("flex")["cost_usd"].as_f64().unwrap(),
        0.0027
    ));
    assert_eq!(run.by_id("flex")["service_tier"], "flex");
    assert!(
        run.by_id("unknown")["cost_usd"].is_null(),
        "no price, no cost: never a silent zero"
    );
    assert_eq!(
        run.stderr
            .matches("no price for model \"gpt-4.1-data\"")
            .count(),
        1,
        "warned once: {}",
        run.stderr
    );
    assert_eq!(
        run.summary["cost"]["unpriced_models"],
        serde_json::json!(["gpt-4.1-data"])
    );
    assert_eq!(run.summary["cost"]["priced_requests"], 2);
    assert!(run.summary["cost"]["by_model"]["gpt-4.1-data"]["cost_usd"].is_null());
}

#[test]
fn litellm_price_file_prices_models_the_table_lacks() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(&workload, "{\"model\": \"my-gpt\", \"input\": \"hello\"}\n").unwrap();
    let prices = workspace_file("tests/fixtures/litellm_prices.json");
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "--prices",
            prices.to_str().unwrap(),
        ],
        &tmp.path().join("out"),
    );
    let r = &run.records[0];
    let expected = r["input_tokens"].as_f64().unwrap() * 0.000002
        + r["output_tokens"].as_f64().unwrap() * 0.000008;
    assert!(close(r["cost_usd"].as_f64().unwrap(), expected), "{r}");
    let missing = run_missing_prices(&workload, tmp.path());
    assert_eq!(missing, 2);
}

fn run_missing_prices(workload: &std::path::Path, dir: &std::path::Path) -> i32 {
    let run = run(
        llmvolley(),
        &[
            workload.to_str().unwrap(),
            "--mock",
            "--prices",
            "no/such/prices.json",
        ],
        &dir.join("missing"),
    );
    assert!(
        run.stderr
            .contains("cannot read --prices no/such/prices.json"),
        "{}",
        run.stderr
    );
    run.code
}

fn run_estimate(args: &[&str]) -> (i32, String, String) {
    let output = llmvolley().arg("estimate").args(args).output().unwrap();
    let (stdout, stderr) = output_text(&output);
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

#[test]
fn estimate_counts_the_seed_prompt_within_twenty_percent_of_the_reported_usage() {
    let workload = workspace_file("workloads/unicorn.jsonl");
    let (code, stdout, _) = run_estimate(&[
        workload.to_str().unwrap(),
        "--json",
        "--assume-output",
        "87",
    ]);
    assert_eq!(code, 0);
    let estimate: Value = serde_json::from_str(&stdout).unwrap();
    let model = &estimate["models"][0];
    assert_eq!(model["model"], "gpt-5.1");
    let input = model["input_tokens"].as_u64().unwrap();
    assert!(
        (29..=43).contains(&input),
        "36 reported by the API, {input} estimated"
    );
    let expected = input as f64 * 1.25e-6 + 87.0 * 10.0e-6;
    assert!(close(
        model["cost_usd"]["expected"].as_f64().unwrap(),
        expected
    ));
}

#[test]
fn estimate_prices_the_same_workload_on_several_models() {
    let workload = workspace_file("workloads/tools.jsonl");
    let (code, stdout, _) = run_estimate(&[
        workload.to_str().unwrap(),
        "--json",
        "--assume-output",
        "40",
        "--model",
        "gpt-4.1",
        "--model",
        "gpt-4.1-mini",
        "--model",
        "mystery-model",
    ]);
    assert_eq!(code, 0);
    let estimate: Value = serde_json::from_str(&stdout).unwrap();
    let models = estimate["models"].as_array().unwrap();
    let cost = |name: &str| {
        models.iter().find(|m| m["model"] == name).unwrap()["cost_usd"]["expected"].as_f64()
    };
    assert!(
        cost("gpt-4.1-mini").unwrap() * 4.9 < cost("gpt-4.1").unwrap(),
        "mini is five times cheaper"
    );
    let mystery = models
        .iter()
        .find(|m| m["model"] == "mystery-model")
        .unwrap();
    assert!(mystery["cost_usd"].is_null());
    assert!(mystery["batch_expected_usd"].is_null());
    // Through the Batch API: half the live tier's expected cost, beside it.
    let batch = models.iter().find(|m| m["model"] == "gpt-4.1").unwrap()["batch_expected_usd"]
        .as_f64()
        .unwrap();
    assert!(close(batch * 2.0, cost("gpt-4.1").unwrap()), "{batch}");
    assert!(
        models[0]["input_tokens"].as_u64().unwrap() > 300,
        "tool definitions count"
    );
    let (_, table, _) = run_estimate(&[
        workload.to_str().unwrap(),
        "--assume-output",
        "40",
        "--model",
        "gpt-4.1",
    ]);
    assert!(
        table.contains("gpt-4.1") && table.contains("o200k_base"),
        "{table}"
    );
}

#[test]
fn estimate_uses_an_earlier_runs_output_distribution() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let earlier = run(
        llmvolley(),
        &[workload.to_str().unwrap(), "--mock", "-c", "16"],
        &tmp.path().join("earlier"),
    );
    assert_eq!(earlier.code, 0);
    let (code, stdout, _) = run_estimate(&[
        workload.to_str().unwrap(),
        "--json",
        "--from-run",
        earlier.dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let estimate: Value = serde_json::from_str(&stdout).unwrap();
    let measured_output: u64 = earlier.summary["tokens"]["output"].as_u64().unwrap();
    let estimated_output: f64 = estimate["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["output_tokens"]["expected"].as_f64().unwrap())
        .sum();
    let ratio = estimated_output / measured_output as f64;
    assert!(
        (0.97..1.03).contains(&ratio),
        "the mean of the measured run: {ratio}"
    );
    let measured_cost = earlier.summary["cost"]["total_usd"].as_f64().unwrap();
    let (low, high): (f64, f64) =
        estimate["models"]
            .as_array()
            .unwrap()
            .iter()
            .fold((0.0, 0.0), |(l, h), m| {
                (
                    l + m["cost_usd"]["low"].as_f64().unwrap(),
                    h + m["cost_usd"]["high"].as_f64().unwrap(),
                )
            });
    assert!(
        low < measured_cost && measured_cost < high,
        "{low} < {measured_cost} < {high}"
    );
}

#[test]
fn estimate_of_a_missing_workload_is_a_setup_error() {
    let (code, _, stderr) = run_estimate(&["no/such.jsonl"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read workload no/such.jsonl"),
        "{stderr}"
    );
}

#[test]
fn max_cost_stops_sending_and_records_the_rest_as_skipped() {
    let (run, _tmp) = run_workload("workloads/varied-1000.jsonl", "--mock -c 8 --max-cost 0.05");
    assert_eq!(run.code, 1);
    let cost = &run.summary["cost"];
    let spent = cost["total_usd"].as_f64().unwrap();
    assert!(spent <= 0.05 * 1.02, "spent {spent} of a $0.05 budget");
    assert!(
        spent >= 0.05 * 0.8,
        "the budget is used, not abandoned early: {spent}"
    );
    assert_eq!(cost["budget_stopped"], true);
    let skipped: Vec<&Value> = run
        .records
        .iter()
        .filter(|r| r["status"] == "skipped_budget")
        .collect();
    assert!(!skipped.is_empty());
    assert!(
        skipped
            .iter()
            .all(|r| r["attempts"] == 0 && r["http_status"].is_null())
    );
    let last_sent = run
        .records
        .iter()
        .filter(|r| r["status"] == "ok")
        .map(|r| r["line"].as_u64().unwrap())
        .max()
        .unwrap();
    let first_skipped = skipped
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(
        first_skipped <= last_sent + 8,
        "lines are skipped from where the budget ran out"
    );
    assert!(
        run.stdout.contains("--max-cost $0.05 stopped the run"),
        "{}",
        run.stdout
    );
}

/// `--max-cost` waits for requests in flight to settle when the next launch does not fit, and stops
/// only when it does not fit with nothing in flight. Before: -c 16 spent $0.0024 of $0.02 (the
/// first "does not fit" ended dispatch while in-flight requests held worst-case reservations).
#[test]
fn the_budget_is_spent_to_within_the_dearest_request_at_any_concurrency_for_run_and_bench() {
    let workload = workspace_file("workloads/varied-1000.jsonl");
    let w = workload.to_str().unwrap();
    let limit = 0.02;
    for c in ["1", "16", "64"] {
        for command in ["run", "bench"] {
            let tmp = tempfile::tempdir().unwrap();
            let mut args = vec![
                w,
                "--mock",
                "--mock-latency",
                "20ms",
                "-c",
                c,
                "--max-cost",
                "0.02",
            ];
            let run = if command == "run" {
                args.push("-q");
                run(llmvolley(), &args, &tmp.path().join("out"))
            } else {
                args.extend(["--duration", "60s"]);
                bench(&args, &tmp.path().join("out"))
            };
            assert_eq!(run.code, 1, "{command} -c {c}: {}", run.stderr);
            let cost = &run.summary["cost"];
            assert_eq!(cost["budget_stopped"], true, "{command} -c {c}");
            let spent = cost["total_usd"].as_f64().unwrap();
            let dearest = run
                .records
                .iter()
                .filter_map(|r| r["cost_usd"].as_f64())
                .fold(0.0, f64::max);
            assert!(spent <= limit, "{command} -c {c}: spent {spent} of {limit}");
            assert!(
                limit - spent <= dearest,
                "{command} -c {c}: spent {spent}, more than the dearest request ({dearest}) short of {limit}"
            );
        }
    }
}

#[test]
fn estimate_counts_with_a_hugging_face_tokenizer_when_given() {
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    std::fs::write(&workload, "{\"model\": \"llama-3-8b\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello there, friend\"}], \"max_tokens\": 100}\n").unwrap();
    let tokenizer = workspace_file("tests/fixtures/tokenizer.json");
    let prices = tmp.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"models": {"llama-3-8b": {"input": 0.1, "output": 0.2}}}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run_estimate(&[
        workload.to_str().unwrap(),
        "--api",
        "chat",
        "--json",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--prices",
        prices.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let estimate: Value = serde_json::from_str(&stdout).unwrap();
    let model = &estimate["models"][0];
    assert_eq!(model["tokenizer"], "hf:tokenizer.json");
    assert_eq!(
        model["input_tokens"],
        4 + 3 + 3,
        "4 tokens, one message, the Chat base"
    );
    assert_eq!(model["output_tokens"]["high"], 100.0);
    assert_eq!(model["output_tokens"]["low"], 0.0);
    // The cap is a ceiling: expected is half of it.
    let expected = 10.0 * 0.1e-6 + 50.0 * 0.2e-6;
    assert!(close(
        model["cost_usd"]["expected"].as_f64().unwrap(),
        expected
    ));
}
