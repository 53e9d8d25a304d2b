//! The HTTP server loop: hyper on each accepted connection (plain or TLS), with the time limits
//! `axum::serve` does not set. A client that opens connections and sends headers a byte at a
//! time (slow-loris) is closed after [`HEADER_READ_TIMEOUT`]; a slow body is the body limit's
//! business (`limits::BODY_READ_TIMEOUT`).

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::{body::Body, extract::ConnectInfo, serve::Listener, Router};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::sync::watch;
use tower::ServiceExt;

use super::PeerAddr;

/// How long a client may take to send a request's headers, counted from the connection (or the
/// end of the previous response) — also how long an idle keep-alive connection stays open. Not
/// shorter: a client that reuses an idle connection just as the server closes it loses that
/// request (a 30-minute soak whose publisher came back every 10 s lost 13 of 179 POSTs at 10 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// HTTP/2 connections are pinged this often and closed when a ping is not answered in as long.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Serves `router` on every connection `listener` accepts until `shutdown` completes; then stops
/// accepting, lets each connection finish its requests, and returns once all have closed.
pub async fn serve<L>(mut listener: L, router: Router, shutdown: impl Future<Output = ()>)
where
    L: Listener<Addr = SocketAddr>,
{
    let (stopping, stop) = watch::channel(false);
    // Each connection holds a receiver; the loop waits for them all to be dropped.
    let (all_closed, open) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let service = router.clone().map_request(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
            request.map(Body::new)
        });
        let mut stop = stop.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .keep_alive_interval(HTTP2_KEEP_ALIVE)
                .keep_alive_timeout(HTTP2_KEEP_ALIVE);
            let connection =
                builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = async { stop.wait_for(|stop| *stop).await.is_ok() } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    drop(open);
    all_closed.closed().await;
}
