//! The integration tests, one crate (as ripgrep keeps them): a module per area, each running the real
//! `llmvolley` binary against servers the tests start on 127.0.0.1. One crate links the library once
//! instead of once per area.

mod common;

mod batch;
mod bench;
mod capacity;
mod compare;
mod conversations;
mod cost;
mod crash;
mod docs;
mod endpoints;
mod gates;
mod generate;
mod hints;
mod hostile;
mod independent_servers;
mod mock_endpoint;
mod never_panics;
mod new_user;
mod numbers_hold;
mod one_engine;
mod rate_limits;
mod report;
mod resume;
mod retries;
mod run_against_mock;
mod run_against_wiremock;
mod server_metrics;
mod servers_differ;
mod shards;
mod shutdown;
mod slurm;
mod streaming;
mod structured;
mod tools;
mod what_happened;
