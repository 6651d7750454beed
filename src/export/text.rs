//! The summary as the aligned text printed at the end of a run.

use super::Exporter;
use crate::record::Flag;
use crate::stats::{LoadSummary, ServerPacing, SloSummary, Summary};
use std::fmt::Write as _;

/// `Summary` → the table `run` and `bench` print.
pub struct SummaryText;

impl Exporter<Summary> for SummaryText {
    fn render(&self, summary: &Summary) -> anyhow::Result<Vec<u8>> {
        // Server text (error messages, kinds, model names) reaches the terminal inert.
        Ok(crate::inert::terminal(&render(summary))
            .into_owned()
            .into_bytes())
    }
}

/// A token figure as printed: the number, or "unknown".
fn known(n: Option<u64>) -> String {
    n.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

fn known_rate(n: Option<f64>) -> String {
    n.map_or_else(|| "unknown".to_string(), |n| format!("{n:.1}"))
}

/// The aligned table printed at the end of a run.
fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let r = &summary.requests;
    let unsent = ["not_sent", "skipped_budget"];
    let statuses = r
        .by_status
        .iter()
        .filter(|(s, _)| s.as_str() != "ok" && !unsent.contains(&s.as_str()))
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        out,
        "{:<13}{} total, {} ok, {} failed",
        "requests", r.total, r.ok, r.failed
    );
    if !statuses.is_empty() {
        let _ = write!(out, " ({statuses})");
    }
    if r.not_sent > 0 {
        let _ = write!(out, ", {} not sent (not failures)", r.not_sent);
    }
    out.push('\n');
    for (label, counts) in [
        ("http status", &r.by_http_status),
        ("errors", &summary.errors_by_kind),
        ("retried", &summary.retried_errors_by_kind),
    ] {
        if !counts.is_empty() {
            let listed = counts
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(out, "{label:<13}{listed}");
        }
        if label == "errors" {
            render_top_errors(&mut out, &summary.top_errors);
        }
    }
    // Rates are over the window from the first send to the last answer, so the drain of the last
    // requests is in them; after a resume they are this session's only.
    let session = if summary.resumed_kept.is_some() {
        "this session's "
    } else {
        ""
    };
    let until = if summary.steady_state.is_some() {
        "the --duration deadline"
    } else {
        "last answer"
    };
    if summary.batch.is_some() {
        // Answers arrive as files: there is no send or answer time to rate them by.
        let _ = writeln!(
            out,
            "{:<13}{:.2} s wall, from reading the workload to the last file downloaded",
            "time", summary.wall_time_s
        );
    } else {
        let _ = writeln!(
            out,
            "{:<13}{:.2} s wall; {:.1} ok req/s over {session}{:.2} s from first send to {until}",
            "time", summary.wall_time_s, summary.requests_per_s, summary.window_s
        );
    }
    if let Some(steady) = &summary.steady_state {
        let after = match steady.answers_after_window {
            0 => String::new(),
            n => format!("; {n} answers after --duration are in the totals, not the rates"),
        };
        let _ = writeln!(
            out,
            "{:<13}{:.2} ok req/s, {:.1} output tok/s over the measured {:.2} s (each request counted for the part of its time inside it: no ramp-up or drain bias){after}",
            "steady", steady.requests_per_s, steady.output_tokens_per_s, steady.window_s
        );
    }
    if let Some(s) = &summary.structured_output {
        let problems = if s.by_problem.is_empty() {
            String::new()
        } else {
            let listed: Vec<String> = s
                .by_problem
                .iter()
                .map(|(p, n)| format!("{p} {n}"))
                .collect();
            format!("; problems: {}", listed.join(", "))
        };
        let _ = writeln!(
            out,
            "{:<13}{} of {} answers valid ({:.1}%) against the JSON format they asked for{problems}",
            "structured",
            s.valid_answers,
            s.checked,
            s.valid * 100.0
        );
    }
    if let Some(items) = &summary.items {
        let flagged = if items.flagged_by_category.is_empty() {
            String::new()
        } else {
            let listed: Vec<String> = items
                .flagged_by_category
                .iter()
                .map(|(category, n)| format!("{category} {n}"))
                .collect();
            format!("; answers flagging {}", listed.join(", "))
        };
        let _ = writeln!(
            out,
            "{:<13}{} inputs in {} embeddings/moderations answers, {} items/s, {} input tok/s (they generate no output tokens){flagged}",
            "items",
            items.items,
            items.requests,
            known_rate(items.items_per_s),
            known_rate(summary.tokens.input_per_s)
        );
    }
    let t = &summary.tokens;
    let rates = if summary.batch.is_some() {
        String::new()
    } else {
        format!(
            "; {} output tok/s, {} total tok/s",
            known_rate(t.output_per_s),
            known_rate(t.total_per_s)
        )
    };
    let _ = writeln!(
        out,
        "{:<13}input {} (cached {}), output {} (reasoning {}), total {}{rates} (ok requests)",
        "tokens",
        known(t.input),
        known(t.cached),
        known(t.output),
        known(t.reasoning),
        known(t.total),
    );
    let mut unknown = Vec::new();
    if t.input_unknown_requests > 0 && t.input.is_some() {
        unknown.push(format!(
            "input unknown for {} ok requests",
            t.input_unknown_requests
        ));
    }
    if t.output_unknown_requests > 0 && t.output.is_some() {
        unknown.push(format!(
            "output unknown for {} ok requests",
            t.output_unknown_requests
        ));
    }
    if !unknown.is_empty() {
        let _ = writeln!(
            out,
            "{:<13}{} (sums cover the rest)",
            "",
            unknown.join(", ")
        );
    }
    if let Some(share) = t.estimated_share {
        let _ = writeln!(
            out,
            "{:<13}output tokens of {} ok requests ({:.0}%) are local estimates ({}), not server counts; so are their TPOT and tok/s",
            "estimated",
            t.estimated_output_requests,
            share * 100.0,
            t.tokenizers.join(", ")
        );
    }
    if t.failed_requests_with_output > 0 {
        let _ = writeln!(
            out,
            "{:<13}{} output tokens received by {} failed requests, in no figure above",
            "partial", t.failed_output, t.failed_requests_with_output
        );
    }
    if let Some(total) = summary.cost.total_usd {
        let per_1k = summary.cost.per_1k_requests_usd.unwrap_or(0.0);
        let models = summary
            .cost
            .by_model
            .iter()
            .map(|(model, t)| match t.cost_usd {
                Some(cost) => format!("{model} ${cost:.4}"),
                None => format!("{model} (no price)"),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "{:<13}${total:.4} for {} priced requests (${per_1k:.4} per 1,000): {models}",
            "cost", summary.cost.priced_requests
        );
    } else if !summary.cost.unpriced_models.is_empty() {
        let _ = writeln!(
            out,
            "{:<13}no price for {}",
            "cost",
            summary.cost.unpriced_models.join(", ")
        );
    }
    if let (Some(session), Some(job)) = (summary.cost.session_usd, summary.cost.job_spent_usd) {
        let budget = summary
            .cost
            .budget_usd
            .map(|limit| format!(" of the --max-cost ${limit} budget"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<13}${session:.4} this session; ${job:.4} spent by the job over all its sessions{budget}",
            "spent"
        );
    }
    if let (true, Some(limit)) = (summary.cost.budget_stopped, summary.cost.budget_usd) {
        let skipped = summary
            .requests
            .by_status
            .get("skipped_budget")
            .copied()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<13}--max-cost ${limit} stopped the run: {skipped} lines not sent (skipped_budget)",
            "budget"
        );
    }
    if let Some(verdict) = &summary.gave_up {
        let _ = writeln!(out, "{:<13}the run gave up: {verdict}", "gave up");
    }
    render_unsent(&mut out, summary);
    if let Some(kept) = summary.resumed_kept {
        let _ = writeln!(
            out,
            "{:<13}{kept} lines kept from earlier sessions; totals cover the whole workload",
            "resumed"
        );
    }
    if summary.reconnects > 0 {
        let _ = writeln!(
            out,
            "{:<13}{} sends repeated on a new connection (the pooled one was closed by the server; not retries)",
            "reconnects", summary.reconnects
        );
    }
    if let Some(total) = summary.incomplete.get("total").filter(|n| **n > 0) {
        let reasons = summary
            .incomplete
            .iter()
            .filter(|(reason, n)| *reason != "total" && **n > 0)
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "{:<13}{total} ok answers were cut short ({reasons}): counted ok, their text is partial",
            "incomplete"
        );
    }
    for flag in Flag::ALL {
        if let Some(n) = summary.flags.get(flag.name()).filter(|n| **n > 0) {
            let (label, meaning) = flag_text(flag);
            let _ = writeln!(out, "{label:<13}{n} answers: {meaning}");
        }
    }
    if let Some(pacing) = &summary.server_pacing {
        render_pacing(&mut out, pacing);
    }
    for warning in &summary.warnings {
        let _ = writeln!(out, "{:<13}{warning}", "WARNING");
    }
    if summary.warmup_requests > 0 {
        let _ = writeln!(
            out,
            "{:<13}{} warm-up requests sent first, left out of every figure",
            "warmup", summary.warmup_requests
        );
    }
    if let Some(load) = &summary.load {
        render_load(&mut out, load);
    }
    if let Some(slo) = &summary.slo {
        render_slo(&mut out, slo);
    }
    if let Some(tools) = summary
        .tool_calls
        .as_ref()
        .filter(|t| t.answers_with_calls > 0)
    {
        render_tool_calls(&mut out, tools);
    }
    if let Some(conversations) = &summary.conversations {
        render_conversations(&mut out, conversations, &summary.turns);
    }
    if let Some(server) = &summary.server {
        render_server(&mut out, server);
    }
    if let Some(batch) = &summary.batch {
        let statuses: Vec<String> = batch
            .by_status
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        let cost = match (batch.cost_usd, batch.live_cost_usd) {
            (Some(b), Some(l)) => format!(
                "; ${b:.4} at the batch tier, ${l:.4} for the same answers live (${:.4} saved)",
                l - b
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<13}{} parts ({}){cost}",
            "batch",
            batch.parts,
            statuses.join(", ")
        );
    }
    if let Some(per_chunk) = summary.tokens_per_chunk {
        let _ = writeln!(
            out,
            "{:<13}{per_chunk:.2} output tokens per chunk",
            "streaming"
        );
    }
    let from_schedule = if summary.load.is_some() {
        &summary.latency_from_schedule_ms
    } else {
        &None
    };
    // The gap between events is its own row when events carry other than one token each (it
    // then differs from the per-token ITL); else it is the ITL row again.
    let chunk_gap = match (&summary.chunk_gap_ms, &summary.itl_ms) {
        (Some(gap), Some(itl)) if (gap.p50 - itl.p50).abs() <= 0.05 * gap.p50 => &None,
        (gap, _) => gap,
    };
    let rows = [
        ("latency ms", &summary.latency_ms),
        ("from sched ms", from_schedule),
        ("failed ms", &summary.failed_latency_ms),
        ("queue ms", &summary.queue_ms),
        ("connect ms", &summary.connect_ms),
        ("retry wait ms", &summary.retry_wait_ms),
        ("ttft ms", &summary.ttft_ms),
        ("ttfo ms", &summary.ttfo_ms),
        ("tpot ms", &summary.tpot_ms),
        ("itl ms", &summary.itl_ms),
        ("chunk gap ms", chunk_gap),
        ("out tok/s", &summary.output_tokens_per_s),
    ];
    if rows.iter().any(|(_, d)| d.is_some()) {
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<13}{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "p50", "p90", "p95", "p99", "p99.9", "max", "mean", "stdev", "count"
        );
        for (name, d) in rows {
            if let Some(d) = d {
                let _ = writeln!(
                    out,
                    "{name:<13}{:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9}",
                    d.p50, d.p90, d.p95, d.p99, d.p99_9, d.max, d.mean, d.stdev, d.count
                );
            }
        }
        // What the workload was, in tokens per ok request, under the same columns.
        for (name, l) in [
            ("input tok", &summary.input_length),
            ("output tok", &summary.output_length),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    out,
                    "{name:<13}{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9.2} {:>9.2} {:>9}",
                    l.p50, l.p90, l.p95, l.p99, l.p99_9, l.max, l.mean, l.stdev, l.count
                );
            }
        }
    }
    if !summary.thresholds.is_empty() {
        out.push('\n');
        for (i, verdict) in summary.thresholds.iter().enumerate() {
            let label = if i == 0 { "fail-on" } else { "" };
            let _ = writeln!(out, "{label:<13}{}", verdict.line());
        }
    }
    out
}

/// `--scrape`: how the scrapes went, then the server's own figures beside the client's.
fn render_server(out: &mut String, server: &crate::scrape::ServerSummary) {
    use crate::scrape::figures::Stats;
    for t in &server.targets {
        let failed = match (&t.last_error, t.failed) {
            (Some(e), n) if n > 0 => format!(", {n} failed (last: {e})"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<13}{}: {} scrapes every {}s, {} metric families{failed}",
            "server", t.url, t.scrapes, server.every_s, t.families
        );
    }
    let gauge = |name: &str| match server.figures.get(name) {
        Some(Some(Stats::Gauge(g))) => Some(g),
        _ => None,
    };
    let mut parts = Vec::new();
    for (name, label) in [("running", "running"), ("waiting", "waiting")] {
        if let Some(g) = gauge(name) {
            parts.push(format!("{label} {:.1} mean, {:.0} max", g.mean, g.max));
        }
    }
    if let Some(g) = gauge("kv_cache_usage") {
        parts.push(format!("KV cache {:.1}% max", g.max * 100.0));
    }
    if let Some(rate) = server.prefix_cache_hit_rate {
        parts.push(format!("prefix cache hits {:.1}%", rate * 100.0));
    }
    if let Some(Some(Stats::Counter(p))) = server.figures.get("preemptions") {
        parts.push(format!("{:.0} preemptions", p.total));
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "{:<13}{}", "", parts.join("; "));
    }
    if !server.against_client.is_empty() {
        let _ = writeln!(
            out,
            "{:<13}{:<22}{:>9} {:>9}  (a time's difference is network plus client)",
            "", "", "server", "client"
        );
        let n = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        for (name, a) in &server.against_client {
            // A bucket written [x, x] is the open one above the highest bound.
            let within = a
                .server_within
                .map(|[lo, hi]| {
                    if hi > lo {
                        format!("  server's within its {lo:.0}–{hi:.0} ms bucket")
                    } else {
                        format!("  server's above its highest bucket, {lo:.0} ms")
                    }
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<13}{name:<22}{:>9} {:>9}{within}",
                "",
                n(a.server),
                n(a.client)
            );
        }
    }
    let mut gpu = Vec::new();
    if let Some(g) = gauge("gpu_util") {
        gpu.push(format!("utilisation {:.0}% mean", g.mean * 100.0));
    }
    if let Some(g) = gauge("gpu_power_w") {
        gpu.push(format!("power {:.0} W mean, {:.0} max", g.mean, g.max));
    }
    if let Some(g) = gauge("gpu_memory_used_mib") {
        gpu.push(format!("memory {:.0} MiB max", g.max));
    }
    if let Some(j) = server.energy_per_output_token_j {
        gpu.push(format!("{j:.3} J per output token"));
    }
    if !gpu.is_empty() {
        let _ = writeln!(out, "{:<13}GPU {}", "", gpu.join("; "));
    }
}

/// Lines not sent (interrupted, a limit, a dead endpoint), and the command that sends them.
fn render_unsent(out: &mut String, summary: &Summary) {
    for (kind, why, then) in [
        ("interrupted", "interrupted", "sends them"),
        (
            "limit",
            "--duration/--requests",
            "continues with the next of them",
        ),
        ("gave_up", "gave up", "sends them"),
    ] {
        let Some(n) = summary.not_sent_by_reason.get(kind) else {
            continue;
        };
        match &summary.resume_command {
            Some(command) => {
                let _ = writeln!(
                    out,
                    "{:<13}not done ({why}): {n} — `{command}` {then}",
                    "not sent"
                );
            }
            None => {
                let _ = writeln!(out, "{:<13}not done ({why}): {n}", "not sent");
            }
        }
    }
}

/// The three most frequent error kinds, each with one message (cut to a line).
fn render_top_errors(out: &mut String, top: &[crate::stats::TopError]) {
    const WIDTH: usize = 140;
    for (i, e) in top.iter().take(3).enumerate() {
        let mut example: String = e.example.chars().take(WIDTH).collect();
        if e.example.chars().count() > WIDTH {
            example.push('…');
        }
        let label = if i == 0 { "  e.g." } else { "" };
        let _ = writeln!(out, "{label:<13}{} ×{}: {example}", e.kind, e.count);
    }
}

fn render_pacing(out: &mut String, p: &ServerPacing) {
    let mut parts = Vec::new();
    if p.pauses > 0 {
        parts.push(format!("{} pauses, {:.1} s in all", p.pauses, p.paused_s));
    }
    if let (Some(longest), Some(source)) = (p.longest_wait_s, &p.longest_wait_source) {
        parts.push(format!("longest wait {longest:.1} s ({source})"));
    }
    if p.capped_waits > 0 {
        parts.push(format!(
            "{} waits capped at {:.0} s (--max-server-wait)",
            p.capped_waits, p.max_server_wait_s
        ));
    }
    if let (Some(limit), Some(paced)) = (p.announced_requests_per_min, p.paced_to_requests_per_min)
    {
        parts.push(format!(
            "paced to {paced:.0} requests/min (the server announced {limit}/min in x-ratelimit-limit-requests)"
        ));
    }
    if let Some(lowest) = p.lowest_concurrency {
        parts.push(format!(
            "concurrency fell to {lowest} of {} after 429s",
            p.concurrency
        ));
    }
    let _ = writeln!(
        out,
        "{:<13}the server slowed this run: {}",
        "server",
        parts.join("; ")
    );
}

fn render_load(out: &mut String, load: &LoadSummary) {
    let target = load
        .rate_per_s
        .map(|r| format!(" at {r:.2} req/s"))
        .unwrap_or_default();
    let achieved = load
        .achieved_rate_per_s
        .map(|r| format!(", {r:.2} req/s achieved"))
        .unwrap_or_default();
    let full = if load.drop_when_full {
        format!("{} dropped when full", load.dropped)
    } else {
        "arrivals wait when full".to_string()
    };
    let _ = writeln!(
        out,
        "{:<13}{}{target}: {} sent{achieved}; at most {} in flight, {full}",
        "load",
        load.profile.as_str(),
        load.sent,
        load.max_in_flight
    );
    let cpu = load
        .client
        .cpu_cores_used
        .map(|c| format!("{:.0}% of a core", c * 100.0))
        .unwrap_or_else(|| "CPU not measured".to_string());
    let lag = load
        .scheduler_lag_ms
        .as_ref()
        .map(|d| {
            format!(
                "; scheduler lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                d.p50, d.p99, d.max
            )
        })
        .unwrap_or_default();
    let steal = load
        .client
        .steal_share
        .map(|s| format!(", {:.1}% stolen by the hypervisor", s * 100.0))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:<13}{cpu} ({} cores{steal}){lag}",
        "client", load.client.cores_available
    );
    for warning in &load.client.warnings {
        let _ = writeln!(out, "{:<13}{warning}", "WARNING");
    }
}

/// `conversations 20 (20 ok): 2 turns (p50), …`, then the by-turn table.
fn render_conversations(
    out: &mut String,
    c: &crate::stats::ConversationSummary,
    turns: &[crate::stats::TurnRow],
) {
    let turns_line = c.turns.map_or(String::new(), |t| {
        format!("turns p50 {} max {}; ", t.p50, t.max)
    });
    let wall = c.wall_ms.as_ref().map_or(String::new(), |w| {
        format!("wall p50 {:.1} ms p99 {:.1} ms; ", w.p50, w.p99)
    });
    let _ = writeln!(
        out,
        "{:<13} {} ended ({} with every turn ok): {turns_line}{wall}each {:.0} input and {:.0} output tokens, ${:.4} on average",
        "conversations", c.count, c.ok, c.mean_input_tokens, c.mean_output_tokens, c.mean_cost_usd
    );
    let _ = writeln!(
        out,
        "{:<13}{:>6} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "by turn", "turn", "requests", "input tok", "lat p50", "lat p99", "ttft p50", "ttft p99"
    );
    let cell = |d: &Option<crate::stats::Distribution>, p99: bool| {
        d.as_ref().map_or("-".to_string(), |d| {
            format!("{:.2}", if p99 { d.p99 } else { d.p50 })
        })
    };
    for row in turns {
        let turn = if row.and_later {
            format!("{}+", row.turn)
        } else {
            row.turn.to_string()
        };
        let _ = writeln!(
            out,
            "{:<13}{turn:>6} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}",
            "",
            row.requests,
            row.input_tokens_mean
                .map_or("-".to_string(), |m| format!("{m:.0}")),
            cell(&row.latency_ms, false),
            cell(&row.latency_ms, true),
            cell(&row.ttft_ms, false),
            cell(&row.ttft_ms, true),
        );
    }
}

/// `tool calls   40 answers with calls, 160 calls; 4 at once: 40; faults: none`, then a line per
/// model and tool.
fn render_tool_calls(out: &mut String, tools: &crate::stats::ToolCallSummary) {
    let faults = |faults: &std::collections::BTreeMap<String, u64>| {
        let found: Vec<String> = faults
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(fault, n)| format!("{fault} {n}"))
            .collect();
        if found.is_empty() {
            "none".to_string()
        } else {
            found.join(", ")
        }
    };
    let parallel: Vec<String> = tools
        .calls_per_answer
        .iter()
        .map(|(calls, answers)| format!("{calls}: {answers}"))
        .collect();
    let _ = writeln!(
        out,
        "{:<13}{} answers with calls, {} calls; answers by calls made {}; faults: {}",
        "tool calls",
        tools.answers_with_calls,
        tools.calls,
        parallel.join(", "),
        faults(&tools.faults)
    );
    for row in &tools.by_tool {
        let _ = writeln!(
            out,
            "{:<13}{} {}: {} calls, faults: {}",
            "",
            row.model,
            row.tool,
            row.calls,
            faults(&row.faults)
        );
    }
}

fn render_slo(out: &mut String, slo: &SloSummary) {
    let mut parts = Vec::new();
    for (name, limit, share) in [
        ("ttft", slo.ttft_ms, slo.share_ttft),
        ("tpot", slo.tpot_ms, slo.share_tpot),
        ("e2e", slo.e2e_ms, slo.share_e2e),
    ] {
        match (limit, share) {
            (Some(limit), Some(share)) => {
                parts.push(format!("{name} <= {limit} ms {:.1}%", share * 100.0))
            }
            (Some(limit), None) => parts.push(format!("{name} <= {limit} ms not judged")),
            _ => {}
        }
    }
    if !slo.judged() {
        let _ = writeln!(
            out,
            "{:<13}{}; no request could be judged: no goodput",
            "slo",
            parts.join(", ")
        );
        return;
    }
    let _ = writeln!(
        out,
        "{:<13}{}; all {:.1}% ({} of {}): goodput {:.2} req/s",
        "slo",
        parts.join(", "),
        slo.share_all * 100.0,
        slo.meeting_all,
        slo.requests,
        slo.goodput_per_s
    );
}

/// A flag's row label in the text summary, and what it means for the figures.
fn flag_text(flag: Flag) -> (&'static str, &'static str) {
    match flag {
        Flag::Buffered => (
            "buffered",
            "every chunk arrived in one burst at the end (a buffering proxy?): TTFT ≈ latency, and TTFT and ITL describe the proxy, not the model",
        ),
        Flag::NotStreamed => (
            "not streamed",
            "the server answered whole bodies although stream: true was sent: TTFT, TPOT and ITL do not apply, and SLOs on them were not judged",
        ),
        Flag::Compressed => (
            "compressed",
            "compressed although the request asked for no encoding (decoded)",
        ),
        Flag::NonFiniteNumbers => (
            "NaN/Infinity",
            "the JSON held NaN or Infinity, read as null (kept)",
        ),
        Flag::EmptyCompleted => ("empty", "completed with an empty message and no calls"),
        Flag::SeveralChoices => (
            "n > 1",
            "several choices per answer: output_text is the first's, output tokens (and TPOT, tok/s) count them all",
        ),
        Flag::UsageOptionRefused => (
            "no usage",
            "the server refused stream_options (added by --stream), so they went without it; their output tokens are counted locally (estimated)",
        ),
        Flag::ServerStateIgnored => (
            "state lost",
            "--responses-state server, but the server dropped previous_response_id: these answers lost their conversation's context, and the conversations went on carrying the whole history",
        ),
    }
}
