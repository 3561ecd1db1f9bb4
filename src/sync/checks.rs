//! Cross-file checks, run as SQL over the staging tables once every file is loaded:
//! duplicate keys and references to rows that do not exist. Each finding names the file,
//! record and column of the offending row.

use super::csv_file::IssueSink;
use super::files::FileSet;
use super::report::{EntityCounts, Issue};
use super::staging::StageTable;
use crate::db::{ImportConn, RawRow};
use sea_orm::DbErr;

/// A key that must be unique within a staging table.
pub struct UniqueKey {
    /// Table checked.
    pub table: StageTable,
    /// Key columns.
    pub columns: &'static [&'static str],
    /// Header reported (the column of the key in the source file).
    pub header: &'static str,
    /// What the key is, for the message.
    pub what: &'static str,
}

/// A reference that must point at an existing row.
pub struct Reference {
    /// Table holding the reference.
    pub table: StageTable,
    /// Referencing column.
    pub column: &'static str,
    /// Extra condition on the referencing rows (SQL over alias `c`), or `""`.
    pub when: &'static str,
    /// Table referenced.
    pub target: StageTable,
    /// Referenced column.
    pub target_column: &'static str,
    /// Extra condition on the referenced rows (SQL over alias `p`), or `""`.
    pub target_when: &'static str,
    /// Header reported.
    pub header: &'static str,
    /// Message after the value, e.g. "is not a user in users.csv".
    pub problem: &'static str,
}

/// A reference with no extra condition on either side.
pub const fn reference(
    table: StageTable,
    column: &'static str,
    target: StageTable,
    target_column: &'static str,
    header: &'static str,
    problem: &'static str,
) -> Reference {
    Reference {
        table,
        column,
        when: "",
        target,
        target_column,
        target_when: "",
        header,
        problem,
    }
}

/// The cross-file rules of one format, as data (each format declares its own beside its
/// parser).
pub struct Rules {
    /// Keys unique within the file set.
    pub keys: &'static [UniqueKey],
    /// References between the files.
    pub references: &'static [Reference],
    /// Statements that derive more staging tables once the rules above hold (SDS v2.1
    /// splits its users into students, staff and contacts).
    pub derive: &'static [&'static str],
    /// References checked over what [`Rules::derive`] made.
    pub derived_references: &'static [Reference],
}

/// An optional file of a format whose absence, in a run that would deactivate rows,
/// refuses the run unless forced (the missing-file guard, SPEC §3.3).
pub struct GuardedFile {
    /// The file reported.
    pub file: &'static str,
    /// The files that must all be present for the deactivations to be trusted.
    pub needed: &'static [&'static str],
    /// How many rows the run deactivates that the file would have delivered.
    pub deactivated: fn(&EntityCounts) -> u64,
}

/// Reports every duplicate of `key` (each occurrence after the first). Returns how many.
pub async fn duplicates(
    conn: &mut ImportConn,
    key: &UniqueKey,
    files: &FileSet,
    sink: &mut IssueSink,
) -> Result<u64, DbErr> {
    let table = key.table.name();
    let columns = key.columns.join(", ");
    let joined = key
        .columns
        .iter()
        .map(|c| format!("t.{c} = d.{c}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let shown = key
        .columns
        .iter()
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(" || ' / ' || ");
    // One grouped pass over the key finds the duplicated keys; only their rows are joined.
    let sql = format!(
        "SELECT t.src, t.rec, {shown} AS k, d.first FROM {table} t \
         JOIN (SELECT {columns}, MIN(rec) AS first FROM {table} GROUP BY {columns} HAVING COUNT(*) > 1) d ON {joined} \
         WHERE t.rec > d.first ORDER BY t.src, t.rec LIMIT {}",
        sink.error_cap
    );
    let rows = conn.query(&sql, vec![]).await?;
    for row in &rows {
        let src: i64 = row.get::<Option<i64>>("src")?.unwrap_or_default();
        let rec: i64 = row.get::<Option<i64>>("rec")?.unwrap_or_default();
        let value: Option<String> = row.get("k")?;
        let first: Option<i64> = row.get("first")?;
        let earlier = match first {
            Some(first) if first < rec => format!(" (first at record {first})"),
            _ => String::new(),
        };
        sink.error(Issue::at(
            files.name(src as usize),
            rec as u64,
            Some(key.header),
            "duplicate_key",
            format!(
                "duplicate {} '{}'{earlier}",
                key.what,
                value.unwrap_or_default()
            ),
        ));
    }
    Ok(rows.len() as u64)
}

/// Reports every reference of `reference` that points nowhere. Returns how many.
pub async fn dangling(
    conn: &mut ImportConn,
    reference: &Reference,
    files: &FileSet,
    sink: &mut IssueSink,
) -> Result<u64, DbErr> {
    let when = if reference.when.is_empty() {
        String::new()
    } else {
        format!(" AND {}", reference.when)
    };
    let target_when = if reference.target_when.is_empty() {
        String::new()
    } else {
        format!(" AND {}", reference.target_when)
    };
    let sql = format!(
        "SELECT c.src, c.rec, c.{col} AS value FROM {table} c \
         WHERE c.{col} IS NOT NULL{when} \
           AND NOT EXISTS (SELECT 1 FROM {target} p WHERE p.{tcol} = c.{col}{target_when}) \
         ORDER BY c.src, c.rec LIMIT {cap}",
        col = reference.column,
        table = reference.table.name(),
        target = reference.target.name(),
        tcol = reference.target_column,
        cap = sink.error_cap,
    );
    let rows = conn.query(&sql, vec![]).await?;
    for row in &rows {
        let src: i64 = row.get::<Option<i64>>("src")?.unwrap_or_default();
        let rec: i64 = row.get::<Option<i64>>("rec")?.unwrap_or_default();
        let value: Option<String> = row.get("value")?;
        sink.error(Issue::at(
            files.name(src as usize),
            rec as u64,
            Some(reference.header),
            "unknown_reference",
            format!("'{}' {}", value.unwrap_or_default(), reference.problem),
        ));
    }
    Ok(rows.len() as u64)
}

/// Emits the warnings of contacts that will not be offered for communication: a dropped
/// email, a dropped phone, or neither channel left.
/// The warning for a contact left with neither channel (no quote characters: it is
/// embedded in SQL).
pub const UNREACHABLE_CONTACT: &str = "the contact has neither a valid email nor a valid E.164 mobile: it is stored but not offered for communication";

/// Order of warnings in a report: file-level ones, skipped enrollments (found while
/// reading), then invalid emails, invalid phones and unreachable contacts (the order
/// [`contact_warnings`] adds them in).
pub fn warning_rank(code: &str) -> u8 {
    match code {
        super::sds_v21::ENROLLMENT_SKIPPED => 1,
        "invalid_email" => 2,
        "invalid_phone" => 3,
        "unreachable_contact" => 4,
        _ => 0,
    }
}

/// Reports contacts kept without a valid email or phone.
pub async fn contact_warnings(
    conn: &mut ImportConn,
    files: &FileSet,
    sink: &mut IssueSink,
) -> Result<(), DbErr> {
    let limit = sink.warning_cap + 1;
    let queries = [
        ("email_column", "email_warning", "invalid_email"),
        ("phone_column", "phone_warning", "invalid_phone"),
    ];
    for (column, warning, code) in queries {
        let total = conn
            .count(
                &format!("SELECT COUNT(*) AS n FROM s_contacts WHERE {warning} IS NOT NULL"),
                vec![],
            )
            .await?;
        let rows = conn.query(&format!("SELECT src, rec, {column} AS column_name, {warning} AS message FROM s_contacts WHERE {warning} IS NOT NULL ORDER BY src, rec LIMIT {limit}"),
            vec![],
        )
        .await?;
        push_warnings(sink, files, &rows, total, code)?;
    }
    let unreachable = "email IS NULL AND mobile_phone IS NULL";
    let total = conn
        .count(
            &format!("SELECT COUNT(*) AS n FROM s_contacts WHERE {unreachable}"),
            vec![],
        )
        .await?;
    let rows = conn
        .query(
            &format!(
                "SELECT src, rec, email_column AS column_name, '{UNREACHABLE_CONTACT}' AS message \
             FROM s_contacts WHERE {unreachable} ORDER BY src, rec LIMIT {limit}"
            ),
            vec![],
        )
        .await?;
    push_warnings(sink, files, &rows, total, "unreachable_contact")
}

fn push_warnings(
    sink: &mut IssueSink,
    files: &FileSet,
    rows: &[RawRow],
    total: i64,
    code: &'static str,
) -> Result<(), DbErr> {
    for row in rows {
        let src: i64 = row.get::<Option<i64>>("src")?.unwrap_or_default();
        let rec: i64 = row.get::<Option<i64>>("rec")?.unwrap_or_default();
        let column: Option<String> = row.get("column_name")?;
        let message: Option<String> = row.get("message")?;
        sink.warning(Issue::at(
            files.name(src as usize),
            rec as u64,
            column.as_deref(),
            code,
            message.unwrap_or_default(),
        ));
    }
    // Warnings past the fetched ones are only counted.
    sink.warning_count += (total as u64).saturating_sub(rows.len() as u64);
    Ok(())
}
