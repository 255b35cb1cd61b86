//! `serve`: connect, migrate, bootstrap, listen, and shut down cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};

use tower_http::add_extension::AddExtension;

use crate::config::Settings;
use crate::http::guard::Peer;
use crate::state::{App, Ctx};
use crate::{admin, cli, http};

/// Runs the gateway until a shutdown signal.
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let listener = listen(settings.listen)
        .with_context(|| format!("listening on {} (set --listen or LISTEN)", settings.listen))?;
    // With port 0 the system picks one; the lines printed on first start need the real one.
    settings.listen = listener.local_addr()?;
    let store = cli::open(&settings.database.database_url).await?;
    admin::bootstrap(&store, &settings).await?;
    let ctx = App::new(store, settings);
    let shutdown = shutdown_signal()?;

    tracing::info!(
        listen = %ctx.settings.listen,
        database = ctx.store.backend(),
        "kapable-comms is serving"
    );
    serve(ctx.clone(), listener, shutdown).await?;
    ctx.store.close().await;
    tracing::info!("kapable-comms stopped");
    Ok(())
}

/// Serves the gateway on `listener` until `shutdown` completes; in-flight requests finish.
pub async fn serve(
    ctx: Ctx,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let transport = crate::mail::outbox::Transport::from_settings(&ctx.settings)?;
    let store = ctx.store.clone();
    let background = [
        tokio::spawn(crate::mail::outbox::deliver_forever(ctx.clone(), transport)),
        tokio::spawn(crate::mail::webhook::deliver_forever(ctx.clone())),
        tokio::spawn(crate::bridge::telegram::run(ctx.clone())),
        tokio::spawn(crate::ops::sweep_presence(ctx.clone())),
        tokio::spawn(crate::follow::keep_retention(ctx.clone())),
        tokio::spawn(async move { store.listen().await }),
    ];
    let app = http::router(ctx.clone())?;
    let header_timeout = Duration::from_secs(ctx.settings.limits.header_timeout_secs.into());
    let shutdown = async move {
        shutdown.await;
        // Streams never finish by themselves; ending them lets the connections drain.
        ctx.hub.stop_streams();
    };
    accept(listener, app, header_timeout, shutdown).await;
    background.iter().for_each(tokio::task::JoinHandle::abort);
    Ok(())
}

/// Connections the system may hold for us before we accept them. Tokio's default of 1,024
/// overflowed when thousands of streams opened at once, and each dropped connection waited a
/// second for its retry; the system caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `address` with a deep accept queue.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The most a connection buffers of what it reads: a request head (line and headers) must fit.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// How long connections may take to finish their requests once the server is stopping.
const DRAIN: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown`, then waits up to [`DRAIN`] for those open to finish.
///
/// Every connection shares the one router (axum's own `serve` rebuilds the route table for
/// each, about 100 KiB), and HTTP/1 reads into one 8 KiB buffer that never grows, which keeps
/// an idle SSE stream small. A connection that has not sent a whole request head within
/// `header_timeout` is closed. HTTP/2 without TLS (prior knowledge) is served too.
async fn accept(
    listener: TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = AutoBuilder::new(TokioExecutor::new());
    http.http1()
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "setting TCP_NODELAY");
        }
        let service = AddExtension::new(app.clone(), Peer(peer));
        let service = TowerToHyperService::new(service);
        let connection = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {DRAIN:?}; stopping without them");
    }
}

/// Resolves at the first SIGINT or SIGTERM. The handlers are installed at once, before the
/// server reports that it is serving, so an early signal is never lost.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received; finishing in-flight requests"),
            _ = terminate.recv() => {
                tracing::info!("SIGTERM received; finishing in-flight requests");
            }
        }
    })
}
