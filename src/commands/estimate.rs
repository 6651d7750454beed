//! `llmvolley estimate`: prices a workload before it runs (no network).

use crate::cli::{Api, EstimateArgs};
use crate::cost::PriceTable;
use crate::cost::estimate::{EstimateOptions, OutputSource, estimate as estimate_workload};
use crate::export::{Destination, EstimateTable, Exports, Json};
use crate::tokenize::HfTokenizer;
use std::process::ExitCode;

pub fn estimate(args: EstimateArgs) -> anyhow::Result<ExitCode> {
    let prices = match &args.prices {
        Some(path) => PriceTable::with_file(path)?,
        None => PriceTable::default(),
    };
    let output = match (args.assume_output, args.from_run) {
        (Some(n), _) => OutputSource::Assume(n),
        (None, Some(dir)) => OutputSource::FromRun(dir),
        (None, None) => OutputSource::BodyCaps,
    };
    crate::workload::check_format(&args.workload, Api::default_route(args.api))
        .map_err(|e| anyhow::anyhow!(e))?;
    let options = EstimateOptions {
        workload: args.workload,
        default_route: Api::default_route(args.api),
        models: args.models,
        output,
        tier: args.tier,
        prices,
        tokenizer: args
            .tokenizer
            .as_deref()
            .map(HfTokenizer::load)
            .transpose()?,
    };
    let result = estimate_workload(&options)?;
    if args.json {
        Exports::new()
            .to(Json, Destination::Stdout)
            .write(&result)?;
    } else {
        Exports::new()
            .to(EstimateTable, Destination::Stdout)
            .write(&result)?;
    }
    Ok(ExitCode::SUCCESS)
}
