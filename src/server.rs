//! `parent-connection serve`: migrate, listen, serve until SIGTERM/SIGINT, then drain.

use crate::api::{self, AppState};
use crate::config::{Config, redact_url};
use crate::db::Workload;
use crate::outbox::dispatcher::{Dispatcher, Stop, StopSwitch};
use crate::outbox::port::MessageKinds;
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
    for warning in crate::auth::keys::warnings(&config.auth) {
        tracing::warn!("{warning}");
    }
    let state = AppState::new(db.clone(), config)?.with_jobs(jobs.clone());
    let schedule = crate::sync::oneroster::spawn_schedule(jobs.clone(), state.config.clone());
    let (stop, stopped) = StopSwitch::new();
    let dispatcher = spawn_dispatcher(&jobs, &state.config, stopped)?;
    let dispatch_grace = Duration::from_secs(state.config.outbox.shutdown_grace_seconds);
    let digests = crate::digest::schedule::spawn(jobs.clone(), state.config.clone());
    let restrictions = crate::restrictions::spawn_expiry(jobs.clone());
    let app = api::router(state);
    // Said only once everything that can fail at start has succeeded.
    tracing::info!(%address, %database, "parent-connection listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal(grace).await;
        // The dispatcher stops claiming at once and finishes its sends beside the requests.
        stop.stop();
    })
    .await?;
    if let Some(schedule) = schedule {
        schedule.abort();
    }
    if let Some(digests) = digests {
        digests.abort();
    }
    restrictions.abort();
    if let Some(dispatcher) = dispatcher {
        stop_dispatcher(dispatcher, dispatch_grace).await;
    }
    db.close().await?;
    jobs.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// The kinds of message the outbox delivers, each with its handler: the one place that
/// plugs capabilities into the outbox's port.
pub fn message_kinds(config: &Config) -> MessageKinds {
    let links = crate::links::Links::from_config(config);
    MessageKinds::new()
        .with(crate::invites::InvitationMessages::new(
            crate::invites::RenderConfig {
                links: links.clone(),
                sms_sender: config.sms.sender_name.clone(),
                message_id_domain: config.mail.message_id_domain.clone(),
            },
        ))
        .with(crate::digest::DigestMessages::new(
            config.mail.message_id_domain.clone(),
            links,
        ))
        .with(crate::guardians::SignInCodeMessages::new(
            config.sms.sender_name.clone(),
            config.mail.message_id_domain.clone(),
        ))
}

/// An outbox dispatcher for `config`, delivering every kind of [`message_kinds`].
pub fn dispatcher(db: sea_orm::DatabaseConnection, config: &Config) -> Result<Dispatcher, String> {
    Dispatcher::new(db, config, message_kinds(config))
}

/// Starts the outbox dispatcher unless `outbox.dispatch_in_serve` is off; says where mail
/// goes. It runs until `stop` is asked for.
fn spawn_dispatcher(
    db: &sea_orm::DatabaseConnection,
    config: &Config,
    stop: Stop,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.outbox.dispatch_in_serve {
        tracing::info!("outbox dispatch is off in serve (run `parent-connection dispatch`)");
        return Ok(None);
    }
    let dispatcher = dispatcher(db.clone(), config)
        .map_err(|e| anyhow::anyhow!("cannot start the outbox dispatcher: {e}"))?;
    tracing::info!(transports = %dispatcher.describe(), "outbox dispatcher running");
    Ok(Some(tokio::spawn(
        std::sync::Arc::new(dispatcher).run(stop),
    )))
}

/// Waits for a dispatcher asked to stop: its sends in flight get `grace`, and a little
/// more for giving back what it did not send; then it is aborted (its claims then run out).
pub async fn stop_dispatcher(task: tokio::task::JoinHandle<()>, grace: Duration) {
    let abort = task.abort_handle();
    if tokio::time::timeout(grace + Duration::from_secs(5), task)
        .await
        .is_err()
    {
        tracing::warn!("the outbox dispatcher did not stop in time");
        abort.abort();
    }
}

/// Waits for SIGTERM or SIGINT (ctrl-c).
pub async fn stop_requested() {
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
}

async fn shutdown_signal(grace: Duration) {
    stop_requested().await;
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
