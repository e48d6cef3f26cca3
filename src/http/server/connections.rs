//! The connection loop: at most `--max-connections` open at once, each served over HTTP/1 with a header
//! read timeout and a limit on the requests one keep-alive connection may carry; on shutdown it stops
//! accepting (new connections are refused by the closed socket), serves what the backlog already holds,
//! and lets each connection finish the request it is serving. Every connection closes lingering
//! ([`LingeringClose`]), so that an answer sent before its request's body was read is not lost.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, Request};
use axum::Router;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::config::ServeConfig;
use crate::http::server::linger::LingeringClose;

/// On shutdown, how long a connection that has not sent a request yet may take to send one.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// What bounds each connection, from `ServeConfig`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Time to send a request's headers (and the longest an idle keep-alive connection is kept): a
    /// client that trickles its headers (slowloris) loses its connection, and its slot, after this.
    pub(crate) header_read_timeout: Duration,
    /// Connections served at once; beyond it new ones wait in the kernel's backlog, so that file
    /// descriptors and memory stay bounded whatever the clients do.
    pub(crate) max_connections: u32,
    /// Requests per keep-alive connection; the last answer carries `Connection: close`.
    pub(crate) max_requests: u64,
}

impl ConnectionLimits {
    pub(crate) fn from_config(config: &ServeConfig) -> Self {
        ConnectionLimits {
            header_read_timeout: config.header_read_timeout(),
            max_connections: u32::try_from(config.max_connections).unwrap_or(u32::MAX),
            max_requests: config.max_requests_per_connection,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then closes the listener, asks every
/// connection to finish (idle ones close at once, busy ones after their answer) and returns once all
/// have closed. The caller bounds that wait.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    // `true` asks every connection to finish; each holds a receiver.
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first, then the accept: at the limit, new clients wait in the backlog rather than
        // being accepted and left unserved.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the connection semaphore is never closed; this is a bug"),
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(serve_connection(stream, app.clone(), limits, stop_rx.clone(), slot));
            }
            Err(err) => {
                // Out of file descriptors and the like: pause rather than spin; the client that
                // caused a per-connection error (reset before accept) is already gone.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Connections already in the backlog were accepted by the kernel, and their clients may have sent a
    // request: closing the listener would reset them, so they are served like the others.
    while let Ok(slot) = Arc::clone(&slots).try_acquire_owned() {
        match listener.accept().now_or_never() {
            Some(Ok((stream, _peer))) => {
                tokio::spawn(serve_connection(stream, app.clone(), limits, stop_rx.clone(), slot));
            }
            _ => break,
        }
    }
    drop(listener);
    tracing::info!(
        open = limits.max_connections as usize - slots.available_permits(),
        "listener closed; finishing the connections still open"
    );
    let _ = stop_tx.send(true);
    // Every open connection holds a slot: once all are back, every connection has closed.
    let _all = slots
        .acquire_many(limits.max_connections)
        .await
        .expect("the connection semaphore is never closed; this is a bug");
}

/// One connection, until the client closes it, a limit closes it, or shutdown finishes it.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Answers are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let served = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&served);
    let service = service_fn(move |req: Request<Incoming>| {
        let last = counted.fetch_add(1, Ordering::Relaxed) + 1 >= limits.max_requests;
        let app = app.clone();
        async move {
            let mut response = app
                .oneshot(req)
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            if last {
                // hyper closes the connection after an answer that says so.
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut connection = std::pin::pin!(builder.serve_connection(TokioIo::new(LingeringClose::new(stream)), service));
    let result = tokio::select! {
        result = connection.as_mut() => result,
        // Sent once, after this connection started: any change means stop.
        _ = stop.changed() => {
            // A connection that has not yet asked anything looks idle, and a graceful shutdown would close
            // it at once, though its client may have just sent a request: give that request a moment to
            // arrive first. (A closed keep-alive connection between requests is a normal event for clients.)
            if served.load(Ordering::Relaxed) == 0 {
                let first_request = limits.header_read_timeout.min(FIRST_REQUEST_GRACE);
                if let Ok(result) = tokio::time::timeout(first_request, connection.as_mut()).await {
                    return log_end(result);
                }
            }
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    log_end(result);
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        // Header timeouts, resets, malformed requests: the client's doing, worth no more than debug.
        tracing::debug!(error = %err, "connection closed with an error");
    }
}
