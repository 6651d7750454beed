//! The modes a run can take, named once for the flags, the settings and the summaries: bench load
//! profiles and the arrivals of a sweep's rate steps.

use clap::ValueEnum;

/// How `bench` loads the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// One request at a time.
    Synchronous,
    /// -c N requests in flight (closed loop).
    Concurrent,
    /// As many in flight as --max-inflight allows (closed loop): the server's capacity.
    Throughput,
    /// --rate R requests per second, evenly spaced (open loop).
    Constant,
    /// --rate R requests per second on average, exponential gaps from --seed (open loop).
    Poisson,
    /// Synchronous, then throughput, then --steps rates spaced between the two measured rates.
    Sweep,
    /// The highest rate (or -c, with --search concurrency) meeting every --slo and --fail-on
    /// objective: probes doubling from the synchronous rate until one fails, then bisected to
    /// --precision.
    Search,
    /// Each line at its own `timestamp` (ms from the trace start) ÷ --trace-speed, once through
    /// (open loop).
    Trace,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Synchronous => "synchronous",
            Profile::Concurrent => "concurrent",
            Profile::Throughput => "throughput",
            Profile::Constant => "constant",
            Profile::Poisson => "poisson",
            Profile::Sweep => "sweep",
            Profile::Search => "search",
            Profile::Trace => "trace",
        }
    }
}

/// Arrivals of a sweep's rate steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepArrivals {
    Constant,
    Poisson,
}

impl SweepArrivals {
    /// The open-loop profile a rate step runs.
    pub fn profile(self) -> Profile {
        match self {
            SweepArrivals::Constant => Profile::Constant,
            SweepArrivals::Poisson => Profile::Poisson,
        }
    }
}

/// What `bench --profile search` searches over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchOver {
    /// The open loop's arrival rate (requests per second), paced as --sweep-arrivals says.
    Rate,
    /// The closed loop's -c (requests in flight).
    Concurrency,
}
