//! Records the statements a piece of work runs, so the query-plan tests can ask the engine
//! how it would run each request-path statement (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL
//! `EXPLAIN`) on a district-sized database. Outside [`record`] nothing is kept: the cost on
//! the request path is one task-local lookup per statement.

use sea_orm::Statement;
use std::cell::RefCell;
use std::future::Future;

tokio::task_local! {
    static RECORDED: RefCell<Vec<Statement>>;
}

/// Runs `work` and returns its output with every statement it ran through [`super::exec`]
/// and [`super::query`] (in the engine's own placeholder syntax, with their values).
/// Statements of tasks `work` spawns are not recorded.
pub async fn record<F: Future>(work: F) -> (F::Output, Vec<Statement>) {
    RECORDED
        .scope(RefCell::new(Vec::new()), async {
            let output = work.await;
            let statements = RECORDED.with(|recorded| recorded.take());
            (output, statements)
        })
        .await
}

/// Keeps `statement` when a [`record`] is running in this task.
pub(super) fn note(statement: &Statement) {
    let _ = RECORDED.try_with(|recorded| recorded.borrow_mut().push(statement.clone()));
}
