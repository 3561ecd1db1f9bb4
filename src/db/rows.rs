//! Rows by name: statements built with sea-orm's query builder, or written as SQL with `$n`
//! placeholders, run through [`super::query`] / [`super::exec`] (so the slow-statement log
//! and the plan tests' [`super::trace`] see them too), each row bound by column name into a
//! `FromQueryResult` type (an entity's `Model`, or a struct for a join).

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, QueryTrait, Statement, Value};

fn parts(statement: Statement) -> (String, Vec<Value>) {
    (
        statement.sql,
        statement.values.map(|v| v.0).unwrap_or_default(),
    )
}

/// Every row of `sql` (`$n` placeholders), bound by name.
pub async fn query_as<M: FromQueryResult, C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<M>, DbErr> {
    super::query(conn, sql, values)
        .await?
        .iter()
        .map(|row| M::from_query_result(row, ""))
        .collect()
}

/// The first row of `sql` (`$n` placeholders), bound by name; `None` when there is none.
pub async fn query_one<M: FromQueryResult, C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Option<M>, DbErr> {
    super::query(conn, sql, values)
        .await?
        .first()
        .map(|row| M::from_query_result(row, ""))
        .transpose()
}

/// Every row of a query-builder statement (e.g. `Entity::find().filter(…)`), bound by name.
pub async fn all<M: FromQueryResult, C: ConnectionTrait>(
    conn: &C,
    query: &impl QueryTrait,
) -> Result<Vec<M>, DbErr> {
    let (sql, values) = parts(query.build(conn.get_database_backend()));
    query_as(conn, &sql, values).await
}

/// The first row of a query-builder statement, bound by name; `None` when there is none.
pub async fn one<M: FromQueryResult, C: ConnectionTrait>(
    conn: &C,
    query: &impl QueryTrait,
) -> Result<Option<M>, DbErr> {
    let (sql, values) = parts(query.build(conn.get_database_backend()));
    query_one(conn, &sql, values).await
}

/// Runs a query-builder write (`Entity::update_many()…`, `Entity::insert(…)`); the number
/// of rows it changed.
pub async fn exec<C: ConnectionTrait>(conn: &C, query: &impl QueryTrait) -> Result<u64, DbErr> {
    let (sql, values) = parts(query.build(conn.get_database_backend()));
    Ok(super::exec(conn, &sql, values).await?.rows_affected())
}
