//! The retry policy of the official OpenAI SDKs: what is retried, and how long to wait first.

use crate::record::{Record, Status};
use http::header::HeaderMap;
use rand::RngExt;
use std::time::{Duration, SystemTime};

/// A wait the server asked for, and the header that asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Asked {
    pub wait: Duration,
    pub header: &'static str,
}

/// What the answer's headers say about retrying and about the server's rate limits.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Hints {
    /// `x-should-retry: true|false`, which overrides the status-based rule.
    pub should_retry: Option<bool>,
    /// `retry-after-ms`, else `retry-after` (seconds or an HTTP date).
    pub retry_after: Option<Asked>,
    /// `x-ratelimit-limit-requests` (per minute), `-remaining-requests`, `-reset-requests` (`1s`, `6m0s`).
    pub limit_requests: Option<u64>,
    pub remaining_requests: Option<u64>,
    pub reset_requests: Option<Asked>,
    /// `x-ratelimit-remaining-tokens` and `-reset-tokens`.
    pub remaining_tokens: Option<u64>,
    pub reset_tokens: Option<Asked>,
}

impl Hints {
    /// Reads the hints in one pass over the headers (an answer carries a handful; a lookup by
    /// name per hint hashes each name), the first of a repeated header counting.
    pub fn from_headers(headers: &HeaderMap) -> Hints {
        let mut hints = Hints::default();
        let mut retry_after_ms = None;
        let mut retry_after = None;
        let asked =
            |header: &'static str, wait: Option<Duration>| wait.map(|wait| Asked { wait, header });
        let reset =
            |header: &'static str, v: &str| asked(header, humantime::parse_duration(v).ok());
        for (name, value) in headers {
            let name = name.as_str();
            if !(name.starts_with("x-") || name.starts_with("retry-after")) {
                continue;
            }
            let Ok(v) = value.to_str().map(str::trim) else {
                continue;
            };
            match name {
                "x-should-retry" if hints.should_retry.is_none() => {
                    hints.should_retry = match v {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    }
                }
                "retry-after-ms" if retry_after_ms.is_none() => {
                    retry_after_ms = asked(
                        "retry-after-ms",
                        v.parse::<f64>()
                            .ok()
                            .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()),
                    )
                }
                "retry-after" if retry_after.is_none() => {
                    let wait = match v.parse::<f64>() {
                        Ok(seconds) => Duration::try_from_secs_f64(seconds).ok(),
                        Err(_) => httpdate::parse_http_date(v)
                            .ok()
                            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default()),
                    };
                    retry_after = asked("retry-after", wait);
                }
                "x-ratelimit-limit-requests" if hints.limit_requests.is_none() => {
                    hints.limit_requests = v.parse().ok()
                }
                "x-ratelimit-remaining-requests" if hints.remaining_requests.is_none() => {
                    hints.remaining_requests = v.parse().ok()
                }
                "x-ratelimit-reset-requests" if hints.reset_requests.is_none() => {
                    hints.reset_requests = reset("x-ratelimit-reset-requests", v)
                }
                "x-ratelimit-remaining-tokens" if hints.remaining_tokens.is_none() => {
                    hints.remaining_tokens = v.parse().ok()
                }
                "x-ratelimit-reset-tokens" if hints.reset_tokens.is_none() => {
                    hints.reset_tokens = reset("x-ratelimit-reset-tokens", v)
                }
                _ => {}
            }
        }
        hints.retry_after = retry_after_ms.or(retry_after);
        hints
    }

    /// The longest wait the server asked for that applies: `retry-after`, and the reset of each
    /// rate-limit window that is exhausted (`remaining` 0), or whose `remaining` is not given. A
    /// token window that is spent while requests are left waits for the token window's reset,
    /// not the request window's.
    pub fn server_wait(&self) -> Option<Asked> {
        let applies = |remaining: Option<u64>| remaining.is_none_or(|r| r == 0);
        [
            self.retry_after,
            self.reset_requests
                .filter(|_| applies(self.remaining_requests)),
            self.reset_tokens.filter(|_| applies(self.remaining_tokens)),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|asked| asked.wait)
    }

    /// Takes a wait named in a 429's body (some gateways give none in the headers), when the
    /// headers asked for none.
    pub fn read_body(&mut self, body: &[u8]) {
        if self.retry_after.is_none() {
            self.retry_after = wait_in_body(body);
        }
    }
}

/// A wait a rate-limit error body names: a `retry_after` (seconds) or `retry_after_ms` field, a
/// Google-style `retryDelay` ("30s"), anywhere in the JSON, else "try again in 6.5s" (or `1m30s`,
/// `120ms`) in its message, as OpenAI's 429 messages say.
pub fn wait_in_body(body: &[u8]) -> Option<Asked> {
    const HEADER: &str = "error body";
    let asked = |wait: Option<Duration>| {
        wait.map(|wait| Asked {
            wait,
            header: HEADER,
        })
    };
    let text = std::str::from_utf8(&body[..body.len().min(64 * 1024)]).ok()?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
        && let Some(found) = find_wait(&json, 0)
    {
        return asked(Some(found));
    }
    let lower = text.to_ascii_lowercase();
    let at = lower.find("try again in ")? + "try again in ".len();
    let rest = &text[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(rest.len());
    let spoken = rest[..end].trim_end_matches('.');
    asked(humantime::parse_duration(spoken).ok().or_else(|| {
        spoken
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }))
}

/// A wait field in `json`, searched a few levels deep.
fn find_wait(json: &serde_json::Value, depth: u32) -> Option<Duration> {
    use serde_json::Value;
    if depth > 4 {
        return None;
    }
    match json {
        Value::Object(map) => {
            for (key, value) in map {
                let found = match (key.as_str(), value) {
                    ("retry_after_ms" | "retryAfterMs", Value::Number(n)) => n
                        .as_f64()
                        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok()),
                    ("retry_after" | "retryAfter", Value::Number(n)) => {
                        n.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok())
                    }
                    ("retry_after" | "retryAfter" | "retryDelay", Value::String(s)) => {
                        humantime::parse_duration(s.trim()).ok().or_else(|| {
                            s.trim()
                                .parse::<f64>()
                                .ok()
                                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                        })
                    }
                    (_, Value::Object(_) | Value::Array(_)) => find_wait(value, depth + 1),
                    _ => None,
                };
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Array(items) => items.iter().find_map(|v| find_wait(v, depth + 1)),
        _ => None,
    }
}

/// A wait before the next send, and where its length came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wait {
    pub wait: Duration,
    /// The server's ask, when the wait is one (possibly capped).
    pub asked: Option<Asked>,
}

impl Wait {
    /// The one policy for every server-requested wait: honoured up to `cap` (`--max-server-wait`),
    /// never longer.
    pub fn server(asked: Asked, cap: Duration) -> Wait {
        Wait {
            wait: asked.wait.min(cap),
            asked: Some(asked),
        }
    }

    /// The server asked for more than it got.
    pub fn capped(&self) -> bool {
        self.asked.is_some_and(|a| a.wait > self.wait)
    }
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs =
            |d: Duration| humantime::format_duration(Duration::from_millis(d.as_millis() as u64));
        match self.asked {
            None => write!(f, "back-off {}", secs(self.wait)),
            Some(asked) if self.capped() => write!(
                f,
                "{}: {} asked, capped at {} (--max-server-wait)",
                asked.header,
                secs(asked.wait),
                secs(self.wait)
            ),
            Some(asked) => write!(f, "{}: {}", asked.header, secs(self.wait)),
        }
    }
}

/// Retry 408, 409, 429 and 5xx answers, timeouts, connection errors and broken bodies or streams;
/// never other 4xx, nor a 429 for `insufficient_quota` (billing: waiting does not help), nor a 2xx
/// answer reporting a failure in-band or with a malformed event. A server's `x-should-retry`
/// decides the rest when present.
pub fn should_retry(record: &Record, hints: &Hints) -> bool {
    // A 2xx answer that reported a failure or broke its own format was read, not lost: the SDKs
    // raise on it without a retry, whatever `x-should-retry` says (it is read on error statuses).
    if matches!(record.status, Status::ApiError | Status::InvalidResponse) {
        return false;
    }
    if let Some(decided) = hints.should_retry {
        return decided;
    }
    // Speaking the wrong protocol is a setting to change: trying again changes nothing.
    if record
        .error
        .as_ref()
        .is_some_and(|e| super::ProtocolMismatch::from_kind(&e.kind).is_some())
    {
        return false;
    }
    match record.status {
        Status::Timeout | Status::ConnectError | Status::Truncated => true,
        Status::HttpError => {
            let quota = record
                .error
                .as_ref()
                .is_some_and(|e| e.kind == "insufficient_quota");
            match record.http_status {
                Some(429) => !quota,
                Some(408 | 409) => true,
                Some(code) => code >= 500,
                None => false,
            }
        }
        _ => false,
    }
}

/// The server's ask (`Hints::server_wait`: `retry-after-ms`, `retry-after`, an exhausted window's
/// reset, a wait named in the error body) capped at `cap`, else, as the SDKs do,
/// min(0.5 s × 2^(attempt−1), 8 s) less up to 25% at random.
pub fn wait(hints: &Hints, attempt: u32, cap: Duration) -> Wait {
    if let Some(asked) = hints.server_wait()
        && !asked.wait.is_zero()
    {
        return Wait::server(asked, cap);
    }
    let backoff = (0.5 * 2f64.powi(attempt.saturating_sub(1).min(16) as i32)).min(8.0);
    let jitter = 1.0 - 0.25 * rand::rng().random_range(0.0..1.0);
    Wait {
        wait: Duration::from_secs_f64(backoff * jitter),
        asked: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    #[test]
    fn waits_in_error_bodies_are_read_in_each_form_gateways_use() {
        for (body, secs) in [
            (
                r#"{"error":{"message":"Rate limit reached for gpt-4o. Please try again in 6.5s. Visit ..."}}"#,
                6.5,
            ),
            (
                r#"{"error":{"message":"Please try again in 1m30s."}}"#,
                90.0,
            ),
            (
                r#"{"error":{"message":"slow down","retry_after":12}}"#,
                12.0,
            ),
            (r#"{"retry_after_ms":250}"#, 0.25),
            (
                r#"{"error":{"details":[{"@type":"RetryInfo","retryDelay":"30s"}]}}"#,
                30.0,
            ),
        ] {
            let asked = wait_in_body(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            assert_eq!(asked.wait, Duration::from_secs_f64(secs), "{body}");
        }
        assert!(wait_in_body(br#"{"error":{"message":"slow down"}}"#).is_none());
    }

    #[test]
    fn the_longest_applicable_reset_is_the_servers_wait() {
        let asked = |secs: u64, header| {
            Some(Asked {
                wait: Duration::from_secs(secs),
                header,
            })
        };
        let hints = Hints {
            remaining_requests: Some(99),
            reset_requests: asked(1, "x-ratelimit-reset-requests"),
            remaining_tokens: Some(0),
            reset_tokens: asked(6, "x-ratelimit-reset-tokens"),
            ..Hints::default()
        };
        assert_eq!(hints.server_wait(), asked(6, "x-ratelimit-reset-tokens"));
        let both_unknown = Hints {
            remaining_requests: None,
            remaining_tokens: None,
            ..hints.clone()
        };
        assert_eq!(
            both_unknown.server_wait(),
            asked(6, "x-ratelimit-reset-tokens")
        );
        let tokens_left = Hints {
            remaining_tokens: Some(5000),
            remaining_requests: Some(0),
            ..hints
        };
        assert_eq!(
            tokens_left.server_wait(),
            asked(1, "x-ratelimit-reset-requests")
        );
    }

    fn failed(status: Status, http: Option<u16>, kind: &str) -> Record {
        let mut record = Record::empty("1".into(), 1, Status::Ok);
        record.http_status = http;
        record.fail(status, kind, "x");
        record
    }

    #[test]
    fn retryable_statuses_follow_the_sdk_policy() {
        let none = Hints::default();
        for (status, http, kind, expected) in [
            (Status::HttpError, Some(429), "rate_limit_exceeded", true),
            (Status::HttpError, Some(429), "insufficient_quota", false),
            (Status::HttpError, Some(500), "server_error", true),
            (Status::HttpError, Some(503), "http_503", true),
            (Status::HttpError, Some(408), "http_408", true),
            (Status::HttpError, Some(409), "http_409", true),
            (Status::HttpError, Some(400), "invalid_request_error", false),
            (Status::HttpError, Some(401), "invalid_api_key", false),
            (Status::Timeout, None, "timeout", true),
            (Status::ConnectError, None, "connect", true),
            (Status::Truncated, Some(200), "stream_truncated", true),
            (Status::InvalidResponse, Some(200), "invalid_json", false),
        ] {
            assert_eq!(
                should_retry(&failed(status, http, kind), &none),
                expected,
                "{status:?} {http:?} {kind}"
            );
        }
        let no = Hints {
            should_retry: Some(false),
            ..Hints::default()
        };
        assert!(!should_retry(
            &failed(Status::HttpError, Some(500), "x"),
            &no
        ));
        let yes = Hints {
            should_retry: Some(true),
            ..Hints::default()
        };
        assert!(should_retry(
            &failed(Status::HttpError, Some(400), "x"),
            &yes
        ));
        for status in [Status::ApiError, Status::InvalidResponse] {
            assert!(
                !should_retry(&failed(status, Some(200), "x"), &yes),
                "{status:?} is read, not lost"
            );
        }
    }

    #[test]
    fn waits_honour_the_server_then_back_off() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        headers.insert("retry-after", HeaderValue::from_static("7"));
        let cap = Duration::from_secs(60);
        assert_eq!(
            wait(&Hints::from_headers(&headers), 1, cap).wait,
            Duration::from_millis(250)
        );
        headers.remove("retry-after-ms");
        assert_eq!(
            wait(&Hints::from_headers(&headers), 1, cap).wait,
            Duration::from_secs(7)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        let asked = wait(&Hints::from_headers(&headers), 1, cap).wait;
        assert!(
            asked > Duration::from_secs(28) && asked <= Duration::from_secs(30),
            "{asked:?}"
        );
        let backoff = wait(&Hints::default(), 1, cap).wait;
        assert!(
            backoff <= Duration::from_millis(500) && backoff >= Duration::from_millis(375),
            "{backoff:?}"
        );
        let longest = wait(&Hints::default(), 10, cap).wait;
        assert!(longest <= Duration::from_secs(8) && longest >= Duration::from_secs(6));
    }

    #[test]
    fn every_server_requested_wait_is_capped_and_names_its_header() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3600"));
        headers.insert(
            "x-ratelimit-reset-requests",
            HeaderValue::from_static("6m0s"),
        );
        headers.insert("x-ratelimit-reset-tokens", HeaderValue::from_static("12ms"));
        let hints = Hints::from_headers(&headers);
        let cap = Duration::from_secs(60);
        let retry = wait(&hints, 1, cap);
        assert_eq!(retry.wait, cap);
        assert!(retry.capped());
        assert_eq!(
            retry.to_string(),
            "retry-after: 1h asked, capped at 1m (--max-server-wait)"
        );
        let reset = Wait::server(hints.reset_requests.unwrap(), cap);
        assert_eq!((reset.wait, reset.capped()), (cap, true));
        let tokens = Wait::server(hints.reset_tokens.unwrap(), cap);
        assert_eq!(tokens.wait, Duration::from_millis(12));
        assert_eq!(tokens.to_string(), "x-ratelimit-reset-tokens: 12ms");
    }
}
