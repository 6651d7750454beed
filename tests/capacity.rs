//! Capacity: the mock's generation slots queue answers as a real server's scheduler does, so a
//! server's capacity (slots ÷ service time) can be found and shown without a GPU.

use crate::common::*;

#[test]
fn the_mock_queues_answers_beyond_its_slots_and_the_wait_shows_in_ttft() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 8);
    // Each answer holds a slot 90 ms (first token at 50 ms, four more 10 ms apart): 8 at once on
    // 2 slots go in four waves, the last starting about 270 ms in.
    let pace = [
        "--mock-ttft",
        "50ms",
        "--mock-itl",
        "10ms",
        "--mock-output-tokens",
        "5",
        "--mock-slots",
        "2",
        "-c",
        "8",
    ];
    let mut streamed = vec![w.to_str().unwrap(), "--mock", "-q", "--stream"];
    streamed.extend(pace);
    let run_streamed = run(llmvolley(), &streamed, &tmp.path().join("streamed"));
    assert_eq!(run_streamed.code, 0, "{}", run_streamed.stdout);
    let mut ttft: Vec<f64> = run_streamed
        .records
        .iter()
        .map(|r| ms(r, "ttft_ms"))
        .collect();
    ttft.sort_by(f64::total_cmp);
    assert!(
        ttft[7] >= 300.0,
        "the last wave waited for three before it: {ttft:?}"
    );
    assert!(ttft[4] >= 210.0, "the third wave waited for two: {ttft:?}");
    assert!(ttft[2] >= 130.0, "the second wave waited for one: {ttft:?}");

    let mut whole = vec![w.to_str().unwrap(), "--mock", "-q"];
    whole.extend(pace);
    let run_whole = run(llmvolley(), &whole, &tmp.path().join("whole"));
    let mut latency: Vec<f64> = run_whole
        .records
        .iter()
        .map(|r| ms(r, "latency_ms"))
        .collect();
    latency.sort_by(f64::total_cmp);
    assert!(latency[7] >= 340.0, "whole answers queue too: {latency:?}");
}

fn sweep(
    dir: &std::path::Path,
    w: &std::path::Path,
    extra: &[&str],
) -> (serde_json::Value, String) {
    let out = dir.join("sweep");
    let output = llmvolley()
        .args([
            "bench",
            w.to_str().unwrap(),
            "--mock",
            "--profile",
            "sweep",
            "--requests",
            "12",
        ])
        .args(["--mock-ttft", "40ms", "--mock-output-tokens", "1"])
        .args(extra)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (_, stderr) = output_text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let sweep = std::fs::read_to_string(out.join("sweep.json")).unwrap();
    (serde_json::from_str(&sweep).unwrap(), stderr)
}

#[test]
fn the_sweeps_rate_steps_reach_past_the_throughput_so_the_knee_is_inside() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 12);
    let (sweep, _) = sweep(tmp.path(), &w, &["--steps", "3", "--mock-slots", "4"]);
    let steps = sweep["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5, "{sweep}");
    let throughput = steps[1]["requests_per_s"].as_f64().unwrap();
    let top = steps[4]["rate_per_s"].as_f64().unwrap();
    assert!(
        (top - 1.1 * throughput).abs() < 1e-6 * top,
        "the last rate is 1.1× the throughput step's {throughput}: {top}"
    );
}

#[test]
fn explicit_rates_are_the_sweeps_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 12);
    let (sweep, _) = sweep(tmp.path(), &w, &["--rates", "20,40"]);
    let rates: Vec<f64> = sweep["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rate_per_s"].as_f64().unwrap())
        .collect();
    assert_eq!(rates, [20.0, 40.0]);
}

#[test]
fn a_throughput_step_no_faster_than_the_synchronous_one_is_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 12);
    // One slot: the server takes one request at a time, however many are in flight.
    let (_, stderr) = sweep(tmp.path(), &w, &["--steps", "1", "--mock-slots", "1"]);
    assert!(
        stderr.contains("the server takes about one request at a time"),
        "{stderr}"
    );
}

/// The mock answering in 100 ms, streamed: first token at 20 ms, 16 more 5 ms apart.
const ANSWERS_IN_100MS: [&str; 8] = [
    "--mock",
    "--stream",
    "--mock-ttft",
    "20ms",
    "--mock-itl",
    "5ms",
    "--mock-output-tokens",
    "17",
];

/// A search run: `bench --profile search` against the mock answering in 100 ms, with `args`.
struct Searched {
    code: Option<i32>,
    stdout: String,
    /// search.json.
    json: serde_json::Value,
}

fn run_search(dir: &std::path::Path, args: &[&str]) -> Searched {
    let w = questions(dir, 12);
    let out = dir.join("search");
    let output = llmvolley()
        .args(["bench", w.to_str().unwrap()])
        .args(ANSWERS_IN_100MS)
        .args(["--profile", "search", "--out", out.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let json = std::fs::read_to_string(out.join("search.json")).unwrap_or_else(|e| {
        panic!(
            "no search.json ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Searched {
        code: output.status.code(),
        stdout,
        json: serde_json::from_str(&json).unwrap(),
    }
}

/// A rate search from 10 req/s that must succeed; with `--mock-slots 4` a true capacity of 40
/// requests per second. Returns search.json and stdout.
fn search(dir: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["--rate", "10"];
    args.extend(extra);
    let run = run_search(dir, &args);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    (run.json, run.stdout)
}

/// The answer and the lowest failing load of a search.
fn bracket(search: &serde_json::Value) -> (f64, f64) {
    let answer = &search["answer"];
    (
        answer["max"].as_f64().expect("an answer"),
        answer["fails_at"].as_f64().expect("a failing probe"),
    )
}

#[test]
fn a_search_finds_the_capacity_within_its_precision_for_a_ttft_p99_slo() {
    let tmp = tempfile::tempdir().unwrap();
    let (found, stdout) = search(
        tmp.path(),
        &[
            "--mock-slots",
            "4",
            "--slo",
            "ttft.p99=300ms",
            "--duration",
            "2s",
            "--precision",
            "10%",
            "-q",
        ],
    );
    let (max, fails_at) = bracket(&found);
    assert!(
        (max - 40.0).abs() <= 0.1 * 40.0 && fails_at > max && fails_at <= max * 1.1 + 1e-9,
        "true capacity 40/s: passes at {max}, fails at {fails_at}\n{stdout}"
    );
    assert!(
        stdout.starts_with("run folder") && stdout.contains("max rate meeting ttft.p99 ≤ 300 ms:"),
        "the answer comes first: {stdout}"
    );
    let probes = found["probes"].as_array().unwrap();
    assert!(
        tmp.path()
            .join("search")
            .join(probes[1]["folder"].as_str().unwrap())
            .join("summary.json")
            .exists()
    );
    assert!(tmp.path().join("search/search.csv").exists());
}

#[test]
fn a_search_finds_the_capacity_within_its_precision_for_a_goodput_slo() {
    let tmp = tempfile::tempdir().unwrap();
    let (found, stdout) = search(
        tmp.path(),
        &[
            "--mock-slots",
            "4",
            "--slo",
            "ttft=300ms",
            "--attainment",
            "95%",
            "--duration",
            "2s",
            "--precision",
            "10%",
            "-q",
        ],
    );
    let (max, _) = bracket(&found);
    assert!(
        (max - 40.0).abs() <= 0.1 * 40.0,
        "true capacity 40/s: {max}\n{stdout}"
    );
    let goodput = found["goodput_per_s"].as_f64().unwrap();
    assert!(goodput > 0.8 * 40.0 && goodput <= max * 1.05, "{goodput}");
}

#[test]
fn a_short_noisy_probe_is_extended_rather_than_judged() {
    let tmp = tempfile::tempdir().unwrap();
    // TTFT uniform in 20–220 ms: its p99 is near 218 ms, so a limit of 215 ms is within any
    // short probe's interval. The first open-loop probe runs on past its first second; the time
    // budget then fits no other probe of up to 3 s.
    let (found, _) = search(
        tmp.path(),
        &[
            "--slo",
            "ttft.p99=215ms",
            "--mock-jitter",
            "200ms",
            "--duration",
            "1s",
            "--max-extensions",
            "2",
            "--max-duration",
            "5s",
            "-q",
        ],
    );
    let probe = &found["probes"][1];
    assert!(
        probe["extensions"].as_u64().unwrap() >= 1,
        "an interval across the limit is not a verdict: {probe}"
    );
    assert!(
        found["stopped"]
            .as_str()
            .unwrap()
            .contains("--max-duration"),
        "{found}"
    );
}

#[test]
fn a_saturated_sweep_step_is_stopped_early_with_its_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 12);
    // 2 slots of 100 ms: 20 answers a second; 60 offered for 20 s would be 1,200 requests.
    let out = tmp.path().join("sweep");
    let output = llmvolley()
        .args(["bench", w.to_str().unwrap()])
        .args(ANSWERS_IN_100MS)
        .args([
            "--mock-slots",
            "2",
            "--profile",
            "sweep",
            "--rates",
            "60",
            "--duration",
            "20s",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(saturated: stopped after"), "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("steps/01-rate-60.00/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["stopped_early"]["reason"], "saturated", "{summary}");
    assert!(summary["saturation"]["growth_per_s"].as_f64().unwrap() > 20.0);
    assert!(
        summary["requests"]["total"].as_u64().unwrap() < 600,
        "stopped well before its 1,200 requests: {}",
        summary["requests"]
    );
}

#[test]
fn a_saturated_single_run_is_marked_but_runs_its_whole_duration() {
    let tmp = tempfile::tempdir().unwrap();
    let w = questions(tmp.path(), 12);
    // 2 slots of 100 ms against 40 offered a second: saturated, but its length is the user's.
    let mut args = vec![
        w.to_str().unwrap(),
        "--mock-slots",
        "2",
        "--profile",
        "constant",
    ];
    args.extend(["--rate", "40"]);
    args.extend(["--duration", "3s"]);
    args.extend(&ANSWERS_IN_100MS);
    let run = bench(&args, &tmp.path().join("run"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let saturation = &run.summary["saturation"];
    assert!(
        saturation["evidence"].as_str().unwrap().contains("40.00/s"),
        "{saturation}"
    );
    assert_eq!(saturation["stopped"], false, "{saturation}");
    assert!(run.summary["stopped_early"].is_null(), "{}", run.summary);
    assert!(
        run.summary["load"]["sent"].as_u64().unwrap() >= 110,
        "the whole 3 s was offered: {}",
        run.summary["load"]
    );
}

/// A concurrency search on `slots` slots of 100 ms for ttft.p99 ≤ 250 ms, in 1 s probes.
fn concurrency_search(dir: &std::path::Path, slots: &str) -> Searched {
    let run = run_search(
        dir,
        &[
            "--mock-slots",
            slots,
            "--search",
            "concurrency",
            "--slo",
            "ttft.p99=250ms",
            "--duration",
            "1s",
            "--max-extensions",
            "1",
            "-q",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    run
}

#[test]
fn a_concurrency_search_answers_in_requests_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    // 2 slots of 100 ms: -c 2 waits for nothing, -c 16 waits for seven answers ahead of it.
    let run = concurrency_search(tmp.path(), "2");
    assert!(
        run.stdout
            .contains("max concurrency meeting ttft.p99 ≤ 250 ms:"),
        "{}",
        run.stdout
    );
    let (max, fails_at) = bracket(&run.json);
    assert!(
        max >= 2.0 && fails_at <= 16.0 && fails_at > max,
        "{max}..{fails_at}"
    );
    for probe in run.json["probes"].as_array().unwrap() {
        assert_eq!(probe["load"].as_f64().unwrap().fract(), 0.0, "{probe}");
    }
}

#[test]
fn a_gate_on_the_searchs_answer_decides_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    // No rate this short search reaches is 100,000/s: the gate fails, whatever the probes did.
    let run = run_search(
        tmp.path(),
        &[
            "--slo",
            "e2e.p99=5s",
            "--duration",
            "1s",
            // The synchronous probe, then one open-loop probe of up to 4 s, then no time left.
            "--max-duration",
            "6s",
            "--fail-on",
            "search.max_rate<100000/s",
            "-q",
        ],
    );
    assert_eq!(run.code, Some(3), "{}", run.stdout);
    assert!(
        run.stdout.contains("not yet shown to fail"),
        "{}",
        run.stdout
    );
    assert_eq!(run.json["thresholds"][0]["failed"], true, "{}", run.json);
}

#[test]
fn compare_says_whether_two_searches_answers_differ_beyond_their_precision() {
    let tmp = tempfile::tempdir().unwrap();
    let searched = |slots: &str| {
        let dir = tmp.path().join(format!("slots-{slots}"));
        std::fs::create_dir_all(&dir).unwrap();
        concurrency_search(&dir, slots);
        dir.join("search")
    };
    // Twice the slots, twice the capacity: the brackets cannot overlap.
    let (two, four) = (searched("2"), searched("4"));
    let compare = |base: &std::path::Path, new: &std::path::Path, extra: &[&str]| {
        let output = llmvolley()
            .arg("compare")
            .args([base, new])
            .args(extra)
            .output()
            .unwrap();
        let (stdout, stderr) = output_text(&output);
        (output.status.code(), stdout, stderr)
    };
    let (code, stdout, stderr) = compare(&two, &four, &["--fail-if-worse", "5"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("max concurrency meeting ttft.p99 ≤ 250 ms")
            && stdout
                .lines()
                .any(|l| l.starts_with("max concurrency") && l.ends_with("better")),
        "{stdout}"
    );
    let (code, stdout, stderr) = compare(&four, &two, &["--fail-if-worse", "5", "--json"]);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["verdict"], "worse", "{json}");
    assert!(json["change_pct"].as_f64().unwrap() < -25.0, "{json}");
    assert!(
        stderr.contains("worse beyond the searches' precision"),
        "{stderr}"
    );
    // The same search against itself: no change.
    let (code, stdout, _) = compare(&two, &two, &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("within precision"), "{stdout}");
    // A search against a run is refused, with what to do.
    let probe = two
        .join("steps")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (code, _, stderr) = compare(&two, &probe, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("one search's folder per side"), "{stderr}");
}

#[test]
fn a_spent_budget_stops_the_search_which_says_what_it_knows() {
    let tmp = tempfile::tempdir().unwrap();
    // A --fail-on expression as the only objective; about $0.001 a second at 10 req/s.
    let run = run_search(
        tmp.path(),
        &[
            "--mock-slots",
            "4",
            "--rate",
            "10",
            "--fail-on",
            "ttft.p99>300ms",
            "--duration",
            "1s",
            "--max-cost",
            "0.003",
            "-q",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("max rate meeting ttft.p99 ≤ 300ms: at least")
            && run
                .stdout
                .contains("not yet shown to fail (the --max-cost budget is spent"),
        "{}",
        run.stdout
    );
    let probes = run.json["probes"].as_array().unwrap();
    let last = probes.last().unwrap();
    assert_eq!(last["cut_short"], true, "{last}");
    assert_eq!(last["outcome"], "inconclusive", "{last}");
    assert_eq!(
        last["saturated"], false,
        "a budget stop is not saturation: {last}"
    );
    assert_eq!(run.json["answer"]["resolved"], false);
    let spent: f64 = probes
        .iter()
        .map(|p| {
            let summary = tmp
                .path()
                .join("search")
                .join(p["folder"].as_str().unwrap())
                .join("summary.json");
            let summary: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
            summary["cost"]["total_usd"].as_f64().unwrap()
        })
        .sum();
    assert!(spent > 0.0 && spent <= 0.003, "the probes spent ${spent}");
}
