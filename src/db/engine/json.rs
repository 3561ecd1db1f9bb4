//! JSON in SQL: JSON arrays are stored as text on both engines; PostgreSQL needs them cast
//! to `json` to inspect them and its aggregate cast back to text, SQLite reads and builds
//! them as text directly.

use sea_orm::{ConnectionTrait, DbBackend};

/// SQL for the length of the JSON array stored as text in `column`.
pub fn array_length<C: ConnectionTrait>(conn: &C, column: &str) -> String {
    match conn.get_database_backend() {
        DbBackend::Postgres => format!("json_array_length(CAST({column} AS json))"),
        _ => format!("json_array_length({column})"),
    }
}

/// SQL for the aggregate of the distinct values of `expr` as a JSON array, as text.
pub fn distinct_array_text<C: ConnectionTrait>(conn: &C, expr: &str) -> String {
    match conn.get_database_backend() {
        DbBackend::Postgres => format!("CAST(json_agg(DISTINCT {expr}) AS TEXT)"),
        _ => format!("json_group_array(DISTINCT {expr})"),
    }
}
