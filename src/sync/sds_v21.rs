//! SDS v2.1 CSV: `orgs.csv`, `users.csv`, `roles.csv` required; `classes.csv` and
//! `enrollments.csv` together; `relationships.csv` carries the contacts. File names exact,
//! headers case-sensitive. Users are split into students / staff / contacts later, in SQL,
//! from `roles.csv` and `relationships.csv`.

use super::csv_file::FileSpec;
use super::files::{Channels, ParseCtx, copy_columns};
use super::staging::StageTable;
use crate::domain::Relationship;

/// Every file name of the format, in reading order.
pub const FILES: &[&str] = &[
    "orgs.csv",
    "users.csv",
    "roles.csv",
    "classes.csv",
    "enrollments.csv",
    "relationships.csv",
    "academicSessions.csv",
    "courses.csv",
    "demographics.csv",
    "userFlags.csv",
];

/// Files that must be present.
pub const REQUIRED: &[&str] = &["orgs.csv", "users.csv", "roles.csv"];

const fn spec(required: &'static [&'static str], optional: &'static [&'static str]) -> FileSpec {
    FileSpec {
        required,
        optional,
        case_insensitive: false,
    }
}

/// Relationship roles accepted in `relationships.csv`.
const RELATIONSHIP_ROLES: [Relationship; 6] = [
    Relationship::Parent,
    Relationship::Guardian,
    Relationship::Relative,
    Relationship::Aide,
    Relationship::Doctor,
    Relationship::Other,
];

/// Parses every present file of the set into staging.
pub fn parse(ctx: &mut ParseCtx<'_>) {
    let region = ctx.region;
    ctx.read(
        "orgs.csv",
        spec(&["sourcedId", "name", "type"], &["parentSourcedId"]),
        StageTable::Schools,
        copy_columns(StageTable::Schools, &["sourcedId"], &["sourcedId", "name"]),
    );
    ctx.read(
        "roles.csv",
        spec(
            &["userSourcedId", "orgSourcedId", "role"],
            &[
                "sessionSourcedId",
                "grade",
                "isPrimary",
                "roleStartDate",
                "roleEndDate",
            ],
        ),
        StageTable::Roles,
        |src, row, sink, stage| {
            if !row.require(&["userSourcedId", "orgSourcedId", "role"], sink) {
                return false;
            }
            let role = row.get("role").to_ascii_lowercase();
            stage.push(
                StageTable::Roles,
                src,
                row.record,
                vec![
                    row.opt("userSourcedId"),
                    row.opt("orgSourcedId"),
                    Some(role),
                ],
            );
            true
        },
    );
    ctx.read(
        "users.csv",
        spec(
            &["sourcedId", "username"],
            &[
                "givenName",
                "familyName",
                "email",
                "phone",
                "sms",
                "middleName",
                "activeDirectoryMatchId",
            ],
        ),
        StageTable::Users,
        |src, row, sink, stage| {
            if !row.require(&["sourcedId"], sink) {
                return false;
            }
            let channels = Channels::read(row, "email", &["sms", "phone"], region);
            stage.push(
                StageTable::Users,
                src,
                row.record,
                vec![
                    row.opt("sourcedId"),
                    row.opt("givenName"),
                    row.opt("familyName"),
                    channels.email,
                    channels.phone,
                    channels.email_warning,
                    channels.phone_column,
                    channels.phone_warning,
                ],
            );
            true
        },
    );
    ctx.read(
        "classes.csv",
        spec(
            &["sourcedId", "orgSourcedId", "title"],
            &["courseSourcedId", "sessionSourcedIds"],
        ),
        StageTable::Classes,
        copy_columns(
            StageTable::Classes,
            &["sourcedId", "orgSourcedId"],
            &["sourcedId", "orgSourcedId", "title"],
        ),
    );
    ctx.read(
        "enrollments.csv",
        spec(&["classSourcedId", "userSourcedId", "role"], &[]),
        StageTable::Enrollments,
        |src, row, sink, stage| {
            if !row.require(&["classSourcedId", "userSourcedId"], sink) {
                return false;
            }
            let role = row.get("role").to_ascii_lowercase();
            if role != "student" && role != "teacher" {
                sink.error(row.issue(
                    "role",
                    "invalid_value",
                    format!(
                        "'{}' is not an enrollment role; expected student or teacher",
                        row.get("role")
                    ),
                ));
                return false;
            }
            stage.push(
                StageTable::Enrollments,
                src,
                row.record,
                vec![
                    row.opt("classSourcedId"),
                    row.opt("userSourcedId"),
                    Some(role),
                ],
            );
            true
        },
    );
    ctx.read(
        "relationships.csv",
        spec(
            &[
                "userSourcedId",
                "relationshipUserSourcedId",
                "relationshipRole",
            ],
            &[],
        ),
        StageTable::Links,
        |src, row, sink, stage| {
            if !row.require(&["userSourcedId", "relationshipUserSourcedId"], sink) {
                return false;
            }
            let raw = row.get("relationshipRole");
            let relationship = Relationship::parse(raw)
                .ok()
                .filter(|r| RELATIONSHIP_ROLES.contains(r));
            let Some(relationship) = relationship else {
                let valid = RELATIONSHIP_ROLES.map(|r| r.as_str()).join(", ");
                sink.error(row.issue(
                    "relationshipRole",
                    "invalid_value",
                    format!("'{raw}' is not a relationship role; expected one of {valid}"),
                ));
                return false;
            };
            stage.push(
                StageTable::Links,
                src,
                row.record,
                vec![
                    row.opt("userSourcedId"),
                    row.opt("relationshipUserSourcedId"),
                    Some(relationship.as_str().to_string()),
                ],
            );
            true
        },
    );
    // Read for well-formedness only: nothing in them is stored yet.
    for (file, key) in [
        ("academicSessions.csv", "sourcedId"),
        ("courses.csv", "sourcedId"),
        ("demographics.csv", "userSourcedId"),
        ("userFlags.csv", "userSourcedId"),
    ] {
        let columns: &'static [&'static str] = match key {
            "sourcedId" => &["sourcedId"],
            _ => &["userSourcedId"],
        };
        ctx.read(
            file,
            spec(columns, &[]),
            StageTable::Users,
            |_, row, sink, _| row.require(&[key], sink),
        );
    }
}

/// Whole-set problems found before parsing (missing files, files that only make sense
/// together).
pub fn check_set(files: &super::files::FileSet, sink: &mut super::csv_file::IssueSink) {
    files.require(REQUIRED, "an SDS v2.1 file set", sink);
    files.require_together("classes.csv", "enrollments.csv", sink);
}
