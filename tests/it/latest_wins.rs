//! Per-field latest-change-wins between sync and edits (SPEC §3.3). Approved edits arrive
//! with the approvals work; here an edit is written the way approval will write it
//! (value, provenance `approved_edit`, change time), to pin the sync side of the rule.

use crate::db_tests;
use crate::support::*;
use parent_connection::db;
use parent_connection::sync::Format::SdsV21;
use parent_connection::sync::report::RunStatus;
use sea_orm::Value;

db_tests!(
    unchanged_sis_value_does_not_overwrite_a_later_edit,
    changed_sis_value_overwrites_an_older_edit,
    sync_change_then_later_edit_keeps_the_edit,
);

async fn approve_edit(db: &TestDb, key: &str, field: &str, value: &str) {
    db::exec(
        &db.conn,
        &format!("UPDATE contacts SET {field} = $1, {field}_provenance = 'approved_edit', {field}_changed_at = $2 WHERE source_key = $3"),
        vec![value.into(), Value::ChronoDateTimeUtc(Some(chrono::Utc::now())), key.into()],
    )
    .await
    .unwrap();
}

async fn unchanged_sis_value_does_not_overwrite_a_later_edit(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    approve_edit(&db, "par-1", "email", "linda@edited.example").await;
    let report = db
        .import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!(report.rows_written, 0);
    assert_eq!(
        db.contact_field("par-1", "email").await,
        (
            Some("linda@edited.example".into()),
            Some("approved_edit".into())
        )
    );
}

async fn changed_sis_value_overwrites_an_older_edit(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    approve_edit(&db, "par-1", "email", "linda@edited.example").await;
    approve_edit(&db, "par-1", "given_name", "Lin").await;
    let fixture = Fixture::v21();
    fixture.replace("users.csv", "linda.ng@example.com", "linda@sis-new.example");
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.entities.contacts.updated, 1);
    assert_eq!(
        db.contact_field("par-1", "email").await,
        (Some("linda@sis-new.example".into()), Some("sync".into()))
    );
    // Per field: the name the SIS did not change keeps the edit.
    assert_eq!(
        db.contact_field("par-1", "given_name").await,
        (Some("Lin".into()), Some("approved_edit".into()))
    );
}

async fn sync_change_then_later_edit_keeps_the_edit(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let changed = Fixture::v21();
    changed.replace("users.csv", "tom.ng@example.com", "tom@sis.example");
    db.import("demo", SdsV21, changed.path(), APPLY).await;
    assert_eq!(
        db.contact_field("par-2", "email").await.1.as_deref(),
        Some("sync")
    );
    approve_edit(&db, "par-2", "email", "tom@edit.example").await;
    let again = db.import("demo", SdsV21, changed.path(), APPLY).await;
    assert_eq!(again.rows_written, 0);
    assert_eq!(
        db.contact_field("par-2", "email").await,
        (
            Some("tom@edit.example".into()),
            Some("approved_edit".into())
        )
    );
}
