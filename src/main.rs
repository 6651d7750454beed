//! The `llmvolley` binary: parse arguments, start the runtime, run the command, exit with its code.

use llmvolley::cli::Cli;
use llmvolley::commands::{EXIT_SETUP, dispatch};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    if cli.verbose() {
        // Our own debug lines only; libraries speak up from warnings on.
        let filter = Targets::new()
            .with_target("llmvolley", Level::DEBUG)
            .with_default(Level::WARN);
        let stderr = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false);
        tracing_subscriber::registry()
            .with(stderr)
            .with(filter)
            .init();
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        // On a worker, not the main thread: the dispatcher and the requests it starts then share
        // a thread instead of waking each other across threads for every request.
        Ok(runtime) => runtime.block_on(async {
            match tokio::spawn(dispatch(cli)).await {
                Ok(code) => code,
                // A panic stays a panic (exit 101), not a setup error.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => ExitCode::from(EXIT_SETUP),
            }
        }),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}
