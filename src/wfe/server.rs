//! HTTPS listener: at most `max_connections` at once (more are closed at accept), TLS
//! accept with a deadline, every read and write cut after `idle_timeout` without progress
//! (a slow handshake, an idle keep-alive connection, a trickled body, an HTTP/2 connection
//! that sends nothing), HTTP/2 keep-alive pings and a stream cap, body limits (enforced in
//! the router), and graceful shutdown that lets in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::server::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;
use tokio_rustls::TlsAcceptor;

use rustls::pki_types::CertificateDer;

use super::Endpoints;

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent requests on one HTTP/2 connection.
const H2_STREAMS: u32 = 32;

/// How many connections, and how slow they may be.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once; further ones are closed as they arrive.
    pub max_connections: usize,
    /// A read or write that makes no progress for this long ends the connection.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// The next connection on `listener`, or `None` once `shutdown` completes.
pub(super) async fn next_connection(
    listener: &TcpListener,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => return Some(accepted),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut *shutdown => return None,
        }
    }
}

/// Serves `endpoints` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    endpoints: Arc<Endpoints>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut refused = 0u64;
    tokio::pin!(shutdown);
    while let Some((stream, peer)) = next_connection(&listener, &mut shutdown).await {
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            // Closed at once: a flood costs an accept, not a handshake on the token.
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, max = limits.max_connections,
                    "connection limit reached; closing new connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(limits.idle_timeout));
        stream.set_write_timeout(Some(limits.idle_timeout));
        let stream = Box::pin(stream);
        let acceptor = acceptor.clone();
        let endpoints = Arc::clone(&endpoints);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT.min(limits.idle_timeout));
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(H2_STREAMS)
                .keep_alive_interval(Some(limits.idle_timeout))
                .keep_alive_timeout(limits.idle_timeout);
            let client = peer.ip();
            // mTLS: the client's certificate chain, for endpoints that require one.
            let chain: Option<Arc<[CertificateDer<'static>]>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect());
            let service = service_fn(move |request| {
                Arc::clone(&endpoints).handle(request, client, chain.clone())
            });
            let connection = builder.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy when the drain time ran out");
    }
}
