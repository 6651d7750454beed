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
    let to_stdout = out.as_os_str() == "-";
    let generated = if to_stdout {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let written = generate::generate(&config.recipe, &mut stdout)
            .and_then(|generated| Ok(stdout.flush().map(|()| generated)?));
        match written {
            Ok(generated) => generated,
            // `generate --out - | head`: the reader has what it wanted, as with any Unix filter.
            Err(e) if closed_pipe(&e) => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(e),
        }
    } else {
        if out.is_dir() {
            anyhow::bail!(
                "--out {}: is a directory; name the workload file",
                out.display()
            );
        }
        // Written to a temporary file beside the target and renamed at the end: a failed run
        // leaves neither a half workload nor its temporary file.
        let dir = match out.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        };
        let partial = tempfile::Builder::new()
            .prefix(".llmvolley-generate-")
            .tempfile_in(dir)
            .with_context(|| format!("--out {}: cannot write there", out.display()))?;
        let mut writer = std::io::BufWriter::with_capacity(256 * 1024, partial);
        let generated = generate::generate(&config.recipe, &mut writer)?;
        let partial = writer.into_inner().map_err(|e| e.into_error())?;
        partial
            .persist(out)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", out.display()))?;
        generated
    };
    let recipe = &config.recipe;
    let mut text = format!(
        "wrote {} to {} in {:.1} s (tokens counted with {})\n",
        plural(generated.lines, "line"),
        if to_stdout {
            "stdout".to_string()
        } else {
            out.display().to_string()
        },
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
    if generated.clamped > 0 {
        text.push_str(&format!(
            "  {} outside 1..={} tokens, clamped to it (a wide spread: narrow it, or use lognormal)\n",
            plural(generated.clamped, "draw"),
            crate::workload::generate::MAX_TOKENS
        ));
    }
    if generated.raised > 0 {
        text.push_str(&format!(
            "  {} raised to the prefix plus one token\n",
            plural(generated.raised, "drawn input length")
        ));
    }
    if generated.skipped > 0 {
        text.push_str(&format!(
            "  {} skipped: {}\n",
            plural(generated.skipped, "record"),
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
            "  {} do not count exactly their input_length with this tokenizer (it merged tokens across a block boundary)\n",
            plural(generated.inexact, "prompt")
        ));
    }
    // The summary goes to stderr when the workload itself goes to stdout.
    if to_stdout {
        eprintln!("{}", text.trim_end());
    } else {
        crate::export::print_line(text.trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `1 line`, `2 lines`.
fn plural(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Whether `e` is a write to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
