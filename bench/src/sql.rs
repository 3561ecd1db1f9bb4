//! The few SQL statements the benchmarks run themselves (seeding, counting, sizes), written
//! once with PostgreSQL placeholders (`$1`, `$2`, …) and run on either engine; rows are
//! read by column name.

use anyhow::Result;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement, Value};

/// `sql` as a statement for `backend`: on SQLite `$n` becomes the equivalent `?n`.
fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs one statement; the rows it changed.
pub async fn exec<C: ConnectionTrait>(conn: &C, sql: &str, values: Vec<Value>) -> Result<u64> {
    let statement = statement(conn.get_database_backend(), sql, values);
    Ok(conn.execute_raw(statement).await?.rows_affected())
}

/// Every row of a query.
pub async fn query<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>> {
    let statement = statement(conn.get_database_backend(), sql, values);
    Ok(conn.query_all_raw(statement).await?)
}

/// The integer column `n` of the first row of a query (0 without a row).
pub async fn count<C: ConnectionTrait>(conn: &C, sql: &str, values: Vec<Value>) -> Result<i64> {
    let rows = query(conn, sql, values).await?;
    match rows.first() {
        Some(row) => Ok(row.try_get::<i64>("", "n")?),
        None => Ok(0),
    }
}

/// Ids as an SQL list for `IN (…)`: `1, 2, 3` (numbers only, nothing to escape).
pub fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The engine's version (empty when it cannot be read).
pub async fn version(conn: &DatabaseConnection) -> String {
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => "SELECT sqlite_version() AS version",
        _ => "SELECT current_setting('server_version') AS version",
    };
    match query(conn, sql, vec![]).await {
        Ok(rows) => rows
            .first()
            .and_then(|r| r.try_get::<String>("", "version").ok())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The size of the database, bytes.
pub async fn database_bytes(conn: &DatabaseConnection) -> Option<u64> {
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
        }
        _ => "SELECT pg_database_size(current_database()) AS n",
    };
    count(conn, sql, vec![])
        .await
        .ok()
        .and_then(|b| u64::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_engine() {
        let sql = "SELECT $2 AS a, $1 AS b";
        assert_eq!(
            statement(DbBackend::Sqlite, sql, vec![]).sql,
            "SELECT ?2 AS a, ?1 AS b"
        );
        assert_eq!(statement(DbBackend::Postgres, sql, vec![]).sql, sql);
        assert_eq!(id_list([3, 1, 2]), "3, 1, 2");
    }
}
