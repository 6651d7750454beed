//! `llmvolley report` (one self-contained HTML page, checked in a real headless Chromium) and the
//! `.hgrm` percentile files written beside each histogram.

use crate::common::{bench, llmvolley, output_text, workspace_file};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The charts the report of two streamed runs with errors, one sweep and one search must draw.
const CHARTS: [&str; 16] = [
    "dist-latency",
    "dist-ttft",
    "dist-tpot",
    "dist-itl",
    "ts-rate",
    "ts-errors",
    "ts-inflight",
    "ts-tokens",
    "ts-latency",
    "ts-ttft",
    "sweep-sweep",
    "search-search-ttft.p99",
    "server-running",
    "server-ttft",
    "server-tokens",
    "server-kv",
];

fn streamed_bench(out: &Path, extra: &[&str]) {
    let w = workspace_file("workloads/varied-1000.jsonl");
    let mut args = vec![
        w.to_str().unwrap(),
        "--mock",
        "--stream",
        "--mock-ttft",
        "15ms",
        "--mock-itl",
        "1ms",
        "--duration",
        "2500ms",
    ];
    args.extend_from_slice(extra);
    if !extra.contains(&"-c") {
        args.extend_from_slice(&["-c", "8"]);
    }
    let run = bench(&args, out);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
}

fn report(dirs: &[&Path], out: &Path) -> String {
    let output = llmvolley()
        .arg("report")
        .args(dirs)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    let (stdout, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(&out.display().to_string()), "{stdout}");
    std::fs::read_to_string(out).unwrap()
}

/// Debian's chromium (`.ci/run` installs it), or $LLMVOLLEY_CHROMIUM.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("LLMVOLLEY_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// The page's DOM after its scripts ran, from headless Chromium (bounded: killed after 90 s).
fn rendered_dom(chromium: &Path, page: &Path, profile: &Path) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", page.display()))
        // To a file: the DOM (uPlot inline) is larger than a pipe holds unread.
        .stdout(std::fs::File::create(profile.with_extension("dom.html")).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!(
                "chromium did not finish rendering {} in 90 s",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(profile.with_extension("dom.html")).unwrap()
}

/// The `data-inked` count (coloured pixels of the series) of one chart in the rendered DOM.
fn inked(dom: &str, chart: &str) -> Option<u64> {
    let at = dom.find(&format!("data-chart=\"{chart}\""))?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[at..tag_end];
    let value = tag.split("data-inked=\"").nth(1)?.split('"').next()?;
    value.parse().ok()
}

#[test]
#[ignore = "needs Chromium: apt-get install chromium, then cargo test -- --include-ignored"]
fn the_html_report_draws_every_chart_in_a_real_browser() {
    let chromium = chromium()
        .expect("no chromium on PATH: apt-get install chromium, or set LLMVOLLEY_CHROMIUM");
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, sweep) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("sweep"),
    );
    streamed_bench(
        &a,
        &["--mock-fault-rate", "0.05", "--mock-faults", "server_error"],
    );
    // b scrapes the mock's /metrics: the server view's charts.
    streamed_bench(
        &b,
        &["-c", "16", "--scrape", "auto", "--scrape-every", "500ms"],
    );
    let w = workspace_file("workloads/varied-1000.jsonl");
    let run = bench(
        &[
            w.to_str().unwrap(),
            "--mock",
            "--stream",
            "--profile",
            "sweep",
            "--steps",
            "2",
            "--requests",
            "60",
            "--slo",
            "ttft=20ms",
            "--mock-ttft",
            "10ms",
        ],
        &sweep,
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    // The shutdown and saturation tests show these reach sweep.json; here, that the report shows
    // them.
    let sweep_json = sweep.join("sweep.json");
    let mut steps: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sweep_json).unwrap()).unwrap();
    steps["steps"][1]["interrupted"] = true.into();
    steps["steps"][2]["saturated"] = "in flight grew 9.9/s".into();
    steps["steps"][2]["stopped_after_s"] = 1.5.into();
    std::fs::write(&sweep_json, steps.to_string()).unwrap();
    // A short concurrency search on 2 slots of about 45 ms: it brackets within its 10 s.
    let search = tmp.path().join("search");
    let run = bench(
        &[
            w.to_str().unwrap(),
            "--mock",
            "--stream",
            "--mock-slots",
            "2",
            "--mock-ttft",
            "20ms",
            "--mock-itl",
            "5ms",
            "--mock-output-tokens",
            "6",
            "--profile",
            "search",
            "--search",
            "concurrency",
            "--slo",
            "ttft.p99=120ms",
            "--duration",
            "1s",
            "--max-extensions",
            "1",
            "--max-duration",
            "10s",
        ],
        &search,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page = tmp.path().join("report.html");
    report(&[&a, &b, &sweep, &search], &page);
    let dom = rendered_dom(&chromium, &page, &tmp.path().join("profile"));
    assert!(
        dom.contains("data-ready=\"1\""),
        "the report's script did not finish:\n{dom}"
    );
    let errors = dom
        .split("<div id=\"errors\">")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .expect("the errors box is on the page");
    assert!(errors.trim().is_empty(), "script errors: {errors}");
    for chart in CHARTS {
        let drawn =
            inked(&dom, chart).unwrap_or_else(|| panic!("chart {chart} was not drawn:\n{dom}"));
        // A line across the plot is hundreds of coloured pixels; axes and grid are grey.
        assert!(
            drawn > 300,
            "chart {chart} drew only {drawn} coloured pixels"
        );
    }
    // Both runs are in the summary table and the legend; the sweep's steps are in its table.
    assert!(dom.contains(">a<") && dom.contains(">b<"), "runs not named");
    assert!(
        dom.contains("throughput") && dom.contains("synchronous"),
        "sweep steps missing"
    );
    assert!(
        dom.contains("interrupted: a partial step")
            && dom.contains("saturated: stopped after 1.5 s")
            && dom.contains("in flight grew 9.9/s"),
        "how the sweep's steps ended is not shown"
    );
    assert!(
        dom.contains("Capacity search: search")
            && dom.contains("max concurrency meeting ttft.p99 ≤ 120 ms")
            && dom.contains(">sync<"),
        "the search's answer and probes are missing"
    );
    assert!(
        dom.contains("Server view")
            && dom.contains("server running")
            && dom.contains("llmvolley-mock")
            && dom.contains("client machine"),
        "the server view and what the run ran on are missing"
    );
}

#[test]
fn the_report_is_one_self_contained_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    streamed_bench(&run, &[]);
    let out = llmvolley().arg("report").arg(&run).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out).1);
    // One folder: the report goes into it.
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for external in ["src=\"http", "href=\"http", "@import", "<link "] {
        assert!(
            !html.contains(external),
            "the report loads something: {external}"
        );
    }
    assert!(
        html.contains("uPlot 1.6.32") && html.contains("The MIT License"),
        "uPlot and its licence are inline"
    );
    assert!(html.contains("\"distributions\""), "the data is inline");
    assert!(html.len() < 2_000_000, "{} bytes", html.len());
}

#[test]
fn a_report_of_a_folder_that_is_not_a_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = llmvolley().arg("report").arg(tmp.path()).output().unwrap();
    let (_, stderr) = output_text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("no summary.json, sweep.json nor search.json"),
        "{stderr}"
    );
}

#[test]
fn every_histogram_is_also_written_as_hgrm_percentile_text() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    streamed_bench(&run, &[]);
    let histograms = run.join("histograms");
    for name in ["latency", "ttft", "tpot", "itl", "queue"] {
        let text = std::fs::read_to_string(histograms.join(format!("{name}.hgrm")))
            .unwrap_or_else(|e| panic!("{name}.hgrm: {e}"));
        assert!(
            text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
            "{text}"
        );
        assert!(text.contains("#[Max     ="), "{text}");
    }
    // No file for a histogram with nothing in it (no request was retried).
    assert!(!histograms.join("retry_wait.hgrm").exists());
    // The TTFT distribution is the mock's 15 ms: its median line reads about 15 (ms).
    let ttft = std::fs::read_to_string(histograms.join("ttft.hgrm")).unwrap();
    let median: f64 = ttft
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() >= 2 && cols[1].parse::<f64>().unwrap_or(0.0) >= 0.5)
        .map(|cols| cols[0].parse().unwrap())
        .unwrap();
    assert!((14.0..25.0).contains(&median), "{ttft}");
}

#[test]
fn records_export_to_parquet_with_typed_columns_and_none_lost() {
    let tmp = tempfile::tempdir().unwrap();
    // 10 lines cycled to 30 requests: ids repeat, and every record must survive the exports.
    let lines: String = (1..=10)
        .map(|i| format!("{{\"model\":\"gpt-4.1-mini\",\"input\":\"question {i}\"}}\n"))
        .collect();
    let w = tmp.path().join("w.jsonl");
    std::fs::write(&w, lines).unwrap();
    let out = tmp.path().join("bench");
    let run = bench(
        &[
            w.to_str().unwrap(),
            "--mock",
            "--requests",
            "30",
            "--mock-fault-rate",
            "0.2",
            "--mock-faults",
            "server_error",
            "--save-responses",
        ],
        &out,
    );
    assert_eq!(run.records.len(), 30);
    for flag in ["--batch", "--parquet"] {
        let export = llmvolley()
            .args(["export", flag])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            export.status.code(),
            Some(0),
            "{flag}: {}",
            output_text(&export).1
        );
    }
    let jsonl = std::fs::read_to_string(out.join("records.jsonl")).unwrap();
    assert_eq!(
        jsonl.lines().count(),
        30,
        "a bench's records are not duplicates of each other"
    );
    // The Batch export loses none either: every record is one line of output.jsonl or errors.jsonl.
    let batch_lines = |name: &str| {
        std::fs::read_to_string(out.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .lines()
            .inspect(|l| {
                let line: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(line["custom_id"].is_string(), "{l}");
            })
            .count()
    };
    assert_eq!(
        batch_lines("output.jsonl") + batch_lines("errors.jsonl"),
        30
    );

    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt16Type, UInt64Type};
    let file = std::fs::File::open(out.join("records.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = 0;
    let (mut ok, mut failed) = (0, 0);
    for batch in reader {
        let batch = batch.unwrap();
        rows += batch.num_rows();
        let status = batch.column_by_name("status").unwrap().as_string::<i32>();
        let latency = batch
            .column_by_name("latency_ms")
            .unwrap()
            .as_primitive::<Float64Type>();
        let http = batch
            .column_by_name("http_status")
            .unwrap()
            .as_primitive::<UInt16Type>();
        let output = batch
            .column_by_name("output_tokens")
            .unwrap()
            .as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            assert!(latency.value(i) > 0.0);
            if status.value(i) == "ok" {
                ok += 1;
                assert_eq!(http.value(i), 200);
                assert!(output.value(i) > 0);
            } else {
                failed += 1;
                assert_eq!(http.value(i), 500);
                assert!(output.is_null(i), "no tokens for a failed request");
            }
        }
    }
    assert_eq!(rows, 30);
    assert_eq!(ok + failed, 30);
    assert!(failed > 0 && ok > 0, "{ok} ok, {failed} failed");
}
