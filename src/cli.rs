//! Command-line arguments as typed, unvalidated input (clap derive); `config` turns them into settings.

use crate::cost::Tier;
pub use crate::duration::parse_duration;
pub use crate::modes::{Profile, SweepArrivals};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// `--prices`, with the built-in prices' snapshot (`scripts/update-prices` writes it).
const PRICES_HELP: &str = concat!(
    "Price file: LiteLLM's model_prices_and_context_window.json, or {\"models\": {NAME: {\"input\": USD/1M, \"output\": USD/1M, ...}}}; extends and overrides the built-in prices (",
    include_str!("cost/prices_snapshot.txt"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "llmvolley",
    version,
    about = "Drive OpenAI-compatible LLM endpoints with JSONL workloads and record what every request did."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The heading of the embedded mock's knobs in `run` and `bench`, which `-h` folds away.
pub const MOCK_HEADING: &str = "Mock (with --mock; listed by --help)";

impl Cli {
    /// Parses the process's arguments (exits with clap's message on bad ones).
    pub fn parse_args() -> Cli {
        use clap::FromArgMatches;
        Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
    }

    /// Whether the command logs its debug lines (`-v`, which only `run` and `bench` take).
    pub fn verbose(&self) -> bool {
        match &self.command {
            Command::Run(args) => args.verbose,
            Command::Bench(args) => args.verbose,
            _ => false,
        }
    }
}

/// The command line: `run` and `bench` fold the mock's knobs out of `-h` (a third of it), and
/// `--help` lists them.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
        .mut_subcommand("run", fold_mock_knobs)
        .mut_subcommand("bench", fold_mock_knobs)
}

fn fold_mock_knobs(command: clap::Command) -> clap::Command {
    let knobs: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(MOCK_HEADING))
        .map(|a| a.get_id().clone())
        .collect();
    knobs.into_iter().fold(command, |command, id| {
        command.mut_arg(id, |a| a.hide_short_help(true))
    })
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send every line of a JSONL workload and record each outcome in a run folder.
    #[command(after_help = "Examples:
  llmvolley run workloads/varied-1000.jsonl --mock -c 32
  llmvolley run prompts.jsonl --endpoint https://api.openai.com/v1 -c 32 --max-cost 5 --out results/prompts --resume")]
    Run(Box<RunArgs>),
    /// Serve the embedded OpenAI-compatible mock endpoint on 127.0.0.1.
    #[command(after_help = "Examples:
  llmvolley mock --port 18555 --mock-ttft 50ms --mock-itl 2ms
  llmvolley mock --port 0 --mock-fault-rate 0.2 --mock-faults rate_limit,server_error")]
    Mock(MockArgs),
    /// Estimate a workload's tokens and dollars without sending anything.
    #[command(after_help = "Examples:
  llmvolley estimate workloads/varied-1000.jsonl
  llmvolley estimate prompts.jsonl --model gpt-4.1-mini --model gpt-5.1 --from-run results/trial")]
    Estimate(EstimateArgs),
    /// Benchmark a server: a load profile (closed loop, open-loop rates, a timed trace replay, sweep) over a workload.
    #[command(after_help = "Examples:
  llmvolley bench workloads/varied-1000.jsonl --endpoint http://127.0.0.1:8000/v1 --stream --profile constant --rate 20 --duration 60s --warmup 10s --slo ttft=500ms,tpot=50ms
  llmvolley bench workloads/varied-1000.jsonl --endpoint http://127.0.0.1:8000/v1 --stream --profile sweep --steps 5 --duration 30s")]
    Bench(Box<BenchArgs>),
    /// Write a run folder's records in workload order, as OpenAI Batch output files, as Parquet, or its histograms as .hgrm text.
    #[command(after_help = "Examples:
  llmvolley export results/prompts --ordered > records-in-order.jsonl
  llmvolley export results/prompts --batch
  llmvolley export results/prompts --parquet --hgrm")]
    Export(ExportArgs),
    /// Compare two runs (or two sets of repeated runs): each headline figure, its change, and
    /// whether the change is larger than the noise (bootstrap over the per-request records).
    #[command(after_help = "Examples:
  llmvolley compare results/before results/after
  llmvolley compare results/a1 results/a2 results/a3 vs results/b1 results/b2 results/b3 --fail-if-worse 5
  llmvolley compare results/before results/after --metric ttft.p99 --metric requests_per_s --json")]
    Compare(CompareArgs),
    /// Write one self-contained HTML report (charts and tables) of one or more run folders or sweeps.
    #[command(after_help = "Examples:
  llmvolley report results/bench-a
  llmvolley report results/before results/after -o before-after.html
  llmvolley report results/sweep results/sweep/steps/02-throughput")]
    Report(ReportArgs),
    /// Write a workload: synthetic prompts of exact token lengths, a dataset's prompts, or a
    /// trace's timed requests, one Batch line each.
    #[command(after_help = "Examples:
  llmvolley generate --model gpt-4.1-mini --input-tokens 512 --output-tokens 128 --count 1000 --out w.jsonl
  llmvolley generate --model meta-llama/Llama-3.1-8B-Instruct --tokenizer tokenizer.json --api chat --input-tokens normal:1024,256 --output-tokens 256 --ignore-eos --prefix-tokens 512 --prefix-groups 8 --count 500 --out prefix.jsonl
  llmvolley generate --model gpt-4.1-mini --from sharegpt ShareGPT_V3.json --count 1000 --seed 1 --out sharegpt.jsonl
  llmvolley generate --model gpt-4.1-mini --from mooncake mooncake_trace.jsonl --out trace.jsonl")]
    Generate(GenerateArgs),
    /// Merge the run folders of one job's shards into the folder a single process would have written.
    #[command(after_help = "Examples:
  llmvolley merge results/shard-0 results/shard-1 results/shard-2 results/shard-3 --out results/job
  llmvolley merge results/shard-* --out results/job")]
    Merge(MergeArgs),
    /// Send a workload through the OpenAI Batch API at half the live price: parts uploaded, one
    /// batch each, polled, downloaded and joined back into the run folder a live run writes.
    #[command(after_help = "Examples:
  llmvolley batch workloads/varied-1000.jsonl --mock --out results/batch
  llmvolley batch prompts.jsonl --endpoint https://api.openai.com/v1 --out results/b1
  llmvolley batch prompts.jsonl --out results/b1 --resume     # re-attach after a crash
  llmvolley batch --cancel results/b1")]
    Batch(Box<BatchArgs>),
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The workload: Batch lines or bare request bodies (a bare body's line number is its
    /// custom_id in the uploaded file).
    #[arg(required_unless_present = "cancel")]
    pub workload: Option<PathBuf>,

    #[command(flatten)]
    pub target: EndpointArgs,

    /// Run folder (default: results/<workload>-<time>); with --resume, the folder to re-attach.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Re-attach to the batches in --out's batches.json: nothing is uploaded or created twice;
    /// lines an expired or cancelled batch did not do go in as a new part.
    #[arg(long, requires = "out")]
    pub resume: bool,

    /// Cancel every batch of this run folder that has not ended.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["resume", "out"])]
    pub cancel: Option<PathBuf>,

    /// Lines per batch at most (the API's limit: 50,000; a part is also at most 200 MB).
    #[arg(long, value_name = "N", default_value_t = crate::batch_api::MAX_LINES, value_parser = parse_batch_lines)]
    pub max_batch_lines: usize,

    /// How often the batches are asked how far they got.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub poll_every: Duration,

    /// No progress lines.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub request: RequestArgs,

    #[command(flatten, next_help_heading = MOCK_HEADING)]
    pub mock_knobs: MockKnobs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The workload file to write (replaced when it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// The model every request names; it also picks the tiktoken encoding lengths are counted in.
    #[arg(long)]
    pub model: String,

    /// API the requests are for.
    #[arg(long, value_enum, default_value_t = Api::Responses)]
    pub api: Api,

    /// Synthetic prompts of this many tokens: N, uniform:LOW..HIGH, normal:MEAN,SD or
    /// lognormal:MEAN,SD (the prompt's own tokens, a shared prefix included; the API adds its framing).
    #[arg(long, value_name = "SPEC", value_parser = crate::workload::generate::Lengths::parse, conflicts_with = "from")]
    pub input_tokens: Option<crate::workload::generate::Lengths>,

    /// Cap each answer at this many tokens (same SPEC forms): max_output_tokens (Responses) or
    /// max_tokens (Chat) [default with --from sharegpt: the recorded answer's length; with
    /// --from mooncake: its output_length].
    #[arg(long, value_name = "SPEC", value_parser = crate::workload::generate::Lengths::parse)]
    pub output_tokens: Option<crate::workload::generate::Lengths>,

    /// Also send ignore_eos and min_tokens equal to the cap (vLLM, SGLang), so every answer has
    /// exactly the cap's length; OpenAI's API refuses these fields.
    #[arg(long)]
    pub ignore_eos: bool,

    /// Start every prompt with one of --prefix-groups shared prefixes of this many tokens (a
    /// prefix-cache benchmark); counted in --input-tokens.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub prefix_tokens: Option<u32>,

    /// How many different shared prefixes (line i takes prefix i mod K).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000), requires = "prefix_tokens")]
    pub prefix_groups: u32,

    /// Ask for streamed answers ("stream": true; Chat also asks for the usage chunk).
    #[arg(long)]
    pub stream: bool,

    /// Lines to write: synthetic prompts, a random sample of a dataset, the first lines of a trace.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Seed of every draw (lengths, corpus positions, dataset sample): the same seed writes the
    /// same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Count tokens with this Hugging Face tokenizer.json (the model the server runs) instead of
    /// tiktoken.
    #[arg(long, value_name = "PATH")]
    pub tokenizer: Option<PathBuf>,

    /// Read prompts from a dataset or trace instead: sharegpt, jsonl, csv or mooncake, and its file.
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"])]
    pub from: Vec<String>,

    /// --from jsonl: the prompt's field, a dotted path (messages.0.content).
    #[arg(long, value_name = "PATH", default_value = "prompt")]
    pub field: String,

    /// --from csv: the prompt's column.
    #[arg(long, value_name = "NAME", default_value = "prompt")]
    pub column: String,

    /// --from jsonl: the field (a dotted path) holding each record's id, used as its custom_id
    /// [default: jsonl-LINE].
    #[arg(long, value_name = "PATH")]
    pub id_field: Option<String>,

    /// --from csv: the column holding each row's id, used as its custom_id [default: csv-ROW].
    #[arg(long, value_name = "NAME")]
    pub id_column: Option<String>,

    /// --from jsonl: fields (dotted paths, comma-separated) carried into each line's `metadata`
    /// (not sent; copied into its record).
    #[arg(long, value_name = "PATH,...", value_delimiter = ',')]
    pub metadata_fields: Vec<String>,

    /// --from csv: columns (comma-separated) carried into each line's `metadata` (not sent;
    /// copied into its record).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub metadata_columns: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Every shard's run folder (of one workload and one shard count, each shard once).
    #[arg(required = true, value_name = "SHARD_DIR")]
    pub dirs: Vec<PathBuf>,

    /// The merged run folder (missing or empty).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run folders (their distributions are overlaid) and sweep folders (their curves).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub dirs: Vec<PathBuf>,

    /// The HTML file [default: RUN_DIR/report.html for one folder, report.html for several].
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// BASE NEW, or BASE... vs NEW... for several runs per side (repeats of one set-up).
    #[arg(required = true, num_args = 2.., value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,

    /// Rows to compare (repeatable): requests_per_s, output_tokens_per_s, error_rate, cost_per_1k,
    /// or a percentile of latency, latency_from_schedule, queue, ttft, ttfo, tpot (ttft.p99)
    /// [default: the headline figures].
    #[arg(long, value_name = "METRIC", value_parser = crate::compare::Figure::parse)]
    pub metric: Vec<crate::compare::Figure>,

    /// Print the comparison as JSON instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Exit 3 when a row is worse beyond the noise and by more than PCT percent.
    #[arg(long, value_name = "PCT")]
    pub fail_if_worse: Option<f64>,

    /// Two-sided confidence of each row's interval.
    #[arg(long, default_value_t = 0.95, value_name = "0..1")]
    pub confidence: f64,

    /// Bootstrap resamples per row.
    #[arg(long, default_value_t = 2000, value_name = "N", value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    pub resamples: u32,

    /// Seed of the resampling (the same seed gives the same intervals).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Changes smaller than PCT percent (points for the error rate) are "no change", however
    /// narrow their interval; so are changes below one request's worth of a rate.
    #[arg(long, default_value_t = 1.0, value_name = "PCT")]
    pub min_change: f64,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run folder.
    pub dir: PathBuf,

    /// Write the records sorted by workload line (records.jsonl is in completion order).
    #[arg(long)]
    pub ordered: bool,

    /// Write output.jsonl and errors.jsonl (OpenAI Batch output format) into the run folder; the
    /// response bodies are there only if the run kept them (--save-responses or --batch-output).
    #[arg(long)]
    pub batch: bool,

    /// With --ordered: write to this file instead of stdout.
    #[arg(long, value_name = "FILE", requires = "ordered")]
    pub out: Option<PathBuf>,

    /// Write records.parquet into the run folder (always there; --out is for --ordered): the records
    /// with typed columns, for pandas, Polars, DuckDB.
    #[arg(long)]
    pub parquet: bool,

    /// Write histograms/*.hgrm (percentile distribution text) beside each saved histogram, for
    /// run folders made before llmvolley wrote them itself.
    #[arg(long)]
    pub hgrm: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// JSONL workload, cycled to fill --duration or --requests (a trace is sent once, in time
    /// order); every line must be valid.
    pub workload: PathBuf,

    #[command(flatten)]
    pub target: EndpointArgs,

    /// Load profile.
    #[arg(help_heading = "Load", long, value_enum, default_value_t = Profile::Concurrent)]
    pub profile: Profile,

    /// Requests in flight for --profile concurrent [default: 8].
    #[arg(display_order = 3, short = 'c', long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: Option<u32>,

    /// Arrivals per second for --profile constant and poisson; a rate search's first probe
    /// [default: the synchronous probe's rate].
    #[arg(help_heading = "Load", long, value_name = "R")]
    pub rate: Option<f64>,

    /// Seed of Poisson arrivals: the same seed gives the same schedule.
    #[arg(help_heading = "Load", long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Requests in flight at most for open-loop and throughput profiles; further arrivals wait
    /// (their queue_ms shows it) or, with --drop-when-full, are recorded as dropped.
    #[arg(help_heading = "Load", long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_inflight: u32,

    /// Record arrivals that find --max-inflight requests in flight as `dropped` instead of waiting.
    #[arg(help_heading = "Load", long)]
    pub drop_when_full: bool,

    /// Trace: replay this many times faster than the timestamps say (0.5 is half speed).
    #[arg(help_heading = "Load", long, value_name = "X")]
    pub trace_speed: Option<f64>,

    /// Sweep: rate steps from the synchronous rate up to 1.1× the throughput step's, so the
    /// knee is inside the range [default: 5].
    #[arg(help_heading = "Load", long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=100), conflicts_with = "rates")]
    pub steps: Option<u32>,

    /// Sweep: these rates (requests per second, comma-separated), in this order, instead of the
    /// synchronous and throughput steps and the rates between them.
    #[arg(help_heading = "Load", long, value_name = "R,...", value_delimiter = ',', value_parser = parse_rate_step)]
    pub rates: Vec<f64>,

    /// Sweep: arrivals of the rate steps.
    #[arg(help_heading = "Load", long, value_enum, default_value_t = SweepArrivals::Constant)]
    pub sweep_arrivals: SweepArrivals,

    /// Search: what is searched, the open loop's rate or the closed loop's -c.
    #[arg(help_heading = "Search", long = "search", value_enum, value_name = "OVER", default_value_t = crate::modes::SearchOver::Rate)]
    pub search_over: crate::modes::SearchOver,

    /// Search: stop bisecting once the lowest failing load is within this of the highest passing
    /// one (5%, or 0.05).
    #[arg(help_heading = "Search", long, value_name = "SHARE", default_value = "5%", value_parser = parse_percent)]
    pub precision: f64,

    /// Search: the share of requests that must meet every per-request --slo (ttft=500ms) for a
    /// probe to pass.
    #[arg(help_heading = "Search", long, value_name = "SHARE", default_value = "99%", value_parser = parse_percent)]
    pub attainment: f64,

    /// Search: how many more --duration spans a probe whose objectives are still inconclusive
    /// (an interval across its limit) runs for before it is judged on its figures.
    #[arg(help_heading = "Search", long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub max_extensions: u32,

    /// Search: a time budget; no probe starts that could not end within it (its --duration and
    /// every extension), and the search says what is known so far.
    #[arg(help_heading = "Search", long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<Duration>,

    /// Measure for this long (each sweep step, each search probe), after the warm-up.
    #[arg(help_heading = "Limits and retries", long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Measure this many requests (each sweep step), after the warm-up [default: the workload's
    /// line count when --duration is not given].
    #[arg(help_heading = "Limits and retries", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Send first, then leave out of the statistics: a count (100) or a time (10s, 500ms).
    #[arg(help_heading = "Limits and retries", long, value_name = "N|DURATION", value_parser = parse_warmup)]
    pub warmup: Option<crate::scheduler::Warmup>,

    /// Retries after a retryable failure. Off by default: a retried request measures two.
    #[arg(
        help_heading = "Limits and retries",
        long,
        value_name = "N",
        default_value_t = 0
    )]
    pub max_retries: u32,

    /// After an interrupt, how long requests in flight may take to finish before they are abandoned.
    #[arg(help_heading = "Limits and retries", long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Run folder [default: results/<workload>-<UTC time>]; an existing non-empty folder is refused.
    #[arg(display_order = 4, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// No progress bar (nor the plain progress lines written when stderr is not a terminal).
    #[arg(display_order = 7, short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub request: RequestArgs,

    /// Service-level objectives: per request for goodput (ttft=500ms,tpot=50ms,e2e=10s, any
    /// subset) and, for a search, on percentiles (ttft.p99=500ms).
    #[arg(help_heading = "Gates", long, value_name = "NAME=DURATION,...", value_parser = crate::stats::Objectives::parse)]
    pub slo: Option<crate::stats::Objectives>,

    #[command(flatten)]
    pub gates: GateArgs,

    #[command(flatten)]
    pub verdicts: VerdictArgs,

    #[command(flatten)]
    pub sharding: ShardArgs,

    /// Debug log on stderr: the effective settings, then each attempt's status and error kind,
    /// each retry and each pause the server asked for (never secrets).
    #[arg(display_order = 6, short, long)]
    pub verbose: bool,

    #[command(flatten, next_help_heading = MOCK_HEADING)]
    pub mock_knobs: MockKnobs,
}

#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// JSONL workload: one request body or OpenAI Batch line per line.
    pub workload: PathBuf,

    /// API for bare request bodies (decides how messages are read and framed) [default: each
    /// body's shape: "messages" is chat, else responses].
    #[arg(long, value_enum)]
    pub api: Option<Api>,

    /// Price the workload on this model instead of the ones its bodies name; repeat to compare.
    #[arg(long = "model", value_name = "MODEL")]
    pub models: Vec<String>,

    /// Assume every request produces N output tokens.
    #[arg(long, value_name = "N", conflicts_with = "from_run")]
    pub assume_output: Option<u64>,

    /// Use the output tokens an earlier run measured (p10 / mean / p90 of its ok records).
    #[arg(long, value_name = "DIR")]
    pub from_run: Option<PathBuf>,

    /// Price list.
    #[arg(long, value_enum, default_value_t = Tier::Standard)]
    pub tier: Tier,

    #[arg(long, value_name = "FILE", help = PRICES_HELP)]
    pub prices: Option<PathBuf>,

    /// Count tokens with this Hugging Face tokenizer.json (open models) instead of tiktoken.
    #[arg(long, value_name = "PATH")]
    pub tokenizer: Option<PathBuf>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which API a bare request body is sent to (a Batch line's `url` overrides it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// POST {base}/responses
    Responses,
    /// POST {base}/chat/completions
    Chat,
    /// POST {base}/completions (legacy text completions: `prompt`)
    Completions,
    /// POST {base}/embeddings
    Embeddings,
    /// POST {base}/moderations
    Moderations,
}

impl Api {
    pub fn route(self) -> crate::workload::Route {
        match self {
            Api::Responses => crate::workload::Route::Responses,
            Api::Chat => crate::workload::Route::Chat,
            Api::Completions => crate::workload::Route::Completions,
            Api::Embeddings => crate::workload::Route::Embeddings,
            Api::Moderations => crate::workload::Route::Moderations,
        }
    }

    /// Where lines without a route of their own go: the named API's, else each body's shape's.
    pub fn default_route(api: Option<Api>) -> crate::workload::DefaultRoute {
        match api {
            Some(api) => crate::workload::DefaultRoute::Forced(api.route()),
            None => crate::workload::DefaultRoute::ByShape,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// JSONL workload: one request body or OpenAI Batch line per line.
    pub workload: PathBuf,

    #[command(flatten)]
    pub target: EndpointArgs,

    /// Requests in flight at most: the closed loop's concurrency, or with --rate the cap.
    #[arg(display_order = 3, short = 'c', long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// Send lines on a constant schedule of R per second (open loop), at most -c in flight; lines
    /// due while -c are in flight wait (queue_ms shows it). Without it, a closed loop of -c.
    #[arg(help_heading = "Load", long, value_name = "R")]
    pub rate: Option<f64>,

    /// Stop sending after this long; lines not sent by then are recorded as cancelled
    /// (error.kind "limit") and a later --resume sends them.
    #[arg(help_heading = "Limits and retries", long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Send at most N lines (a trial on the first lines); the rest are recorded as cancelled
    /// (error.kind "limit") and a later --resume sends them.
    #[arg(help_heading = "Limits and retries", long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Retries after a retryable failure (408, 409, 429, 5xx, timeouts, connection errors, broken streams).
    #[arg(
        help_heading = "Limits and retries",
        long,
        value_name = "N",
        default_value_t = 5
    )]
    pub max_retries: u32,

    /// After an interrupt, how long requests in flight may take to finish before they are abandoned.
    #[arg(help_heading = "Limits and retries", long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,

    /// Run folder [default: results/<workload>-<UTC time>]; an existing non-empty folder is refused.
    #[arg(display_order = 4, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Also write the results in the OpenAI Batch output format: output.jsonl (answers) and
    /// errors.jsonl (the rest), one line per custom_id with the full response body (implies
    /// --save-responses).
    #[arg(help_heading = "Output", long)]
    pub batch_output: bool,

    /// Check every line before sending anything; refuse to start on the first bad line.
    #[arg(help_heading = "Limits and retries", long)]
    pub strict: bool,

    /// No progress bar (nor the plain progress lines written when stderr is not a terminal).
    #[arg(display_order = 7, short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub request: RequestArgs,

    /// Continue the run in --out DIR (lines whose latest record is ok are not sent again), or start
    /// it there when the folder is missing or empty: the same command line starts and continues.
    #[arg(help_heading = "Resume", long, requires = "out")]
    pub resume: bool,

    /// With --resume, also send again the lines whose latest record failed.
    #[arg(help_heading = "Resume", long, requires = "resume")]
    pub retry_failed: bool,

    #[command(flatten)]
    pub gates: GateArgs,

    #[command(flatten)]
    pub verdicts: VerdictArgs,

    #[command(flatten)]
    pub sharding: ShardArgs,

    /// Debug log on stderr: the effective settings, then each attempt's status and error kind,
    /// each retry and each pause the server asked for (never secrets).
    #[arg(display_order = 6, short, long)]
    pub verbose: bool,

    #[command(flatten, next_help_heading = MOCK_HEADING)]
    pub mock_knobs: MockKnobs,
}

/// What a finished run is judged on and how its summary is handed to CI: `run` and `bench`.
#[derive(Debug, Args)]
pub struct VerdictArgs {
    /// Fail (exit 3) when one of these holds at the end: any percentile of latency, ttft, tpot,
    /// itl, queue... (ttft.p99>500ms) or of the token lengths input_length and output_length
    /// (output_length.p50<128), error_rate>1%, requests_per_s<10, goodput<10/s (bench with --slo), cost>$5, or any
    /// number of summary.json by its dotted path; comma-separated.
    #[arg(help_heading = "Gates", long, value_name = "EXPR,...", value_parser = crate::stats::gate::Thresholds::parse)]
    pub fail_on: Option<crate::stats::gate::Thresholds>,

    /// Also write the summary as a Markdown table to FILE (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(help_heading = "Gates", long, value_name = "FILE")]
    pub summary_markdown: Option<PathBuf>,
}

/// One copy of a job run as N (a Kubernetes Indexed Job, a Slurm array): `run` and `bench`.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Send only shard I of N of the workload (0-based, e.g. 0/4): lines are split by their id;
    /// -c, --rps, --rpm, --tpm, --rate and --max-cost are then job totals, of which this shard takes
    /// its share.
    #[arg(help_heading = "Shards", long, value_name = "I/N", value_parser = crate::shard::Shard::parse, conflicts_with = "shards")]
    pub shard: Option<crate::shard::Shard>,

    /// As --shard, with this copy's index from JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or
    /// SLURM_ARRAY_TASK_ID (Slurm array).
    #[arg(help_heading = "Shards", long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,

    /// Start sending at this wall-clock instant (RFC 3339, e.g. 2026-12-01T10:00:00Z), so every
    /// shard of a benchmark starts its schedule together; a time already past starts at once.
    #[arg(help_heading = "Shards", long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
}

/// `--start-at`: an RFC 3339 instant with its zone, `Z` or an offset such as `+01:00`.
fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    let wrong = || {
        format!(
            "{text:?}: give an RFC 3339 time with its zone, e.g. 2026-12-01T10:00:00Z or 2026-12-01T11:00:00+01:00"
        )
    };
    let (local, offset_s) = if let Some(utc) = text.strip_suffix(['Z', 'z']) {
        (utc, 0i64)
    } else {
        let at = text.len().checked_sub(6).ok_or_else(wrong)?;
        let (local, offset) = text.split_at(at);
        let sign = match offset.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(wrong()),
        };
        let (h, m) = offset[1..].split_once(':').ok_or_else(wrong)?;
        let (h, m): (i64, i64) = (
            h.parse().map_err(|_| wrong())?,
            m.parse().map_err(|_| wrong())?,
        );
        (local, sign * (h * 3600 + m * 60))
    };
    let as_utc = humantime::parse_rfc3339_weak(&format!("{local}Z")).map_err(|_| wrong())?;
    let shift = Duration::from_secs(offset_s.unsigned_abs());
    Ok(if offset_s >= 0 {
        as_utc - shift
    } else {
        as_utc + shift
    })
}

/// How conversation lines (and, with --tool-loop, every line) run: `run` and `bench`.
#[derive(Debug, Args)]
pub struct ConversationArgs {
    /// Answer every answer's function calls and send the results back (function_call_output, or
    /// Chat tool messages), until an answer makes no call or --max-turns: every line becomes a
    /// conversation. Lines with "turns" or "tool_outputs" are conversations anyway.
    #[arg(help_heading = "Conversations", long)]
    pub tool_loop: bool,

    /// Requests per conversation at most (tool rounds and user turns together).
    #[arg(help_heading = "Conversations", long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_turns: u32,

    /// Pause before each following user turn (not before tool results): 2s, or 1s..3s uniform.
    #[arg(help_heading = "Conversations", long, value_name = "D|D1..D2", value_parser = crate::conversation::ThinkTime::parse)]
    pub think_time: Option<crate::conversation::ThinkTime>,

    /// Responses conversations: carry the whole history in each request's input (client), or
    /// only the new items with previous_response_id (server; the server must store responses).
    #[arg(help_heading = "Conversations", long, value_enum, default_value_t = crate::conversation::ResponsesState::Client)]
    pub responses_state: crate::conversation::ResponsesState,
}

/// What every launch passes, whatever the command: rate limits, ramp-up, the cost budget.
#[derive(Debug, Args)]
pub struct GateArgs {
    #[command(flatten)]
    pub conversations: ConversationArgs,

    /// Send at most this many requests per second, evenly spaced (retries included).
    #[arg(help_heading = "Load", long, value_name = "N")]
    pub rps: Option<f64>,

    /// Send at most this many requests per minute, evenly spaced.
    #[arg(help_heading = "Load", long, value_name = "N")]
    pub rpm: Option<f64>,

    /// Send at most this many tokens per minute, spread evenly (a bucket refilled continuously
    /// that holds 100 ms of them; estimated: body bytes / 4 plus the body's max_output_tokens,
    /// else 256; tokens an answer used beyond its estimate are charged before its slot is freed).
    #[arg(help_heading = "Load", long, value_name = "N")]
    pub tpm: Option<u32>,

    /// Closed loop: start the first requests evenly over this span (e.g. 2s) instead of all at once.
    #[arg(help_heading = "Load", long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub ramp_up: Duration,

    /// Stop sending once spent dollars plus the estimate for requests in flight would pass USD;
    /// the request that would pass it, and every line not sent after it, is recorded as
    /// skipped_budget.
    #[arg(help_heading = "Cost", long, value_name = "USD")]
    pub max_cost: Option<f64>,

    /// Stop the run (exit 2, one line saying what to check) when its first N attempts all fail the
    /// same way: no connection, or all 401, 403 or 404; lines not sent are recorded for --resume.
    /// 0: never give up.
    #[arg(
        help_heading = "Limits and retries",
        long,
        value_name = "N",
        default_value_t = 10
    )]
    pub give_up_after: u32,
}

/// Where requests go and how they are sent: shared by `run` and `bench`.
#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Base URL as the OpenAI SDKs take it, e.g. https://api.openai.com/v1 [default: $OPENAI_BASE_URL]
    #[arg(display_order = 1, long, value_name = "URL", conflicts_with = "mock")]
    pub endpoint: Option<String>,

    /// Run against the embedded mock endpoint instead of a server (no key needed).
    #[arg(display_order = 2, long)]
    pub mock: bool,

    /// API for bare request bodies and Batch lines without a url; a body of the other API's
    /// shape is refused [default: each body's shape: "messages" is chat, else responses].
    #[arg(help_heading = "Endpoint and API key", long, value_enum)]
    pub api: Option<Api>,

    /// Environment variable holding the API key.
    #[arg(
        help_heading = "Endpoint and API key",
        long,
        value_name = "NAME",
        default_value = "OPENAI_API_KEY"
    )]
    pub api_key_env: String,

    /// File holding the API key (first line), instead of the environment.
    #[arg(help_heading = "Endpoint and API key", long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Extra request header, repeatable: -H 'Name: value'.
    #[arg(
        help_heading = "Endpoint and API key",
        short = 'H',
        long = "header",
        value_name = "'NAME: VALUE'"
    )]
    pub headers: Vec<String>,

    /// Accept any TLS certificate (self-signed test servers). Certificates are verified otherwise.
    #[arg(help_heading = "Endpoint and API key", long)]
    pub insecure: bool,

    /// Close pooled connections unused for this long: below the servers' keep-alive timeouts
    /// (uvicorn 5 s), so a request never goes out on a connection the server is closing.
    #[arg(help_heading = "Endpoint and API key", long, value_name = "DURATION", default_value = "4s", value_parser = parse_duration)]
    pub pool_idle_timeout: Duration,

    /// Speak HTTP/2 to http:// endpoints without negotiation (h2c prior knowledge): many requests
    /// share one connection. https:// endpoints negotiate HTTP/2 by themselves.
    #[arg(help_heading = "Endpoint and API key", long)]
    pub http2: bool,

    /// Stream every request: set `"stream": true` in each body (Chat bodies also get
    /// `stream_options.include_usage: true`). Bodies that already ask for streaming stream anyway.
    #[arg(display_order = 5, long)]
    pub stream: bool,

    /// Scrape Prometheus metrics from URL beside the load, repeatable (the inference server's
    /// /metrics, a DCGM exporter, a node exporter); `auto` tries the endpoint's own origin
    /// /metrics and says what it found. Written to server_metrics.csv and summary.json's `server`.
    #[arg(help_heading = "Server metrics", long, value_name = "URL|auto")]
    pub scrape: Vec<String>,

    /// How often --scrape reads its targets; a scrape slower than this is abandoned and retried at
    /// the next tick.
    #[arg(help_heading = "Server metrics", long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub scrape_every: Duration,
}

/// How each request is bounded, and what is kept and priced of it: `run` and `bench`, listed
/// after the load so that `--help` reads endpoint, load, limits, output, cost.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Per-request timeout, e.g. 30s, 10m (a bare number is seconds).
    #[arg(help_heading = "Limits and retries", long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// The most one answer may be, in bytes after decoding (whole body or stream; `64MiB`,
    /// `512KiB`, `1GiB` or a number of bytes): an answer past it ends as `answer_too_large` and
    /// its connection is dropped, so a runaway server cannot fill memory or the run folder.
    #[arg(help_heading = "Limits and retries", long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_answer_bytes: usize,

    /// The longest wait a server may ask for (retry-after, retry-after-ms, x-ratelimit-reset-*)
    /// that is honoured; longer asks are cut to it.
    #[arg(help_heading = "Limits and retries", long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub max_server_wait: Duration,

    /// When stderr is not a terminal (CI logs, nohup), print a plain progress line this often.
    #[arg(help_heading = "Output", long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub progress_every: Duration,

    /// Keep each full response body in records.jsonl (`response` field).
    #[arg(help_heading = "Output", long)]
    pub save_responses: bool,

    #[arg(help_heading = "Cost", long, value_name = "FILE", help = PRICES_HELP)]
    pub prices: Option<PathBuf>,

    /// Price list for answers that report no service_tier (flex answers bill at batch prices).
    #[arg(help_heading = "Cost", long, value_enum, default_value_t = Tier::Standard)]
    pub tier: Tier,

    /// Count tokens of streams without usage with this Hugging Face tokenizer.json instead of tiktoken.
    #[arg(help_heading = "Cost", long, value_name = "PATH")]
    pub tokenizer: Option<PathBuf>,
}

/// Knobs of the embedded mock, shared by `run --mock` and `mock`.
#[derive(Debug, Args, Clone)]
pub struct MockKnobs {
    /// Mock: fixed delay before each answer, e.g. 20ms.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub mock_latency: Duration,

    /// Mock: extra random delay, uniform in [0, DURATION), seeded per request body.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub mock_jitter: Duration,

    /// Mock: seed for delays and generated answers.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mock_seed: u64,

    /// Mock: answer /v1/responses with Chat Completions bodies (as some gateways do).
    #[arg(long)]
    pub mock_chat_shape: bool,

    /// Mock: time to first token, after --mock-latency and jitter.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub mock_ttft: Duration,

    /// Mock: time between generated tokens (inter-token latency).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub mock_itl: Duration,

    /// Mock: tokens per streamed chunk.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub mock_tokens_per_chunk: u32,

    /// Mock: reasoning tokens streamed before the answer.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mock_reasoning_tokens: u32,

    /// Mock: fixed answer length in tokens [default: 8-64, depending on the prompt].
    #[arg(long, value_name = "N")]
    pub mock_output_tokens: Option<u32>,

    /// Mock: share of requests (0 to 1) answered with a fault from --mock-faults.
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub mock_fault_rate: f64,

    /// Mock: the faults to draw from, comma-separated [default: all but stall, which holds a request
    /// until just past --timeout, and bad_json and schema_violation, which break the JSON of answers
    /// that asked for structured output].
    #[arg(long, value_name = "KINDS", value_enum, value_delimiter = ',')]
    pub mock_faults: Vec<crate::mock::Fault>,

    /// Mock: once, this long after the first request, stop answering for --mock-stall-for.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub mock_stall_at: Duration,

    /// Mock: how long the one stall lasts (0s: no stall); answers due during it go out when it ends.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub mock_stall_for: Duration,

    /// Mock: make every streamed write end in the middle of an event (each event completes with the
    /// next write), as arbitrary TCP segmentation does; for parser robustness and memory, not timing.
    #[arg(long)]
    pub mock_split_events: bool,

    /// Mock: generate at most N answers at once; the rest queue first come, first served, and the
    /// wait shows in their TTFT (a server's capacity: about N / service time requests per second);
    /// 0: no limit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub mock_slots: usize,

    /// Mock: how long a Batch API batch takes from in_progress to its end (the real API: up to 24 h).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub mock_batch_time: Duration,

    /// Mock: what goes wrong with batches, comma-separated: failed_lines (every seventh line
    /// fails), expire (the batch expires half-done), invalid (the input file fails validation).
    #[arg(long, value_name = "KINDS", value_enum, value_delimiter = ',')]
    pub mock_batch_faults: Vec<crate::mock::batch::BatchFault>,
}

#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on: 127.0.0.1 keeps it to this machine; 0.0.0.0 (or ::) lets a client in
    /// a container or on another machine reach it.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,

    /// Port (0 picks a free one and prints it).
    #[arg(long, default_value_t = 18555)]
    pub port: u16,

    #[command(flatten, next_help_heading = "Answers and faults")]
    pub knobs: MockKnobs,
}

fn parse_batch_lines(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=crate::batch_api::MAX_LINES).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?}: lines per batch, 1 to {} (the API's limit)",
            crate::batch_api::MAX_LINES
        )),
    }
}

fn parse_rate_step(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{text:?}: a rate in requests per second above 0, e.g. 12.5"
        )),
    }
}

/// `5%` or `0.05`: a share above 0 and at most 1.
fn parse_percent(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let share = match text.strip_suffix('%') {
        Some(n) => n.trim().parse::<f64>().map(|v| v / 100.0),
        None => text.parse::<f64>(),
    };
    match share {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!(
            "{text:?}: a share above 0 and at most 100%, e.g. 5% or 0.05"
        )),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?}: a share between 0 and 1, e.g. 0.2")),
    }
}

/// Parses `--warmup`: a whole number is a request count, anything else a duration with a unit.
fn parse_warmup(text: &str) -> Result<crate::scheduler::Warmup, String> {
    use crate::scheduler::Warmup;
    if let Ok(count) = text.parse::<u64>() {
        return Ok(Warmup::Requests(count));
    }
    humantime::parse_duration(text)
        .map(Warmup::Time)
        .map_err(|e| {
            format!("{text:?}: a request count (100) or a duration with a unit (10s): {e}")
        })
}

/// A size in bytes: a number, or a number with `KiB`, `MiB` or `GiB` (also `K`, `M`, `G`, `KB`,
/// `MB`, `GB`, all powers of 1,024).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: a size such as 64MiB, 512KiB or 1048576"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("{other:?}: a size unit is KiB, MiB or GiB")),
    };
    let bytes = number * scale;
    if !(bytes >= 1024.0 && bytes <= usize::MAX as f64) {
        return Err(format!("{text:?}: at least 1KiB"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod start_at_tests {
    use super::{parse_size, parse_start_at};

    #[test]
    fn sizes_take_binary_units_and_refuse_nonsense() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512 KiB"), Ok(512 << 10));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        for bad in ["", "MiB", "12 parsecs", "100", "-5MiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_at_takes_a_zone_or_an_offset_and_refuses_none() {
        let utc = parse_start_at("2026-12-01T10:00:00Z").unwrap();
        assert_eq!(parse_start_at("2026-12-01T11:30:00+01:30").unwrap(), utc);
        assert_eq!(parse_start_at("2026-12-01T05:00:00-05:00").unwrap(), utc);
        for bad in [
            "2026-12-01T10:00:00",
            "tomorrow",
            "2026-12-01T10:00:00+1",
            "",
        ] {
            assert!(parse_start_at(bad).is_err(), "{bad}");
        }
    }
}
