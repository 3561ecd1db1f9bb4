//! `parent-connection serve`: migrate, listen, serve until SIGTERM/SIGINT, then drain.

use crate::api::{self, AppState};
use crate::config::{Config, redact_url};
use crate::db::Workload;
use std::net::SocketAddr;
use std::time::Duration;

/// Runs the service on `bind` (or the configured address) until a shutdown signal.
pub async fn serve(config: Config, bind: Option<String>) -> anyhow::Result<()> {
    // Two pools: requests wait for a lock at most `database.request_busy_timeout_ms` (then
    // 503 `database_busy`), jobs (imports, OneRoster runs, digests, the dispatcher) as long
    // as the CLI does. See docs/database.md.
    let jobs = crate::db::connect_for(&config.database, Workload::Jobs).await?;
    if config.database.migrate_on_start {
        crate::db::migrate(&jobs).await?;
    }
    let db = crate::db::connect_for(&config.database, Workload::Requests).await?;
    let bind = bind.unwrap_or_else(|| config.server.bind.clone());
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let address = listener.local_addr()?;
    let database = redact_url(&config.database.url);
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let state = AppState::new(db.clone(), config)?.with_jobs(jobs.clone());
    let schedule = crate::sync::oneroster::spawn_schedule(jobs.clone(), state.config.clone());
    let dispatcher = spawn_dispatcher(&jobs, &state.config)?;
    let digests = crate::digest::schedule::spawn(jobs.clone(), state.config.clone());
    let app = api::router(state);
    // Said only once everything that can fail at start has succeeded.
    tracing::info!(%address, %database, "parent-connection listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal(grace))
    .await?;
    if let Some(schedule) = schedule {
        schedule.abort();
    }
    for task in [dispatcher, digests].into_iter().flatten() {
        task.abort();
    }
    db.close().await?;
    jobs.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the outbox dispatcher unless `outbox.dispatch_in_serve` is off; says where mail
/// goes.
fn spawn_dispatcher(
    db: &sea_orm::DatabaseConnection,
    config: &Config,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.outbox.dispatch_in_serve {
        tracing::info!("outbox dispatch is off in serve (run `parent-connection dispatch`)");
        return Ok(None);
    }
    let dispatcher = crate::outbox::dispatcher::Dispatcher::new(db.clone(), config)
        .map_err(|e| anyhow::anyhow!("cannot start the outbox dispatcher: {e}"))?;
    tracing::info!(transports = %dispatcher.describe(), "outbox dispatcher running");
    Ok(Some(tokio::spawn(std::sync::Arc::new(dispatcher).run())))
}

async fn shutdown_signal(grace: Duration) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "shutdown signal received: draining requests"
    );
    // A second signal or the grace period ends the drain.
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        tracing::warn!("grace period over: exiting");
        std::process::exit(0);
    });
}
