//! SDS v2.1 CSV: `orgs.csv`, `users.csv`, `roles.csv` required; `classes.csv` and
//! `enrollments.csv` together; `relationships.csv` carries the contacts. File names exact,
//! headers case-sensitive. Users are split into students / staff / contacts later, in SQL,
//! from `roles.csv` and `relationships.csv`.

use super::csv_file::FileSpec;
use super::files::{Channels, ParseCtx};
use super::report::Issue;
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
        |src, row, sink, stage| {
            if !required(row, "sourcedId", sink) {
                return false;
            }
            stage.push(
                StageTable::Schools,
                src,
                row.record,
                vec![row.opt("sourcedId"), row.opt("name")],
            );
            true
        },
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
            if !(required(row, "userSourcedId", sink)
                & required(row, "orgSourcedId", sink)
                & required(row, "role", sink))
            {
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
            if !required(row, "sourcedId", sink) {
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
        |src, row, sink, stage| {
            if !(required(row, "sourcedId", sink) & required(row, "orgSourcedId", sink)) {
                return false;
            }
            stage.push(
                StageTable::Classes,
                src,
                row.record,
                vec![
                    row.opt("sourcedId"),
                    row.opt("orgSourcedId"),
                    row.opt("title"),
                ],
            );
            true
        },
    );
    ctx.read(
        "enrollments.csv",
        spec(&["classSourcedId", "userSourcedId", "role"], &[]),
        StageTable::Enrollments,
        |src, row, sink, stage| {
            if !(required(row, "classSourcedId", sink) & required(row, "userSourcedId", sink)) {
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
            if !(required(row, "userSourcedId", sink)
                & required(row, "relationshipUserSourcedId", sink))
            {
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
            |_, row, sink, _| required(row, key, sink),
        );
    }
}

/// Reports a blank required value; true when present.
pub fn required(
    row: &super::csv_file::Row<'_>,
    column: &str,
    sink: &mut super::csv_file::IssueSink,
) -> bool {
    if row.get(column).is_empty() {
        sink.error(row.issue(
            column,
            "missing_value",
            format!("'{column}' is required and is blank"),
        ));
        false
    } else {
        true
    }
}

/// Whole-set problems found before parsing (missing files, files that only make sense
/// together).
pub fn check_set(files: &super::files::FileSet, sink: &mut super::csv_file::IssueSink) {
    for name in REQUIRED {
        if !files.has(name) {
            sink.error(Issue::file(
                name,
                "missing_file",
                format!("{name} is required in an SDS v2.1 file set"),
            ));
        }
    }
    if files.has("classes.csv") != files.has("enrollments.csv") {
        let (present, missing) = if files.has("classes.csv") {
            ("classes.csv", "enrollments.csv")
        } else {
            ("enrollments.csv", "classes.csv")
        };
        sink.error(Issue::file(
            missing,
            "missing_file",
            format!("{present} is present, so {missing} is required too"),
        ));
    }
}
