//! Rate limits against an independent HTTP mock: a server that allows N requests per second (and
//! says so in its headers) sees no more than N per second once it has answered 429.

use crate::common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const N: usize = 10;
const OK: &str = r#"{"object":"response","status":"completed","model":"gpt-4.1-mini","output":[],"usage":{"input_tokens":5,"output_tokens":1,"total_tokens":6}}"#;

/// Allows N requests in any sliding second and records every arrival. Like some gateways, it names its
/// limit only in its 429 answers, so the client cannot pace itself before the first one.
struct LimitedServer {
    arrivals: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl Respond for LimitedServer {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut arrivals = self.arrivals.lock().unwrap();
        let accepted: Vec<Instant> = arrivals
            .iter()
            .filter(|(t, ok)| *ok && now.duration_since(*t) < Duration::from_secs(1))
            .map(|(t, _)| *t)
            .collect();
        let allowed = accepted.len() < N;
        arrivals.push((now, allowed));
        if allowed {
            return ResponseTemplate::new(200).set_body_raw(OK, "application/json");
        }
        let reset = accepted.first().map_or(Duration::ZERO, |oldest| {
            Duration::from_secs(1).saturating_sub(now.duration_since(*oldest))
        });
        let error = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#;
        ResponseTemplate::new(429)
            .set_body_raw(error, "application/json")
            .insert_header(
                "retry-after-ms",
                reset.as_millis().max(1).to_string().as_str(),
            )
            .insert_header("x-ratelimit-limit-requests", (N * 60).to_string().as_str())
            .insert_header("x-ratelimit-remaining-requests", "0")
            .insert_header(
                "x-ratelimit-reset-requests",
                format!("{}ms", reset.as_millis()).as_str(),
            )
    }
}

#[tokio::test]
async fn after_the_first_429_the_server_sees_no_more_than_its_limit_per_second() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(LimitedServer {
            arrivals: arrivals.clone(),
        })
        .mount(&server)
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let workload = tmp.path().join("w.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"model":"gpt-4.1-mini","input":"q{i}"}}"#))
        .collect();
    std::fs::write(&workload, lines.join("\n")).unwrap();
    let endpoint = format!("{}/v1", server.uri());
    let run = run_endpoint(&endpoint, &workload, &["-c", "16"], &tmp.path().join("out")).await;
    assert_run_invariants(&run, &workload);
    assert_eq!(run.summary["requests"]["ok"], 40, "every request ended ok");

    let arrivals = arrivals.lock().unwrap();
    let first_429 = arrivals
        .iter()
        .position(|(_, ok)| !ok)
        .expect("without a known limit, 40 quick requests meet a limit of 10");
    // Requests already in flight when the first 429 left could not know of it: up to -c of them.
    let after: Vec<Instant> = arrivals
        .iter()
        .skip(first_429 + 16)
        .map(|(t, _)| *t)
        .collect();
    for (i, start) in after.iter().enumerate() {
        let in_window = after[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= N,
            "{in_window} requests within one second after the first 429"
        );
    }
    let rejected = arrivals.iter().filter(|(_, ok)| !ok).count();
    assert!(
        rejected <= 2 * 16,
        "the client slowed down instead of hammering: {rejected} 429s"
    );
}

#[test]
fn rps_paces_requests_evenly() {
    let (run, _tmp) = run_workload("workloads/chat.jsonl", "--mock --api chat -c 5 --rps 20");
    let mut sent: Vec<f64> = run
        .records
        .iter()
        .map(|r| r["sent_at"].as_f64().unwrap())
        .collect();
    sent.sort_by(f64::total_cmp);
    let span = sent[4] - sent[0];
    assert!(
        span >= 4.0 * 50.0 * 0.9,
        "5 requests at 20/s are spread over 200 ms, not sent at once: {span} ms"
    );
    // Evenly: the k-th send is no earlier than k spacings (less 10%) after the first, so no
    // burst anywhere; a late send (a loaded machine) cannot fail this, an early one does.
    for (k, at) in sent.iter().enumerate() {
        assert!(
            at - sent[0] >= k as f64 * 45.0,
            "send {k} at {at} ms: {sent:?}"
        );
    }
}

#[tokio::test]
async fn tpm_spreads_its_tokens_evenly_over_the_minute() {
    use crate::common::scripted::*;
    // Each request is estimated at its input plus its max_output_tokens (100): --tpm 60000 is
    // 1,000 tokens a second, about nine requests. Before, the whole minute's budget went at once.
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = arrivals.clone();
    let server = serve(move |_| {
        seen.lock().unwrap().push(Instant::now());
        vec![whole(200, "application/json", "", OK)]
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("w.jsonl");
    std::fs::write(
        &w,
        r#"{"model":"gpt-4.1-mini","input":"hi","max_output_tokens":100}
"#
        .repeat(20),
    )
    .unwrap();
    let run = run_async(
        llmvolley(),
        &[
            w.to_str().unwrap(),
            "--endpoint",
            &server.endpoint(),
            "-q",
            "-c",
            "20",
            "--tpm",
            "60000",
        ],
        &tmp.path().join("out"),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 20);
    let first = arrivals[0];
    let offsets: Vec<f64> = arrivals
        .iter()
        .map(|a| a.duration_since(first).as_secs_f64())
        .collect();
    assert!(
        offsets.iter().filter(|o| **o < 0.3).count() <= 5,
        "no burst of a minute's tokens at the start: {offsets:?}"
    );
    // Tokens per second: no sliding second holds more than its 1,000 tokens (and the bucket's
    // 100), about 10 requests of ~101 tokens.
    for start in &offsets {
        let in_second = offsets
            .iter()
            .filter(|o| (*start..*start + 1.0).contains(*o))
            .count();
        assert!(
            in_second <= 11,
            "{in_second} requests in a second: {offsets:?}"
        );
    }
}
