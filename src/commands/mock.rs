//! `llmvolley mock`: serves the embedded mock endpoint until Ctrl-C.

use crate::cli::MockArgs;
use crate::config::mock_config;
use anyhow::Context;
use std::process::ExitCode;

pub async fn mock(args: MockArgs) -> anyhow::Result<ExitCode> {
    let addr = std::net::SocketAddr::new(args.host, args.port);
    let listener = crate::mock::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    crate::export::print_line(&format!(
        "llmvolley mock listening on http://{addr}/v1 (Ctrl-C stops it)"
    ))?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::mock::serve(listener, mock_config(&args.knobs), shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
