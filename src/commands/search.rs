//! `bench --profile search`: the capacity question answered. A synchronous probe first, then
//! probes that double the load until one fails and bisect to `--precision`, each in its own step
//! folder, judged with its uncertainty; the answer first, then `search.json` and `search.csv`.

use super::measure::Bench;
use crate::capacity::{
    Answer, Criteria, Judgement, Outcome, Probe, ProbeSettings, SaturationSettings, Search,
    SearchOver, SearchResult, StoppedEarly, Watch,
};
use crate::config::SearchSettings;
use crate::export::{Destination, Exports, Json, SearchCsv, SearchTable};
use crate::modes::Profile;
use crate::scheduler::Pace;
use crate::stats::Summary;
use crate::stats::gate::Metric;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub const SEARCH_JSON: &str = "search.json";
pub const SEARCH_CSV: &str = "search.csv";
/// Each objective's interval: two-sided 95%.
const CONFIDENCE: f64 = 0.95;
/// The smallest in-flight growth a search takes as saturation, as a share of the offered rate,
/// whatever its precision: below it a server's own noise would stop probes that pass.
const MIN_SATURATION_TOLERANCE: f64 = 0.02;

/// What a search leaves: every probe's summary, and whether a `--fail-on` gate on its answer
/// failed.
pub(super) struct Searched {
    pub summaries: Vec<Summary>,
    pub gate_failed: bool,
}

pub(super) async fn search(bench: &Bench<'_>, dir: &Path) -> anyhow::Result<Searched> {
    let config = bench.config;
    let settings = config
        .search
        .as_ref()
        .context("a search without its settings")?;
    let started = Instant::now();
    let criteria = Arc::new(Criteria {
        percentiles: settings.percentiles.clone(),
        attainment: settings.attainment,
        gates: config.verdicts.fail_on.clone(),
        confidence: CONFIDENCE,
    });
    let mut probes = Probes {
        bench,
        dir,
        settings,
        criteria: criteria.clone(),
        rows: Vec::new(),
        summaries: Vec::new(),
    };
    let mut stopped = None;
    let sync = probes
        .run(1.0, "synchronous", Profile::Synchronous, Pace::closed(1))
        .await?;
    let mut answer = None;
    let mut search = match settings.over {
        SearchOver::Rate => {
            let start = config.rate.unwrap_or(sync.rate);
            Search::new(SearchOver::Rate, start, settings.precision, f64::INFINITY)
        }
        SearchOver::Concurrency => {
            let mut search = Search::new(
                SearchOver::Concurrency,
                1.0,
                settings.precision,
                config.max_inflight as f64,
            );
            if let Some(passed) = sync.passed {
                search.record(1.0, passed);
            }
            search
        }
    };
    if settings.over == SearchOver::Rate && sync.passed == Some(false) {
        // One request at a time already fails: no open loop at any rate does better.
        answer = Some(Answer {
            max: None,
            fails_at: Some(sync.rate),
            resolved: true,
        });
    }
    while answer.is_none() {
        if let Some(why) = probes.stopped() {
            stopped = Some(why);
            break;
        }
        let Some(at) = search.next() else { break };
        // A probe may run its every extension: one starts only if it could end in time.
        if let Some(budget) = settings.max_duration
            && started.elapsed() + settings.probe * (settings.extensions + 1) > budget
        {
            stopped = Some(format!(
                "--max-duration {}: no time left for another probe",
                humantime::format_duration(budget)
            ));
            break;
        }
        let (name, profile, pace) = match settings.over {
            SearchOver::Rate => (
                format!("rate-{at:.2}"),
                config.sweep_arrivals.profile(),
                config.sweep_step(at),
            ),
            SearchOver::Concurrency => (
                format!("c-{}", at as usize),
                Profile::Concurrent,
                config.closed(at as usize),
            ),
        };
        let probed = probes.run(at, &name, profile, pace).await?;
        if let Some(passed) = probed.passed {
            search.record(at, passed);
        }
    }
    if stopped.is_none() {
        stopped = probes.stopped();
    }
    let answer = answer.unwrap_or_else(|| search.answer());
    let Probes {
        rows, summaries, ..
    } = probes;
    // The answer's goodput: the last probe at the answer's load.
    let goodput_per_s = answer.max.and_then(|max| {
        rows.iter()
            .rev()
            .find(|p| p.load == max && p.step > 1)
            .and_then(|p| p.goodput_per_s)
    });
    let mut result = SearchResult {
        over: settings.over,
        objectives: criteria.describe(),
        precision: settings.precision,
        confidence: CONFIDENCE,
        answer,
        goodput_per_s,
        stopped,
        line: String::new(),
        wall_time_s: started.elapsed().as_secs_f64(),
        probes: rows,
        thresholds: Vec::new(),
    };
    result.line = result.answer_line();
    result.thresholds = config
        .verdicts
        .fail_on
        .0
        .iter()
        .filter(|t| t.metric.judges_a_search())
        .map(|t| {
            let searched = match t.metric {
                Metric::SearchMaxRate => SearchOver::Rate,
                _ => SearchOver::Concurrency,
            };
            t.judge_value(result.answer.max.filter(|_| searched == result.over))
        })
        .collect();
    Exports::new()
        .to(Json, Destination::File(dir.join(SEARCH_JSON)))
        .to(SearchCsv, Destination::File(dir.join(SEARCH_CSV)))
        .write(&result)?;
    crate::export::print_line(&format!("run folder   {}", dir.display()))?;
    Exports::new()
        .to(SearchTable, Destination::Stdout)
        .write(&result)?;
    Ok(Searched {
        summaries,
        gate_failed: result.thresholds.iter().any(|t| t.failed),
    })
}

/// The probes so far.
struct Probes<'a, 'b> {
    bench: &'a Bench<'b>,
    dir: &'a Path,
    settings: &'a SearchSettings,
    criteria: Arc<Criteria>,
    rows: Vec<Probe>,
    summaries: Vec<Summary>,
}

/// One probe's result: its ok rate, and whether it passed (None: cut short by an interrupt, the
/// budget or a dead endpoint, so not judged).
struct Probed {
    rate: f64,
    passed: Option<bool>,
}

impl Probes<'_, '_> {
    /// Why no further probe may run: an interrupt, the budget, a dead endpoint.
    fn stopped(&self) -> Option<String> {
        if self.bench.driver.shutdown.stop.is_cancelled() {
            return Some("interrupted".into());
        }
        self.summaries.iter().find_map(|s| {
            if s.cost.budget_stopped {
                Some("the --max-cost budget is spent".to_string())
            } else {
                s.gave_up.as_ref().map(|g| format!("gave up: {g}"))
            }
        })
    }

    async fn run(
        &mut self,
        load: f64,
        name: &str,
        profile: Profile,
        pace: Pace,
    ) -> anyhow::Result<Probed> {
        let step = self.rows.len() + 1;
        let (folder, step_dir) = super::sweep::step_folder(self.dir, step, name)?;
        let open = matches!(pace, Pace::Open { .. });
        let watch = Watch {
            saturation: open.then_some(SaturationSettings {
                tolerance: (self.settings.precision / 2.0).max(MIN_SATURATION_TOLERANCE),
                stop: true,
            }),
            probe: Some(ProbeSettings {
                criteria: self.criteria.clone(),
                every: self.settings.probe,
                extensions: self.settings.extensions,
            }),
        };
        let measured = self
            .bench
            .measure(
                &step_dir,
                profile,
                pace,
                None,
                Some(format!("probe {step} {name}")),
                watch,
            )
            .await?;
        let summary = measured.summary;
        let judgement = measured.judgement.unwrap_or(Judgement {
            outcome: Outcome::Inconclusive,
            objectives: Vec::new(),
        });
        let saturated = summary.saturation.is_some();
        let cut_short =
            summary.interrupted || summary.cost.budget_stopped || summary.gave_up.is_some();
        let every = self.settings.probe.as_secs_f64();
        let warmup_s = match self.bench.config.load.warmup {
            crate::scheduler::Warmup::Time(t) => t.as_secs_f64(),
            _ => 0.0,
        };
        let extensions = match summary.stopped_early {
            Some(StoppedEarly::Decided { extensions, .. }) => extensions,
            // The spans the probe had run whole when the watch stopped it.
            Some(StoppedEarly::Saturated { after_s }) => {
                ((after_s - warmup_s).max(0.0) / every).floor() as u32
            }
            None if cut_short => 0,
            None => self.settings.extensions,
        };
        let inconclusive = !saturated && judgement.outcome == Outcome::Inconclusive;
        let passed = !saturated
            && match judgement.outcome {
                Outcome::Pass => true,
                Outcome::Fail => false,
                Outcome::Inconclusive => judgement.passes_on_figures(),
            };
        let outcome = if passed { Outcome::Pass } else { Outcome::Fail };
        if !self.bench.config.load.quiet {
            let figures: Vec<String> = judgement
                .objectives
                .iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o.name,
                        o.value.map_or("∞".into(), |v| format!("{v:.3}"))
                    )
                })
                .collect();
            eprintln!(
                "probe {step} {name}: {} ({}), {:.2} ok req/s{}",
                if cut_short {
                    "cut short, not judged"
                } else if passed {
                    "pass"
                } else {
                    "FAIL"
                },
                figures.join(", "),
                summary.requests_per_s,
                if saturated { ", saturated" } else { "" }
            );
        }
        self.rows.push(Probe {
            step,
            folder,
            load,
            requests_per_s: summary.requests_per_s,
            requests: summary.requests.total,
            duration_s: summary.wall_time_s,
            outcome: if cut_short {
                Outcome::Inconclusive
            } else {
                outcome
            },
            inconclusive: inconclusive && !cut_short,
            cut_short,
            extensions,
            saturated,
            goodput_per_s: summary
                .slo
                .as_ref()
                .map(|s| s.goodput_per_s)
                .or(Some(summary.requests_per_s).filter(|_| self.settings.attainment.is_none())),
            objectives: judgement.objectives,
        });
        let rate = summary.requests_per_s;
        self.summaries.push(summary);
        Ok(Probed {
            rate,
            passed: (!cut_short).then_some(passed),
        })
    }
}
