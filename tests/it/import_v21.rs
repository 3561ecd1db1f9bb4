//! SDS v2.1 imports: snapshot semantics, guards, idempotence, role filtering, phones.

use crate::db_tests;
use crate::support::*;
use parent_connection::contacts::{self, Scope};
use parent_connection::sync::Format::SdsV21;
use parent_connection::sync::report::RunStatus;

db_tests!(
    first_import_creates_everything_and_a_second_run_writes_nothing,
    teacher_view_shows_only_active_parents_and_guardians,
    phones_are_normalised_and_bad_ones_only_warned,
    phones_use_the_tenant_region,
    an_absent_link_becomes_inactive_and_returns_active,
    deletion_guard_refuses_a_large_deactivation_unless_forced,
    missing_relationships_file_never_erases_links_silently,
    dry_run_counts_but_changes_nothing,
    absent_student_becomes_inactive_without_touching_contacts,
    an_error_anywhere_changes_nothing,
    relationship_to_a_non_student_is_an_error,
    relationship_changes_update_the_link,
    tenants_do_not_see_each_other,
    a_resync_no_one_interrupted_reads_the_live_rows_once,
);

async fn first_import_creates_everything_and_a_second_run_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v21();
    let first = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(first.status, RunStatus::Applied, "{:#?}", first.errors);
    let e = &first.entities;
    assert_eq!(
        (
            e.schools.created,
            e.students.created,
            e.staff.created,
            e.classes.created
        ),
        (1, 3, 1, 1)
    );
    assert_eq!(
        (e.enrollments.created, e.contacts.created, e.links.created),
        (3, 5, 6)
    );
    assert_eq!(first.rows_written, 20);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM sync_runs WHERE status = 'applied'")
            .await,
        1
    );

    let before = db.fingerprint().await;
    let second = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(second.status, RunStatus::Applied);
    assert_eq!(second.rows_written, 0, "{:#?}", second.counts);
    assert_eq!(second.counts.unchanged, 20);
    assert_eq!(
        db.fingerprint().await,
        before,
        "the same snapshot twice must write nothing"
    );
}

async fn teacher_view_shows_only_active_parents_and_guardians(backend: Backend) {
    let db = TestDb::new(backend).await;
    let tenant = db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let teacher = contacts::for_student(&db.conn, tenant.id, "stu-1", &Scope::Guardians)
        .await
        .unwrap();
    let mut seen: Vec<(String, String)> = teacher
        .iter()
        .map(|c| (c.display_name.clone(), c.relationship.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("Linda Ng".into(), "parent".into()),
            ("Tom Ng".into(), "guardian".into())
        ]
    );
    assert!(teacher.iter().all(|c| c.provenance.is_none()));

    let admin = contacts::for_student(&db.conn, tenant.id, "stu-1", &Scope::Admin)
        .await
        .unwrap();
    let mut roles: Vec<&str> = admin.iter().map(|c| c.relationship.as_str()).collect();
    roles.sort();
    assert_eq!(roles, vec!["doctor", "guardian", "parent", "relative"]);
    assert!(admin.iter().all(|c| c.provenance.is_some()));

    let missing = contacts::for_student(&db.conn, tenant.id, "nobody", &Scope::Guardians).await;
    assert!(matches!(
        missing,
        Err(contacts::ContactsError::StudentNotFound(_))
    ));
}

async fn phones_are_normalised_and_bad_ones_only_warned(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let report = db
        .import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!(
        db.contact_field("par-1", "mobile_phone").await.0.as_deref(),
        Some("+12025550143")
    );
    // `sms` wins over `phone` for the mobile.
    assert_eq!(
        db.contact_field("par-2", "mobile_phone").await.0.as_deref(),
        Some("+12025550177")
    );
    // An invalid number is dropped with a warning; the contact still syncs by email.
    assert_eq!(db.contact_field("par-3", "mobile_phone").await.0, None);
    assert_eq!(
        db.contact_field("par-3", "email").await.0.as_deref(),
        Some("rosa.ortiz@example.com")
    );
    let warning = report
        .warnings
        .iter()
        .find(|w| w.code == "invalid_phone")
        .expect("phone warning");
    assert_eq!(
        (
            warning.file.as_str(),
            warning.record,
            warning.column.as_deref()
        ),
        ("users.csv", Some(8), Some("phone"))
    );
    assert_eq!(report.errors.len(), 0);
}

async fn phones_use_the_tenant_region(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant_in("london", "GB").await;
    let fixture = Fixture::v21();
    fixture.replace("users.csv", "(202) 555-0143", "020 7946 0958");
    let report = db.import("london", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied);
    assert_eq!(
        db.contact_field("par-1", "mobile_phone").await.0.as_deref(),
        Some("+442079460958")
    );
}

async fn an_absent_link_becomes_inactive_and_returns_active(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v21();
    db.import("demo", SdsV21, fixture.path(), APPLY).await;

    let without = Fixture::v21();
    without.remove_lines("relationships.csv", "stu-1,par-2");
    let report = db.import("demo", SdsV21, without.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.links.deactivated, 1);
    assert_eq!(
        db.link("stu-1", "par-2").await,
        Some(("guardian".into(), "inactive".into()))
    );
    // Nothing is deleted: the contact remains.
    assert_eq!(db.count("SELECT COUNT(*) FROM contacts").await, 5);

    let back = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(back.entities.links.reactivated, 1);
    assert_eq!(
        db.link("stu-1", "par-2").await,
        Some(("guardian".into(), "active".into()))
    );
}

async fn deletion_guard_refuses_a_large_deactivation_unless_forced(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let before = db.fingerprint().await;

    let fewer = Fixture::v21();
    fewer
        .remove_lines("relationships.csv", "stu-1,par-2")
        .remove_lines("relationships.csv", "stu-2,par-1");
    let refused = db.import("demo", SdsV21, fewer.path(), APPLY).await;
    assert_eq!(refused.status, RunStatus::Refused);
    let guard = error(&refused, "deletion_guard");
    assert!(guard.message.contains("2 of 6"), "{}", guard.message);
    assert_eq!(
        refused.entities.links.deactivated, 2,
        "the report says what would have happened"
    );
    assert_eq!(
        db.fingerprint().await,
        before,
        "a refused run changes nothing"
    );

    let forced = db.import("demo", SdsV21, fewer.path(), FORCE).await;
    assert_eq!(forced.status, RunStatus::Applied);
    assert_eq!(forced.entities.links.deactivated, 2);
}

async fn missing_relationships_file_never_erases_links_silently(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let before = db.fingerprint().await;
    let fixture = Fixture::v21();
    fixture.delete("relationships.csv");
    let refused = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(refused.status, RunStatus::Refused);
    let guard = error(&refused, "missing_file_guard");
    assert_eq!(guard.file, "relationships.csv");
    assert_eq!(db.fingerprint().await, before);

    let forced = db.import("demo", SdsV21, fixture.path(), FORCE).await;
    assert_eq!(forced.status, RunStatus::Applied);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM student_contacts WHERE status = 'active'")
            .await,
        0
    );
}

async fn dry_run_counts_but_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let before = db.fingerprint().await;
    let report = db
        .import("demo", SdsV21, Fixture::v21().path(), DRY_RUN)
        .await;
    assert_eq!(report.status, RunStatus::DryRun);
    assert_eq!(report.counts.created, 20);
    assert_eq!(report.rows_written, 0);
    assert_eq!(db.fingerprint().await, before);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM sync_runs WHERE status = 'dry_run'")
            .await,
        1
    );
}

async fn absent_student_becomes_inactive_without_touching_contacts(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let fixture = Fixture::v21();
    fixture
        .remove_lines("users.csv", "stu-3,")
        .remove_lines("roles.csv", "stu-3,")
        .remove_lines("relationships.csv", "stu-3,");
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.students.deactivated, 1);
    assert_eq!(
        db.texts(
            "SELECT status FROM students WHERE source_id = 'stu-3'",
            vec![]
        )
        .await,
        vec!["inactive"]
    );
    assert_eq!(
        db.link("stu-3", "par-3").await.map(|l| l.1),
        Some("inactive".into())
    );
    // The contact itself is kept: only an explicit admin erase removes contacts.
    assert_eq!(
        db.count("SELECT COUNT(*) FROM contacts WHERE source_key = 'par-3'")
            .await,
        1
    );
}

async fn an_error_anywhere_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let before = db.fingerprint().await;
    let fixture = Fixture::v21();
    fixture
        .replace("users.csv", "linda.ng@example.com", "linda@new.example")
        .append("users.csv", "par-9,p9,Pat,Doe,pat@example.com,,")
        .append("relationships.csv", "stu-2,par-9,parent")
        .append("relationships.csv", "stu-2,par-1,cousin");
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused);
    let bad = error(&report, "invalid_value");
    assert_eq!(
        (bad.file.as_str(), bad.record, bad.column.as_deref()),
        ("relationships.csv", Some(9), Some("relationshipRole"))
    );
    assert!(report.counts.rejected >= 1);
    assert_eq!(
        db.fingerprint().await,
        before,
        "nothing of the good rows was applied"
    );
}

async fn relationship_to_a_non_student_is_an_error(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v21();
    fixture.append("relationships.csv", "tch-1,par-1,parent");
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused);
    let issue = error(&report, "unknown_reference");
    assert_eq!(
        (issue.file.as_str(), issue.record, issue.column.as_deref()),
        ("relationships.csv", Some(8), Some("userSourcedId"))
    );
    assert!(issue.message.contains("not a student"), "{}", issue.message);
}

async fn relationship_changes_update_the_link(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    let fixture = Fixture::v21();
    fixture.replace(
        "relationships.csv",
        "stu-1,rel-1,relative",
        "stu-1,rel-1,guardian",
    );
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.entities.links.updated, 1);
    assert_eq!(
        db.link("stu-1", "rel-1").await,
        Some(("guardian".into(), "active".into()))
    );
}

async fn tenants_do_not_see_each_other(backend: Backend) {
    let db = TestDb::new(backend).await;
    let a = db.tenant("district-a").await;
    let b = db.tenant("district-b").await;
    db.import("district-a", SdsV21, Fixture::v21().path(), APPLY)
        .await;
    // The same ids in another tenant are separate rows, and the first tenant is untouched.
    let fixture = Fixture::v21();
    fixture.replace("users.csv", "linda.ng@example.com", "linda@b.example");
    let report = db.import("district-b", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.entities.contacts.created, 5);
    let in_a = contacts::for_student(&db.conn, a.id, "stu-1", &Scope::Guardians)
        .await
        .unwrap();
    let in_b = contacts::for_student(&db.conn, b.id, "stu-1", &Scope::Guardians)
        .await
        .unwrap();
    assert!(
        in_a.iter()
            .any(|c| c.email_address.as_deref() == Some("linda.ng@example.com"))
    );
    assert!(
        in_b.iter()
            .any(|c| c.email_address.as_deref() == Some("linda@b.example"))
    );
    assert!(
        in_b.iter()
            .all(|c| c.email_address.as_deref() != Some("linda.ng@example.com"))
    );
    // Removing links in b does not deactivate a's.
    let empty = Fixture::v21();
    empty.write(
        "relationships.csv",
        "userSourcedId,relationshipUserSourcedId,relationshipRole\n",
    );
    db.import("district-b", SdsV21, empty.path(), FORCE).await;
    assert_eq!(
        contacts::for_student(&db.conn, a.id, "stu-1", &Scope::Guardians)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// The progress phases of an import, in order.
#[derive(Default)]
struct Phases(std::sync::Mutex<Vec<String>>);

impl parent_connection::sync::Progress for Phases {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn phase(&self, name: &str) {
        self.0.lock().unwrap().push(name.to_string());
    }
    fn finish(&self) {}
}

/// A diffed re-sync checks that the live rows it diffed against are still what is stored
/// before it applies; when no one committed anything meanwhile it knows so without reading
/// them a second time (`verifying`). A commit in between is covered by busy_writes.rs.
async fn a_resync_no_one_interrupted_reads_the_live_rows_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v21();
    let first = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(first.status, RunStatus::Applied, "{:#?}", first.errors);
    fixture.replace("users.csv", "linda.ng@example.com", "linda.new@example.com");
    let request = parent_connection::sync::ImportRequest {
        tenant: "demo".into(),
        format: SdsV21,
        dir: fixture.path().to_path_buf(),
        source: None,
        dry_run: false,
        force: false,
        actor: "test".into(),
        privacy: parent_connection::privacy::PrivacyKey::from_hex(PRIVACY_KEY).unwrap(),
    };
    let phases = std::sync::Arc::new(Phases::default());
    let report =
        parent_connection::sync::import(&db.conn, &config().import, &request, phases.clone())
            .await
            .expect("import ran");
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert!(report.diffed);
    assert_eq!(report.entities.contacts.updated, 1);
    let phases = phases.0.lock().unwrap().clone();
    assert_eq!(
        phases.iter().filter(|p| *p == "loading").count(),
        1,
        "{phases:?}"
    );
    assert!(!phases.iter().any(|p| p == "verifying"), "{phases:?}");
    assert!(phases.iter().any(|p| p == "applying"), "{phases:?}");
}
