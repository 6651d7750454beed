//! The load's own HTTP/1.1 connections over plain TCP: one request at a time each, idle ones on a
//! stack, no per-request task, hash or client clone.
//!
//! hyper-util's pooled client hashes the destination twice per request, clones itself (its
//! connector and pool handles) for every checkout, and hands each finished HTTP/1.1 connection
//! back on a task of its own: its `send_request` was 10.8% of a `bench -c 64` profile against
//! nginx with its children, and this module took the client from 15.6 to 14.2 µs of CPU per
//! request (interleaved A/B, issue 31). oha drives hyper's `conn::http1` directly, one connection
//! per worker; this does the same through a stack, so any worker takes any idle connection and none
//! is spawned per request. The most recently used goes first, as in hyper-util's pool: at a low
//! rate over many connections the same few stay warm, and the others age out together instead of
//! each idling past the timeout in turn. HTTP/2, TLS and proxies keep hyper-util's client (one path
//! each, where its pooling is what they need).

use super::transport::{BoxError, Connector, QuickAck, connection_facts};
use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use std::time::{Duration, Instant};
use tower_service::Service;

/// A connection taken for one request, given back with `H1Pool::give_back` once its answer was
/// read (dropped instead, it closes).
pub struct Lease {
    sender: http1::SendRequest<Full<Bytes>>,
    /// How long setting it up took, for the first request on it only.
    pub set_up: Option<Duration>,
    /// Asks the connection's socket for quick ACKs (`QuickAck`).
    pub ack: Option<QuickAck>,
}

struct Idle {
    sender: http1::SendRequest<Full<Bytes>>,
    ack: Option<QuickAck>,
    since: Instant,
}

/// Why a request on the pool's connections did not get its answer's head.
#[derive(Debug)]
pub enum PoolError {
    /// The connection could not be set up (TCP, within the connect timeout).
    Connect(BoxError),
    /// The request failed on a connection (closed, reset, an unreadable answer).
    Send(hyper::Error),
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // hyper-util's words, so a record reads the same whichever client sent it.
            PoolError::Connect(_) => f.write_str("client error (Connect)"),
            PoolError::Send(_) => f.write_str("client error (SendRequest)"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Connect(e) => Some(e.as_ref()),
            PoolError::Send(e) => Some(e),
        }
    }
}

/// Idle connections, most recently used last (never more than the run's concurrency are open, as
/// the connector's cap keeps it); those idle longer than `idle_timeout` are closed when next met.
/// The lock is held for a push or a scan of the few idle ones, never across a wait.
pub struct H1Pool {
    idle: std::sync::Mutex<Vec<Idle>>,
    connector: Connector,
    destination: Uri,
    idle_timeout: Duration,
}

impl H1Pool {
    pub fn new(
        connector: Connector,
        destination: Uri,
        capacity: usize,
        idle_timeout: Duration,
    ) -> Self {
        H1Pool {
            idle: std::sync::Mutex::new(Vec::with_capacity(capacity.min(1024))),
            connector,
            destination,
            idle_timeout,
        }
    }

    /// Sends `request` (origin-form URI, `Host` set), at `now` (the attempt's start: no clock is
    /// read here for a reused connection), on an idle connection that is still open, or on a new
    /// one; returns the answer's head with the connection it came on.
    pub async fn send(
        &self,
        mut request: http::Request<Full<Bytes>>,
        now: Instant,
    ) -> Result<(http::Response<Incoming>, Lease), PoolError> {
        while let Some(idle) = self.take_idle(now) {
            if idle.sender.is_closed() {
                continue;
            }
            let mut sender = idle.sender;
            // Ready at once unless it is still reading its previous answer's end (taken only
            // when no idle one was ready); an error here is a connection that closed while idle:
            // the next one is tried.
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let lease = Lease {
                        sender,
                        set_up: None,
                        ack: idle.ack,
                    };
                    return Ok((response, lease));
                }
                // Not sent (the connection closed as it was taken): the request comes back.
                Err(mut e) => match e.take_message() {
                    Some(back) => request = back,
                    None => return Err(PoolError::Send(e.into_error())),
                },
            }
        }
        // Boxed: set-up happens once a connection, and its futures inline would enlarge every
        // request's task by 2.2 KB, streams on h2c (which never come here) too: about as much RSS
        // per h2c stream (`benches/stream_memory.sh`, 3,000 streams: 14.9 -> 12.7 KB).
        let (mut sender, ack, set_up) = Box::pin(self.connect()).await?;
        let response = sender
            .send_request(request)
            .await
            .map_err(PoolError::Send)?;
        let lease = Lease {
            sender,
            set_up: Some(set_up),
            ack,
        };
        Ok((response, lease))
    }

    /// A new connection, ready for its first request: its sender, quick-ACK handle and set-up time.
    async fn connect(
        &self,
    ) -> Result<(http1::SendRequest<Full<Bytes>>, Option<QuickAck>, Duration), PoolError> {
        let started = Instant::now();
        let io = self
            .connector
            .clone()
            .call(self.destination.clone())
            .await
            .map_err(PoolError::Connect)?;
        let (ack, set_up) = connection_facts(&io);
        let set_up = set_up.unwrap_or_else(|| started.elapsed());
        // hyper's default read buffer: 8 KB, growing with big reads. A fixed smaller one (4 KB
        // saved 4.6 KB per stream at 2,000 streams) is also the largest answer head hyper then
        // accepts, and gateways send heads of several KB.
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(PoolError::Send)?;
        tokio::spawn(async move {
            // Its errors reach the request that was on it.
            let _ = connection.await;
        });
        Ok((sender, ack, set_up))
    }

    /// The most recently used idle connection ready for a request, else the most recent one
    /// (still reading its previous answer's end, or closed); None when there is none, or when the
    /// most recent is past the idle timeout, and so are all below it: those are closed.
    fn take_idle(&self, now: Instant) -> Option<Idle> {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle
            .last()
            .is_some_and(|top| now.saturating_duration_since(top.since) > self.idle_timeout)
        {
            idle.clear();
            return None;
        }
        match idle.iter().rposition(|i| i.sender.is_ready()) {
            Some(at) => Some(idle.remove(at)),
            None => idle.pop(),
        }
    }

    /// The answer on `lease` was read (or given up): its connection waits for the next request.
    /// One whose answer was not read to its end closes by itself and is skipped when met.
    /// `at` is when its answer ended (the attempt's clock reading).
    pub fn give_back(&self, lease: Lease, at: Instant) {
        if lease.sender.is_closed() {
            return;
        }
        let back = Idle {
            sender: lease.sender,
            ack: lease.ack,
            since: at,
        };
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(back);
    }
}
