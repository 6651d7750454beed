//! `llmvolley generate`: writes a workload file from a recipe, then says what it wrote.

use crate::cli::GenerateArgs;
use crate::config::GenerateConfig;
use crate::stats::TokenLengths;
use crate::workload::generate::{self, DatasetFormat, Input};
use anyhow::Context;
use std::io::Write;
use std::process::ExitCode;

pub fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let config = GenerateConfig::from_args(args)?;
    let out = &config.out;
    let started = std::time::Instant::now();
    // Written beside the target and renamed at the end: a failed run leaves no half workload.
    let partial = out.with_file_name(format!(
        ".{}.partial",
        out.file_name()
            .map_or_else(|| "workload".into(), |n| n.to_string_lossy())
    ));
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("--out {}: cannot write there", out.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
    let generated = generate::generate(&config.recipe, &mut writer)
        .and_then(|g| writer.flush().map(|()| g).map_err(Into::into));
    let generated = match generated {
        Ok(generated) => generated,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    let recipe = &config.recipe;
    let mut text = format!(
        "wrote {} lines to {} in {:.1} s (tokens counted with {})\n",
        generated.lines,
        out.display(),
        started.elapsed().as_secs_f64(),
        recipe.counter.label()
    );
    let row = |name: &str, lengths: Option<TokenLengths>, note: &str| {
        lengths.map_or(String::new(), |l| {
            format!(
                "  {name:<14} p50 {:>6}  p90 {:>6}  max {:>6}  {note}\n",
                l.p50, l.p90, l.max
            )
        })
    };
    text.push_str(&row(
        "input tokens",
        TokenLengths::of(&generated.input_tokens),
        "(the prompt's own; each request adds its API's framing)",
    ));
    text.push_str(&row(
        "output cap",
        TokenLengths::of(&generated.output_caps),
        if recipe.shape.ignore_eos {
            "(with ignore_eos and min_tokens: answers run to the cap)"
        } else {
            "(a cap: answers may end sooner)"
        },
    ));
    if let Some(prefix) = recipe.prefix {
        text.push_str(&format!(
            "  shared prefix  {} group{} of {} tokens (line i takes prefix i mod {})\n",
            prefix.groups,
            if prefix.groups == 1 { "" } else { "s" },
            prefix.tokens,
            prefix.groups
        ));
    }
    if generated.raised > 0 {
        text.push_str(&format!(
            "  {} drawn input lengths were raised to the prefix plus one token\n",
            generated.raised
        ));
    }
    if generated.skipped > 0 {
        text.push_str(&format!(
            "  {} records skipped: {}\n",
            generated.skipped,
            match &recipe.input {
                Input::Mooncake(_) => "input_length 0",
                Input::Dataset(d) if d.format == DatasetFormat::Sharegpt => {
                    "no human turn with an answer after it"
                }
                Input::Dataset(d) if d.format == DatasetFormat::Csv => "the --column is empty",
                _ => "no string at --field",
            }
        ));
    }
    if generated.inexact > 0 {
        text.push_str(&format!(
            "  {} prompts do not count exactly their input_length with this tokenizer (it merged tokens across a block boundary)\n",
            generated.inexact
        ));
    }
    crate::export::print_line(text.trim_end())?;
    Ok(ExitCode::SUCCESS)
}
