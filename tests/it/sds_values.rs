//! SDS's documented value lists (docs/sync.md): every role, organization type and academic
//! session type SDS documents imports, in any case; an enrollment in a Staff-group role
//! makes the person staff of the class for every "teacher of the class" rule; a value
//! outside the lists is a row error naming file, record, column and the accepted values.
//! The file set is `tests/fixtures/sds-v21/all-values`, shaped like Microsoft's sample.

use crate::api_support::*;
use crate::approvals::{contact_id, post};
use crate::db_tests;
use crate::support::*;
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;
use parent_connection::domain::SdsRole;
use parent_connection::sync::Format::SdsV21;
use parent_connection::sync::report::{ImportReport, RunStatus};
use serde_json::json;

db_tests!(
    every_documented_value_imports_and_again_writes_nothing,
    staff_roles_are_staff_of_their_classes,
    a_value_outside_the_lists_is_a_row_error,
    contact_roles_in_roles_csv_grant_nothing,
);

fn all_values() -> Fixture {
    Fixture::copy("sds-v21/all-values")
}

/// The staff user of the fixture holding `role`.
fn staff_id(role: SdsRole) -> String {
    format!("stf-{}", role.as_str().to_ascii_lowercase())
}

async fn every_documented_value_imports_and_again_writes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let first = db.import("demo", SdsV21, all_values().path(), APPLY).await;
    assert_eq!(first.status, RunStatus::Applied, "{:#?}", first.errors);
    assert!(first.errors.is_empty());
    let e = &first.entities;
    assert_eq!(
        (
            e.schools.created,
            e.students.created,
            e.staff.created,
            e.classes.created,
            e.enrollments.created,
            e.contacts.created,
            e.links.created,
        ),
        (20, 3, 30, 3, 36, 5, 5),
        "every org type is an org; every Staff-group role is staff; the `other` user and \
         their enrollment are neither"
    );
    // The only warning: the enrollment of the `other` user, which is not stored.
    let warnings: Vec<String> = first.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        vec![
            "enrollments.csv, record 38, column 'role': 'other' is neither a student nor a staff role: the enrollment was skipped [enrollment_skipped]"
        ]
    );

    // Staff keep their role as SDS writes it, whatever case the file used.
    let staff = db
        .texts(
            "SELECT source_id || ' ' || role FROM staff ORDER BY source_id",
            vec![],
        )
        .await;
    let mut expected: Vec<String> = SdsRole::ALL
        .iter()
        .filter(|r| !matches!(r, SdsRole::Student | SdsRole::Other))
        .map(|r| format!("{} {}", staff_id(*r), r.as_str()))
        .collect();
    expected.sort();
    assert_eq!(staff, expected);
    assert!(staff.contains(&"stf-occupationaltherapist occupationalTherapist".to_string()));
    assert_eq!(
        db.count("SELECT COUNT(*) FROM students WHERE source_id = 'oth-1'")
            .await,
        0
    );
    // Every staff enrollment, professor, aid or nurse, is stored as the class's teacher.
    let enrolled = db
        .texts(
            "SELECT c.source_id || ' ' || f.source_id || ' ' || e.role FROM enrollments e \
             JOIN classes c ON c.id = e.class_id JOIN staff f ON f.id = e.person_id \
             WHERE e.role = 'teacher' AND e.status = 'active' ORDER BY 1",
            vec![],
        )
        .await;
    assert_eq!(enrolled.len(), 31, "{enrolled:#?}");
    for row in [
        "cls-bio stf-professor teacher",
        "cls-bio stf-teacher teacher",
        "cls-alg stf-aide teacher",
        "cls-adv stf-aid teacher",
        "cls-adv stf-nurse teacher",
    ] {
        assert!(
            enrolled.contains(&row.to_string()),
            "{row} in {enrolled:#?}"
        );
    }

    let before = db.fingerprint().await;
    let again = db.import("demo", SdsV21, all_values().path(), APPLY).await;
    assert_eq!(again.status, RunStatus::Applied, "{:#?}", again.errors);
    assert!(again.diffed, "a clean set takes the diffed path");
    assert_eq!(again.rows_written, 0, "{:#?}", again.entities);
    assert_eq!(again.warnings, first.warnings);
    assert_eq!(db.fingerprint().await, before);
}

/// `method path` with a JSON body.
async fn send_json(
    api: &Api,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> Reply {
    api.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

fn names(reply: &Reply) -> Vec<String> {
    let mut names: Vec<String> = reply.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["displayName"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

async fn staff_roles_are_staff_of_their_classes(backend: Backend) {
    let api = Api::new(backend).await;
    api.db.tenant("sds").await;
    let report = api
        .db
        .import("sds", SdsV21, all_values().path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:#?}", report.errors);
    let token = |role: SdsRole| api.user("sds", &staff_id(role), &[Role::Teacher]);
    let contacts = |student: &str| format!("/api/v1/students/{student}/contacts");

    // The professor of Biology (with stu-1 and stu-2) sees their parents and guardians, as
    // its TEACHER does; not stu-3, who is not in the class.
    for role in [SdsRole::Professor, SdsRole::Teacher] {
        let reply = api.get(&contacts("stu-1"), Some(&token(role))).await;
        assert_eq!(names(&reply), vec!["Linda Ng", "Tom Ng"], "{role}");
    }
    let outside = api
        .get(&contacts("stu-3"), Some(&token(SdsRole::Professor)))
        .await;
    assert_eq!(outside.error(404), "not_found");
    // The aide of Algebra reaches stu-3; the Advisory's aid, nurse and occupational
    // therapist reach stu-2 only.
    let reply = api
        .get(&contacts("stu-3"), Some(&token(SdsRole::Aide)))
        .await;
    assert_eq!(names(&reply), vec!["Rosa Ortiz"]);
    for role in [
        SdsRole::Aid,
        SdsRole::Nurse,
        SdsRole::OccupationalTherapist,
        SdsRole::Alumni,
    ] {
        let reply = api.get(&contacts("stu-2"), Some(&token(role))).await;
        assert_eq!(names(&reply), vec!["Ngozi Okafor"], "{role}");
        let reply = api.get(&contacts("stu-1"), Some(&token(role))).await;
        assert_eq!(reply.error(404), "not_found", "{role}");
    }
    // `other` grants nothing: the enrollment was skipped.
    let other = api.user("sds", "oth-1", &[Role::Teacher]);
    assert_eq!(
        api.get(&contacts("stu-2"), Some(&other)).await.error(404),
        "not_found"
    );

    // The professor starts a chat with a guardian of their student.
    let par1 = contact_id(&api, "sds", "par-1").await;
    let chat = post(
        &api,
        "/api/v1/chats",
        &token(SdsRole::Professor),
        Some(json!({"studentId": "stu-1", "contactIds": [par1]})),
        &[],
    )
    .await;
    assert_eq!(chat.status, 201, "{}", chat.body);
    assert_eq!(chat.body["ownerId"], "stf-professor");
    // The aid proposes an edit for their student and blocks a guardian.
    let par4 = contact_id(&api, "sds", "par-4").await;
    let aid = token(SdsRole::Aid);
    let edit = post(
        &api,
        "/api/v1/students/stu-2/contact-requests",
        &aid,
        Some(json!({"action": "update", "contactId": par4,
                    "contact": {"emailAddress": "ngozi@new.example"}})),
        &[],
    )
    .await;
    assert_eq!(edit.status, 201, "{}", edit.body);
    assert_eq!(edit.body["status"], "pending");
    let block = post(
        &api,
        "/api/v1/blocks",
        &aid,
        Some(json!({"contactId": par4})),
        &[],
    )
    .await;
    assert_eq!(block.status, 201, "{}", block.body);
    // The nurse posts an assignment to the Advisory and switches its digest off; the
    // professor, who does not teach it, can do neither.
    let nurse = token(SdsRole::Nurse);
    let homework = json!({"externalId": "adv-1", "title": "Wellness check-in",
                          "dueAt": "2026-11-24T23:59:00-05:00"});
    let created = post(
        &api,
        "/api/v1/classes/cls-adv/assignments",
        &nurse,
        Some(homework.clone()),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let digest = send_json(
        &api,
        "PATCH",
        "/api/v1/classes/cls-adv/digest",
        &nurse,
        json!({"notifyGuardians": false}),
    )
    .await;
    assert_eq!(digest.ok()["notifyGuardians"], false);
    let professor = token(SdsRole::Professor);
    let refused = post(
        &api,
        "/api/v1/classes/cls-adv/assignments",
        &professor,
        Some(homework),
        &[],
    )
    .await;
    assert_eq!(refused.error(404), "not_found");
    let refused = send_json(
        &api,
        "PATCH",
        "/api/v1/classes/cls-adv/digest",
        &professor,
        json!({"notifyGuardians": true}),
    )
    .await;
    assert_eq!(refused.error(404), "not_found");
}

/// Imports `fixture`, which must be refused with nothing applied; returns the report (the
/// callers check its errors).
async fn refused(backend: Backend, fixture: &Fixture) -> ImportReport {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM schools").await,
        0,
        "nothing applied"
    );
    report
}

async fn a_value_outside_the_lists_is_a_row_error(backend: Backend) {
    let role_list = SdsRole::accepted();
    let cases = [
        (
            "enrollments.csv",
            "cls-bio,stf-professor,Professor",
            "cls-bio,stf-professor,wizard",
            4,
            "role",
            format!("'wizard' is not an enrollment role; expected one of {role_list} (any case)"),
        ),
        (
            "roles.csv",
            "stf-chair,sch-1,chair,",
            "stf-chair,sch-1,wizard,",
            3,
            "role",
            format!(
                "'wizard' is not a role; expected one of {role_list}, or for a contact parent, guardian, relative (any case)"
            ),
        ),
        (
            "orgs.csv",
            "Science Department,department,",
            "Science Department,castle,",
            5,
            "type",
            "'castle' is not an organization type; expected one of school, ministryOfEducation, localAuthority, department, university, region, district, college, division, local, campus, province, state, adultEducation, researchCenter, national, municipality, program, departmentOfEducation, academicTrust (any case)".to_string(),
        ),
        (
            "academicSessions.csv",
            "Trimester 1,Term,",
            "Trimester 1,quarter,",
            5,
            "type",
            "'quarter' is not an academic session type; expected one of gradingPeriod, semester, schoolYear, term (any case)".to_string(),
        ),
    ];
    for (file, from, to, record, column, message) in cases {
        let fixture = all_values();
        fixture.replace(file, from, to);
        let report = refused(backend, &fixture).await;
        assert_eq!(report.errors.len(), 1, "{file}: {:#?}", report.errors);
        let error = &report.errors[0];
        assert_eq!(
            (
                error.file.as_str(),
                error.record,
                error.column.as_deref(),
                error.code
            ),
            (file, Some(record), Some(column), "invalid_value")
        );
        assert_eq!(error.message, message);
        assert!(
            message.contains("professor") || column == "type",
            "the accepted values are listed"
        );
    }
    // A blank role is a missing value.
    let fixture = all_values();
    fixture.replace(
        "enrollments.csv",
        "cls-bio,stf-professor,Professor",
        "cls-bio,stf-professor,",
    );
    let report = refused(backend, &fixture).await;
    assert_eq!(report.errors[0].code, "missing_value");
    assert_eq!(report.errors[0].column.as_deref(), Some("role"));
}

/// `parent`, `guardian` and `relative` in `roles.csv` (OneRoster's contact roles) are still
/// accepted and make the user neither student nor staff, as `other` does.
async fn contact_roles_in_roles_csv_grant_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v21();
    fixture
        .append("roles.csv", "par-1,sch-1,Parent")
        .append("roles.csv", "par-2,sch-1,GUARDIAN")
        .append("roles.csv", "rel-1,sch-1,other");
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(
        (
            report.entities.students.created,
            report.entities.staff.created,
            report.entities.contacts.created
        ),
        (3, 1, 5)
    );
    assert_eq!(
        db.texts("SELECT source_id FROM staff", vec![]).await,
        vec!["tch-1"]
    );
}
