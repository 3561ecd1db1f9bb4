//! `/healthz` (liveness) and `/readyz` (the database answers and takes writes).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::db::busy::{self, Outage};
use axum::Json;
use axum::extract::State;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use serde::Serialize;
use std::time::Duration;

/// A probe's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok".into(),
    })
}

/// Readiness: the database answers and takes a write, within the request budget
/// (`database.request_busy_timeout_ms`, plus a second). A database that answers but is
/// busy (an import holds the SQLite write lock) is ready: it is alive, only slow to write.
/// When it is not ready the answer is 503 with `Retry-After` and a code naming the
/// dependency: `database_unavailable` (refused, reset, not answering within the budget,
/// read-only, unreadable file) or `storage_full` (no room to write), its `details` say
/// `{"dependency": "database", "problem": …}`.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "The database does not answer, or takes no writes (`database_unavailable`, `storage_full`); `details.dependency` names it", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    let budget = Duration::from_millis(state.config.database.request_busy_timeout_ms.max(1))
        + Duration::from_secs(1);
    let problem = match tokio::time::timeout(budget, probe(&state.db)).await {
        Ok(Ok(())) => {
            return Ok(Json(Status {
                status: "ready".into(),
            }));
        }
        Ok(Err(problem)) => problem,
        Err(_) => Problem::TimedOut,
    };
    tracing::warn!(
        problem = problem.name(),
        "readiness check failed: the database"
    );
    let error = match problem {
        Problem::StorageFull => ApiError::storage_full(),
        _ => ApiError::database_unavailable(),
    };
    Err(error.with_public_details(serde_json::json!({
        "dependency": "database",
        "problem": problem.name(),
    })))
}

/// Why the database is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    /// No connection, or it was refused, reset or closed.
    Unreachable,
    /// No answer within the budget.
    TimedOut,
    /// It answers reads but refuses writes (read-only, unreadable or corrupt file).
    NotWritable,
    /// No room to write.
    StorageFull,
    /// Any other failure of the probe's statements.
    Failed,
}

impl Problem {
    fn name(self) -> &'static str {
        match self {
            Problem::Unreachable => "unreachable",
            Problem::TimedOut => "timed_out",
            Problem::NotWritable => "not_writable",
            Problem::StorageFull => "storage_full",
            Problem::Failed => "failed",
        }
    }
}

/// A round trip, then a write that changes nothing (an `UPDATE` of no row takes the write
/// lock of SQLite and is refused by a read-only PostgreSQL), rolled back.
async fn probe(db: &DatabaseConnection) -> Result<(), Problem> {
    db.ping().await.map_err(|e| reached_problem(&e))?;
    let write = async {
        let txn = db.begin().await?;
        crate::db::exec(&txn, "UPDATE tenants SET slug = slug WHERE 1 = 0", vec![]).await?;
        txn.rollback().await
    };
    match write.await {
        Ok(()) => Ok(()),
        Err(e) => match busy::outage(&e) {
            // Another writer holds the lock: the database is alive.
            Some(Outage::Busy) => Ok(()),
            Some(Outage::StorageFull) => Err(Problem::StorageFull),
            Some(Outage::Unavailable) => Err(Problem::NotWritable),
            None => Err(Problem::Failed),
        },
    }
}

/// The problem of a failed round trip: no connection could be had in time (busy or hung)
/// counts as not answering.
fn reached_problem(error: &DbErr) -> Problem {
    match busy::outage(error) {
        Some(Outage::Busy) => Problem::TimedOut,
        Some(Outage::StorageFull) => Problem::StorageFull,
        Some(Outage::Unavailable) => Problem::Unreachable,
        None => Problem::Failed,
    }
}
