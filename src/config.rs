//! Validated run settings built from raw arguments and the environment: every setup error is found here.

use crate::cli::{
    Api, BenchArgs, EndpointArgs, GateArgs, GenerateArgs, MockKnobs, Profile, RequestArgs, RunArgs,
    ShardArgs, SweepArrivals, VerdictArgs,
};
use crate::client::{ApiKey, ClientConfig};
use crate::cost::{PriceTable, Tier};
use crate::mock::MockConfig;
use crate::modes::SearchOver;
use crate::scheduler::{Arrivals, Limit, Pace, RetryPolicy, Warmup, WhenFull};
use crate::shard::Shard;
use crate::stats::{PercentileSlo, Slo};
use crate::tokenize::{HfTokenizer, TokenCounter};
use crate::workload::DefaultRoute;
use crate::workload::generate::{Dataset, DatasetFormat, Input, Prefix, Recipe, Shape};
use anyhow::{Context, bail};
use http::header::{HeaderName, HeaderValue};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Where requests go.
#[derive(Debug, Clone)]
pub enum Target {
    Endpoint(Url),
    Mock(MockConfig),
}

/// Where the API key came from, for `run.json` (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    File(PathBuf),
    None,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env(name) => write!(f, "env:{name}"),
            KeySource::File(path) => write!(f, "file:{}", path.display()),
            KeySource::None => f.write_str("none"),
        }
    }
}

/// Where requests go and how they are sent (shared by `run` and `bench`).
#[derive(Debug, Clone)]
pub struct Connection {
    pub target: Target,
    /// `--api`, when given; else each body's shape decides.
    pub api: Option<Api>,
    pub api_key: Option<ApiKey>,
    pub key_source: KeySource,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub max_server_wait: Duration,
    pub pool_idle_timeout: Duration,
    /// `--max-answer-bytes`.
    pub max_answer_bytes: usize,
    pub insecure: bool,
    pub save_responses: bool,
    pub stream: bool,
    pub http2: bool,
    pub prices: PriceTable,
    pub prices_file: Option<PathBuf>,
    pub tier: Tier,
    pub tokenizer: Option<HfTokenizer>,
    /// `--progress-every`: the plain progress line's period when stderr is not a terminal.
    pub progress_every: Duration,
    /// `--scrape`: metrics pages read beside the load (none: no scrape).
    pub scrape: Vec<ScrapeTarget>,
    pub scrape_every: Duration,
}

/// One `--scrape` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrapeTarget {
    Url(http::Uri),
    /// The endpoint's origin + `/metrics` (the mock's too), kept only when it answers.
    Auto,
}

impl ScrapeTarget {
    fn parse(text: &str) -> anyhow::Result<ScrapeTarget> {
        if text == "auto" {
            return Ok(ScrapeTarget::Auto);
        }
        // Said without what lies between `://` and `@`: it may be a password.
        let shown = match (text.find("://"), text.rfind('@')) {
            (Some(at), Some(end)) if end > at => {
                format!("{}://…@{}", &text[..at], &text[end + 1..])
            }
            _ => text.to_string(),
        };
        let uri: http::Uri = text.parse().map_err(|e| {
            anyhow::anyhow!(
                "--scrape {shown:?}: not a URL ({e}); give http://host:port/metrics or auto"
            )
        })?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            bail!(
                "--scrape {shown:?}: credentials in a metrics URL are not sent; give a URL without user:password@ (a token in its query is sent)"
            );
        }
        match uri.scheme_str() {
            Some("http" | "https") if uri.host().is_some() => Ok(ScrapeTarget::Url(uri)),
            _ => bail!(
                "--scrape {shown:?}: give an http:// or https:// URL, e.g. http://127.0.0.1:8000/metrics, or auto"
            ),
        }
    }
}

/// How a load is run, whatever the command: the plan's limits, the gates, retries, interrupts.
#[derive(Debug, Clone)]
pub struct Load {
    pub warmup: Warmup,
    /// Measured requests (bench: default one pass over the workload when `duration` is not given).
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub ramp_up: Duration,
    pub rps: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<u32>,
    /// Whether the load follows the server's own pacing (429 pauses, announced limits, AIMD
    /// concurrency): a bulk job does; a benchmark keeps the load it was asked for and counts 429s.
    pub follow_server: bool,
    pub max_cost: Option<f64>,
    /// `--give-up-after`: identical dead-endpoint failures that stop the load; 0 never.
    pub give_up_after: u32,
    pub slo: Option<Slo>,
    pub max_retries: u32,
    pub grace: Duration,
    pub quiet: bool,
    /// `--start-at`: the wall-clock instant the load starts (every shard of a job together).
    pub start_at: Option<std::time::SystemTime>,
    /// How conversation lines run.
    pub conversations: crate::conversation::ConversationSettings,
}

/// `--shard I/N` or `--shards N` (index from the scheduler's variable); None when not sharded.
fn shard_of(
    args: &ShardArgs,
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Shard>> {
    Ok(match (args.shard, args.shards) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => Some(Shard::from_env(count, env).map_err(|e| anyhow::anyhow!(e))?),
        (None, None) => None,
    })
}

impl Load {
    /// This shard's share of the job's rate limits and budget.
    fn share(&mut self, shard: Option<Shard>) {
        let Some(shard) = shard else { return };
        self.rps = self.rps.map(|v| shard.share(v));
        self.rpm = self.rpm.map(|v| shard.share(v));
        self.tpm = self
            .tpm
            .map(|v| (shard.share(f64::from(v)).ceil() as u32).max(1));
        self.max_cost = self.max_cost.map(|v| shard.share(v));
    }
}

impl Load {
    fn gates(
        args: GateArgs,
        follow_server: bool,
        max_retries: u32,
        grace: Duration,
        quiet: bool,
    ) -> anyhow::Result<Load> {
        Ok(Load {
            warmup: Warmup::None,
            requests: None,
            duration: None,
            ramp_up: args.ramp_up,
            rps: positive(args.rps, "--rps")?,
            rpm: positive(args.rpm, "--rpm")?,
            tpm: args.tpm,
            follow_server,
            max_cost: match args.max_cost {
                Some(usd) if !(usd.is_finite() && usd > 0.0) => {
                    bail!("--max-cost must be a positive number of dollars")
                }
                other => other,
            },
            give_up_after: args.give_up_after,
            slo: None,
            max_retries,
            grace,
            quiet,
            start_at: None,
            conversations: crate::conversation::ConversationSettings {
                tool_loop: args.conversations.tool_loop,
                max_turns: args.conversations.max_turns,
                think_time: args.conversations.think_time.unwrap_or_default(),
                responses_state: args.conversations.responses_state,
            },
        })
    }

    /// Whether a run-wide throttle is needed: always when following the server, else only for
    /// `--rps`/`--rpm`/`--tpm`.
    pub fn throttled(&self) -> bool {
        self.follow_server || self.rps.is_some() || self.rpm.is_some() || self.tpm.is_some()
    }

    /// When the measured part ends: the given limits, else `default_requests` (bench: one pass
    /// over the workload; run: none, the workload's end).
    pub fn limit(&self, default_requests: Option<u64>) -> Limit {
        Limit {
            requests: self
                .requests
                .or(default_requests.filter(|_| self.duration.is_none())),
            duration: self.duration,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub workload: PathBuf,
    pub conn: Connection,
    pub load: Load,
    pub concurrency: usize,
    /// `--rate`: an open loop of constant arrivals instead of the closed loop.
    pub rate: Option<f64>,
    pub out: Option<PathBuf>,
    pub resume: bool,
    pub retry_failed: bool,
    pub strict: bool,
    /// `--batch-output`: output.jsonl and errors.jsonl in the OpenAI Batch output format.
    pub batch_output: bool,
    pub verdicts: Verdicts,
    /// `--shard`/`--shards`: this copy's lines; concurrency, rate and gates are already its share.
    pub shard: Option<Shard>,
}

impl Connection {
    pub fn from_args(
        args: EndpointArgs,
        request: RequestArgs,
        mock_knobs: &MockKnobs,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let target = if args.mock {
            let mut mock = mock_config(mock_knobs);
            // A stall ends just after the client's timeout, which is what it is there to test.
            mock.fault_stall = request.timeout + Duration::from_secs(1);
            Target::Mock(mock)
        } else {
            let raw = args.endpoint.or_else(|| env("OPENAI_BASE_URL")).context(
                "no endpoint: give --endpoint URL (e.g. https://api.openai.com/v1), set OPENAI_BASE_URL, or use --mock",
            )?;
            Target::Endpoint(parse_base_url(&raw)?)
        };
        let (api_key, key_source) = match (&args.api_key_file, args.mock) {
            (_, true) => (None, KeySource::None),
            (Some(path), false) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --api-key-file {}", path.display()))?;
                let key = text.lines().next().unwrap_or("").trim().to_string();
                if key.is_empty() {
                    bail!("--api-key-file {} is empty", path.display());
                }
                (Some(ApiKey::new(key)), KeySource::File(path.clone()))
            }
            (None, false) => match env(&args.api_key_env).filter(|k| !k.trim().is_empty()) {
                Some(key) => (
                    Some(ApiKey::new(key.trim().to_string())),
                    KeySource::Env(args.api_key_env.clone()),
                ),
                None if args.api_key_env != "OPENAI_API_KEY" => {
                    bail!(
                        "--api-key-env {}: that environment variable is not set",
                        args.api_key_env
                    )
                }
                None => (None, KeySource::None),
            },
        };
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if request.timeout.is_zero() {
            bail!("--timeout must be more than zero");
        }
        Ok(Connection {
            target,
            api: args.api,
            api_key,
            key_source,
            headers,
            timeout: request.timeout,
            max_server_wait: request.max_server_wait,
            pool_idle_timeout: args.pool_idle_timeout,
            max_answer_bytes: request.max_answer_bytes,
            insecure: args.insecure,
            save_responses: request.save_responses,
            stream: args.stream,
            http2: args.http2,
            prices: match &request.prices {
                Some(path) => PriceTable::with_file(path)?,
                None => PriceTable::default(),
            },
            prices_file: request.prices.clone(),
            tier: request.tier,
            tokenizer: request
                .tokenizer
                .as_deref()
                .map(HfTokenizer::load)
                .transpose()?,
            progress_every: if request.progress_every.is_zero() {
                bail!("--progress-every must be more than zero")
            } else {
                request.progress_every
            },
            scrape: args
                .scrape
                .iter()
                .map(|t| ScrapeTarget::parse(t))
                .collect::<anyhow::Result<_>>()?,
            // At most a minute: the last scrape waits up to one tick after the load.
            scrape_every: if args.scrape_every < Duration::from_millis(100)
                || args.scrape_every > Duration::from_secs(60)
            {
                bail!("--scrape-every must be between 100ms and 60s")
            } else {
                args.scrape_every
            },
        })
    }

    pub fn default_route(&self) -> DefaultRoute {
        Api::default_route(self.api)
    }

    pub fn client_config(&self, base_url: Url, max_connections: usize) -> ClientConfig {
        ClientConfig {
            secrets: self.secrets(&base_url),
            no_credential: self.sends_no_credential(&base_url),
            base_url,
            api_key: self.api_key.clone(),
            headers: self.headers.clone(),
            timeout: self.timeout,
            max_connections,
            pool_idle_timeout: self.pool_idle_timeout,
            max_answer_bytes: self.max_answer_bytes,
            save_responses: self.save_responses,
            http2_prior_knowledge: self.http2,
            insecure: self.insecure,
        }
    }

    /// Every value sent as a credential to `base_url`: the API key (and its `Bearer` header), the
    /// URL's user and password (and their `Basic` token), and the values of `-H` headers whose names
    /// say secret. What a server echoes of them is scrubbed from everything written.
    /// Nothing sent could be a credential: no API key, no user in the URL, no credential-named
    /// header or query value (a 401 then says so, instead of blaming the key).
    pub fn sends_no_credential(&self, base_url: &Url) -> bool {
        self.api_key.is_none()
            && base_url.username().is_empty()
            && base_url.password().is_none()
            && !base_url
                .query_pairs()
                .any(|(name, _)| is_secret_header(&name))
            && !self
                .headers
                .iter()
                .any(|(name, _)| is_secret_header(name.as_str()))
    }

    pub fn secrets(&self, base_url: &Url) -> crate::secrets::Secrets {
        let mut values: Vec<Vec<u8>> = Vec::new();
        if let Some(key) = &self.api_key {
            values.push(key.expose().as_bytes().to_vec());
            values.push(format!("Bearer {}", key.expose()).into_bytes());
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let user = decode(base_url.username());
            let password = decode(base_url.password().unwrap_or(""));
            use base64::Engine as _;
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            // A user alone (`https://TOKEN@host`) is the secret itself.
            values.push(if password.is_empty() { user } else { password }.into_bytes());
            values.push(format!("Basic {token}").into_bytes());
            values.push(token.into_bytes());
        }
        // A key in the query (`?key=…`, `?api-key=…`) goes with every request.
        for (name, value) in base_url.query_pairs() {
            if is_secret_header(&name) {
                values.push(value.as_bytes().to_vec());
            }
        }
        for (name, value) in &self.headers {
            if is_secret_header(name.as_str()) {
                values.push(value.as_bytes().to_vec());
                // `Bearer X` is sent, and X may come back alone.
                if let Some((_, token)) = value.to_str().ok().and_then(|v| v.split_once(' ')) {
                    values.push(token.as_bytes().to_vec());
                }
            }
        }
        crate::secrets::Secrets::new(values)
    }

    /// `max_retries` retries, each server-requested wait capped at `--max-server-wait`.
    pub fn retry_policy(&self, max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            max_server_wait: self.max_server_wait,
        }
    }
}

impl RunConfig {
    pub fn from_args(args: RunArgs, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let rate = positive(args.rate, "--rate")?;
        if rate.is_some() && !args.gates.ramp_up.is_zero() {
            bail!("--ramp-up applies to the closed loop; with --rate, arrivals are already spread");
        }
        if args.duration.is_some_and(|d| d.is_zero()) {
            bail!("--duration must be more than zero");
        }
        let shard = shard_of(&args.sharding, &env)?;
        let mut load = Load::gates(args.gates, true, args.max_retries, args.grace, args.quiet)?;
        load.duration = args.duration;
        load.requests = args.requests;
        load.start_at = args.sharding.start_at;
        load.share(shard);
        let mut conn = Connection::from_args(args.target, args.request, &args.mock_knobs, env)?;
        // The Batch output format carries each answer's body.
        conn.save_responses |= args.batch_output;
        Ok(RunConfig {
            shard,
            verdicts: Verdicts::from_args(args.verdicts, None)?,
            batch_output: args.batch_output,
            workload: args.workload,
            conn,
            load,
            concurrency: shard.map_or(args.concurrency as usize, |s| {
                s.share_of(args.concurrency as usize)
            }),
            rate: rate.map(|r| shard.map_or(r, |s| s.share(r))),
            out: args.out,
            resume: args.resume,
            retry_failed: args.retry_failed,
            strict: args.strict,
        })
    }

    /// A closed loop of `-c`, or with `--rate` constant arrivals with at most `-c` in flight.
    pub fn pace(&self) -> Pace {
        match self.rate {
            Some(rate) => Pace::Open {
                arrivals: Arrivals::Constant { rate },
                max_inflight: self.concurrency,
                when_full: WhenFull::Wait,
            },
            None => Pace::Closed {
                concurrency: self.concurrency,
                ramp_up: self.load.ramp_up,
            },
        }
    }

    /// The profile the summary names.
    pub fn profile(&self) -> Profile {
        match self.rate {
            Some(_) => Profile::Constant,
            None => Profile::Concurrent,
        }
    }
}

/// How a finished run is judged (`--fail-on`) and handed to CI (`--summary-markdown`).
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    pub fail_on: crate::stats::gate::Thresholds,
    pub summary_markdown: Option<PathBuf>,
}

impl Verdicts {
    fn from_args(args: VerdictArgs, slo: Option<Slo>) -> anyhow::Result<Verdicts> {
        let fail_on = args.fail_on.unwrap_or_default();
        if fail_on.needs_slo() && slo.is_none() {
            bail!(
                "--fail-on goodput needs --slo (goodput counts the requests meeting every objective), e.g. bench --slo ttft=500ms"
            );
        }
        // Found now, not after the run: a CI step's summary file must be writable.
        if let Some(path) = &args.summary_markdown {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| {
                    format!("--summary-markdown {}: cannot write there", path.display())
                })?;
        }
        Ok(Verdicts {
            fail_on,
            summary_markdown: args.summary_markdown,
        })
    }
}

/// Validated `bench` settings.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub workload: PathBuf,
    pub conn: Connection,
    pub profile: Profile,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub seed: u64,
    pub max_inflight: usize,
    pub when_full: WhenFull,
    pub steps: u32,
    /// `--rates`: the sweep's steps given explicitly (empty: synchronous, throughput, then `steps`).
    pub rates: Vec<f64>,
    pub sweep_arrivals: SweepArrivals,
    /// `--profile trace`: timestamps are divided by this.
    pub trace_speed: f64,
    pub load: Load,
    pub out: Option<PathBuf>,
    pub verdicts: Verdicts,
    /// `--shard`/`--shards`: this copy's lines; concurrency, rates, seed and gates are its share.
    pub shard: Option<Shard>,
    /// `--profile search`: what it searches and how it judges.
    pub search: Option<SearchSettings>,
}

/// Validated `--profile search` settings.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    pub over: SearchOver,
    /// Relative: 0.05.
    pub precision: f64,
    /// `--slo` percentile objectives.
    pub percentiles: Vec<PercentileSlo>,
    /// With per-request `--slo`: the share that must meet them all.
    pub attainment: Option<f64>,
    /// Each probe's first span (`--duration`) and the spans an inconclusive probe runs on for.
    pub probe: Duration,
    pub extensions: u32,
    pub max_duration: Option<Duration>,
}

/// A probe runs this long when `--duration` is not given.
const DEFAULT_PROBE: Duration = Duration::from_secs(10);

fn search_settings(
    args: &BenchArgs,
    objectives: &crate::stats::Objectives,
) -> anyhow::Result<Option<SearchSettings>> {
    if args.profile != Profile::Search {
        if !objectives.percentiles.is_empty() {
            bail!(
                "--slo {}=...: a percentile objective judges a search's probes (--profile search); for one run, gate on it with --fail-on '{}>LIMIT'",
                objectives.percentiles[0].name(),
                objectives.percentiles[0].name()
            );
        }
        if args.max_duration.is_some() {
            bail!("--max-duration applies to --profile search (a time budget for all its probes)");
        }
        if let Some(gate) = args
            .verdicts
            .fail_on
            .as_ref()
            .and_then(|t| t.0.iter().find(|g| g.metric.judges_a_search()))
        {
            bail!(
                "--fail-on '{}' judges a search's answer: it applies to --profile search",
                gate.text
            );
        }
        return Ok(None);
    }
    let gates = args
        .verdicts
        .fail_on
        .as_ref()
        .is_some_and(|t| t.0.iter().any(|g| !g.metric.judges_a_search()));
    if objectives.percentiles.is_empty() && objectives.per_request.is_none() && !gates {
        bail!(
            "--profile search needs objectives to search against: --slo ttft.p99=500ms (a percentile), --slo ttft=500ms (per request, met by --attainment of them), and/or --fail-on 'error_rate>1%'"
        );
    }
    if args.requests.is_some() {
        bail!(
            "a search's probes are timed (over-saturation shows over time): give --duration per probe, not --requests"
        );
    }
    Ok(Some(SearchSettings {
        over: args.search_over,
        precision: args.precision,
        percentiles: objectives.percentiles.clone(),
        attainment: objectives.per_request.map(|_| args.attainment),
        probe: args.duration.unwrap_or(DEFAULT_PROBE),
        extensions: args.max_extensions,
        max_duration: args.max_duration,
    }))
}

impl BenchConfig {
    pub fn from_args(
        args: BenchArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let open_loop = matches!(
            args.profile,
            Profile::Constant
                | Profile::Poisson
                | Profile::Sweep
                | Profile::Search
                | Profile::Trace
        );
        let trace_speed = positive(args.trace_speed, "--trace-speed")?;
        if trace_speed.is_some() && args.profile != Profile::Trace {
            bail!("--trace-speed applies to --profile trace");
        }
        let rate = positive(args.rate, "--rate")?;
        match (args.profile, rate) {
            (Profile::Constant | Profile::Poisson, None) => {
                bail!(
                    "--profile {} needs --rate R (requests per second)",
                    args.profile.as_str()
                )
            }
            (Profile::Constant | Profile::Poisson, Some(_)) | (_, None) => {}
            // A rate search's first open-loop rate.
            (Profile::Search, Some(_)) if args.search_over == SearchOver::Rate => {}
            (other, Some(_)) => bail!(
                "--rate applies to --profile constant and poisson, not {}",
                other.as_str()
            ),
        }
        if args.concurrency.is_some() && args.profile != Profile::Concurrent {
            bail!(
                "-c applies to --profile concurrent; open-loop and throughput profiles take --max-inflight"
            );
        }
        if (args.steps.is_some() || !args.rates.is_empty()) && args.profile != Profile::Sweep {
            bail!("--steps and --rates apply to --profile sweep");
        }
        if args.drop_when_full && !open_loop {
            bail!(
                "--drop-when-full applies to open-loop profiles (constant, poisson, sweep, trace)"
            );
        }
        if args.duration.is_some_and(|d| d.is_zero()) {
            bail!("--duration must be more than zero");
        }
        if !args.gates.ramp_up.is_zero()
            && !matches!(
                args.profile,
                Profile::Concurrent | Profile::Throughput | Profile::Sweep
            )
        {
            bail!(
                "--ramp-up applies to closed-loop profiles (concurrent, throughput, a sweep's first two steps)"
            );
        }
        let shard = shard_of(&args.sharding, &env)?;
        let objectives = args.slo.clone().unwrap_or_default();
        let search = search_settings(&args, &objectives)?;
        let mut load = Load::gates(args.gates, false, args.max_retries, args.grace, args.quiet)?;
        load.warmup = args.warmup.unwrap_or_default();
        load.requests = args.requests;
        load.duration = args.duration;
        load.slo = objectives.per_request;
        load.start_at = args.sharding.start_at;
        load.share(shard);
        let whole = |n: u32| shard.map_or(n as usize, |s| s.share_of(n as usize));
        Ok(BenchConfig {
            shard,
            verdicts: Verdicts::from_args(args.verdicts, objectives.per_request)?,
            search,
            workload: args.workload,
            conn: Connection::from_args(args.target, args.request, &args.mock_knobs, env)?,
            profile: args.profile,
            concurrency: whole(args.concurrency.unwrap_or(8)),
            rate: rate.map(|r| shard.map_or(r, |s| s.share(r))),
            seed: shard.map_or(args.seed, |s| s.seed(args.seed)),
            max_inflight: whole(args.max_inflight),
            when_full: if args.drop_when_full {
                WhenFull::Drop
            } else {
                WhenFull::Wait
            },
            steps: args.steps.unwrap_or(5),
            rates: args.rates.clone(),
            sweep_arrivals: args.sweep_arrivals,
            trace_speed: trace_speed.unwrap_or(1.0),
            load,
            out: args.out,
        })
    }

    /// The pacing of a single-profile bench (None for a sweep, whose steps are paced one by one).
    pub fn pace(&self) -> Option<Pace> {
        let open = |arrivals| Pace::Open {
            arrivals,
            max_inflight: self.max_inflight,
            when_full: self.when_full,
        };
        let rate = self.rate.unwrap_or(1.0);
        Some(match self.profile {
            Profile::Synchronous => Pace::closed(1),
            Profile::Concurrent => self.closed(self.concurrency),
            Profile::Throughput => self.closed(self.max_inflight),
            Profile::Constant => open(Arrivals::Constant { rate }),
            Profile::Poisson => open(Arrivals::Poisson {
                rate,
                seed: self.seed,
            }),
            Profile::Trace => open(Arrivals::Trace {
                speed: self.trace_speed,
            }),
            Profile::Sweep | Profile::Search => return None,
        })
    }

    /// A closed loop of `concurrency` with `--ramp-up`.
    pub fn closed(&self, concurrency: usize) -> Pace {
        Pace::Closed {
            concurrency,
            ramp_up: self.load.ramp_up,
        }
    }

    /// A sweep's open-loop step at `rate`.
    pub fn sweep_step(&self, rate: f64) -> Pace {
        Pace::Open {
            arrivals: match self.sweep_arrivals {
                SweepArrivals::Constant => Arrivals::Constant { rate },
                SweepArrivals::Poisson => Arrivals::Poisson {
                    rate,
                    seed: self.seed,
                },
            },
            max_inflight: self.max_inflight,
            when_full: self.when_full,
        }
    }
}

/// Validated `generate` settings: the recipe and the file it is written to.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub out: PathBuf,
    pub recipe: Recipe,
}

impl GenerateConfig {
    pub fn from_args(args: GenerateArgs) -> anyhow::Result<Self> {
        let hf = args
            .tokenizer
            .as_deref()
            .map(HfTokenizer::load)
            .transpose()?;
        let counter = TokenCounter::choose(Some(&args.model), hf.as_ref());
        let input = match (&args.input_tokens, args.from.as_slice()) {
            (Some(lengths), []) => Input::Synthetic(*lengths),
            (None, [format, file]) => {
                let format =
                    <DatasetFormat as clap::ValueEnum>::from_str(format, true).map_err(|_| {
                        anyhow::anyhow!(
                            "--from {format:?}: expected sharegpt, jsonl, csv or mooncake"
                        )
                    })?;
                let path = PathBuf::from(file);
                match format {
                    DatasetFormat::Mooncake => Input::Mooncake(path),
                    _ => Input::Dataset(Dataset {
                        format,
                        path,
                        field: Some(args.field.clone()),
                        column: Some(args.column.clone()),
                        id: match format {
                            DatasetFormat::Jsonl => args.id_field.clone(),
                            DatasetFormat::Csv => args.id_column.clone(),
                            _ => None,
                        },
                        metadata: match format {
                            DatasetFormat::Jsonl => args.metadata_fields.clone(),
                            DatasetFormat::Csv => args.metadata_columns.clone(),
                            _ => Vec::new(),
                        },
                    }),
                }
            }
            _ => bail!(
                "say where prompts come from: --input-tokens SPEC (synthetic, with --count N) or --from FORMAT FILE"
            ),
        };
        let prefix = args.prefix_tokens.map(|tokens| Prefix {
            tokens,
            groups: args.prefix_groups,
        });
        match (&input, prefix) {
            (Input::Synthetic(_), _) if args.count.is_none() => {
                bail!("--input-tokens needs --count N: how many lines to write")
            }
            (Input::Synthetic(lengths), Some(prefix))
                if lengths.max().is_some_and(|m| m <= prefix.tokens) =>
            {
                bail!(
                    "--input-tokens {lengths} must be longer than --prefix-tokens {}: the input length counts the prefix",
                    prefix.tokens
                )
            }
            (Input::Mooncake(_), Some(_)) => bail!(
                "--prefix-tokens does not apply to --from mooncake: the trace's hash_ids say which prompts share blocks"
            ),
            _ => {}
        }
        let caps_from_source = matches!(&input, Input::Mooncake(_))
            || matches!(&input, Input::Dataset(d) if d.format == DatasetFormat::Sharegpt);
        if args.ignore_eos && args.output_tokens.is_none() && !caps_from_source {
            bail!("--ignore-eos needs --output-tokens SPEC: the length every answer is held to");
        }
        Ok(GenerateConfig {
            out: args.out,
            recipe: Recipe {
                shape: Shape {
                    route: args.api.route(),
                    model: args.model,
                    stream: args.stream,
                    ignore_eos: args.ignore_eos,
                },
                input,
                output: args.output_tokens,
                prefix,
                count: args.count,
                seed: args.seed,
                counter,
            },
        })
    }
}

pub fn positive(value: Option<f64>, flag: &str) -> anyhow::Result<Option<f64>> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => bail!("{flag} must be a positive number"),
        other => Ok(other),
    }
}

pub fn mock_config(knobs: &MockKnobs) -> MockConfig {
    MockConfig {
        latency: knobs.mock_latency,
        jitter: knobs.mock_jitter,
        seed: knobs.mock_seed,
        chat_shape_for_responses: knobs.mock_chat_shape,
        ttft: knobs.mock_ttft,
        itl: knobs.mock_itl,
        tokens_per_chunk: knobs.mock_tokens_per_chunk,
        reasoning_tokens: knobs.mock_reasoning_tokens,
        output_tokens: knobs.mock_output_tokens,
        fault_rate: knobs.mock_fault_rate,
        stall_at: knobs.mock_stall_at,
        stall_for: knobs.mock_stall_for,
        split_events: knobs.mock_split_events,
        slots: knobs.mock_slots,
        batch_time: knobs.mock_batch_time,
        batch_faults: knobs.mock_batch_faults.clone(),
        faults: if knobs.mock_faults.is_empty() {
            crate::mock::Fault::defaults()
        } else {
            knobs.mock_faults.clone()
        },
        fault_stall: Duration::from_secs(3600),
    }
}

fn parse_base_url(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw.trim()).with_context(|| {
        format!("endpoint {raw:?} is not a URL (expected e.g. https://host/v1)")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        bail!("endpoint {raw:?} must be an http:// or https:// URL with a host");
    }
    // A URL pasted whole from a curl example: the route is each line's (its body's shape, --api,
    // a Batch line's url), so the base URL is what is left without it.
    let path = url.path().trim_end_matches('/');
    if let Some(route) = ROUTES.iter().find(|route| path.ends_with(*route)) {
        let mut base = crate::client::redacted_url(&url);
        base.set_query(None);
        let shown = base.to_string();
        base.set_path(&path[..path.len() - route.len()]);
        bail!(
            "--endpoint {shown} ends with the route {route}: use the base URL {} (the route comes from each line: its body's shape, --api, or a Batch line's url)",
            base.as_str().trim_end_matches('/')
        );
    }
    Ok(url)
}

/// The API routes a base URL must not end with (they are appended to it).
const ROUTES: [&str; 7] = [
    "/responses",
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/moderations",
    "/batches",
    "/files",
];

/// Parses `Name: value`; the value may be empty, the name may not.
fn parse_header(raw: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = raw.split_once(':').with_context(|| {
        format!(
            "header {:?} must look like 'Name: value'",
            redact_header_text(raw)
        )
    })?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("header name {:?} is not valid", name.trim()))?;
    let mut value = HeaderValue::from_str(value.trim()).with_context(|| {
        format!("header {name}: value has characters not allowed in HTTP headers")
    })?;
    if is_secret_header(name.as_str()) {
        value.set_sensitive(true);
    }
    Ok((name, value))
}

fn redact_header_text(raw: &str) -> String {
    raw.chars().take(20).collect::<String>() + if raw.chars().count() > 20 { "…" } else { "" }
}

/// Header names whose values are treated as secrets in run.json and logs.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "cookie",
        "signature",
        "password",
        "credential",
    ]
    .iter()
    .any(|needle| name.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn every_example_in_the_help_is_valid_for_its_command() {
        let key = |name: &str| (name == "OPENAI_API_KEY").then(|| "sk-example".to_string());
        let mut checked = 0;
        for sub in crate::cli::command().get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            for line in help
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("llmvolley "))
            {
                // A shell redirection is the shell's, not the command's.
                let line = line.split(" > ").next().unwrap_or(line);
                let words = shlex::split(line).unwrap();
                let cli = crate::cli::command()
                    .try_get_matches_from(&words)
                    .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
                    .unwrap_or_else(|e| panic!("{line}: {e}"));
                // What clap cannot check: the settings run and bench build from it.
                let built = match cli.command {
                    Command::Run(args) => RunConfig::from_args(*args, key).map(|_| ()),
                    Command::Bench(args) => BenchConfig::from_args(*args, key).map(|_| ()),
                    _ => Ok(()),
                };
                if let Err(e) = built {
                    panic!("{line}: {e:#}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 18, "{checked} examples");
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<RunConfig> {
        let Command::Run(run) = Cli::try_parse_from(["llmvolley", "run"].iter().chain(args))
            .unwrap()
            .command
        else {
            unreachable!()
        };
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RunConfig::from_args(*run, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn every_credential_sent_is_a_secret_to_scrub() {
        let c = config(
            &[
                "w.jsonl",
                "-H",
                "x-api-key: header-secret-42",
                "-H",
                "x-trace: public-value-1",
            ],
            &[
                ("OPENAI_API_KEY", "sk-env-key-123456"),
                ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ],
        )
        .unwrap();
        let url = Url::parse(
            "https://TOKENUSER123@host.example/v1?api-key=query-secret-9&region=eu-west-1",
        )
        .unwrap();
        let secrets = c.conn.secrets(&url);
        let mut text = "sk-env-key-123456 Bearer sk-env-key-123456 header-secret-42 TOKENUSER123 query-secret-9 public-value-1 eu-west-1".to_string();
        secrets.scrub(&mut text);
        assert_eq!(
            text,
            "<redacted> <redacted> <redacted> <redacted> <redacted> public-value-1 eu-west-1"
        );
    }

    #[test]
    fn a_pasted_full_url_names_the_base_url_to_use() {
        let err = parse_base_url("http://user:pw@host:8000/v1/chat/completions?key=s")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("use the base URL http://host:8000/v1 "),
            "{err}"
        );
        assert!(!err.contains("pw") && !err.contains("key=s"), "{err}");
        assert!(parse_base_url("https://host/v1/").is_ok());
        assert!(parse_base_url("https://host/openai/v1/responses/").is_err());
    }

    #[test]
    fn endpoint_falls_back_to_openai_base_url() {
        let c = config(
            &["w.jsonl"],
            &[("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")],
        )
        .unwrap();
        assert!(
            matches!(c.conn.target, Target::Endpoint(u) if u.as_str() == "http://127.0.0.1:9/v1")
        );
        let err = config(&["w.jsonl"], &[]).unwrap_err().to_string();
        assert!(err.contains("--endpoint"), "{err}");
    }

    #[test]
    fn api_key_comes_from_the_named_env_var_and_is_never_printed() {
        let c = config(
            &[
                "w.jsonl",
                "--endpoint",
                "http://h/v1",
                "--api-key-env",
                "MY_KEY",
            ],
            &[("MY_KEY", "sk-abc")],
        )
        .unwrap();
        assert_eq!(c.conn.key_source, KeySource::Env("MY_KEY".into()));
        assert!(!format!("{c:?}").contains("sk-abc"));
        assert!(
            config(
                &[
                    "w.jsonl",
                    "--endpoint",
                    "http://h/v1",
                    "--api-key-env",
                    "MISSING"
                ],
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn headers_must_be_name_colon_value() {
        let c = config(
            &[
                "w.jsonl",
                "--mock",
                "-H",
                "X-Team: research",
                "-H",
                "X-Empty:",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(c.conn.headers[0].0.as_str(), "x-team");
        assert_eq!(c.conn.headers[1].1.to_str().unwrap(), "");
        assert!(config(&["w.jsonl", "--mock", "-H", "no colon"], &[]).is_err());
        assert!(is_secret_header("X-Api-Key") && !is_secret_header("X-Team"));
    }
}
