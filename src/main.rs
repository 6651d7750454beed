//! The `llmvolley` binary: parse arguments, start the runtime, run the command, exit with its code.

use clap::Parser;
use llmvolley::cli::Cli;
use llmvolley::commands::{EXIT_SETUP, dispatch};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(dispatch(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}
