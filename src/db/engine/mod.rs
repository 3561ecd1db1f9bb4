//! The engine seam: everything that differs between SQLite and PostgreSQL, in one place.
//! Capability code calls these and never branches on the engine itself.
//!
//! - [`temp`]: temporary (staging) tables and planner statistics.
//! - [`placeholders`]: SQL written once with `$n` placeholders, bound on either engine.
//! - [`upsert`]: insert-or-update statements.
//! - [`claim`]: claiming rows for work without two workers taking the same row.
//! - [`json`]: JSON aggregation and inspection in SQL.

pub mod claim;
pub mod json;
pub mod placeholders;
pub mod temp;
pub mod upsert;
