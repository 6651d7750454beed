//! The HTTP transport under the client: hyper's pooled client over TCP (nodelay), TLS (rustls with
//! the Mozilla roots, h2 or HTTP/1.1 by ALPN, or h2c by prior knowledge) and the environment's
//! proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as curl reads them).
//!
//! hyper is driven directly, not through reqwest: reqwest re-parses each response's URL (4.6% of
//! the client's CPU in a `bench -c 64` profile), clones its connector and runs a retry layer on
//! every request; without it the client used 36–54 instead of 60–72 µs of CPU per request in an
//! interleaved A/B against nginx (issue 13).

use bytes::Bytes;
use http::Uri;
use http::uri::Scheme;
use http_body_util::Full;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
pub use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower_service::Service;

/// How connections are made: TCP (directly or through a proxy), then TLS for https://, within the
/// connect timeout.
pub type Connector = Timed<hyper_rustls::HttpsConnector<ProxyConnector>>;

/// One pooled HTTP client: requests carry their whole body.
pub type Http = legacy::Client<Connector, Full<Bytes>>;

/// A failure below HTTP: from connecting, or from a pooled connection.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How connections are made and kept.
pub struct Transport {
    /// For the whole connection set-up: TCP, the proxy's tunnel, TLS.
    pub connect_timeout: Duration,
    /// Idle connections kept per host (0: a new connection for every request, and no cap).
    /// Above 0 it is also the cap on open connections: a request that finds none idle while the
    /// cap is reached waits for one (see `ProxyConnector::cap`).
    pub max_idle: usize,
    pub idle_timeout: Duration,
    /// h2c: HTTP/2 without negotiation for http:// (and only HTTP/2 for https://).
    pub http2_only: bool,
    /// Accept any server certificate (`--insecure`).
    pub insecure: bool,
    /// The environment's proxies (`Matcher::from_env`; it intercepts nothing when none is named).
    /// Only `http://` proxy URLs are spoken (`unsupported_proxy`).
    pub proxies: Arc<Matcher>,
}

impl Transport {
    pub fn build(&self) -> anyhow::Result<Http> {
        Ok(legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_max_idle_per_host(self.max_idle)
            .pool_idle_timeout(self.idle_timeout)
            .http2_only(self.http2_only)
            .build(self.connector()?))
    }

    /// The connector `build` pools: for connections driven directly (`H1Pool`).
    pub fn connector(&self) -> anyhow::Result<Connector> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.connect_timeout));
        // RFC 8305's Connection Attempt Delay: `localhost` resolving to ::1 first while the server
        // listens on 127.0.0.1 only costs a new connection at most this, not hyper's 300 ms.
        tcp.set_happy_eyeballs_timeout(Some(HAPPY_EYEBALLS_DELAY));
        // As reqwest did: a silent peer (a long answer behind NAT) keeps its connection, a dead
        // one is noticed before `--timeout`.
        tcp.set_keepalive(Some(Duration::from_secs(15)));
        tcp.set_keepalive_interval(Some(Duration::from_secs(15)));
        tcp.set_keepalive_retries(Some(3));
        let proxied = ProxyConnector {
            tcp,
            proxies: self.proxies.clone(),
            cap: (self.max_idle > 0).then(|| Arc::new(tokio::sync::Semaphore::new(self.max_idle))),
        };
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(self.insecure)?)
            .https_or_http();
        // HTTP/2 only: ALPN offers h2 alone, so a server cannot pick HTTP/1.1 and get a preface.
        let connector = if self.http2_only {
            tls.enable_http2().wrap_connector(proxied)
        } else {
            tls.enable_all_versions().wrap_connector(proxied)
        };
        Ok(Timed {
            inner: connector,
            limit: self.connect_timeout,
        })
    }
}

fn tls_config(insecure: bool) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    Ok(if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    })
}

/// `--insecure`: any certificate is taken, its signatures still checked (the handshake stays TLS).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects over TCP, directly or through the proxy the environment names for the destination:
/// an https:// destination through a CONNECT tunnel, an http:// one by asking the proxy (the
/// request then goes out in absolute form).
#[derive(Clone)]
pub struct ProxyConnector {
    tcp: HttpConnector,
    proxies: Arc<Matcher>,
    /// At most this many connections open at once (one per concurrency slot, as oha keeps one
    /// per worker): a permit travels with each connection and is returned when hyper drops it.
    ///
    /// hyper-util's pool races a new connection against the checkout of an idle one, and hands a
    /// finished HTTP/1.1 connection back on a task of its own: a slot's next request often found
    /// none idle yet and opened a second connection (5 in 30 runs of a 3-request `-c 1` test on
    /// loopback), whose handshake then counted in that request's latency. With the cap, a request
    /// that finds it reached waits for the checkout, which wins as soon as the connection is back.
    cap: Option<Arc<tokio::sync::Semaphore>>,
}

impl Service<Uri> for ProxyConnector {
    type Response = Proxied;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Proxied, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxies.intercept(&dst);
        let mut tcp = self.tcp.clone();
        let cap = self.cap.clone();
        Box::pin(async move {
            if let Some(e) = intercept.as_ref().and_then(|p| unsupported_proxy(p.uri())) {
                return Err(e);
            }
            let counted = match cap {
                // The semaphore is never closed, so acquiring only waits.
                Some(cap) => cap.acquire_owned().await.ok(),
                None => None,
            };
            // The set-up starts now: waiting for the cap is not part of it.
            let set_up_from = std::time::Instant::now();
            Ok(match intercept {
                None => Proxied::new(tcp.call(dst).await?, false, counted, set_up_from),
                Some(proxy) if dst.scheme() == Some(&Scheme::HTTPS) => {
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), tcp);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    Proxied::new(tunnel.call(dst).await?, false, counted, set_up_from)
                }
                Some(proxy) => Proxied::new(
                    tcp.call(proxy.uri().clone()).await?,
                    true,
                    counted,
                    set_up_from,
                ),
            })
        })
    }
}

/// Why a proxy URL cannot be used, naming its scheme and host (never its credentials): only
/// `http://` proxies are spoken.
pub fn unsupported_proxy(proxy: &Uri) -> Option<BoxError> {
    match proxy.scheme_str() {
        Some("http") => None,
        scheme => Some(
            format!(
                "the proxy {}://{} is not supported: only http:// proxy URLs are (HTTPS_PROXY=http://host:port still tunnels https:// endpoints)",
                scheme.unwrap_or("?"),
                proxy.host().unwrap_or("?")
            )
            .into(),
        ),
    }
}

/// A connector whose connections must be set up (TCP, the proxy's tunnel, TLS) within `limit`.
#[derive(Clone)]
pub struct Timed<C> {
    inner: C,
    limit: Duration,
}

/// RFC 8305 §5: the delay before the next address family is tried in parallel.
pub const HAPPY_EYEBALLS_DELAY: Duration = Duration::from_millis(250);

/// How long a new connection took to set up (DNS, TCP, the proxy's tunnel, TLS): carried in the
/// extensions of every response on it, and taken by the first request that reads it, the one
/// that waited for it (as k6 reports `http_req_connecting` + `http_req_tls_handshaking`).
#[derive(Clone, Debug)]
pub struct NewConnection(Arc<SetUp>);

#[derive(Debug)]
struct SetUp {
    took: Duration,
    taken: std::sync::atomic::AtomicBool,
}

impl NewConnection {
    /// The set-up time, the first time it is asked for; None after (a reused connection).
    pub fn take(&self) -> Option<Duration> {
        (!self
            .0
            .taken
            .swap(true, std::sync::atomic::Ordering::Relaxed))
        .then_some(self.0.took)
    }
}

/// What a connection made by `Connector` carries for its responses: its quick-ACK handle, and how
/// long it took to set up (taken: None on the next call).
pub fn connection_facts(io: &impl Connection) -> (Option<QuickAck>, Option<Duration>) {
    let mut extensions = http::Extensions::new();
    io.connected().get_extras(&mut extensions);
    (
        extensions.get::<QuickAck>().cloned(),
        extensions
            .get::<NewConnection>()
            .and_then(NewConnection::take),
    )
}

/// A connection that knows how long it took to set up.
pub struct TimedIo<T> {
    io: T,
    setup: NewConnection,
}

impl<T: Connection> Connection for TimedIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.setup.clone())
    }
}

/// `hyper::rt::Write` for a wrapper, by its `io` field: the connection types here add what they
/// know (timing, a permit, quick ACKs on reads) and write through unchanged.
macro_rules! write_through_io {
    ($ty:ty $(, $param:ident: $bound:path)?) => {
        impl$(<$param: $bound + Unpin>)? Write for $ty {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.io).poll_write(cx, buf)
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Pin::new(&mut self.io).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Pin::new(&mut self.io).poll_shutdown(cx)
            }

            fn is_write_vectored(&self) -> bool {
                self.io.is_write_vectored()
            }

            fn poll_write_vectored(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
            }
        }
    };
}

write_through_io!(TimedIo<T>, T: Write);
write_through_io!(Proxied);

impl<T: Read + Unpin> Read for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<C> Service<Uri> for Timed<C>
where
    C: Service<Uri>,
    C::Response: SetUpFrom,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = TimedIo<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TimedIo<C::Response>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(Ok(io)) => Ok(TimedIo {
                    setup: NewConnection(Arc::new(SetUp {
                        took: io.set_up_from().elapsed(),
                        taken: std::sync::atomic::AtomicBool::new(false),
                    })),
                    io,
                }),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(ConnectTimedOut(limit).into()),
            }
        })
    }
}

/// The connection was not set up within the connect timeout.
#[derive(Debug)]
pub struct ConnectTimedOut(pub Duration);

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no connection within {} (TCP, proxy tunnel and TLS)",
            humantime::format_duration(self.0)
        )
    }
}

impl std::error::Error for ConnectTimedOut {}

/// A TCP connection, to the server or to a proxy that forwards plain HTTP requests.
pub struct Proxied {
    io: TokioIo<TcpStream>,
    proxied: bool,
    /// Released, for a waiting request, when hyper drops the closed connection.
    _counted: Option<tokio::sync::OwnedSemaphorePermit>,
    /// When its set-up began (after any wait for the connection cap).
    set_up_from: std::time::Instant,
    /// The handle every response on this connection carries; closed when the connection drops.
    ack: QuickAck,
}

impl Proxied {
    fn new(
        io: TokioIo<TcpStream>,
        proxied: bool,
        counted: Option<tokio::sync::OwnedSemaphorePermit>,
        set_up_from: std::time::Instant,
    ) -> Self {
        let ack = QuickAck::of(io.inner());
        Proxied {
            io,
            proxied,
            _counted: counted,
            set_up_from,
            ack,
        }
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        self.ack.close();
    }
}

/// When a connection's set-up began, read through the TLS layer.
pub trait SetUpFrom {
    fn set_up_from(&self) -> std::time::Instant;
}

impl SetUpFrom for hyper_rustls::MaybeHttpsStream<Proxied> {
    fn set_up_from(&self) -> std::time::Instant {
        match self {
            hyper_rustls::MaybeHttpsStream::Http(io) => io.set_up_from,
            hyper_rustls::MaybeHttpsStream::Https(tls) => {
                tls.inner().get_ref().0.inner().set_up_from
            }
        }
    }
}

impl Connection for Proxied {
    fn connected(&self) -> Connected {
        self.io
            .connected()
            .proxy(self.proxied)
            .extra(self.ack.clone())
    }
}

impl Read for Proxied {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        // HTTP/2: other streams' requests put the connection back in delayed-ACK mode between
        // reads, so each read is acknowledged (by the connection itself: no lock, one call per
        // read whatever the streams in it).
        if let Poll::Ready(Ok(())) = read
            && self
                .ack
                .0
                .every_read
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            quick_ack_on(self.io.inner());
        }
        read
    }
}

/// Acknowledges at once what a connection has received, when the client asks: carried in the
/// extensions of every response on the connection.
///
/// A server without TCP_NODELAY holds each small write (an SSE event) until the one before is
/// acknowledged (Nagle's algorithm), and Linux delays ACKs by up to 40 ms while a connection is in
/// its interactive ("pingpong") mode, which every request sent puts it in: every event, the first
/// token included, then waited for the client's delayed ACK (TTFT p50 43 ms instead of 5 ms
/// against a scripted server writing an event every 5 ms). `TCP_QUICKACK` sends the pending ACK and
/// leaves that mode until the client sends again, so on HTTP/1.1 one call per answer, when it
/// turns out to be a stream or a body in several pieces, keeps all its events acknowledged as they
/// are read (tcp(7); `tcp_cleanup_rbuf` in Linux). An answer read whole in one piece needs none:
/// the next request carries its ACK. (Setting it after every read cost an ACK packet and a
/// syscall per answer: 8.75% of a `bench -c 64` profile's samples with call stacks, and 19.5 against
/// 19.0 µs of CPU per request in an interleaved A/B; issue 31.)
#[derive(Clone, Debug)]
pub struct QuickAck(Arc<AckState>);

#[derive(Debug)]
struct AckState {
    /// None once the connection closed (its descriptor may be reused).
    fd: std::sync::Mutex<Option<RawSocket>>,
    /// Set by `every_read`: the connection acknowledges each read itself.
    every_read: std::sync::atomic::AtomicBool,
}

#[cfg(unix)]
type RawSocket = std::os::fd::RawFd;
#[cfg(not(unix))]
type RawSocket = ();

impl QuickAck {
    #[cfg(unix)]
    fn of(stream: &TcpStream) -> Self {
        use std::os::fd::AsRawFd;
        QuickAck::with(Some(stream.as_raw_fd()))
    }

    #[cfg(not(unix))]
    fn of(_stream: &TcpStream) -> Self {
        QuickAck::with(None)
    }

    fn with(fd: Option<RawSocket>) -> Self {
        QuickAck(Arc::new(AckState {
            fd: std::sync::Mutex::new(fd),
            every_read: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The connection is closing: its descriptor may be reused from now on.
    fn close(&self) {
        if let Ok(mut fd) = self.0.fd.lock() {
            *fd = None;
        }
    }

    /// Sends the ACK for what has arrived now, and ACKs what arrives next as it is read, until
    /// this side sends again. The lock is held across the call so the descriptor cannot close
    /// under it; it is never contended on HTTP/1.1 (one request at a time per connection).
    pub fn now(&self) {
        if let Ok(fd) = self.0.fd.lock()
            && let Some(fd) = *fd
        {
            set_quick_ack(fd);
        }
    }

    /// From now on the connection acknowledges every read itself (HTTP/2), and what has arrived
    /// is acknowledged now.
    pub fn every_read(&self) {
        if !self
            .0
            .every_read
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.now();
        }
    }
}

/// `TCP_QUICKACK` on a socket its owner holds open.
#[cfg(unix)]
fn quick_ack_on(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    set_quick_ack(stream.as_raw_fd());
}

#[cfg(not(unix))]
fn quick_ack_on(_stream: &TcpStream) {}

#[cfg(target_os = "linux")]
fn set_quick_ack(fd: RawSocket) {
    let on: libc::c_int = 1;
    // SAFETY: a socket descriptor still open (the lock in `QuickAck` keeps it so), an int option
    // of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn set_quick_ack(_fd: RawSocket) {}
