//! `parent-connection assignments import --tenant SLUG FILE`: a bulk upsert of assignments
//! from one CSV file with the header `classSourcedId,externalId,title,dueAt,points,instructions`
//! (`points` and `instructions` may be left out). Read with the sync's guarded CSV reader,
//! so every problem names the file, the record (header = record 1) and the column.
//! All-or-nothing: one error refuses the whole file and nothing is written; a dry run
//! applies inside a transaction and rolls it back, so its counts are exact.

use super::{NewAssignment, Upserted, fields, store};
use crate::audit::{self, AuditEntry};
use crate::config::ImportConfig;
use crate::db;
use crate::domain::TenantId;
use crate::sync::Progress;
use crate::sync::csv_file::{FileSpec, IssueSink, Limits, Row, SourceFile, read_csv};
use crate::sync::report::Issue;
use sea_orm::{DatabaseConnection, DbErr, Value};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// The columns of the file.
pub const SPEC: FileSpec = FileSpec {
    required: &["classSourcedId", "externalId", "title", "dueAt"],
    optional: &["points", "instructions"],
    case_insensitive: false,
};

/// How the import ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Written.
    Applied,
    /// Checked and counted, nothing written.
    DryRun,
    /// Refused: the file has errors; nothing written.
    Refused,
}

/// What an import did (or would do), with every error.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// The file as named on the command line.
    pub file: String,
    /// Outcome.
    pub status: ImportStatus,
    /// Data rows read.
    pub rows: u64,
    /// Assignments created.
    pub created: u64,
    /// Assignments changed.
    pub updated: u64,
    /// Assignments already as in the file.
    pub unchanged: u64,
    /// Errors (file, record, column).
    pub errors: Vec<Issue>,
}

impl ImportReport {
    /// The report as a few lines of text.
    pub fn to_human(&self) -> String {
        let mut out = format!(
            "assignments import of {}: {}\n  rows {}, created {}, updated {}, unchanged {}\n",
            self.file,
            match self.status {
                ImportStatus::Applied => "applied",
                ImportStatus::DryRun => "dry run (nothing written)",
                ImportStatus::Refused => "refused (nothing written)",
            },
            self.rows,
            self.created,
            self.updated,
            self.unchanged
        );
        for error in &self.errors {
            let _ = writeln!(out, "  error: {error}");
        }
        out
    }
}

/// One checked row, with where it came from.
struct Checked {
    record: u64,
    class_id: i64,
    assignment: NewAssignment,
}

/// The tenant's classes by SIS source id.
async fn classes(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
) -> Result<HashMap<String, i64>, DbErr> {
    let rows = db::query(
        db_conn,
        "SELECT source_id, id FROM classes WHERE tenant_id = $1",
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "source_id")?, row.try_get("", "id")?)))
        .collect()
}

fn check_row(
    row: &Row<'_>,
    classes: &HashMap<String, i64>,
    seen: &mut HashMap<(i64, String), u64>,
    sink: &mut IssueSink,
) -> Option<Checked> {
    let class = row.get("classSourcedId");
    let class_id = if class.is_empty() {
        sink.error(row.issue(
            "classSourcedId",
            "missing_value",
            "'classSourcedId' is required and is blank",
        ));
        None
    } else if let Some(id) = classes.get(class) {
        Some(*id)
    } else {
        sink.error(row.issue(
            "classSourcedId",
            "unknown_class",
            format!("no class '{class}' in this tenant (import the roster first)"),
        ));
        None
    };
    let external_id = reported(row, fields::external_id(row.get("externalId")), sink);
    let title = reported(row, fields::title(row.get("title")), sink);
    let due_at = reported(row, fields::due_at(row.get("dueAt")), sink);
    let points = reported(row, fields::points_text(row.get("points")), sink);
    let instructions = reported(row, fields::instructions(row.get("instructions")), sink);
    let (class_id, external_id, title, due_at, points, instructions) = (
        class_id?,
        external_id?,
        title?,
        due_at?,
        points?,
        instructions?,
    );
    if let Some(first) = seen.insert((class_id, external_id.clone()), row.record) {
        sink.error(row.issue(
            "externalId",
            "duplicate_key",
            format!("'{external_id}' of class '{class}' is already in record {first}"),
        ));
        return None;
    }
    Some(Checked {
        record: row.record,
        class_id,
        assignment: NewAssignment {
            external_id,
            title,
            due_at,
            points,
            instructions,
        },
    })
}

/// The value, or `None` after reporting the field's error at its column.
fn reported<T>(
    row: &Row<'_>,
    result: Result<T, fields::FieldError>,
    sink: &mut IssueSink,
) -> Option<T> {
    result
        .map_err(|e| sink.error(row.issue(e.field, "invalid_value", e.message)))
        .ok()
}

/// Reads and checks `path`; the rows when there is no error.
fn read(
    path: &Path,
    config: &ImportConfig,
    classes: &HashMap<String, i64>,
    progress: &dyn Progress,
    sink: &mut IssueSink,
) -> (u64, Vec<Checked>) {
    let file = SourceFile {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        path: path.to_path_buf(),
    };
    let limits = Limits {
        max_file_bytes: config.max_file_bytes,
        max_record_bytes: config.max_record_bytes,
        max_field_bytes: config.max_field_bytes,
    };
    progress.start(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
    let mut seen = HashMap::new();
    let mut rows = Vec::new();
    let stats = read_csv(
        &file,
        &SPEC,
        &limits,
        sink,
        &mut |bytes| progress.advance(bytes),
        |row, sink| match check_row(row, classes, &mut seen, sink) {
            Some(checked) => {
                rows.push(checked);
                true
            }
            None => false,
        },
    );
    (stats.rows, rows)
}

/// Imports `path` into `tenant` (see the module documentation). The run is audited
/// (`assignments.import`) unless it is a dry run or refused.
pub async fn run(
    db_conn: &DatabaseConnection,
    config: &ImportConfig,
    tenant: TenantId,
    path: &Path,
    dry_run: bool,
    actor: &str,
    progress: &dyn Progress,
) -> Result<ImportReport, DbErr> {
    let classes = classes(db_conn, tenant).await?;
    let mut sink = IssueSink::new(config.error_cap, config.warning_cap);
    let (count, rows) = read(path, config, &classes, progress, &mut sink);
    let mut report = ImportReport {
        file: path.display().to_string(),
        status: ImportStatus::Refused,
        rows: count,
        created: 0,
        updated: 0,
        unchanged: 0,
        errors: sink.errors,
    };
    if !report.errors.is_empty() {
        progress.finish();
        return Ok(report);
    }
    progress.phase(if dry_run { "checking" } else { "applying" });
    let txn = db::begin_write(db_conn).await?;
    for row in &rows {
        let counter = match store::upsert(&txn, tenant, row.class_id, &row.assignment, actor).await
        {
            Ok(Upserted::Created) => &mut report.created,
            Ok(Upserted::Updated) => &mut report.updated,
            Ok(Upserted::Unchanged) => &mut report.unchanged,
            Err(e) => {
                progress.finish();
                return Err(DbErr::Custom(format!("record {}: {e}", row.record)));
            }
        };
        *counter += 1;
    }
    if dry_run {
        txn.rollback().await?;
        report.status = ImportStatus::DryRun;
    } else {
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor,
                action: "assignments.import",
                target: Some(format!("file:{}", report.file)),
                before: None,
                after: Some(serde_json::json!({
                    "rows": report.rows, "created": report.created,
                    "updated": report.updated, "unchanged": report.unchanged,
                })),
            },
        )
        .await?;
        txn.commit().await?;
        report.status = ImportStatus::Applied;
    }
    progress.finish();
    Ok(report)
}
