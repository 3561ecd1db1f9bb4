//! The import pipeline (rows compared in memory, only changes staged) over a sequence of SDS
//! v2.1 and SDS v1 snapshots: after every step the report and the data, hashes included,
//! equal the checked-in expectations of `tests/it/golden/` (first written by the full SQL path
//! the pipeline replaced, identical on both engines, and read by eye against SPEC §3).
//!
//! `UPDATE_GOLDEN=1 cargo test --test it -- diffed` rewrites them from what the SQLite run
//! gives (the PostgreSQL run still compares): review the diff by eye before committing it.

use crate::db_tests;
use crate::support::*;
use parent_connection::sync::Format::{self, SdsV1, SdsV21};
use parent_connection::sync::SyncError;
use parent_connection::sync::report::ImportReport;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Every synced value and its bookkeeping, without ids and times (which differ between two
/// databases), table by table, sorted in Rust (the engines' collations sort differently).
async fn state(db: &TestDb) -> Vec<String> {
    let key = |t: &str| {
        format!(
            "COALESCE(CAST({t}.sync_key AS TEXT), '-') || '|' || COALESCE(CAST({t}.sync_hash AS TEXT), '-')"
        )
    };
    let contact_fields = ["given_name", "family_name", "email", "mobile_phone"]
        .map(|f| {
            format!("COALESCE({f}, '-') || '|' || COALESCE({f}_provenance, '-') || '|' || COALESCE({f}_sync, '-')")
        })
        .join(" || '|' || ");
    let queries = [
        "SELECT source_id || '|' || COALESCE(name, '-') || '|' || status FROM schools".to_string(),
        format!(
            "SELECT source_id || '|' || COALESCE(given_name, '-') || '|' || COALESCE(family_name, '-') || '|' || status || '|' || {} FROM students",
            key("students")
        ),
        "SELECT source_id || '|' || COALESCE(email, '-') || '|' || role || '|' || status FROM staff".into(),
        "SELECT source_id || '|' || COALESCE(title, '-') || '|' || status FROM classes".into(),
        format!(
            "SELECT c.source_id || '|' || e.role || '|' || COALESCE(s.source_id, f.source_id) || '|' || e.status || '|' || {} \
             FROM enrollments e JOIN classes c ON c.id = e.class_id \
             LEFT JOIN students s ON e.role = 'student' AND s.id = e.person_id \
             LEFT JOIN staff f ON e.role = 'teacher' AND f.id = e.person_id",
            key("e")
        ),
        format!(
            "SELECT source_key || '|' || COALESCE(source_id, '-') || '|' || {contact_fields} || '|' || {} FROM contacts",
            key("contacts")
        ),
        format!(
            "SELECT s.source_id || '|' || c.source_key || '|' || l.relationship || '|' || l.relationship_provenance || '|' || l.relationship_sync || '|' || l.status || '|' || {} \
             FROM student_contacts l JOIN students s ON s.id = l.student_id JOIN contacts c ON c.id = l.contact_id",
            key("l")
        ),
    ];
    let mut rows = Vec::new();
    for sql in queries {
        let mut table = db.texts(&sql, vec![]).await;
        table.sort();
        rows.push(format!("-- {} rows", table.len()));
        rows.append(&mut table);
    }
    rows
}

/// The parts of a report the expectations hold (not its times, ids or source folder).
fn essentials(report: &ImportReport) -> Value {
    json!({
        "status": report.status,
        "counts": report.counts,
        "entities": report.entities,
        "rows_written": report.rows_written,
        "errors": report.errors,
        "warnings": report.warnings,
        "warning_count": report.warning_count,
    })
}

/// The snapshots, in order, with whether they are clean (so the diffed path applies them).
fn snapshots() -> Vec<(&'static str, Fixture, bool)> {
    let changed = || {
        let f = Fixture::v21();
        f.replace("users.csv", "linda.ng@example.com", "linda@new.example")
            .replace("users.csv", "Ava,Ng", "Ava,Ngata")
            .replace(
                "relationships.csv",
                "stu-2,par-1,parent",
                "stu-2,par-1,guardian",
            )
            .remove_lines("relationships.csv", "stu-1,rel-1")
            .remove_lines("enrollments.csv", "cls-1,stu-2")
            .remove_lines("users.csv", "stu-3,")
            .remove_lines("roles.csv", "stu-3,")
            .remove_lines("relationships.csv", "stu-3,")
            .append("users.csv", "stu-4,dee@school.example,Dee,Ortiz,,,")
            .append("roles.csv", "stu-4,sch-1,student")
            .append("relationships.csv", "stu-4,par-3,guardian")
            .append("enrollments.csv", "cls-1,stu-4,student");
        f
    };
    let dangling = Fixture::v21();
    dangling.append("relationships.csv", "stu-1,nobody,parent");
    vec![
        ("first import", Fixture::v21(), true),
        ("the same again", Fixture::v21(), true),
        ("changes, removals, additions", changed(), true),
        ("the changed snapshot again", changed(), true),
        ("back to the first", Fixture::v21(), true),
        (
            "every documented SDS value",
            Fixture::copy("sds-v21/all-values"),
            true,
        ),
        (
            "every documented SDS value again",
            Fixture::copy("sds-v21/all-values"),
            true,
        ),
        ("a dangling reference", dangling, false),
    ]
}

/// The SDS v1 snapshots, in order, with whether they are clean.
fn v1_snapshots() -> Vec<(&'static str, Fixture, bool)> {
    let changed = || {
        let f = Fixture::v1();
        f.replace("User.csv", "Tom,Ng", "Tom,Nguyen")
            .replace("Student.csv", "Ben,Ng", "Ben,Ngata")
            .replace(
                "Guardianrelationship.csv",
                "ST1,tom.ng@example.com,guardian",
                "ST1,tom.ng@example.com,parent",
            )
            .remove_lines("Guardianrelationship.csv", "ST1,aide@example.com")
            .remove_lines("StudentEnrollment.csv", "SEC1,ST2")
            .append("Student.csv", "ST3,S1,cy,Cy,Ng")
            .append("StudentEnrollment.csv", "SEC1,ST3")
            .append("User.csv", "new@example.com,New,Person,,")
            .append("Guardianrelationship.csv", "ST3,new@example.com,Guardian");
        f
    };
    let spoiled = Fixture::v1();
    spoiled
        .append("Guardianrelationship.csv", "ST1,nobody@example.com,Parent")
        .append("Student.csv", "ST2,S1,ben,Ben,Ng");
    vec![
        ("first import", Fixture::v1(), true),
        ("the same again", Fixture::v1(), true),
        ("changes, removals, additions", changed(), true),
        ("the changed snapshot again", changed(), true),
        ("back to the first", Fixture::v1(), true),
        (
            "a dangling reference and a repeated student",
            spoiled,
            false,
        ),
    ]
}

db_tests!(
    the_pipeline_gives_the_expected_reports_and_data,
    the_pipeline_gives_the_expected_reports_and_data_for_sds_v1,
    an_unchanged_snapshot_writes_nothing_and_keeps_its_warnings,
    rows_without_keys_get_them_and_the_run_is_diffed,
    active_rows_whose_key_cannot_be_read_stop_the_run,
);

async fn the_pipeline_gives_the_expected_reports_and_data(backend: Backend) {
    expected_reports_and_data(backend, SdsV21, snapshots(), "diffed_sds_v21.json").await;
}

async fn the_pipeline_gives_the_expected_reports_and_data_for_sds_v1(backend: Backend) {
    expected_reports_and_data(backend, SdsV1, v1_snapshots(), "diffed_sds_v1.json").await;
}

/// Runs the snapshots in order on a fresh tenant; per step its name, the report's
/// essentials and the data after it, and whether the run was diffed.
async fn run_steps(
    backend: Backend,
    format: Format,
    snapshots: &[(&'static str, Fixture, bool)],
) -> Vec<(Value, bool)> {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let mut steps = Vec::new();
    for (step, fixture, _) in snapshots {
        let report = db.import("demo", format, fixture.path(), FORCE).await;
        let step = json!({"step": step, "report": essentials(&report), "data": state(&db).await});
        steps.push((step, report.diffed));
    }
    steps
}

async fn expected_reports_and_data(
    backend: Backend,
    format: Format,
    snapshots: Vec<(&'static str, Fixture, bool)>,
    golden: &str,
) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(golden);
    let steps = run_steps(backend, format, &snapshots).await;
    if backend == Backend::Sqlite && std::env::var_os("UPDATE_GOLDEN").is_some() {
        let steps: Vec<&Value> = steps.iter().map(|(step, _)| step).collect();
        let text = serde_json::to_string_pretty(&steps).expect("json") + "\n";
        std::fs::write(&path, text).expect("write the golden file");
    }
    let text = std::fs::read_to_string(&path).expect("the golden file (UPDATE_GOLDEN=1 writes it)");
    let expected: Vec<Value> = serde_json::from_str(&text).expect("golden json");
    assert_eq!(
        expected.len(),
        snapshots.len(),
        "{golden}: one entry per step"
    );
    for ((expected, (name, _, clean)), (step, diffed)) in
        expected.iter().zip(&snapshots).zip(&steps)
    {
        assert_eq!(expected["step"], *name, "{golden}: steps in order");
        assert_eq!(step, expected, "report and data of step '{name}'");
        assert_eq!(diffed, clean, "path of step '{name}'");
    }
}

async fn an_unchanged_snapshot_writes_nothing_and_keeps_its_warnings(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let first = db
        .import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let before = db.fingerprint().await;
    let again = db
        .import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    assert!(again.diffed);
    assert_eq!(again.rows_written, 0);
    assert_eq!(again.counts.unchanged, first.counts.created);
    assert_eq!(db.fingerprint().await, before);
    assert!(again.warning_count > 0, "the fixture has a bad phone");
    assert_eq!(
        serde_json::to_value(&again.warnings).unwrap(),
        serde_json::to_value(&first.warnings).unwrap()
    );
}

async fn rows_without_keys_get_them_and_the_run_is_diffed(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let keyed = state(&db).await;
    // As if stored before keys existed.
    for table in ["students", "contacts", "enrollments", "student_contacts"] {
        db.exec(&format!(
            "UPDATE {table} SET sync_key = NULL, sync_hash = NULL"
        ))
        .await;
    }
    let changed = Fixture::v21();
    changed.remove_lines("enrollments.csv", "cls-1,stu-2");
    let dry = db
        .import(
            "demo",
            SdsV21,
            changed.path(),
            Options {
                dry_run: true,
                ..FORCE
            },
        )
        .await;
    assert_eq!(dry.entities.enrollments.deactivated, 1);
    assert!(
        dry.diffed,
        "the keys are stored in the run's transaction first"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM students WHERE sync_key IS NULL")
            .await,
        3,
        "a dry run stores no key"
    );
    let keyed_first = db.import("demo", SdsV21, changed.path(), FORCE).await;
    assert!(
        keyed_first.diffed,
        "the keys are stored from the natural keys, so absent rows are found by key"
    );
    assert_eq!(keyed_first.entities.enrollments.deactivated, 1);
    let again = db
        .import("demo", SdsV21, Fixture::v21().path(), FORCE)
        .await;
    assert!(again.diffed);
    assert_eq!(again.entities.enrollments.reactivated, 1);
    assert_eq!(state(&db).await, keyed);
}

/// An active enrollment without a key whose person is neither student nor staff: its key
/// cannot be computed, so the run cannot tell whether the snapshot still holds it. The run
/// stops with an error naming the table and changes nothing.
async fn active_rows_whose_key_cannot_be_read_stop_the_run(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    db.exec("UPDATE students SET sync_key = NULL, sync_hash = NULL")
        .await;
    db.exec("UPDATE enrollments SET sync_key = NULL, person_id = -1 WHERE role = 'teacher'")
        .await;
    let before = db.fingerprint().await;
    let runs = db.count("SELECT COUNT(*) FROM sync_runs").await;
    let changed = Fixture::v21();
    changed.replace("users.csv", "Ava,Ng", "Ava,Ngata");
    let error = db
        .try_import("demo", SdsV21, changed.path(), FORCE)
        .await
        .expect_err("the run stops");
    assert!(
        matches!(
            error,
            SyncError::UnkeyedRows {
                table: "enrollments",
                rows: 1
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("1 active rows of enrollments have no sync_key")
            && message.contains("nothing was changed"),
        "{message}"
    );
    assert_eq!(db.fingerprint().await, before, "nothing applied");
    assert_eq!(
        db.count("SELECT COUNT(*) FROM students WHERE sync_key IS NULL")
            .await,
        3,
        "the keys stored for the run were rolled back with it"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM sync_runs").await, runs);
}
