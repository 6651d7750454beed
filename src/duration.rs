//! Durations as users write them: `30s`, `250ms`, `2m`, or a bare number of seconds.

use std::time::Duration;

/// Parses `30s`, `250ms`, `2m`, or a bare number of seconds such as `1.5`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (try 30s, 250ms or 2m)"))
}
