//! The report of a sync run: counts per entity, every row error, and warnings. It is what
//! the CLI prints (human-readable or JSON) and what `sync_runs.report` stores.

use serde::Serialize;
use std::fmt::{self, Write as _};

/// One problem found in the input, located by file, record and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Issue {
    /// File name as found in the folder (e.g. `users.csv`), or `(file set)` for a problem of
    /// the set as a whole.
    pub file: String,
    /// Record number counting the header as record 1 (so the first data row is 2, as in a
    /// spreadsheet); absent for whole-file problems.
    pub record: Option<u64>,
    /// Column (header name) the problem is in, when it is in one.
    pub column: Option<String>,
    /// Stable machine-readable code, e.g. `duplicate_key`.
    pub code: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Issue {
    /// A problem with a whole file.
    pub fn file(file: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            record: None,
            column: None,
            code,
            message: message.into(),
        }
    }

    /// A problem at a record (and optionally a column).
    pub fn at(
        file: &str,
        record: u64,
        column: Option<&str>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.to_string(),
            record: Some(record),
            column: column.map(str::to_string),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(record) = self.record {
            write!(f, ", record {record}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column '{column}'")?;
        }
        write!(f, ": {} [{}]", self.message, self.code)
    }
}

/// How many rows of one kind a run created, updated, left unchanged, reactivated or
/// deactivated, and how many input rows it rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// New rows.
    pub created: u64,
    /// Rows whose values changed.
    pub updated: u64,
    /// Rows present and identical.
    pub unchanged: u64,
    /// Inactive rows present again.
    pub reactivated: u64,
    /// Active rows absent from the snapshot, now inactive.
    pub deactivated: u64,
    /// Input rows refused because of an error.
    pub rejected: u64,
}

impl From<&crate::entities::sync_run::Model> for Counts {
    /// The counts stored with a run.
    fn from(run: &crate::entities::sync_run::Model) -> Self {
        let count = |n: i64| n.max(0) as u64;
        Self {
            created: count(run.created),
            updated: count(run.updated),
            unchanged: count(run.unchanged),
            reactivated: count(run.reactivated),
            deactivated: count(run.deactivated),
            rejected: count(run.rejected),
        }
    }
}

impl Counts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.reactivated += other.reactivated;
        self.deactivated += other.deactivated;
        self.rejected += other.rejected;
    }

    /// Rows the run wrote (or would write).
    pub fn written(&self) -> u64 {
        self.created + self.updated + self.reactivated + self.deactivated
    }
}

/// Counts per entity kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityCounts {
    /// Schools / orgs.
    pub schools: Counts,
    /// Students.
    pub students: Counts,
    /// Teachers and other staff.
    pub staff: Counts,
    /// Classes / sections.
    pub classes: Counts,
    /// Class enrollments of students and teachers.
    pub enrollments: Counts,
    /// Contacts (parents, guardians and other related people).
    pub contacts: Counts,
    /// Student–contact links.
    pub links: Counts,
    /// Links of the snapshot not applied because an admin erased that contact from that
    /// student (until the erasure is lifted).
    pub erased_links_skipped: u64,
}

impl EntityCounts {
    /// Every entity's counts with its name, in a fixed order.
    pub fn named(&self) -> [(&'static str, &Counts); 7] {
        [
            ("schools", &self.schools),
            ("students", &self.students),
            ("staff", &self.staff),
            ("classes", &self.classes),
            ("enrollments", &self.enrollments),
            ("contacts", &self.contacts),
            ("links", &self.links),
        ]
    }

    /// The sum over every entity.
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for (_, counts) in self.named() {
            total.add(counts);
        }
        total
    }
}

pub use crate::domain::RunStatus;

/// What an issue's message becomes for readers who may not read contact data (tenant
/// admins): messages quote the rejected input (an email, a phone number, a name).
pub const HIDDEN_MESSAGE: &str =
    "(the message quotes the file's values: shown to global and teams admins only)";

/// A stored report (its JSON) without the input values its issues quote: every error's and
/// warning's message becomes [`HIDDEN_MESSAGE`]; file, record, column and code stay.
pub fn without_values(mut report: serde_json::Value) -> serde_json::Value {
    for list in ["errors", "warnings"] {
        if let Some(issues) = report.get_mut(list).and_then(|l| l.as_array_mut()) {
            for issue in issues.iter_mut().filter_map(|i| i.as_object_mut()) {
                if issue.contains_key("message") {
                    issue.insert("message".into(), HIDDEN_MESSAGE.into());
                }
            }
        }
    }
    report
}

/// The full report of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// Id of the stored `sync_runs` row.
    pub run_id: Option<i64>,
    /// Tenant slug.
    pub tenant: String,
    /// `sds-v1`, `sds-v2.1` or `oneroster`.
    pub format: String,
    /// Folder the files came from (OneRoster: the provider's base URL and the run kind).
    pub source: String,
    /// Outcome.
    pub status: RunStatus,
    /// True for `--dry-run`.
    pub dry_run: bool,
    /// True for `--force`.
    pub forced: bool,
    /// True when the run was applied by diffing in memory (only new and changed rows were
    /// written to staging); false when every row went through the full SQL checks.
    pub diffed: bool,
    /// Totals over every entity.
    pub counts: Counts,
    /// Counts per entity.
    pub entities: EntityCounts,
    /// Rows of roster and contact data written (0 when the same snapshot is re-run).
    pub rows_written: u64,
    /// Errors (each one alone refuses the run).
    pub errors: Vec<Issue>,
    /// Warnings (the run still applies), at most the warning cap of them.
    pub warnings: Vec<Issue>,
    /// Warnings found, including those past the cap.
    pub warning_count: u64,
    /// True when the error cap stopped the reading early.
    pub error_cap_reached: bool,
    /// Start time (UTC, RFC 3339).
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
}

impl ImportReport {
    /// The report as text for people.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        let verdict = match self.status {
            RunStatus::Applied => "applied",
            RunStatus::DryRun => "dry run: would be applied (nothing was written)",
            RunStatus::Refused => "REFUSED: nothing was changed",
            RunStatus::Failed => "FAILED: nothing was changed",
        };
        // A pull from a provider is a sync; a folder or an upload is an import.
        let kind = if self.format == "oneroster" {
            "Sync"
        } else {
            "Import"
        };
        let _ = writeln!(
            out,
            "{kind} of {} ({}) for tenant {}: {verdict}",
            self.source, self.format, self.tenant
        );
        if self.entities.erased_links_skipped > 0 {
            let _ = writeln!(
                out,
                "{} relationship(s) of erased contacts were skipped (lift the erasure to re-create them)",
                self.entities.erased_links_skipped
            );
        }
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9}",
            "", "created", "updated", "unchanged", "reactivated", "deactivated", "rejected"
        );
        let total = self.counts;
        for (name, c) in self.entities.named().into_iter().chain([("total", &total)]) {
            let _ = writeln!(
                out,
                "{name:<12} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9}",
                c.created, c.updated, c.unchanged, c.reactivated, c.deactivated, c.rejected
            );
        }
        let _ = writeln!(
            out,
            "rows written: {}  ({} ms)",
            self.rows_written, self.duration_ms
        );
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\n{} error(s):", self.errors.len());
            for issue in &self.errors {
                let _ = writeln!(out, "  error: {issue}");
            }
            if self.error_cap_reached {
                let _ = writeln!(out, "  (error cap reached: reading stopped early)");
            }
        }
        if self.warning_count > 0 {
            let _ = writeln!(out, "\n{} warning(s):", self.warning_count);
            for issue in &self.warnings {
                let _ = writeln!(out, "  warning: {issue}");
            }
            if self.warning_count > self.warnings.len() as u64 {
                let _ = writeln!(
                    out,
                    "  … and {} more",
                    self.warning_count - self.warnings.len() as u64
                );
            }
        }
        out
    }
}
