//! The corpus of bad input (SPEC §3.2): each file ends in a clear error naming file, record
//! and column, never a panic, and the database is exactly as before. Harmless variants
//! (BOM, CRLF) are accepted.

use crate::db_tests;
use crate::support::*;
use parent_connection::sync::Format::SdsV21;
use parent_connection::sync::report::{ImportReport, RunStatus};

db_tests!(
    utf8_bom_is_accepted,
    crlf_line_endings_are_accepted,
    utf16_is_refused_with_the_file_name,
    invalid_utf8_names_record_and_column,
    a_nul_character_names_record_and_column,
    unterminated_quote_is_reported,
    line_break_in_a_field_is_reported,
    ragged_row_is_reported,
    duplicate_header_is_reported,
    duplicate_key_is_reported,
    missing_header_is_reported,
    headers_are_case_sensitive_in_v21,
    unknown_relationship_role_is_reported,
    dangling_relationship_is_reported,
    oversized_field_is_reported,
    oversized_record_is_reported,
    missing_required_file_is_reported,
    empty_file_is_reported,
    file_names_are_exact_in_v21,
    blank_required_value_is_reported,
    error_cap_stops_reading,
);

/// Imports the good set, then the bad variant made by `spoil`; checks the variant was
/// refused and changed nothing, and returns its report.
async fn refused(backend: Backend, spoil: impl FnOnce(&Fixture)) -> ImportReport {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    assert_eq!(
        db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
            .await
            .status,
        RunStatus::Applied
    );
    let before = db.fingerprint().await;
    let fixture = Fixture::v21();
    // A change that would be applied if the run were not refused.
    fixture.replace("users.csv", "tom.ng@example.com", "tom@changed.example");
    spoil(&fixture);
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Refused, "{:#?}", report.errors);
    assert!(!report.errors.is_empty());
    assert_eq!(
        db.fingerprint().await,
        before,
        "a refused run must leave the database as it was"
    );
    report
}

fn at(report: &ImportReport, code: &str) -> (String, Option<u64>, Option<String>) {
    let e = error(report, code);
    (e.file.clone(), e.record, e.column.clone())
}

fn loc(
    file: &str,
    record: Option<u64>,
    column: Option<&str>,
) -> (String, Option<u64>, Option<String>) {
    (file.to_string(), record, column.map(str::to_string))
}

fn read(fixture: &Fixture, file: &str) -> String {
    std::fs::read_to_string(fixture.path().join(file)).unwrap()
}

async fn utf8_bom_is_accepted(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    let fixture = Fixture::v21();
    for file in ["users.csv", "relationships.csv", "orgs.csv"] {
        let content = read(&fixture, file);
        fixture.write(
            file,
            [b"\xEF\xBB\xBF".as_slice(), content.as_bytes()].concat(),
        );
    }
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.contacts.created, 5);
}

async fn crlf_line_endings_are_accepted(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("demo").await;
    assert_eq!(
        db.import("demo", SdsV21, Fixture::v21().path(), APPLY)
            .await
            .status,
        RunStatus::Applied
    );
    let fixture = Fixture::v21();
    for file in [
        "orgs.csv",
        "users.csv",
        "roles.csv",
        "classes.csv",
        "enrollments.csv",
        "relationships.csv",
    ] {
        let content = read(&fixture, file);
        fixture.write(file, content.replace('\n', "\r\n"));
    }
    let report = db.import("demo", SdsV21, fixture.path(), APPLY).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.rows_written, 0, "CRLF files carry the same snapshot");
}

async fn utf16_is_refused_with_the_file_name(backend: Backend) {
    let report = refused(backend, |f| {
        let content = read(f, "users.csv");
        let mut bytes = vec![0xFF, 0xFE];
        for unit in content.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        f.write("users.csv", bytes);
    })
    .await;
    assert_eq!(at(&report, "not_utf8"), loc("users.csv", None, None));
    assert!(error(&report, "not_utf8").message.contains("UTF-16"));
}

async fn invalid_utf8_names_record_and_column(backend: Backend) {
    let report = refused(backend, |f| {
        let mut bytes = read(f, "users.csv").into_bytes();
        let at = bytes.windows(5).position(|w| w == b"Linda").unwrap();
        bytes[at + 1] = 0xFF;
        f.write("users.csv", bytes);
    })
    .await;
    assert_eq!(
        at(&report, "not_utf8"),
        loc("users.csv", Some(6), Some("givenName"))
    );
}

/// A NUL past the first bytes of a file (where the UTF-16 check looks) is a row error on
/// both engines (PostgreSQL cannot store it).
async fn a_nul_character_names_record_and_column(backend: Backend) {
    let report = refused(backend, |f| {
        let mut bytes = read(f, "users.csv").into_bytes();
        let at = bytes.windows(5).position(|w| w == b"Linda").unwrap();
        bytes[at + 2] = 0;
        f.write("users.csv", bytes);
    })
    .await;
    assert_eq!(
        at(&report, "nul_character"),
        loc("users.csv", Some(6), Some("givenName"))
    );
}

async fn unterminated_quote_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "relationships.csv",
            "stu-2,par-1,parent",
            "stu-2,\"par-1,parent",
        );
    })
    .await;
    let (file, record, _) = at(&report, "unterminated_quote");
    assert_eq!((file.as_str(), record), ("relationships.csv", Some(4)));
}

async fn line_break_in_a_field_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "users.csv",
            "par-1,linda,Linda,Ng",
            "par-1,linda,\"Lin\nda\",Ng",
        );
    })
    .await;
    assert_eq!(
        at(&report, "line_break_in_field"),
        loc("users.csv", Some(6), Some("givenName"))
    );
    assert!(report.errors.iter().all(|e| e.code != "unterminated_quote"));
}

async fn ragged_row_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "users.csv",
            "rel-1,gran,Grace,Ng,grace@example.com,,",
            "rel-1,gran,Grace",
        );
    })
    .await;
    assert_eq!(
        at(&report, "ragged_row"),
        loc("users.csv", Some(9), Some("familyName"))
    );
}

async fn duplicate_header_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "users.csv",
            "sourcedId,username,givenName,familyName",
            "sourcedId,username,givenName,givenName",
        );
    })
    .await;
    assert_eq!(
        at(&report, "duplicate_header"),
        loc("users.csv", Some(1), Some("givenName"))
    );
}

async fn duplicate_key_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.append("users.csv", "par-1,linda2,Linda,Ng,other@example.com,,");
    })
    .await;
    assert_eq!(
        at(&report, "duplicate_key"),
        loc("users.csv", Some(11), Some("sourcedId"))
    );
    assert!(
        error(&report, "duplicate_key")
            .message
            .contains("first at record 6")
    );
}

async fn missing_header_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        let content = read(f, "relationships.csv");
        let stripped: Vec<String> = content
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect();
        f.write("relationships.csv", stripped.join("\n") + "\n");
    })
    .await;
    assert_eq!(
        at(&report, "missing_header"),
        loc("relationships.csv", Some(1), Some("relationshipRole"))
    );
}

async fn headers_are_case_sensitive_in_v21(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace("users.csv", "sourcedId,username", "SourcedId,username");
    })
    .await;
    assert_eq!(
        at(&report, "missing_header"),
        loc("users.csv", Some(1), Some("sourcedId"))
    );
    assert!(
        error(&report, "missing_header")
            .message
            .contains("case-sensitive")
    );
}

async fn unknown_relationship_role_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "relationships.csv",
            "stu-1,doc-1,doctor",
            "stu-1,doc-1,uncle",
        );
    })
    .await;
    assert_eq!(
        at(&report, "invalid_value"),
        loc("relationships.csv", Some(6), Some("relationshipRole"))
    );
}

async fn dangling_relationship_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.append("relationships.csv", "stu-2,ghost-7,parent");
    })
    .await;
    assert_eq!(
        at(&report, "unknown_reference"),
        loc(
            "relationships.csv",
            Some(8),
            Some("relationshipUserSourcedId")
        )
    );
    assert!(
        error(&report, "unknown_reference")
            .message
            .contains("ghost-7")
    );
}

async fn oversized_field_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "users.csv",
            "Grace,Ng,grace",
            &format!("{},Ng,grace", "G".repeat(5000)),
        );
    })
    .await;
    assert_eq!(
        at(&report, "field_too_large"),
        loc("users.csv", Some(9), Some("givenName"))
    );
}

async fn oversized_record_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.replace(
            "users.csv",
            "Grace,Ng,grace",
            &format!("{},Ng,grace", "G".repeat(100_000)),
        );
    })
    .await;
    let (file, record, _) = at(&report, "record_too_large");
    assert_eq!((file.as_str(), record), ("users.csv", Some(9)));
}

async fn missing_required_file_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.delete("roles.csv");
    })
    .await;
    assert_eq!(at(&report, "missing_file"), loc("roles.csv", None, None));
}

async fn empty_file_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.write("orgs.csv", "");
    })
    .await;
    assert_eq!(at(&report, "empty_file"), loc("orgs.csv", None, None));
}

async fn file_names_are_exact_in_v21(backend: Backend) {
    let report = refused(backend, |f| {
        let content = read(f, "users.csv");
        f.delete("users.csv").write("Users.csv", content);
    })
    .await;
    assert_eq!(at(&report, "wrong_file_name").0, "Users.csv");
}

async fn blank_required_value_is_reported(backend: Backend) {
    let report = refused(backend, |f| {
        f.append("relationships.csv", ",par-1,parent");
    })
    .await;
    assert_eq!(
        at(&report, "missing_value"),
        loc("relationships.csv", Some(8), Some("userSourcedId"))
    );
}

async fn error_cap_stops_reading(backend: Backend) {
    let report = refused(backend, |f| {
        let mut content = read(f, "relationships.csv");
        for i in 0..1500 {
            content.push_str(&format!("stu-1,par-{i},cousin\n"));
        }
        f.write("relationships.csv", content);
    })
    .await;
    assert!(report.error_cap_reached);
    assert_eq!(report.errors.len(), config().import.error_cap);
}
