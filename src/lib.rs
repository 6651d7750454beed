//! llmvolley: drives OpenAI-compatible LLM endpoints with JSONL workloads and records every request.
//!
//! - `cli`: raw command-line arguments (clap derive)
//! - `config`: validated settings built from them
//! - `commands`: one orchestration per subcommand
//! - `workload`: the streaming JSONL reader (request bodies and OpenAI Batch lines)
//! - `scheduler`: when requests are sent (closed loop)
//! - `client`: how they are sent and how answers are read
//! - `record`: the one row per workload line
//! - `collector`: the single owner of output files, statistics and progress
//! - `sink`: output formats behind one trait
//! - `stats`: histograms and the summary
//! - `cost`: prices, dollars per record and run, estimates before a run
//! - `run_folder`: the run folder's layout
//! - `resume`: continuing a run folder, one final record per id
//! - `tokenize`: client-side token counts (tiktoken)
//! - `mock`: the embedded OpenAI-compatible mock endpoint

pub mod cli;
pub mod client;
pub mod collector;
pub mod commands;
pub mod config;
pub mod cost;
pub mod cpu;
pub mod mock;
pub mod record;
pub mod resume;
pub mod run_folder;
pub mod scheduler;
pub mod sink;
pub mod stats;
pub mod tokenize;
pub mod workload;
