//! The mock's `GET /metrics`, in vLLM's Prometheus format (family names, types and labels as
//! vLLM's "Production Metrics" page gives them), computed from its real state: answers waiting for
//! a generation slot and running, tokens, and TTFT, queue and end-to-end time histograms.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tokio::time::Instant;

/// The mock's KV cache, in tokens: usage is the prompt and answer tokens of the running answers
/// over this.
pub const KV_CACHE_TOKENS: u64 = 262_144;

/// vLLM's bucket bounds for request times, in seconds (its TTFT histogram's, used for all three).
const BOUNDS_S: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// Labels on every family, as vLLM writes them.
const LABELS: &str = "engine=\"0\",model_name=\"llmvolley-mock\"";

/// A histogram of times, lock-free: per-bucket (not cumulative) counts, the sum in microseconds.
#[derive(Default)]
struct Times {
    buckets: [AtomicU64; BOUNDS_S.len()],
    beyond: AtomicU64,
    sum_us: AtomicU64,
}

impl Times {
    fn observe(&self, seconds: f64) {
        match BOUNDS_S.iter().position(|b| seconds <= *b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.beyond.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_us
            .fetch_add((seconds * 1e6).round() as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BOUNDS_S.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{LABELS},le=\"{bound:?}\"}} {cumulative}.0"
            );
        }
        cumulative += self.beyond.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{LABELS},le=\"+Inf\"}} {cumulative}.0");
        let _ = writeln!(out, "{name}_count{{{LABELS}}} {cumulative}.0");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{LABELS}}} {sum}");
    }
}

/// The mock's state as vLLM's metrics describe a server's.
#[derive(Default)]
pub struct Metrics {
    waiting: AtomicI64,
    running: AtomicI64,
    /// Prompt and answer tokens of the running answers.
    kv_tokens: AtomicI64,
    prompt_tokens: AtomicU64,
    generation_tokens: AtomicU64,
    success: AtomicU64,
    ttft: Times,
    queue: Times,
    e2e: Times,
}

impl Metrics {
    /// The page, in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name}{{{LABELS}}} {v:?}");
        };
        let counter = |out: &mut String, name: &str, help: &str, labels: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name}_total {help}");
            let _ = writeln!(out, "# TYPE {name}_total counter");
            let _ = writeln!(out, "{name}_total{{{LABELS}{labels}}} {v}.0");
        };
        let running = self.running.load(Ordering::Relaxed).max(0);
        gauge(
            &mut out,
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            running as f64,
        );
        gauge(
            &mut out,
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            self.waiting.load(Ordering::Relaxed).max(0) as f64,
        );
        gauge(
            &mut out,
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            self.kv_tokens.load(Ordering::Relaxed).max(0) as f64 / KV_CACHE_TOKENS as f64,
        );
        counter(
            &mut out,
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            "",
            self.prompt_tokens.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            "",
            self.generation_tokens.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "vllm:request_success",
            "Count of successfully processed requests.",
            ",finished_reason=\"stop\"",
            self.success.load(Ordering::Relaxed),
        );
        self.ttft.write(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
        );
        self.queue.write(
            &mut out,
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
        );
        self.e2e.write(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
        );
        out
    }
}

/// One answer's passage through the mock's scheduler: waiting from its arrival, running from its
/// slot, counted when it finishes; dropped early (a client gone), it leaves the gauges as it found
/// them and counts no tokens.
pub struct Generation {
    metrics: std::sync::Arc<Metrics>,
    arrived: Instant,
    prompt_tokens: u64,
    output_tokens: u64,
    running: bool,
    first_token: bool,
}

impl Generation {
    pub fn new(
        metrics: std::sync::Arc<Metrics>,
        arrived: Instant,
        prompt_tokens: u64,
        output_tokens: u64,
    ) -> Generation {
        metrics.waiting.fetch_add(1, Ordering::Relaxed);
        Generation {
            metrics,
            arrived,
            prompt_tokens,
            output_tokens,
            running: false,
            first_token: false,
        }
    }

    fn tokens(&self) -> i64 {
        (self.prompt_tokens + self.output_tokens) as i64
    }

    /// It got a generation slot (or needed none).
    pub fn start(&mut self) {
        if self.running {
            return;
        }
        self.running = true;
        let m = &self.metrics;
        m.waiting.fetch_sub(1, Ordering::Relaxed);
        m.running.fetch_add(1, Ordering::Relaxed);
        m.kv_tokens.fetch_add(self.tokens(), Ordering::Relaxed);
        m.queue
            .observe(Instant::now().duration_since(self.arrived).as_secs_f64());
    }

    /// Its first token is out at `at` (the prompt is processed by then).
    pub fn first_token(&mut self, at: Instant) {
        if self.first_token {
            return;
        }
        self.first_token = true;
        self.metrics
            .prompt_tokens
            .fetch_add(self.prompt_tokens, Ordering::Relaxed);
        self.metrics
            .ttft
            .observe(at.duration_since(self.arrived).as_secs_f64());
    }

    /// Its last token is out.
    pub fn finish(mut self) {
        let now = Instant::now();
        self.start();
        self.first_token(now);
        let m = &self.metrics;
        m.generation_tokens
            .fetch_add(self.output_tokens, Ordering::Relaxed);
        m.success.fetch_add(1, Ordering::Relaxed);
        m.e2e
            .observe(now.duration_since(self.arrived).as_secs_f64());
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        let m = &self.metrics;
        if self.running {
            m.running.fetch_sub(1, Ordering::Relaxed);
            m.kv_tokens.fetch_sub(self.tokens(), Ordering::Relaxed);
        } else {
            m.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrape::parse::{Part, parse};
    use std::sync::Arc;

    fn value(page: &str, family: &str) -> f64 {
        parse(page)
            .samples
            .iter()
            .find(|s| s.family == family && s.part == Part::Value)
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{family} missing:\n{page}"))
    }

    #[tokio::test]
    async fn the_mock_metrics_follow_each_answer_from_waiting_to_counted() {
        let metrics = Arc::new(Metrics::default());
        let mut g = Generation::new(metrics.clone(), Instant::now(), 30, 10);
        let page = metrics.render();
        assert_eq!(value(&page, "vllm:num_requests_waiting"), 1.0);
        assert_eq!(value(&page, "vllm:num_requests_running"), 0.0);
        g.start();
        let page = metrics.render();
        assert_eq!(value(&page, "vllm:num_requests_running"), 1.0);
        assert_eq!(
            value(&page, "vllm:kv_cache_usage_perc"),
            40.0 / KV_CACHE_TOKENS as f64
        );
        g.finish();
        let page = metrics.render();
        assert_eq!(value(&page, "vllm:num_requests_running"), 0.0);
        assert_eq!(value(&page, "vllm:prompt_tokens"), 30.0);
        assert_eq!(value(&page, "vllm:generation_tokens"), 10.0);
        let e = parse(&page);
        let count = e
            .samples
            .iter()
            .find(|s| s.family == "vllm:time_to_first_token_seconds" && s.part == Part::Count)
            .unwrap();
        assert_eq!(count.value, 1.0);
        assert_eq!(e.skipped_lines, 0);
        // A client gone before its answer: the gauges are as before, no tokens counted.
        drop(Generation::new(metrics.clone(), Instant::now(), 5, 5));
        let page = metrics.render();
        assert_eq!(value(&page, "vllm:num_requests_waiting"), 0.0);
        assert_eq!(value(&page, "vllm:prompt_tokens"), 30.0);
    }
}
