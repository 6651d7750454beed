//! One measurement of `bench`: the workload cycled through the engine into its own run folder.
//! `bench` measures once; a sweep measures each step.

use super::drive::{Driver, Folder};
use super::target::{RunJson, create_record_files};
use crate::capacity::{Judgement, Watch};
use crate::config::BenchConfig;
use crate::modes::Profile;
use crate::scheduler::{Cycled, Pace, Warmup};
use crate::stats::Summary;
use crate::workload::Request;
use std::path::Path;
use std::sync::Arc;

/// One measurement's summary, and a search probe's judgement of its final figures.
pub(super) struct Measured {
    pub summary: Summary,
    pub judgement: Option<Judgement>,
}

/// What every step of a bench shares.
pub(super) struct Bench<'a> {
    pub config: &'a BenchConfig,
    pub workload: Arc<[Request]>,
    pub driver: Driver<'a>,
}

impl Bench<'_> {
    /// One measurement into `dir`: the workload cycled as `pace` says, until `--requests` or
    /// `--duration` (else one pass over the workload).
    pub async fn measure(
        &self,
        dir: &Path,
        profile: Profile,
        pace: Pace,
        run_json: Option<&mut RunJson>,
        label: Option<String>,
        watch: Watch,
    ) -> anyhow::Result<Measured> {
        let load = &self.config.load;
        let lines = self.workload.len() as u64;
        let limit = load.limit(Some(lines));
        let total = match (limit.requests, load.warmup) {
            (Some(n), Warmup::Requests(w)) => Some(n + w),
            (Some(n), Warmup::None) => Some(n),
            _ => None,
        };
        let folder = Folder {
            dir,
            sinks: create_record_files(dir)?,
            total,
            timeseries: true,
            run_json,
            label,
            watch: watch.clone(),
        };
        let source = match profile {
            Profile::Trace => Cycled::once(self.workload.clone()),
            _ => Cycled::new(self.workload.clone()),
        };
        let driven = self
            .driver
            .drive(folder, source, profile, pace, Some(lines))
            .await?;
        let interrupted = self.driver.shutdown.stop.is_cancelled();
        let mut summary = driven.summary(&driven.stats, load, interrupted);
        summary.thresholds = self.config.verdicts.fail_on.judge(&summary, &driven.stats);
        let judgement = watch
            .probe
            .map(|probe| probe.criteria.judge(&driven.stats, || summary.clone()));
        driven.write(dir, None, &summary)?;
        Ok(Measured { summary, judgement })
    }
}
