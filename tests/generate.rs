//! `llmvolley generate` and trace replay: prompts of exact token lengths re-counted by the
//! tokenizers themselves, datasets, Mooncake traces, `bench --profile trace`, and the summary's
//! token lengths.

use crate::common::{assert_sent_on_schedule, bench, llmvolley, output_text, workspace_file};
use serde_json::Value;
use std::path::Path;

/// Runs `llmvolley generate ARGS --out FILE` and returns its lines, stdout and stderr (panics when
/// it fails).
fn generate(args: &[&str], file: &Path) -> (Vec<Value>, String) {
    let output = llmvolley()
        .arg("generate")
        .args(args)
        .arg("--out")
        .arg(file)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    (lines(file), stdout)
}

/// `llmvolley generate ARGS` expected to fail: its exit code and stderr.
fn generate_fails(args: &[&str], file: &Path) -> (i32, String) {
    let output = llmvolley()
        .arg("generate")
        .args(args)
        .arg("--out")
        .arg(file)
        .output()
        .unwrap();
    assert!(!file.exists(), "a failed generate leaves no file");
    (output.status.code().unwrap(), output_text(&output).1)
}

fn lines(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The prompt text of a generated line (Responses `input` or Chat's one user message).
fn prompt(line: &Value) -> &str {
    let body = &line["body"];
    body["input"]
        .as_str()
        .or_else(|| body["messages"][0]["content"].as_str())
        .unwrap()
}

fn fixture(name: &str) -> String {
    workspace_file(&format!("tests/fixtures/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// Counts with the tokenizer libraries directly (not llmvolley's own counting).
enum Recount {
    Tiktoken(&'static tiktoken_rs::CoreBPE),
    HuggingFace(Box<tokenizers::Tokenizer>),
}

impl Recount {
    fn count(&self, text: &str) -> usize {
        match self {
            Recount::Tiktoken(bpe) => bpe.encode_ordinary(text).len(),
            Recount::HuggingFace(t) => t.encode(text, false).unwrap().len(),
        }
    }
}

#[test]
fn generated_prompts_count_exactly_the_asked_tokens_in_each_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let bpe_file = fixture("bpe-tokenizer.json");
    let tokenizers: [(&str, Vec<&str>, Recount); 3] = [
        (
            "o200k_base",
            vec!["--model", "gpt-4.1-mini"],
            Recount::Tiktoken(tiktoken_rs::o200k_base_singleton()),
        ),
        (
            "cl100k_base",
            vec!["--model", "gpt-4"],
            Recount::Tiktoken(tiktoken_rs::cl100k_base_singleton()),
        ),
        (
            "hf:bpe-tokenizer.json",
            vec!["--model", "my-llama", "--tokenizer", &bpe_file],
            Recount::HuggingFace(Box::new(
                tokenizers::Tokenizer::from_file(&bpe_file).unwrap(),
            )),
        ),
    ];
    for (label, model_args, recount) in &tokenizers {
        for (tokens, prefix) in [
            (1, None),
            (2, None),
            (37, None),
            (512, None),
            (3000, None),
            (700, Some(300)),
        ] {
            let file = tmp.path().join("w.jsonl");
            let tokens_arg = tokens.to_string();
            let mut args = model_args.clone();
            args.extend([
                "--input-tokens",
                &tokens_arg,
                "--count",
                "12",
                "--seed",
                "3",
            ]);
            let prefix_arg = prefix.map(|p: u32| p.to_string());
            if let Some(p) = &prefix_arg {
                args.extend(["--prefix-tokens", p, "--prefix-groups", "3"]);
            }
            let (lines, stdout) = generate(&args, &file);
            assert_eq!(lines.len(), 12);
            assert!(stdout.contains(label), "{stdout}");
            for line in &lines {
                assert_eq!(
                    recount.count(prompt(line)),
                    tokens as usize,
                    "{label}, {tokens} tokens: {:?}",
                    prompt(line)
                );
            }
            if let Some(p) = prefix {
                // Lines 1 and 4 share group 0's prefix: exactly P tokens, ending with a newline.
                let (a, b) = (prompt(&lines[0]), prompt(&lines[3]));
                let shared = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                assert!(a[..shared].ends_with('\n'), "{label}");
                assert_eq!(recount.count(&a[..shared]), p as usize, "{label}");
            }
        }
    }
}

#[test]
fn estimate_and_the_mock_count_a_generated_prompt_plus_the_apis_documented_framing() {
    let tmp = tempfile::tempdir().unwrap();
    // The framing `estimate` documents: 3 per message, plus 22 (Responses) or 3 (Chat) per request.
    for (api, framing) in [("responses", 25), ("chat", 6)] {
        let file = tmp.path().join(format!("{api}.jsonl"));
        generate(
            &[
                "--model",
                "gpt-4.1-mini",
                "--api",
                api,
                "--input-tokens",
                "512",
                "--count",
                "20",
            ],
            &file,
        );
        let output = llmvolley()
            .args(["estimate", file.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let estimate: Value = serde_json::from_slice(&output.stdout).unwrap();
        let input = estimate.to_string();
        assert!(
            input.contains(&format!("\"input_tokens\":{}", 20 * (512 + framing))),
            "{api}: {input}"
        );
        let run = bench(
            &[file.to_str().unwrap(), "--mock", "-c", "4"],
            &tmp.path().join(format!("run-{api}")),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.records
                .iter()
                .all(|r| r["input_tokens"] == 512 + framing),
            "{api}"
        );
        assert_eq!(run.summary["input_length"]["p50"], 512 + framing);
        assert_eq!(run.summary["input_length"]["max"], 512 + framing);
    }
}

#[test]
fn the_same_seed_writes_the_same_file_and_a_longer_count_only_adds_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |name: &str, seed: &str, count: &str| {
        let file = tmp.path().join(name);
        generate(
            &[
                "--model",
                "gpt-4.1-mini",
                "--input-tokens",
                "lognormal:400,300",
                "--output-tokens",
                "uniform:10..500",
                "--count",
                count,
                "--seed",
                seed,
            ],
            &file,
        );
        std::fs::read_to_string(file).unwrap()
    };
    let a = read("a.jsonl", "5", "10");
    assert_eq!(a, read("b.jsonl", "5", "10"));
    assert_ne!(a, read("c.jsonl", "6", "10"));
    assert!(read("d.jsonl", "5", "40").starts_with(&a));
}

#[test]
fn out_dash_writes_the_workload_to_stdout_and_the_summary_to_stderr() {
    let output = llmvolley()
        .args([
            "generate",
            "--model",
            "gpt-4.1-mini",
            "--input-tokens",
            "20",
            "--count",
            "3",
            "--out",
            "-",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stderr.contains("wrote 3 lines to stdout"), "{stderr}");
}

#[test]
fn ignore_eos_answers_run_to_their_cap_and_the_summary_shows_both_lengths() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.jsonl");
    let (lines, _) = generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--api",
            "chat",
            "--input-tokens",
            "300",
            "--output-tokens",
            "128",
            "--ignore-eos",
            "--stream",
            "--count",
            "30",
        ],
        &file,
    );
    assert_eq!(lines[0]["body"]["ignore_eos"], true);
    assert_eq!(lines[0]["body"]["min_tokens"], 128);
    assert_eq!(lines[0]["body"]["max_tokens"], 128);
    let run = bench(
        &[file.to_str().unwrap(), "--mock", "-c", "4"],
        &tmp.path().join("run"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.records.iter().all(|r| r["output_tokens"] == 128));
    let output = &run.summary["output_length"];
    assert_eq!((&output["p50"], &output["max"]), (&128.into(), &128.into()));
    assert_eq!(run.summary["input_length"]["p90"], 306);
    // Printed under the latency table, with the same columns.
    let input_row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("input tok"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        input_row.split_whitespace().nth(2) == Some("306"),
        "{input_row}"
    );
    assert!(run.stdout.contains("output tok"), "{}", run.stdout);

    // The lengths are CI gates too, in whole tokens.
    let gated = bench(
        &[
            file.to_str().unwrap(),
            "--mock",
            "--requests",
            "10",
            "--fail-on",
            "output_length.p50<128,input_length.max>300tok",
        ],
        &tmp.path().join("gated"),
    );
    assert_eq!(gated.code, 3, "{}", gated.stderr);
    let verdicts = &gated.summary["thresholds"];
    assert_eq!(
        (&verdicts[0]["failed"], &verdicts[0]["value"]),
        (&false.into(), &128.0.into())
    );
    assert_eq!(
        (&verdicts[1]["failed"], &verdicts[1]["value"]),
        (&true.into(), &306.0.into())
    );
    assert_eq!(verdicts[1]["unit"], "tokens");

    // Without ignore_eos the cap is only a cap: the mock's answers end sooner.
    let capped = tmp.path().join("capped.jsonl");
    generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--input-tokens",
            "50",
            "--output-tokens",
            "128",
            "--count",
            "30",
        ],
        &capped,
    );
    let run = bench(
        &[capped.to_str().unwrap(), "--mock"],
        &tmp.path().join("run-capped"),
    );
    assert!(run.summary["output_length"]["max"].as_u64().unwrap() < 128);
}

#[test]
fn datasets_give_one_line_per_usable_record_sampled_by_seed_in_file_order() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("w.jsonl");
    let o200k = tiktoken_rs::o200k_base_singleton();

    // ShareGPT, as the JSON array it ships as and as JSONL: the first human turn, capped at the
    // answer's length; entries without an answered human turn are skipped.
    let array = fixture("sharegpt.json");
    let (lines, stdout) = generate(
        &["--model", "gpt-4.1-mini", "--from", "sharegpt", &array],
        &out,
    );
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["sharegpt-1", "sharegpt-2", "sharegpt-5", "sharegpt-6"]
    );
    assert_eq!(prompt(&lines[1]), "Name three primary colours.");
    let answer = "Red, yellow and blue.";
    assert_eq!(
        lines[1]["body"]["max_output_tokens"],
        o200k.encode_ordinary(answer).len()
    );
    assert!(stdout.contains("2 records skipped"), "{stdout}");
    let entries: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&array).unwrap()).unwrap();
    let as_jsonl = tmp.path().join("sharegpt.jsonl");
    std::fs::write(
        &as_jsonl,
        entries.iter().map(|e| format!("{e}\n")).collect::<String>(),
    )
    .unwrap();
    let (from_jsonl, _) = generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--from",
            "sharegpt",
            as_jsonl.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(from_jsonl, lines);

    // A JSONL field by dotted path, for Chat; blank lines and records without the field skipped.
    let (lines, _) = generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--api",
            "chat",
            "--from",
            "jsonl",
            &fixture("prompts.jsonl"),
            "--field",
            "request.messages.0.content",
            "--output-tokens",
            "64",
        ],
        &out,
    );
    let prompts: Vec<&str> = lines.iter().map(prompt).collect();
    assert_eq!(
        prompts,
        [
            "Summarise the water cycle in one sentence.",
            "List two uses of copper.",
            "Why is the sky blue?",
            "Explain recursion to a child."
        ]
    );
    assert_eq!(lines[0]["body"]["max_tokens"], 64);

    // A CSV column; a sample of two, the same for the same seed, in file order.
    let csv = fixture("prompts.csv");
    let sample = |seed: &str| -> Vec<String> {
        let (lines, _) = generate(
            &[
                "--model",
                "gpt-4.1-mini",
                "--from",
                "csv",
                &csv,
                "--column",
                "question",
                "--count",
                "2",
                "--seed",
                seed,
            ],
            &out,
        );
        lines
            .iter()
            .map(|l| l["custom_id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = sample("1");
    assert_eq!(first.len(), 2);
    assert_eq!(first, sample("1"));
    assert!(first[0] < first[1], "{first:?}");
    let distinct: std::collections::HashSet<Vec<String>> =
        (1..12).map(|s| sample(&s.to_string())).collect();
    assert!(distinct.len() > 1, "different seeds draw different samples");
}

#[test]
fn bad_dataset_and_trace_input_is_refused_naming_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("w.jsonl");
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": \"ok\"}\n\n{\"prompt\": 7}\n").unwrap();
    let (code, stderr) = generate_fails(
        &["--model", "m", "--from", "jsonl", bad.to_str().unwrap()],
        &out,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bad.jsonl:3") && stderr.contains("a number"),
        "{stderr}"
    );
    std::fs::write(&bad, "{\"prompt\": \"ok\"}\nnot json\n").unwrap();
    let (_, stderr) = generate_fails(
        &["--model", "m", "--from", "jsonl", bad.to_str().unwrap()],
        &out,
    );
    assert!(stderr.contains("bad.jsonl:2: not JSON"), "{stderr}");
    let (_, stderr) = generate_fails(
        &[
            "--model",
            "m",
            "--from",
            "csv",
            &fixture("prompts.csv"),
            "--column",
            "q",
        ],
        &out,
    );
    assert!(
        stderr.contains("no column \"q\"") && stderr.contains("\"question\""),
        "{stderr}"
    );
    let trace = tmp.path().join("trace.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 2}\n{\"timestamp\": 1, \"input_length\": 10, \"output_length\": 2}\n",
    )
    .unwrap();
    let (_, stderr) = generate_fails(
        &[
            "--model",
            "m",
            "--from",
            "mooncake",
            trace.to_str().unwrap(),
        ],
        &out,
    );
    assert!(
        stderr.contains("trace.jsonl:2") && stderr.contains("before"),
        "{stderr}"
    );
    let (code, stderr) = generate_fails(&["--model", "m", "--input-tokens", "10"], &out);
    assert!(code == 2 && stderr.contains("--count"), "{stderr}");
    let (_, stderr) = generate_fails(
        &[
            "--model",
            "m",
            "--input-tokens",
            "100",
            "--count",
            "3",
            "--prefix-tokens",
            "100",
        ],
        &out,
    );
    assert!(stderr.contains("longer than --prefix-tokens"), "{stderr}");
    let (_, stderr) = generate_fails(
        &["--model", "m", "--input-tokens", "normal:5", "--count", "3"],
        &out,
    );
    assert!(stderr.contains("normal:MEAN,SD"), "{stderr}");
    // A failed write leaves nothing behind, not even its temporary file.
    let output = llmvolley()
        .args([
            "generate",
            "--model",
            "m",
            "--input-tokens",
            "5",
            "--count",
            "2",
            "--out",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output_text(&output).1.contains("is a directory"));
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    let (_, stderr) = generate_fails(
        &[
            "--model",
            "m",
            "--from",
            "mooncake",
            empty.to_str().unwrap(),
        ],
        &out,
    );
    assert!(stderr.contains("no request"), "{stderr}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_mooncake_trace_becomes_timed_lines_whose_prompts_share_blocks_by_hash_id() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("trace.jsonl");
    let (lines, _) = generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--from",
            "mooncake",
            &fixture("mooncake-trace.jsonl"),
        ],
        &out,
    );
    let trace: Vec<Value> = std::fs::read_to_string(fixture("mooncake-trace.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), trace.len());
    let o200k = tiktoken_rs::o200k_base_singleton();
    for (line, request) in lines.iter().zip(&trace) {
        assert_eq!(line["timestamp"], request["timestamp"]);
        assert_eq!(line["body"]["max_output_tokens"], request["output_length"]);
        assert_eq!(
            o200k.encode_ordinary(prompt(line)).len(),
            request["input_length"].as_u64().unwrap() as usize
        );
    }
    // The tokens two prompts have in common, from their start.
    let shared = |a: usize, b: usize| {
        let (a, b) = (
            o200k.encode_ordinary(prompt(&lines[a])),
            o200k.encode_ordinary(prompt(&lines[b])),
        );
        a.iter().zip(&b).take_while(|(x, y)| x == y).count()
    };
    // hash_ids [0, 1, 2] and [0, 1, 4]: two blocks; [0, 3]: one; [0] alone is block 0 whole.
    assert_eq!(shared(0, 2), 1024);
    assert_eq!(shared(0, 1), 512);
    assert_eq!(shared(0, 6), 512);
    // [6, 7, 8] and [6, 7, 9]: two blocks; [5] and [0, ...]: nothing.
    assert_eq!(shared(4, 5), 1024);
    assert!(shared(3, 0) < 4);
}

#[test]
fn a_trace_replay_schedules_every_line_at_its_timestamp_over_the_speed() {
    let tmp = tempfile::tempdir().unwrap();
    // 200 lines over 2 s of trace time, bunched and spread, with equal and fractional timestamps,
    // written out of order (the replay sends them in time order).
    let stamps: Vec<f64> = (0..200u32)
        .map(|i| f64::from((i * 7919) % 200) * 9.5 + f64::from(i % 3) * 0.25)
        .collect();
    let workload: String = stamps
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{{\"custom_id\":\"r{i}\",\"timestamp\":{t},\"body\":{{\"model\":\"gpt-4.1-mini\",\"input\":\"hi {i}\"}}}}\n"
            )
        })
        .collect();
    let file = tmp.path().join("trace.jsonl");
    std::fs::write(&file, workload).unwrap();
    let run = bench(
        &[
            file.to_str().unwrap(),
            "--mock",
            "--profile",
            "trace",
            "--trace-speed",
            "2",
        ],
        &tmp.path().join("run"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records.len(), 200);
    assert_sent_on_schedule(&run);
    for (i, t) in stamps.iter().enumerate() {
        let record = run.by_id(&format!("r{i}"));
        assert_eq!(record["scheduled_at"].as_f64(), Some(t / 2.0), "r{i}");
        assert_eq!(record["status"], "ok");
        assert!(record["latency_from_schedule_ms"].as_f64().is_some());
    }
    assert_eq!(run.summary["load"]["profile"], "trace");

    // Shards replay their own lines at the trace's own times: together, the whole trace.
    let mut seen = std::collections::HashSet::new();
    for shard in ["0/2", "1/2"] {
        let part = bench(
            &[
                file.to_str().unwrap(),
                "--mock",
                "--profile",
                "trace",
                "--trace-speed",
                "2",
                "--shard",
                shard,
            ],
            &tmp.path().join(format!("shard-{}", &shard[..1])),
        );
        assert_eq!(part.code, 0, "{}", part.stderr);
        assert_sent_on_schedule(&part);
        for record in &part.records {
            let i: usize = record["id"].as_str().unwrap()[1..].parse().unwrap();
            assert_eq!(record["scheduled_at"].as_f64(), Some(stamps[i] / 2.0));
            assert!(seen.insert(i), "r{i} replayed twice");
        }
    }
    assert_eq!(seen.len(), 200);

    let untimed = workspace_file("workloads/unicorn.jsonl");
    let run = bench(
        &[untimed.to_str().unwrap(), "--mock", "--profile", "trace"],
        &tmp.path().join("untimed"),
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unicorn.jsonl:1") && run.stderr.contains("timestamp"),
        "{}",
        run.stderr
    );
}

#[test]
fn clamped_draws_are_counted_and_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    // A normal of mean 10 and deviation 50 draws most lengths below one token.
    let (lines, stdout) = generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--input-tokens",
            "normal:10,50",
            "--count",
            "200",
        ],
        &tmp.path().join("w.jsonl"),
    );
    assert_eq!(lines.len(), 200);
    let clamped: u64 = stdout
        .lines()
        .find(|l| l.contains("clamped to it"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no clamped line: {stdout}"));
    assert!((60..=140).contains(&clamped), "{stdout}");

    // `generate --out - | head`: the reader closes the pipe; generate ends at once, exit 0, silent.
    let mut child = llmvolley()
        .args([
            "generate",
            "--model",
            "gpt-4.1-mini",
            "--input-tokens",
            "50",
            "--count",
            "200000",
            "--out",
            "-",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output).1);
    assert_eq!(output_text(&output).1, "", "nothing said about the pipe");
}

#[test]
fn a_datasets_own_ids_and_columns_become_custom_ids_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("d.csv");
    std::fs::write(
        &csv,
        "ticket,question,team\nT-1,How do I reset my password?,support\nT-2,Where is my invoice?,billing\n",
    )
    .unwrap();
    let (lines, _) = generate(
        &[
            "--model",
            "gpt-4.1-mini",
            "--from",
            "csv",
            csv.to_str().unwrap(),
            "--column",
            "question",
            "--id-column",
            "ticket",
            "--metadata-columns",
            "team",
        ],
        &tmp.path().join("w.jsonl"),
    );
    assert_eq!(lines[0]["custom_id"], "T-1");
    assert_eq!(lines[1]["metadata"], serde_json::json!({"team": "billing"}));
    // The metadata reaches the records, the ids name them.
    let out = tmp.path().join("out");
    let run = crate::common::run(
        llmvolley(),
        &[tmp.path().join("w.jsonl").to_str().unwrap(), "--mock", "-q"],
        &out,
    );
    assert_eq!(run.by_id("T-2")["metadata"]["team"], "billing");

    let jsonl = tmp.path().join("d.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\":7,\"prompt\":\"hi\",\"meta\":{\"lang\":\"en\"}}\n{\"id\":7,\"prompt\":\"again\"}\n",
    )
    .unwrap();
    let (code, stderr) = generate_fails(
        &[
            "--model",
            "gpt-4.1-mini",
            "--from",
            "jsonl",
            jsonl.to_str().unwrap(),
            "--id-field",
            "id",
            "--metadata-fields",
            "meta.lang",
        ],
        &tmp.path().join("dup.jsonl"),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("records 1 and 2 have the same id \"7\""),
        "{stderr}"
    );
}
