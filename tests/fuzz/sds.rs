//! The SDS v1 and v2.1 readers, whole file sets through the import entry
//! (`sync::import`, as the CLI and the upload route call it): a fixture set with one to
//! three files replaced by hostile CSV, mutated byte by byte, removed, or joined by a
//! stray file. Properties: the import runs (no panic, no internal error); a refused run has
//! errors and changed nothing; every issue has a stable code and names its file, with the
//! record (header = 1) and, for a value's problem, the column; bounded memory.

use crate::alloc::{Peak, exclusive};
use crate::budget::{self, Bound, Tally, is_code};
use crate::support::{self, Backend, Fixture, PRIVACY_KEY, TestDb};
use parent_connection::sync::report::{ImportReport, RunStatus};
use parent_connection::sync::{self, Format, ImportRequest, NoProgress};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

/// An import allocates at most this: the runtime's and the database driver's buffers plus
/// the staged rows, which grow with the input.
pub const BOUND: Bound = Bound {
    fixed: 24 << 20,
    per_input_byte: 64,
};

/// Codes of problems in one value: they must name the column.
const COLUMN_CODES: &[&str] = &[
    "missing_value",
    "invalid_value",
    "field_too_large",
    "nul_character",
    "duplicate_header",
    "missing_header",
];

/// One change to a fixture file set.
#[derive(Debug, Clone)]
pub enum Change {
    /// The file's content replaced by these bytes.
    Replace(Index, Vec<u8>),
    /// The file replaced by CSV built from hostile fields under its own header.
    Csv(Index, HostileCsv),
    /// Bytes of the file inserted, removed or overwritten.
    Mutate(Index, Vec<(Index, Edit)>),
    /// The file removed.
    Remove(Index),
    /// A file the format does not know, or a known name in another case.
    Stray(String, Vec<u8>),
}

/// A byte-level edit.
#[derive(Debug, Clone, Copy)]
pub enum Edit {
    Insert(u8),
    Delete,
    Overwrite(u8),
}

/// CSV under a (possibly damaged) copy of a file's header.
#[derive(Debug, Clone)]
pub struct HostileCsv {
    header: HeaderChange,
    rows: Vec<Vec<Vec<u8>>>,
    line_end: &'static str,
    bom: bool,
    quote: bool,
}

#[derive(Debug, Clone, Copy)]
enum HeaderChange {
    Same,
    DropOne(Index),
    DuplicateOne(Index),
    Uppercase,
    Extra,
    TenThousandColumns,
}

/// Bytes that make CSV hard: quotes, separators, line ends, NUL, byte-order marks, bytes
/// that are not UTF-8, and UTF-16 text.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces: &[&[u8]] = &[
        b"\"",
        b",",
        b"\r",
        b"\n",
        b"\0",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\xC3",
        b"\xFE\xFF",
        b"a",
        b" ",
        b"\"\"",
        b"\xE2\x80\xA8",
        b"\t",
        b";",
    ];
    proptest::collection::vec(proptest::sample::select(pieces), 0..24).prop_map(|p| p.concat())
}

/// A field: often a value of the fixture (so references resolve and rows get far), or a
/// role word, an email or phone-like text, hostile bytes, a field near the size limit.
fn field(pool: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let roles = &[
        "student",
        "teacher",
        "parent",
        "guardian",
        "relative",
        "Parent",
        "other",
        "aide",
        "doctor",
        "school",
        "district",
        "administrator",
        "",
        " ",
        "true",
        "0",
    ];
    prop_oneof![
        6 => proptest::sample::select(pool).prop_map(String::into_bytes),
        2 => proptest::sample::select(roles).prop_map(|r| r.as_bytes().to_vec()),
        2 => "[a-z.+]{0,12}@[a-z]{1,8}\\.[a-z]{2,3}".prop_map(String::into_bytes),
        1 => "[+]?[0-9 ()-]{0,16}".prop_map(String::into_bytes),
        3 => hostile_bytes(),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => (2040usize..2060).prop_map(|n| vec![b'x'; n]),
    ]
}

fn header_change() -> impl Strategy<Value = HeaderChange> {
    prop_oneof![
        6 => Just(HeaderChange::Same),
        1 => any::<Index>().prop_map(HeaderChange::DropOne),
        1 => any::<Index>().prop_map(HeaderChange::DuplicateOne),
        1 => Just(HeaderChange::Uppercase),
        1 => Just(HeaderChange::Extra),
        1 => Just(HeaderChange::TenThousandColumns),
    ]
}

fn hostile_csv(pool: Vec<String>) -> impl Strategy<Value = HostileCsv> {
    (
        header_change(),
        proptest::collection::vec(proptest::collection::vec(field(pool), 1..9), 0..8),
        proptest::sample::select(&["\n", "\r\n", "\r", "\n\n"][..]),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.3),
    )
        .prop_map(|(header, rows, line_end, bom, quote)| HostileCsv {
            header,
            rows,
            line_end,
            bom,
            quote,
        })
}

fn edit() -> impl Strategy<Value = Edit> {
    let special = proptest::sample::select(&[b'"', b',', b'\n', b'\r', 0, 0xFF, 0xEF][..]);
    prop_oneof![
        any::<u8>().prop_map(Edit::Insert),
        special.clone().prop_map(Edit::Insert),
        Just(Edit::Delete),
        special.prop_map(Edit::Overwrite),
    ]
}

/// One to three changes to a set of `format`.
pub fn changes(format: Format) -> impl Strategy<Value = Vec<Change>> {
    let pool = fixture_values(format);
    let stray_names = match format {
        Format::SdsV1 => &["USER.CSV", "notes.txt", "Guardians.csv", "user.csv.bak"][..],
        Format::SdsV21 => &["Users.csv", "notes.txt", "USERS.CSV", "orgs.csv.bak"][..],
    };
    let change = prop_oneof![
        2 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(i, b)| Change::Replace(i, b)),
        6 => (any::<Index>(), hostile_csv(pool)).prop_map(|(i, c)| Change::Csv(i, c)),
        4 => (any::<Index>(), proptest::collection::vec((any::<Index>(), edit()), 1..6)).prop_map(|(i, e)| Change::Mutate(i, e)),
        1 => any::<Index>().prop_map(Change::Remove),
        1 => (proptest::sample::select(stray_names), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(n, b)| Change::Stray(n.to_string(), b)),
    ];
    proptest::collection::vec(change, 1..4)
}

/// The fixture of `format`.
pub fn fixture(format: Format) -> Fixture {
    match format {
        Format::SdsV1 => Fixture::v1(),
        Format::SdsV21 => Fixture::v21(),
    }
}

/// Every value of the fixture's files (headers included).
fn fixture_values(format: Format) -> Vec<String> {
    let fixture = fixture(format);
    let mut values: Vec<String> = sorted_files(fixture.path())
        .iter()
        .flat_map(|name| {
            let text = std::fs::read_to_string(fixture.path().join(name)).unwrap();
            text.split(['\n', ','])
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    values.sort();
    values.dedup();
    values
}

/// The file names in `dir`, sorted.
pub fn sorted_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn build_csv(original: &str, csv: &HostileCsv) -> Vec<u8> {
    let mut header: Vec<String> = original
        .lines()
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    match csv.header {
        HeaderChange::Same => {}
        HeaderChange::DropOne(i) => {
            header.remove(i.index(header.len()));
        }
        HeaderChange::DuplicateOne(i) => header.push(header[i.index(header.len())].clone()),
        HeaderChange::Uppercase => header.iter_mut().for_each(|h| *h = h.to_uppercase()),
        HeaderChange::Extra => header.push("extraColumn".into()),
        HeaderChange::TenThousandColumns => header.extend((0..10_000).map(|i| format!("c{i}"))),
    }
    let mut out = Vec::new();
    if csv.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend_from_slice(header.join(",").as_bytes());
    for row in &csv.rows {
        out.extend_from_slice(csv.line_end.as_bytes());
        // Rows as wide as the header, give or take the generated fields.
        let mut fields: Vec<Vec<u8>> = row.clone();
        if fields.len() < header.len().min(12) {
            fields.resize(header.len().min(12), Vec::new());
        }
        for (i, value) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if csv.quote {
                out.push(b'"');
                for &b in value {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(value);
            }
        }
    }
    out.extend_from_slice(csv.line_end.as_bytes());
    out
}

/// Applies `changes` to the fixture copy in `dir`; returns the bytes of input.
pub fn apply(dir: &Path, changes: &[Change]) -> usize {
    for change in changes {
        let names = sorted_files(dir);
        let pick = |i: &Index| -> Option<std::path::PathBuf> {
            (!names.is_empty()).then(|| dir.join(&names[i.index(names.len())]))
        };
        match change {
            Change::Replace(i, bytes) => {
                if let Some(path) = pick(i) {
                    std::fs::write(path, bytes).unwrap();
                }
            }
            Change::Csv(i, csv) => {
                if let Some(path) = pick(i) {
                    let original = std::fs::read_to_string(&path).unwrap_or_default();
                    std::fs::write(path, build_csv(&original, csv)).unwrap();
                }
            }
            Change::Mutate(i, edits) => {
                if let Some(path) = pick(i) {
                    let mut bytes = std::fs::read(&path).unwrap();
                    for (at, edit) in edits {
                        let at = at.index(bytes.len() + 1);
                        match *edit {
                            Edit::Insert(b) => bytes.insert(at, b),
                            Edit::Delete if at < bytes.len() => {
                                bytes.remove(at);
                            }
                            Edit::Overwrite(b) if at < bytes.len() => bytes[at] = b,
                            _ => {}
                        }
                    }
                    std::fs::write(path, bytes).unwrap();
                }
            }
            Change::Remove(i) => {
                if let Some(path) = pick(i) {
                    std::fs::remove_file(path).unwrap();
                }
            }
            Change::Stray(name, bytes) => std::fs::write(dir.join(name), bytes).unwrap(),
        }
    }
    sorted_files(dir)
        .iter()
        .map(|n| {
            std::fs::metadata(dir.join(n))
                .map(|m| m.len() as usize)
                .unwrap_or(0)
        })
        .sum()
}

/// The checks every import report must pass: the status agrees with the errors, and every
/// issue has a stable code, a message, and names its file (and record and column where it
/// is about one).
pub fn check_report(report: &ImportReport, files: &[String]) -> Result<(), TestCaseError> {
    match report.status {
        RunStatus::Refused => prop_assert!(!report.errors.is_empty(), "refused without errors"),
        RunStatus::Applied | RunStatus::DryRun => {
            prop_assert!(report.errors.is_empty(), "{:?}", report.errors)
        }
        RunStatus::Failed => prop_assert!(false, "failed: {:?}", report.errors),
    }
    for issue in report.errors.iter().chain(&report.warnings) {
        prop_assert!(is_code(issue.code), "{issue:?}");
        prop_assert!(!issue.message.trim().is_empty(), "{issue:?}");
        let known = issue.file == "(file set)"
            || files.iter().any(|f| f == &issue.file)
            || format_files().any(|f| f == issue.file);
        prop_assert!(known, "the issue names no file of the set: {issue:?}");
        if let Some(record) = issue.record {
            prop_assert!(record >= 1, "{issue:?}");
        }
        if COLUMN_CODES.contains(&issue.code) {
            prop_assert!(issue.column.is_some(), "no column: {issue:?}");
        }
    }
    Ok(())
}

/// Every file name of both SDS formats.
fn format_files() -> impl Iterator<Item = &'static str> {
    [Format::SdsV1, Format::SdsV21]
        .into_iter()
        .flat_map(|format| format.files().iter().copied())
}

/// Runs the import entry on `dir` for tenant `t`.
pub async fn import(
    db: &TestDb,
    format: Format,
    dir: &Path,
    dry_run: bool,
) -> Result<ImportReport, sync::SyncError> {
    let request = ImportRequest {
        tenant: "t".into(),
        format,
        dir: dir.to_path_buf(),
        source: None,
        dry_run,
        force: false,
        actor: "fuzz".into(),
        privacy: parent_connection::privacy::PrivacyKey::from_hex(PRIVACY_KEY).unwrap(),
    };
    let config = support::config().import;
    sync::import(&db.conn, &config, &request, Arc::new(NoProgress)).await
}

/// One case: the fixture with `changes`, imported (dry run or not); checks the report,
/// that a refused run changed nothing, and the memory bound.
async fn case(
    db: &TestDb,
    format: Format,
    changes: &[Change],
    dry_run: bool,
    tally: &RefCell<Tally>,
) -> Result<(), TestCaseError> {
    let fixture = fixture(format);
    let size = apply(fixture.path(), changes);
    let files = sorted_files(fixture.path());
    let before = db.fingerprint().await;
    let peak = Peak::start();
    let report = import(db, format, fixture.path(), dry_run)
        .await
        .map_err(|e| TestCaseError::fail(format!("the import did not run: {e}")))?;
    let used = peak.above_start();
    check_report(&report, &files)?;
    if report.status != RunStatus::Applied {
        prop_assert_eq!(
            before,
            db.fingerprint().await,
            "a run that did not apply changed data"
        );
    }
    BOUND.check(used, size)?;
    let outcome = match report.errors.first() {
        Some(e) => e.code,
        None => report.status.as_str(),
    };
    Tally::see(tally, size, used, outcome);
    Ok(())
}

/// Runs the target for `format` on `backend` with `default` cases.
fn target(backend: Backend, format: Format, default: u32) {
    let _one = exclusive();
    if backend == Backend::Postgres && support::postgres_url().is_none() {
        return;
    }
    let runtime = budget::runtime();
    let db = runtime.block_on(async {
        let db = TestDb::new(backend).await;
        db.tenant("t").await;
        db
    });
    let tally = RefCell::new(Tally::default());
    budget::run(
        budget::runner(default),
        &(changes(format), proptest::bool::weighted(0.3)),
        |(changes, dry_run)| runtime.block_on(case(&db, format, &changes, dry_run, &tally)),
    );
    Tally::print(&tally, &format!("{} {backend:?}", format.as_str()));
    drop(db);
}

#[test]
fn sds_v1_file_sets_sqlite() {
    target(Backend::Sqlite, Format::SdsV1, 25);
}

#[test]
fn sds_v21_file_sets_sqlite() {
    target(Backend::Sqlite, Format::SdsV21, 25);
}

#[test]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
fn sds_v1_file_sets_postgres() {
    target(Backend::Postgres, Format::SdsV1, 5);
}

#[test]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
fn sds_v21_file_sets_postgres() {
    target(Backend::Postgres, Format::SdsV21, 5);
}
