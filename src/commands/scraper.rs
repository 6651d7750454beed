//! The `--scrape` task: every `--scrape-every`, on a task of its own and a connection pool of its
//! own, each target's page fetched (at most until the next tick) and read by `scrape::Scrape` on
//! the blocking pool.

use crate::client::Http;
use crate::scrape::{Failure, Scrape, ServerSummary};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A page larger than this is refused (a hostile or broken server cannot fill memory).
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// Starts scraping at once (the first good scrape is every counter's baseline) and until `stop`,
/// then scrapes once more (the last interval) and returns the summary. Failures are counted per
/// target and never end the scrape or touch the load.
///
/// Errors: `server_metrics.csv` cannot be created (at once) or written (from the task).
pub fn start(
    targets: Vec<http::Uri>,
    every: Duration,
    http: Http,
    epoch: Instant,
    dir: &Path,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<ServerSummary>>> {
    let mut scrape = Scrape::new(&targets, every, dir)?;
    Ok(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        // A slow tick is not made up for with a burst.
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last = false;
        while !last {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.cancelled() => last = true,
            }
            // Stamped as asked: every target's interval the same, whatever each took to answer.
            let t_s = epoch.elapsed().as_secs_f64();
            let pages = fetch_all(&http, &targets, every).await;
            // Reading a page is CPU work: off the runtime the load's requests run on.
            scrape = tokio::task::spawn_blocking(move || {
                scrape.record(t_s, pages, last).map(|()| scrape)
            })
            .await??;
        }
        scrape.finish()
    }))
}

/// Every target at once, each for at most `limit`.
async fn fetch_all(
    http: &Http,
    targets: &[http::Uri],
    limit: Duration,
) -> Vec<Result<String, Failure>> {
    futures_util::future::join_all(targets.iter().map(|uri| fetch(http, uri.clone(), limit))).await
}

/// One scrape of `uri` now: the number of metric families its page holds, or why there is none
/// (an error status, no answer within `limit`, a page with no samples).
pub async fn probe(http: &Http, uri: http::Uri, limit: Duration) -> Result<usize, String> {
    let text = fetch(http, uri, limit).await.map_err(|e| e.to_string())?;
    crate::scrape::families_in(&text).ok_or_else(|| "the page holds no metrics".to_string())
}

/// One GET, its whole body, within `limit`.
async fn fetch(http: &Http, uri: http::Uri, limit: Duration) -> Result<String, Failure> {
    let request = http::Request::get(uri)
        .header(
            http::header::ACCEPT,
            "text/plain;version=0.0.4, application/openmetrics-text;q=0.5",
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| Failure::Other(e.to_string()))?;
    let work = async {
        let response = http
            .request(request)
            .await
            .map_err(|e| Failure::Other(crate::client::describe(&e)))?;
        if !response.status().is_success() {
            return Err(Failure::Status(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_PAGE_BYTES)
            .collect()
            .await
            .map_err(|e| Failure::Other(format!("reading the page: {e}")))?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Slow),
    }
}
