//! Temporary tables of an import and planner statistics, on the import's own connection
//! ([`ImportConn`]).
//!
//! | | SQLite | PostgreSQL |
//! |---|---|---|
//! | temporary table | `temp.` schema, kept for the life of the connection: dropped before it is created and once the run is done | `ON COMMIT DROP`: gone with the transaction |
//! | statistics of a temporary table | `ANALYZE temp.<name>` | `ANALYZE <name>` |
//! | statistics of live tables | `PRAGMA analysis_limit = 1000`, then `ANALYZE main.<table>` each | one `ANALYZE a, b, …` |
//! | statistics mid-run | slower plans: only at the end | resolving against just-loaded rows needs them |

use crate::db::ImportConn;
use sea_orm::{DbBackend, DbErr};

/// Creates the empty temporary table `name` with `columns` (SQL column definitions) for
/// the rest of the import transaction; a table of that name left on the connection by an
/// earlier run is dropped first.
pub async fn create(conn: &mut ImportConn, name: &str, columns: &str) -> Result<(), DbErr> {
    let sqlite = conn.backend() == DbBackend::Sqlite;
    if sqlite {
        conn.exec(&format!("DROP TABLE IF EXISTS temp.{name}"), vec![])
            .await?;
    }
    let on_commit = if sqlite { "" } else { " ON COMMIT DROP" };
    conn.exec(
        &format!("CREATE TEMPORARY TABLE {name} ({columns}){on_commit}"),
        vec![],
    )
    .await?;
    Ok(())
}

/// Drops temporary tables before the commit where the engine keeps them past it (SQLite
/// keeps them for the life of the connection; PostgreSQL drops them at commit by itself).
pub async fn drop<'a>(
    conn: &mut ImportConn,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), DbErr> {
    if conn.backend() == DbBackend::Sqlite {
        for name in names {
            conn.exec(&format!("DROP TABLE IF EXISTS temp.{name}"), vec![])
                .await?;
        }
    }
    Ok(())
}

/// Refreshes the planner statistics of temporary tables, one statement per table.
pub async fn analyze<'a>(
    conn: &mut ImportConn,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), DbErr> {
    let schema = match conn.backend() {
        DbBackend::Sqlite => "temp.",
        _ => "",
    };
    for name in names {
        conn.exec(&format!("ANALYZE {schema}{name}"), vec![])
            .await?;
    }
    Ok(())
}

/// Refreshes the planner statistics of live `tables` after a large load. SQLite samples a
/// bounded number of index entries per table; PostgreSQL analyzes them in one statement.
pub async fn analyze_live(conn: &mut ImportConn, tables: &[&str]) -> Result<(), DbErr> {
    match conn.backend() {
        DbBackend::Sqlite => {
            conn.exec("PRAGMA analysis_limit = 1000", vec![]).await?;
            for table in tables {
                conn.exec(&format!("ANALYZE main.{table}"), vec![]).await?;
            }
        }
        _ => {
            conn.exec(&format!("ANALYZE {}", tables.join(", ")), vec![])
                .await?;
        }
    }
    Ok(())
}

/// Whether statistics of live tables refreshed in the middle of a run, right after a large
/// load, speed up the statements that follow. PostgreSQL otherwise probes just-loaded rows
/// one by one (measured 2-5x slower); SQLite's plans got slower with them, so it gets its
/// statistics at the end of the run only.
pub fn mid_run_statistics_pay_off(conn: &ImportConn) -> bool {
    conn.backend() == DbBackend::Postgres
}
