//! Import uploads, `POST /api/v1/imports` through the real router: multipart bodies (any
//! bytes; the fixture's files with hostile names, fields and contents; bodies cut short or
//! with a broken boundary) and zips (hostile entry names, nested zips, zip bombs, zips
//! damaged byte by byte). Properties: never a 5xx, every 4xx the JSON error shape with a
//! stable code, bounded memory although a zip may unpack to far more than its size.

use crate::alloc::{Peak, exclusive};
use crate::api_json::check_reply;
use crate::api_support::{Api, Reply, fixture_files, multipart, send, zip};
use crate::budget::{self, Bound, Tally};
use crate::sds::{self, Change};
use crate::support::{self, Backend};
use axum::body::Body;
use axum::http::Request;
use parent_connection::sync::Format;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use std::cell::RefCell;
use std::io::Write;

/// One upload allocates at most this: it streams to disk, and the import's own bound.
pub const BOUND: Bound = Bound {
    fixed: 32 << 20,
    per_input_byte: 64,
};

/// The boundary of the generated multipart bodies.
pub const BOUNDARY: &str = "XtestBoundary7MA4YWxkTrZu0gW";

/// An upload.
#[derive(Debug, Clone)]
pub enum Upload {
    /// Any bytes as a multipart body.
    Bytes(Vec<u8>),
    /// The fixture's files (changed) as parts, with extra parts, then damaged.
    Parts {
        format: Format,
        changes: Vec<Change>,
        fields: Vec<(String, String)>,
        renames: Vec<(Index, String)>,
        damage: Damage,
    },
    /// The fixture's files (changed) in a zip, with extra entries, then damaged.
    Zip {
        format: Format,
        changes: Vec<Change>,
        entries: Vec<Entry>,
        edits: Vec<(Index, u8)>,
    },
}

/// How a multipart body is damaged.
#[derive(Debug, Clone, Copy)]
pub enum Damage {
    None,
    /// Cut after this share of its bytes.
    Truncate(Index),
    /// No closing boundary.
    NoClose,
    /// The header names another boundary.
    OtherBoundary,
    /// A byte overwritten.
    Byte(Index, u8),
}

/// An extra zip entry.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A file under a hostile name.
    Named(String, Vec<u8>),
    /// A zip inside the zip.
    Nested,
    /// Many zeros: a bomb past the ratio guard.
    Bomb(usize),
    /// A folder.
    Folder(String),
}

fn hostile_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "../../etc/passwd",
                "/abs/users.csv",
                "a/b/../../users.csv",
                "..\\..\\users.csv",
                "",
                ".",
                "..",
                ".hidden.csv",
                "C:users.csv",
                "users.csv\u{0}.txt",
                "USERS.CSV",
                "users.csv",
                "orgs.csv",
                "User.csv",
                "__MACOSX/._users.csv",
                ".DS_Store",
                "nested.zip",
                "a\u{202e}vsc.csv",
                "con",
                "x\ny.csv",
            ][..]
        )
        .prop_map(str::to_string),
        "[a-zA-Z0-9./\\\\:_-]{1,40}",
        (256usize..300).prop_map(|n| format!("{}.csv", "n".repeat(n))),
    ]
}

fn field() -> impl Strategy<Value = (String, String)> {
    let names = &["dryRun", "force", "format", "dryRun", "force", "other", ""][..];
    let values = prop_oneof![
        proptest::sample::select(
            &[
                "sds-v1",
                "sds-v2.1",
                "SDS-V1",
                "oneroster",
                "true",
                "false",
                "1",
                "yes",
                ""
            ][..]
        )
        .prop_map(str::to_string),
        (90usize..120).prop_map(|n| "v".repeat(n)),
        any::<String>(),
    ];
    (
        proptest::sample::select(names).prop_map(str::to_string),
        values,
    )
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Truncate),
        1 => Just(Damage::NoClose),
        1 => Just(Damage::OtherBoundary),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Byte(i, b)),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        4 => (hostile_name(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(n, b)| Entry::Named(n, b)),
        1 => Just(Entry::Nested),
        1 => (1usize..4).prop_map(|mib| Entry::Bomb(mib << 20)),
        1 => hostile_name().prop_map(Entry::Folder),
    ]
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::SdsV1), Just(Format::SdsV21)]
}

/// Any upload.
pub fn upload() -> impl Strategy<Value = Upload> {
    let parts = (format(), any::<bool>()).prop_flat_map(|(format, change)| {
        (
            Just(format),
            if change {
                sds::changes(format).boxed()
            } else {
                Just(Vec::new()).boxed()
            },
            proptest::collection::vec(field(), 0..2),
            proptest::collection::vec((any::<Index>(), hostile_name()), 0..3),
            damage(),
        )
            .prop_map(|(format, changes, fields, renames, damage)| Upload::Parts {
                format,
                changes,
                fields,
                renames,
                damage,
            })
    });
    let zipped = (format(), any::<bool>()).prop_flat_map(|(format, change)| {
        (
            Just(format),
            if change {
                sds::changes(format).boxed()
            } else {
                Just(Vec::new()).boxed()
            },
            proptest::collection::vec(entry(), 0..3),
            proptest::collection::vec((any::<Index>(), any::<u8>()), 0..3),
        )
            .prop_map(|(format, changes, entries, edits)| Upload::Zip {
                format,
                changes,
                entries,
                edits,
            })
    });
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..512).prop_map(Upload::Bytes),
        4 => parts,
        4 => zipped,
    ]
}

fn files_of(format: Format, changes: &[Change]) -> Vec<(String, Vec<u8>)> {
    let fixture = sds::fixture(format);
    sds::apply(fixture.path(), changes);
    fixture_files(&fixture)
}

fn zip_with(files: &[(String, Vec<u8>)], entries: &[Entry]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        if writer.start_file(name.as_str(), options).is_ok() {
            writer.write_all(content).unwrap();
        }
    }
    for entry in entries {
        match entry {
            Entry::Named(name, content) => {
                if writer.start_file(name.as_str(), options).is_ok() {
                    writer.write_all(content).unwrap();
                }
            }
            Entry::Nested => {
                let inner = zip(files);
                if writer.start_file("inner.zip", options).is_ok() {
                    writer.write_all(&inner).unwrap();
                }
            }
            Entry::Bomb(size) => {
                if writer.start_file("bomb.csv", options).is_ok() {
                    let zeros = vec![b'0'; 1 << 16];
                    for _ in 0..size / zeros.len() {
                        writer.write_all(&zeros).unwrap();
                    }
                }
            }
            Entry::Folder(name) => {
                let _ = writer.add_directory(name.as_str(), options);
            }
        }
    }
    writer.finish().unwrap().into_inner()
}

/// The content type and body of an upload.
pub fn body(upload: &Upload) -> (String, Vec<u8>) {
    let plain = format!("multipart/form-data; boundary={BOUNDARY}");
    match upload {
        Upload::Bytes(bytes) => (plain, bytes.clone()),
        Upload::Parts {
            format,
            changes,
            fields,
            renames,
            damage,
        } => {
            let mut files = files_of(*format, changes);
            for (i, name) in renames {
                if !files.is_empty() {
                    let at = i.index(files.len());
                    files[at].0 = name.clone();
                }
            }
            let mut parts: Vec<(&str, Option<&str>, &[u8])> =
                vec![("format", None, format.as_str().as_bytes())];
            parts.extend(fields.iter().map(|(k, v)| (k.as_str(), None, v.as_bytes())));
            parts.extend(
                files
                    .iter()
                    .map(|(n, c)| ("file", Some(n.as_str()), c.as_slice())),
            );
            let (content_type, mut bytes) = multipart(&parts);
            match *damage {
                Damage::None => {}
                Damage::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
                Damage::NoClose => bytes.truncate(bytes.len() - BOUNDARY.len() - 6),
                Damage::OtherBoundary => {
                    return ("multipart/form-data; boundary=other".into(), bytes);
                }
                Damage::Byte(i, b) => {
                    let at = i.index(bytes.len());
                    bytes[at] = b;
                }
            }
            (content_type, bytes)
        }
        Upload::Zip {
            format,
            changes,
            entries,
            edits,
        } => {
            let files = files_of(*format, changes);
            let mut archive = zip_with(&files, entries);
            for (i, b) in edits {
                let at = i.index(archive.len());
                archive[at] = *b;
            }
            let name = format!("{}.zip", format.as_str());
            multipart(&[
                ("format", None, format.as_str().as_bytes()),
                ("file", Some(name.as_str()), archive.as_slice()),
            ])
        }
    }
}

/// Sends an upload as the `nyc` admin, a dry run half the time.
pub async fn post(api: &Api, content_type: &str, body: Vec<u8>, dry_run: bool) -> Reply {
    let uri = if dry_run {
        "/api/v1/imports?dryRun=true"
    } else {
        "/api/v1/imports"
    };
    let request = Request::post(uri)
        .header("authorization", format!("Bearer {}", api.admin("nyc")))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    send(&api.app, request).await
}

async fn case(
    api: &Api,
    upload: &Upload,
    dry_run: bool,
    tally: &RefCell<Tally>,
) -> Result<(), TestCaseError> {
    let (content_type, bytes) = body(upload);
    let size = bytes.len();
    let peak = Peak::start();
    let reply = post(api, &content_type, bytes, dry_run).await;
    let used = peak.above_start();
    check_reply(&reply, "POST /api/v1/imports")?;
    BOUND.check(used, size)?;
    let outcome = match reply.body["error"]["code"].as_str() {
        Some(code) => code.to_string(),
        None => format!(
            "{} {}",
            reply.status.as_u16(),
            reply.body["status"].as_str().unwrap_or("")
        ),
    };
    Tally::see(tally, size, used, &outcome);
    Ok(())
}

fn target(backend: Backend, default: u32) {
    let _one = exclusive();
    if backend == Backend::Postgres && support::postgres_url().is_none() {
        return;
    }
    let runtime = budget::runtime();
    let api = runtime.block_on(Api::new(backend));
    let tally = RefCell::new(Tally::default());
    budget::run(
        budget::runner(default),
        &(upload(), any::<bool>()),
        |(upload, dry_run)| runtime.block_on(case(&api, &upload, dry_run, &tally)),
    );
    Tally::print(&tally, &format!("uploads {backend:?}"));
    drop(api);
}

#[test]
fn uploads_sqlite() {
    target(Backend::Sqlite, 40);
}

#[test]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
fn uploads_postgres() {
    target(Backend::Postgres, 8);
}
