//! Replays the checked-in hostile corpus (`tests/corpus/hostile/`, made by
//! `tests/corpus/make_hostile.py`) through the same checks as the generated cases:
//!
//! - `sds-v1/<case>/`, `sds-v21/<case>/`: files put over the fixture set, then imported;
//! - `zip/*.zip`: uploaded as the import's one zip;
//! - `multipart/*.txt`: sent as the body of `POST /api/v1/imports`;
//! - `json/*.json`: sent to every JSON route;
//! - `oneroster/*.json`: served as the first page of every collection of a sync;
//! - `phone/values.json`, `email/values.json`: parsed (in every region, for phones).
//!
//! Some cases also name the error they must produce ([`EXPECTED`]).

use crate::alloc::{Peak, exclusive};
use crate::api_json::{self, ROUTES, check_reply};
use crate::api_support::{Api, multipart};
use crate::budget::{self, Tally};
use crate::oneroster::{self, Pages};
use crate::sds;
use crate::support::{self, Backend, TestDb};
use crate::text;
use crate::uploads::{self, BOUNDARY};
use parent_connection::domain::Region;
use parent_connection::sync::Format;
use parent_connection::sync::report::RunStatus;
use proptest::test_runner::TestCaseError;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// Cases that must be refused with this error (`target/case`, code).
const EXPECTED: &[(&str, &str)] = &[
    ("sds-v21/unbalanced_quote", "unterminated_quote"),
    ("sds-v21/nul_bytes", "nul_character"),
    ("sds-v21/utf16le_with_bom", "not_utf8"),
    ("sds-v21/utf16le_without_bom", "not_utf8"),
    ("sds-v21/invalid_utf8", "not_utf8"),
    ("sds-v21/field_over_max_field_bytes", "field_too_large"),
    ("sds-v21/line_over_max_record_bytes", "record_too_large"),
    ("sds-v21/empty", "empty_file"),
    ("sds-v21/duplicate_headers", "duplicate_header"),
    ("sds-v21/wrong_case_file_name", "wrong_file_name"),
    ("sds-v1/unbalanced_quote", "unterminated_quote"),
    ("sds-v1/nul_bytes", "nul_character"),
    ("sds-v1/utf16be_with_bom", "not_utf8"),
    ("sds-v1/field_over_max_field_bytes", "field_too_large"),
    ("sds-v1/line_over_max_record_bytes", "record_too_large"),
    ("zip/bomb_ratio", "payload_too_large"),
    ("zip/overlapping_entries", "payload_too_large"),
    ("zip/path_traversal", "invalid_zip"),
    ("zip/thousand_empty_entries", "too_many_files"),
    ("zip/truncated", "invalid_zip"),
    ("multipart/forty_files", "too_many_files"),
    ("multipart/same_file_twice", "duplicate_file"),
    ("multipart/unknown_field", "invalid_field"),
    ("multipart/path_traversal_file_name", "import_refused"),
    ("oneroster/not_json", "provider_malformed"),
    ("oneroster/missing_sourced_id", "invalid_record"),
    ("oneroster/nul_in_values", "invalid_record"),
    ("json/deep_arrays", "invalid_body"),
    ("json/lone_surrogate", "invalid_body"),
    ("json/nul_escape", "invalid_body"),
];

/// The corpus folder of `target`.
pub fn folder(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/hostile")
        .join(target)
}

/// The entries of a corpus folder, sorted.
pub fn entries(target: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(folder(target))
        .unwrap_or_else(|e| panic!("corpus {target}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "corpus {target} is empty");
    paths
}

fn case_name(target: &str, path: &Path) -> String {
    let stem = path.file_stem().unwrap().to_string_lossy();
    format!("{target}/{stem}")
}

/// Fails with the case's name when a check failed, or when the case has an expected code
/// that did not come.
fn verdict(name: &str, result: Result<(), TestCaseError>, codes: &[&str]) {
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    if let Some((_, expected)) = EXPECTED.iter().find(|(case, _)| *case == name) {
        assert!(
            codes.contains(expected),
            "{name}: expected {expected}, got {codes:?}"
        );
    }
}

async fn sds_case(db: &TestDb, format: Format, target: &str, case: &Path, tally: &RefCell<Tally>) {
    let name = case_name(target, case);
    let fixture = sds::fixture(format);
    for entry in std::fs::read_dir(case).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().to_string_lossy().into_owned();
        // A case's file replaces the fixture's file of that name in any case.
        for existing in sds::sorted_files(fixture.path()) {
            if existing.eq_ignore_ascii_case(&file) {
                std::fs::remove_file(fixture.path().join(existing)).unwrap();
            }
        }
        std::fs::copy(entry.path(), fixture.path().join(&file)).unwrap();
    }
    let files = sds::sorted_files(fixture.path());
    let size: usize = files
        .iter()
        .map(|f| std::fs::metadata(fixture.path().join(f)).unwrap().len() as usize)
        .sum();
    let before = db.fingerprint().await;
    let peak = Peak::start();
    let report = sds::import(db, format, fixture.path(), false)
        .await
        .unwrap_or_else(|e| panic!("{name}: the import did not run: {e}"));
    let used = peak.above_start();
    let mut result = sds::check_report(&report, &files);
    if result.is_ok() && report.status != RunStatus::Applied && before != db.fingerprint().await {
        result = Err(TestCaseError::fail("a run that did not apply changed data"));
    }
    let result = result.and_then(|()| sds::BOUND.check(used, size));
    let codes: Vec<&str> = report.errors.iter().map(|e| e.code).collect();
    verdict(&name, result, &codes);
    Tally::see(
        tally,
        size,
        used,
        codes.first().copied().unwrap_or(report.status.as_str()),
    );
}

async fn upload_case(
    api: &Api,
    name: &str,
    content_type: &str,
    body: Vec<u8>,
    tally: &RefCell<Tally>,
) {
    let size = body.len();
    let peak = Peak::start();
    let reply = uploads::post(api, content_type, body, true).await;
    let used = peak.above_start();
    let result = check_reply(&reply, name).and_then(|()| uploads::BOUND.check(used, size));
    let code = reply.body["error"]["code"]
        .as_str()
        .unwrap_or("ok")
        .to_string();
    verdict(name, result, &[code.as_str()]);
    Tally::see(tally, size, used, &code);
}

async fn json_case(api: &Api, path: &Path, tally: &RefCell<Tally>) {
    let name = case_name("json", path);
    let body = std::fs::read(path).unwrap();
    let mut codes = Vec::new();
    for route in ROUTES {
        let peak = Peak::start();
        let reply = api_json::call(api, route, body.clone(), "application/json").await;
        let used = peak.above_start();
        let what = format!("{name} to {} {}", route.method, route.uri);
        let result =
            check_reply(&reply, &what).and_then(|()| api_json::BOUND.check(used, body.len()));
        if let Err(e) = result {
            panic!("{what}: {e}");
        }
        let code = reply.body["error"]["code"]
            .as_str()
            .unwrap_or("ok")
            .to_string();
        Tally::see(tally, body.len(), used, &code);
        codes.push(code);
    }
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    verdict(&name, Ok(()), &codes);
}

/// Whether case `name` is replayed on `backend`: every case on SQLite; on PostgreSQL, whose
/// imports cost several times more, the cases with an expected code (and every JSON body,
/// which are cheap), unless `FUZZ_CORPUS=all`. The readers do not depend on the engine; the
/// staging and the run record do, and the sample covers them.
fn replayed(backend: Backend, name: &str) -> bool {
    backend == Backend::Sqlite
        || name.starts_with("json/")
        || EXPECTED.iter().any(|(case, _)| *case == name)
        || std::env::var("FUZZ_CORPUS").is_ok_and(|v| v == "all")
}

/// Replays every target of the corpus on `backend`.
fn replay(backend: Backend) {
    let _one = exclusive();
    if backend == Backend::Postgres && support::postgres_url().is_none() {
        return;
    }
    let runtime = budget::runtime();
    let tally = RefCell::new(Tally::default());
    let started = std::time::Instant::now();
    let lap = |what: &str| println!("corpus {backend:?}: {what} done at {:?}", started.elapsed());
    runtime.block_on(async {
        let db = TestDb::new(backend).await;
        db.tenant("t").await;
        for (format, target) in [(Format::SdsV1, "sds-v1"), (Format::SdsV21, "sds-v21")] {
            for case in entries(target) {
                if replayed(backend, &case_name(target, &case)) {
                    sds_case(&db, format, target, &case, &tally).await;
                }
            }
        }
        drop(db);
        lap("sds");
        let api = Api::new(backend).await;
        for path in entries("zip") {
            if !replayed(backend, &case_name("zip", &path)) {
                continue;
            }
            let archive = std::fs::read(&path).unwrap();
            let (content_type, body) = multipart(&[
                ("format", None, b"sds-v2.1"),
                ("file", Some("set.zip"), archive.as_slice()),
            ]);
            upload_case(&api, &case_name("zip", &path), &content_type, body, &tally).await;
        }
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        for path in entries("multipart") {
            if !replayed(backend, &case_name("multipart", &path)) {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            upload_case(
                &api,
                &case_name("multipart", &path),
                &content_type,
                body,
                &tally,
            )
            .await;
        }
        lap("uploads");
        for path in entries("json") {
            json_case(&api, &path, &tally).await;
        }
        lap("json");
        drop(api);
        let (db, served, task) = oneroster::setup(backend).await;
        for path in entries("oneroster") {
            if !replayed(backend, &case_name("oneroster", &path)) {
                continue;
            }
            let page = std::fs::read(&path).unwrap();
            let pages = [0, 1, 2, 3].map(|_| Pages::Raw(page.clone()));
            let name = case_name("oneroster", &path);
            match oneroster::case(&db, &served, &pages, &tally).await {
                Ok(codes) => verdict(&name, Ok(()), &codes),
                Err(e) => verdict(&name, Err(e), &[]),
            }
        }
        task.abort();
        drop(db);
        lap("oneroster");
    });
    let values = |target: &str| -> Vec<String> {
        serde_json::from_slice(&std::fs::read(folder(target).join("values.json")).unwrap()).unwrap()
    };
    for raw in values("phone") {
        for region in text::REGIONS {
            let result = text::phone_case(&raw, Region::parse(region).unwrap(), &tally);
            verdict(&format!("phone {raw:?} in {region}"), result, &[]);
        }
    }
    for raw in values("email") {
        verdict(
            &format!("email {raw:?}"),
            text::email_case(&raw, &tally),
            &[],
        );
    }
    Tally::print(&tally, &format!("corpus {backend:?}"));
}

#[test]
fn hostile_corpus_sqlite() {
    replay(Backend::Sqlite);
}

#[test]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
fn hostile_corpus_postgres() {
    replay(Backend::Postgres);
}
