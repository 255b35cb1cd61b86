//! `serve`: connect, migrate, bootstrap, listen, and shut down cleanly on SIGINT or SIGTERM.

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::state::{App, Ctx};
use crate::{admin, cli, http};

/// Runs the gateway until a shutdown signal.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {} (set --listen or LISTEN)", settings.listen))?;
    let store = cli::open(&settings.database.database_url).await?;
    admin::bootstrap(&store, &settings).await?;
    let ctx = App::new(store, settings);

    tracing::info!(
        listen = %listener.local_addr()?,
        database = ctx.store.backend(),
        "kapable-comms is serving"
    );
    serve(ctx.clone(), listener, shutdown_signal()).await?;
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
    let app = http::router(ctx)?;
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("serving HTTP")
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received; finishing in-flight requests"),
        () = terminate => tracing::info!("SIGTERM received; finishing in-flight requests"),
    }
}
