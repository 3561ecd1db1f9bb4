//! SDS v1 imports: email-keyed contacts, case-insensitive names, roles.

use crate::db_tests;
use crate::support::*;
use parent_connection::contacts::{self, Scope};
use parent_connection::sync::Format::SdsV1;
use parent_connection::sync::report::RunStatus;

db_tests!(
    v1_set_imports_with_email_keys_and_roles,
    v1_file_names_and_headers_ignore_case,
    v1_roster_files_may_be_header_only,
    v1_user_file_needs_phone_and_sis_id_headers,
    v1_unknown_role_is_a_row_error,
    v1_relationship_to_unknown_user_is_an_error,
    v1_missing_roster_file_is_an_error,
);

async fn v1_set_imports_with_email_keys_and_roles(backend: Backend) {
    let db = TestDb::new(backend).await;
    let tenant = db.tenant("demo").await;
    let report = db.import("demo", SdsV1, Fixture::v1().path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(
        (
            report.entities.contacts.created,
            report.entities.links.created
        ),
        (3, 4)
    );
    // Guardianrelationship joins User.csv by email regardless of case.
    assert_eq!(
        db.link("ST1", "linda.ng@example.com").await,
        Some(("parent".into(), "active".into()))
    );
    // A blank role means "other".
    assert_eq!(
        db.link("ST2", "linda.ng@example.com").await,
        Some(("other".into(), "active".into()))
    );
    let teacher = contacts::for_student(&db.conn, tenant.id, "ST1", &Scope::Guardians)
        .await
        .unwrap();
    let mut names: Vec<String> = teacher.iter().map(|c| c.display_name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        vec!["Linda Ng", "Tom Ng"],
        "the aide is not shown to teachers"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM contacts WHERE source_id = 'G2'")
            .await,
        1
    );
    let again = db.import("demo", SdsV1, Fixture::v1().path(), APPLY).await;
    assert_eq!(again.rows_written, 0);
}

async fn v1_file_names_and_headers_ignore_case(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    let user = std::fs::read_to_string(fixture.path().join("User.csv")).unwrap();
    fixture.delete("User.csv").write(
        "user.CSV",
        user.replacen("Email,First Name", "EMAIL,first name", 1),
    );
    let relationships =
        std::fs::read_to_string(fixture.path().join("Guardianrelationship.csv")).unwrap();
    fixture
        .delete("Guardianrelationship.csv")
        .write("guardianrelationship.csv", relationships);
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.contacts.created, 3);
}

async fn v1_roster_files_may_be_header_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    fixture
        .write("Section.csv", "SIS ID,School SIS ID,Section Name\n")
        .write("StudentEnrollment.csv", "Section SIS ID,SIS ID\n")
        .write("TeacherRoster.csv", "Section SIS ID,SIS ID\n")
        .write("Teacher.csv", "SIS ID,School SIS ID,Username\n");
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.classes.created, 0);
    assert_eq!(report.entities.links.created, 4);
}

async fn v1_user_file_needs_phone_and_sis_id_headers(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    fixture.write(
        "User.csv",
        "Email,First Name,Last Name\nlinda.ng@example.com,Linda,Ng\n",
    );
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused);
    let missing: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.code == "missing_header")
        .map(|e| e.column.clone().unwrap())
        .collect();
    assert_eq!(missing, vec!["Phone", "SIS ID"]);
    assert!(report.errors.iter().all(|e| e.file == "User.csv"));
}

async fn v1_unknown_role_is_a_row_error(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    fixture.append("Guardianrelationship.csv", "ST2,tom.ng@example.com,Uncle");
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused);
    let issue = error(&report, "invalid_value");
    assert_eq!(
        (issue.file.as_str(), issue.record, issue.column.as_deref()),
        ("Guardianrelationship.csv", Some(6), Some("Role"))
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM contacts").await, 0);
}

async fn v1_relationship_to_unknown_user_is_an_error(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    fixture.append("Guardianrelationship.csv", "ST2,nobody@example.com,Parent");
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    let issue = error(&report, "unknown_reference");
    assert_eq!(
        (issue.file.as_str(), issue.record, issue.column.as_deref()),
        ("Guardianrelationship.csv", Some(6), Some("Email"))
    );
}

async fn v1_missing_roster_file_is_an_error(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v1();
    fixture.delete("TeacherRoster.csv");
    let report = db.import("demo", SdsV1, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused);
    assert_eq!(error(&report, "missing_file").file, "TeacherRoster.csv");
}
