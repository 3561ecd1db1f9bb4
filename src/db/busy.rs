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
//! - the pool's acquire timeout (`PoolTimedOut`): every connection stayed in use (or the
//!   server stopped answering: a hung server cannot be told from a saturated one).
//!
//! Two more kinds of failure are named by [`outage`], so that they too are answered 503
//! with a stable code and `Retry-After` rather than 500, and fixed by nothing but time:
//! - [`Outage::Unavailable`]: the database cannot be reached or used: a connection refused,
//!   reset or closed (`sqlx::Error::Io`, a connection that broke off mid-handshake:
//!   `Protocol`, a closed pool, a crashed SQLite worker),
//!   PostgreSQL SQLSTATE class `08` (connection exception), `57P01`–`57P03` (the server
//!   shuts down or starts), `53300 too_many_connections`, `25006` (a read-only standby);
//!   SQLite `SQLITE_CANTOPEN` (14), `SQLITE_IOERR` (10), `SQLITE_NOTADB` (26),
//!   `SQLITE_READONLY` (8), `SQLITE_CORRUPT` (11);
//! - [`Outage::StorageFull`]: the database has no room to write: SQLite `SQLITE_FULL` (13,
//!   a full disk or `max_page_count`), PostgreSQL `53100 disk_full`. The statement failed,
//!   so its transaction is rolled back whole.

use sea_orm::sqlx;
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

/// SQLSTATEs of PostgreSQL that mean "try again later".
const POSTGRES_BUSY: [&str; 4] = ["55P03", "40001", "40P01", "57014"];

/// Why the database could not serve a statement, when the answer is "later" (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// A lock or a pooled connection could not be had in time.
    Busy,
    /// The database cannot be reached or used.
    Unavailable,
    /// The database has no room to write.
    StorageFull,
}

/// The [`Outage`] that `error` means, if any (module docs).
pub fn outage(error: &DbErr) -> Option<Outage> {
    match error {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => Some(Outage::Busy),
        DbErr::ConnectionAcquire(_) => Some(Outage::Unavailable),
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => outage_sqlx(e),
        _ => None,
    }
}

/// The [`Outage`] that a sqlx error means, if any (module docs).
pub fn outage_sqlx(error: &sqlx::Error) -> Option<Outage> {
    match error {
        sqlx::Error::PoolTimedOut => Some(Outage::Busy),
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => Some(Outage::Unavailable),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse().ok().and_then(sqlite_outage)
            } else {
                postgres_outage(&code)
            }
        }
        _ => None,
    }
}

/// The [`Outage`] of `error` or of any error it was caused by (its `source()` chain): for
/// the error types of the capabilities that wrap a [`DbErr`].
pub fn caused_outage(error: &(dyn std::error::Error + 'static)) -> Option<Outage> {
    let mut next = Some(error);
    while let Some(error) = next {
        let found = if let Some(db) = error.downcast_ref::<DbErr>() {
            outage(db)
        } else if let Some(e) = error.downcast_ref::<sqlx::Error>() {
            outage_sqlx(e)
        } else {
            None
        };
        if found.is_some() {
            return found;
        }
        next = error.source();
    }
    None
}

/// The outage of a SQLite extended result code (by its primary code, the low byte).
fn sqlite_outage(code: i32) -> Option<Outage> {
    match code & 0xff {
        5 | 6 => Some(Outage::Busy),
        13 => Some(Outage::StorageFull),
        8 | 10 | 11 | 14 | 26 => Some(Outage::Unavailable),
        _ => None,
    }
}

/// The outage of a PostgreSQL SQLSTATE.
fn postgres_outage(sqlstate: &str) -> Option<Outage> {
    if postgres_busy(sqlstate) {
        Some(Outage::Busy)
    } else if sqlstate == "53100" {
        Some(Outage::StorageFull)
    } else if sqlstate.starts_with("08")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300" | "25006")
    {
        Some(Outage::Unavailable)
    } else {
        None
    }
}

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

    #[test]
    fn outages() {
        // FULL, IOERR_WRITE, CANTOPEN, NOTADB, READONLY, BUSY, CONSTRAINT_UNIQUE.
        assert_eq!(sqlite_outage(13), Some(Outage::StorageFull));
        assert_eq!(sqlite_outage(778), Some(Outage::Unavailable));
        assert_eq!(sqlite_outage(14), Some(Outage::Unavailable));
        assert_eq!(sqlite_outage(26), Some(Outage::Unavailable));
        assert_eq!(sqlite_outage(8), Some(Outage::Unavailable));
        assert_eq!(sqlite_outage(5), Some(Outage::Busy));
        assert_eq!(sqlite_outage(2067), None);
        assert_eq!(postgres_outage("53100"), Some(Outage::StorageFull));
        for down in ["08006", "08001", "57P01", "57P03", "53300", "25006"] {
            assert_eq!(postgres_outage(down), Some(Outage::Unavailable), "{down}");
        }
        assert_eq!(postgres_outage("40001"), Some(Outage::Busy));
        assert_eq!(postgres_outage("23505"), None);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(
            outage(&DbErr::Query(RuntimeErr::SqlxError(
                sqlx::Error::Io(reset).into()
            ))),
            Some(Outage::Unavailable)
        );
        assert_eq!(
            outage(&DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)),
            Some(Outage::Unavailable)
        );
        let wrapped = Wrapper::from(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert_eq!(caused_outage(&wrapped), Some(Outage::Busy));
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
