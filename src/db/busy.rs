//! "The database is busy": the failures that mean a lock or a connection could not be had
//! in time, as opposed to a broken statement or a lost server. The API answers them `503
//! database_busy` with `Retry-After` (`src/api/error.rs`), the pages with an HTML 503: the
//! same request, sent again a little later, normally succeeds.
//!
//! Recognised:
//! - SQLite `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6), with their extended codes
//!   (`SQLITE_BUSY_SNAPSHOT`, …): the write lock was not had within the busy timeout;
//! - PostgreSQL `55P03 lock_not_available` (`lock_timeout`, `NOWAIT`), `40001
//!   serialization_failure`, `40P01 deadlock_detected` and `57014 query_canceled` (a
//!   statement or lock timeout cancelled the statement);
//! - the pool's acquire timeout (`PoolTimedOut`): every connection stayed in use.

use sea_orm::sqlx;
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

/// SQLSTATEs of PostgreSQL that mean "try again later".
const POSTGRES_BUSY: [&str; 4] = ["55P03", "40001", "40P01", "57014"];

/// Whether `error` means the database was busy (module docs).
pub fn is_busy(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => is_busy_sqlx(e),
        _ => false,
    }
}

/// Whether a sqlx error means the database was busy (module docs).
pub fn is_busy_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse().is_ok_and(sqlite_busy)
            } else {
                postgres_busy(&code)
            }
        }
        _ => false,
    }
}

/// Whether `error` or any error it was caused by (its `source()` chain) is a busy
/// [`DbErr`] or sqlx error: for the error types of the capabilities that wrap a `DbErr`.
pub fn caused_by_busy(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(db) = error.downcast_ref::<DbErr>() {
            if is_busy(db) {
                return true;
            }
        } else if let Some(e) = error.downcast_ref::<sqlx::Error>()
            && is_busy_sqlx(e)
        {
            return true;
        }
        next = error.source();
    }
    false
}

/// A SQLite extended result code whose primary code (its low byte) is `SQLITE_BUSY` or
/// `SQLITE_LOCKED`.
fn sqlite_busy(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6)
}

/// A PostgreSQL SQLSTATE that means "try again later".
fn postgres_busy(sqlstate: &str) -> bool {
    POSTGRES_BUSY.contains(&sqlstate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        // BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT, BUSY_TIMEOUT, LOCKED_SHAREDCACHE.
        for busy in [5, 6, 261, 517, 773, 262] {
            assert!(sqlite_busy(busy), "{busy}");
        }
        // CONSTRAINT_UNIQUE, ERROR, CONSTRAINT_FOREIGNKEY, OK.
        for other in [2067, 1, 787, 0] {
            assert!(!sqlite_busy(other), "{other}");
        }
        for busy in ["55P03", "40001", "40P01", "57014"] {
            assert!(postgres_busy(busy), "{busy}");
        }
        // unique_violation, syntax_error, admin_shutdown.
        for other in ["23505", "42601", "57P01"] {
            assert!(!postgres_busy(other), "{other}");
        }
    }

    #[test]
    fn pool_timeouts_are_busy_and_other_errors_are_not() {
        assert!(is_busy(&DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)));
        assert!(is_busy(&DbErr::Conn(RuntimeErr::SqlxError(
            sqlx::Error::PoolTimedOut.into()
        ))));
        assert!(!is_busy(&DbErr::ConnectionAcquire(
            ConnAcquireErr::ConnectionClosed
        )));
        assert!(!is_busy(&DbErr::Custom("database is locked".into())));
        assert!(!is_busy(&DbErr::Exec(RuntimeErr::SqlxError(
            sqlx::Error::RowNotFound.into()
        ))));
    }

    #[derive(Debug, thiserror::Error)]
    enum Wrapper {
        #[error("wrapped: {0}")]
        Db(#[from] DbErr),
    }

    #[test]
    fn a_wrapped_busy_error_is_found_through_its_sources() {
        let busy = Wrapper::from(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert!(caused_by_busy(&busy));
        let other = Wrapper::from(DbErr::Custom("no".into()));
        assert!(!caused_by_busy(&other));
    }
}
