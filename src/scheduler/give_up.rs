//! Failing fast: a run whose first attempts all fail the same way (no connection, 401, 403, 404)
//! stops with one line saying what to check, instead of retrying every line for hours.

use crate::record::{Record, Status};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tokio_util::sync::CancellationToken;
use url::Url;

/// The failure class of a connection that could not be made (HTTP statuses are their own class).
const NO_CONNECTION: u32 = 1;

/// Watches attempts until the first one that is not a dead-endpoint failure, which disarms it for
/// good; `--give-up-after` identical ones in a row stop the load. Atomics only: it is on every
/// attempt's path.
pub struct GiveUp {
    after: u32,
    endpoint: Url,
    armed: AtomicBool,
    first_class: AtomicU32,
    failures: AtomicU32,
    verdict: OnceLock<String>,
    stop: CancellationToken,
    /// No credential goes with the requests: a 401 says that, not "check the key".
    no_credential: bool,
}

impl GiveUp {
    /// Stops the load through `stop` after `after` identical dead-endpoint failures (after ≥ 1),
    /// and at the first connection that speaks the wrong protocol.
    pub fn new(after: u32, endpoint: &Url, stop: CancellationToken, no_credential: bool) -> GiveUp {
        // The message may be printed and kept: no credentials from the URL; and no query, so that
        // "try …/v1" reads as a URL.
        let mut endpoint = crate::client::redacted_url(endpoint);
        endpoint.set_query(None);
        GiveUp {
            after,
            endpoint,
            armed: AtomicBool::new(true),
            first_class: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            verdict: OnceLock::new(),
            stop,
            no_credential,
        }
    }

    /// Learns from one attempt's record.
    pub fn observe(&self, record: &Record) {
        // Every request would fail the same way, and the message names the setting to change.
        if let Some(error) = &record.error
            && crate::client::ProtocolMismatch::from_kind(&error.kind).is_some()
        {
            self.stop_with(error.message.clone());
            return;
        }
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let connect = record.error.as_ref().is_some_and(|e| e.kind == "connect");
        // The real API answers 404 `model_not_found` for a model it lacks: the endpoint is fine.
        let about_a_model = record.error.as_ref().is_some_and(|e| {
            e.kind.contains("model") || e.message.to_ascii_lowercase().contains("model")
        });
        let class = match (record.status, record.http_status) {
            (Status::ConnectError, _) if connect => NO_CONNECTION,
            (Status::HttpError, Some(404)) if about_a_model => {
                self.armed.store(false, Ordering::Relaxed);
                return;
            }
            (Status::HttpError, Some(status @ (401 | 403 | 404))) => u32::from(status),
            _ => {
                self.armed.store(false, Ordering::Relaxed);
                return;
            }
        };
        let first =
            match self
                .first_class
                .compare_exchange(0, class, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => class,
                Err(first) => first,
            };
        if first != class {
            self.armed.store(false, Ordering::Relaxed);
            return;
        }
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= self.after {
            self.verdict.get_or_init(|| self.explain(class, record));
            self.stop.cancel();
        }
    }

    /// Stops the load for a reason found elsewhere (a rate limit that resets hours away), unless
    /// it stopped already.
    pub fn stop_with(&self, verdict: String) {
        self.verdict.get_or_init(|| verdict);
        self.stop.cancel();
    }

    /// Why the load stopped, once it did.
    pub fn verdict(&self) -> Option<&str> {
        self.verdict.get().map(String::as_str)
    }

    fn explain(&self, class: u32, record: &Record) -> String {
        let n = self.after;
        let endpoint = self.endpoint.as_str().trim_end_matches('/');
        match class {
            NO_CONNECTION => {
                let host = self.endpoint.host_str().unwrap_or("?");
                let port = self.endpoint.port_or_known_default().unwrap_or(0);
                // The innermost cause says it plainly ("Connection refused (os error 111)").
                let cause = record
                    .error
                    .as_ref()
                    .and_then(|e| e.message.rsplit(": ").next())
                    .unwrap_or("no connection");
                format!(
                    "cannot connect to {host}:{port}: {cause} (the first {n} attempts) — is the server running, and is --endpoint right?"
                )
            }
            401 if self.no_credential => format!(
                "{endpoint} answered 401 Unauthorized to the first {n} attempts — {}",
                crate::client::NO_KEY_SENT
            ),
            401 => format!(
                "{endpoint} answered 401 Unauthorized to the first {n} attempts — check the API key (--api-key-env, --api-key-file)"
            ),
            403 => format!(
                "{endpoint} answered 403 Forbidden to the first {n} attempts — the API key lacks access to this model or endpoint"
            ),
            _ if !self.endpoint.path().trim_end_matches('/').ends_with("/v1") => format!(
                "{endpoint} answered 404 Not Found to the first {n} attempts — the base URL has no /v1 at its end: the OpenAI APIs live under /v1 (try {endpoint}/v1)"
            ),
            _ => format!(
                "{endpoint} answered 404 Not Found to the first {n} attempts — check --endpoint and --api (responses or chat): the server has no such route"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(status: Status, http_status: Option<u16>, kind: &str) -> Record {
        let mut record = Record::empty("1".into(), 1, status);
        record.http_status = http_status;
        if status != Status::Ok {
            record.fail(
                status,
                kind,
                "tcp connect error: Connection refused (os error 111)",
            );
        }
        record
    }

    fn give_up(after: u32) -> GiveUp {
        let url = Url::parse("http://user:secret@127.0.0.1:9/v1?key=secret").unwrap();
        GiveUp::new(after, &url, CancellationToken::new(), false)
    }

    #[test]
    fn identical_dead_endpoint_failures_stop_the_load_without_leaking_credentials() {
        let g = give_up(3);
        for _ in 0..3 {
            g.observe(&attempt(Status::ConnectError, None, "connect"));
        }
        assert!(g.stop.is_cancelled());
        let verdict = g.verdict().unwrap();
        assert!(verdict.starts_with("cannot connect to 127.0.0.1:9: Connection refused"));
        assert!(!verdict.contains("secret"), "{verdict}");
    }

    #[test]
    fn one_answer_of_another_kind_disarms_it_for_good() {
        for other in [
            attempt(Status::Ok, Some(200), ""),
            attempt(Status::HttpError, Some(429), "http"),
            attempt(Status::HttpError, Some(401), "http"),
        ] {
            let g = give_up(3);
            g.observe(&attempt(Status::ConnectError, None, "connect"));
            g.observe(&other);
            for _ in 0..5 {
                g.observe(&attempt(Status::ConnectError, None, "connect"));
            }
            assert!(g.verdict().is_none(), "{:?}", other.http_status);
        }
    }
}
