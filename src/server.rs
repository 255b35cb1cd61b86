//! `serve`: connect, migrate, bootstrap, listen, and shut down cleanly on SIGINT or SIGTERM.

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::state::{App, Ctx};
use crate::{admin, cli, http};

/// Runs the gateway until a shutdown signal.
pub async fn run(mut settings: Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
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
    // Served as a make-service, each connection shares the one router. Served as a bare
    // `Router`, axum rebuilds the whole route table for every connection: about 100 KiB each,
    // which is most of what an idle SSE stream costs.
    let app = http::router(ctx)?.into_make_service();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    background.iter().for_each(tokio::task::JoinHandle::abort);
    served.context("serving HTTP")
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
