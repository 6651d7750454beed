//! llmvolley: drives OpenAI-compatible LLM endpoints with JSONL workloads and records every request.
//!
//! - `cli`: raw command-line arguments (clap derive)
//! - `modes`, `duration`: the modes (load profiles) and durations flags, settings and summaries share
//! - `config`: validated settings built from them
//! - `commands`: one orchestration per subcommand
//! - `workload`: the streaming JSONL reader (request bodies and OpenAI Batch lines)
//! - `scheduler`: when requests are sent (closed loop, bench plans) and again (`Requester`: retries,
//!   server-requested waits, pacing)
//! - `client`: how one attempt is sent and how its answer is read
//! - `record`: the one row per workload line
//! - `report`: what the HTML report shows, read from run folders; `.hgrm` percentile text
//! - `collector`: the single owner of output files, statistics and progress
//! - `sink`: output formats behind one trait
//! - `stats`: counters, histograms and the summary's data, mergeable; no formatting
//! - `export`: the summary and the sweep rendered (text, JSON, CSV), one exporter per format
//! - `capacity`: a probe's judgement with its uncertainty, over-saturation, the cut that ends a
//!   step early, and the search's bracket-and-bisect
//! - `compare`: two sides' runs compared figure by figure, with a bootstrap verdict against the noise
//! - `cost`: prices, dollars per record and run, the `--max-cost` budget, estimates before a run
//! - `run_folder`: the run folder's layout
//! - `shard`: which lines one of N copies of a job sends, and its share of the job's totals
//! - `resume`: continuing a run folder, one final record per id
//! - `tokenize`: client-side token counts (tiktoken, Hugging Face tokenizer.json)
//! - `batch_api`: the Batch API path's parts, `batches.json`, and its files joined back into records
//! - `mock`: the embedded OpenAI-compatible mock endpoint
//! - `scrape`: the server's own Prometheus metrics, read beside the load (`--scrape`)
//!
//! No module depends on another that depends back on it: `scripts/module-cycles src` checks (CI runs it).

pub mod batch_api;
pub mod batch_output;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod collector;
pub mod commands;
pub mod compare;
pub mod config;
pub mod conversation;
pub mod cost;
pub mod cpu;
pub mod duration;
pub mod export;
pub mod inert;
pub mod mock;
pub mod modes;
pub mod output_check;
pub mod record;
pub mod report;
pub mod resume;
pub mod run_folder;
pub mod scheduler;
pub mod scrape;
pub mod secrets;
pub mod shard;
pub mod sink;
pub mod stats;
pub mod tokenize;
pub mod tool_check;
pub mod workload;
