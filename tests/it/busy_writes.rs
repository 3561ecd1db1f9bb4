//! Writes while a long import holds the database (issue 16): an API write or a page that
//! cannot get a lock within `database.request_busy_timeout_ms` answers `503
//! database_busy` with `Retry-After`, never 500; on PostgreSQL the import blocks no write
//! of other rows at all. The import of a generated 100,000-student district runs on its
//! own thread and pool (as `parent-connection import` would beside `serve`) and is held
//! just before its commit, so the writes meet it with every lock it takes still held.

use crate::api_support::*;
use crate::approvals::{contact_id, decide, patch_settings, post, propose_update};
use crate::db_tests;
use crate::support::{Backend, config};
use axum::body::Body;
use axum::http::Request;
use parent_connection::api::error::{ApiError, BUSY_RETRY_AFTER_SECONDS};
use parent_connection::api::{self, AppState};
use parent_connection::auth::Role;
use parent_connection::config::DatabaseConfig;
use parent_connection::db::{self, Workload};
use parent_connection::domain::TenantId;
use parent_connection::links::{self, Purpose};
use parent_connection::sync::report::{ImportReport, RunStatus};
use parent_connection::sync::{self, Format, ImportRequest, Progress};
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use serde_json::json;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

db_tests!(
    writes_during_an_import_answer_503_or_succeed_never_500,
    a_busy_database_maps_to_503_database_busy,
    waiting_writers_hold_no_connection_and_take_turns,
);

/// The SMS webhook's secret in these tests.
const WEBHOOK_SECRET: &str = "busy-webhook-secret";

/// Students of the generated district.
const STUDENTS: u64 = 100_000;

/// The API of the tests (tenants `nyc` and `bos`), its router on a request pool whose
/// lock wait is `wait_ms`, its jobs on the harness's pool.
async fn busy_api(backend: Backend, wait_ms: u64) -> Api {
    let api = Api::with(backend, |c| {
        c.database.request_busy_timeout_ms = wait_ms;
        c.sms.webhook_secret = WEBHOOK_SECRET.into();
    })
    .await;
    let requests = db::connect_for(&database(&api), Workload::Requests)
        .await
        .expect("request pool");
    let state = AppState::new(requests, api.config.clone())
        .expect("state")
        .with_jobs(api.db.conn.clone());
    Api {
        app: api::router(state),
        ..api
    }
}

fn database(api: &Api) -> DatabaseConfig {
    DatabaseConfig {
        url: api.db.url.clone(),
        ..api.config.database.clone()
    }
}

/// A request pool on the test's database with `connections` connections and a lock and
/// connection wait of `wait_ms`.
async fn request_pool(api: &Api, connections: u32, wait_ms: u64) -> sea_orm::DatabaseConnection {
    let mut database = database(api);
    database.max_connections = connections;
    database.request_busy_timeout_ms = wait_ms;
    db::connect_for(&database, Workload::Requests)
        .await
        .expect("request pool")
}

/// Reports the import's phases and stops it at phase `at` (`committing`: after every
/// statement of the run, before its commit) until the test lets it go.
struct Hold {
    phases: Mutex<mpsc::Sender<String>>,
    release: Mutex<mpsc::Receiver<()>>,
    at: &'static str,
}

impl Progress for Hold {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn phase(&self, name: &str) {
        let _ = self.phases.lock().unwrap().send(name.to_string());
        if name == self.at {
            // Blocks the import's own thread (its own runtime) with the transaction open.
            let _ = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(300));
        }
    }
    fn finish(&self) {}
}

/// Waits (without blocking the test's runtime) for the import to report `phase`.
async fn wait_for(phases: &mut mpsc::Receiver<String>, phase: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        match phases.try_recv() {
            Ok(name) if name == phase => return,
            Ok(_) => continue,
            Err(mpsc::TryRecvError::Empty) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the import never reached {phase}: {e:?}"),
        }
    }
}

/// Starts the import of `dir` into `tenant` on its own thread, runtime and jobs pool (as
/// `parent-connection import` would beside `serve`).
fn spawn_import(
    database: DatabaseConfig,
    dir: std::path::PathBuf,
    tenant: &str,
    hold: Arc<Hold>,
) -> std::thread::JoinHandle<ImportReport> {
    let tenant = tenant.to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let jobs = db::connect(&database).await.expect("jobs pool");
            let request = ImportRequest {
                tenant,
                format: Format::SdsV21,
                dir,
                source: None,
                dry_run: false,
                force: false,
                actor: "test".into(),
                privacy: parent_connection::privacy::PrivacyKey::from_hex(
                    crate::support::PRIVACY_KEY,
                )
                .unwrap(),
            };
            let report = sync::import(&jobs, &config().import, &request, hold)
                .await
                .expect("import ran");
            jobs.close().await.ok();
            report
        })
    })
}

/// The writes of the test, each sent once; the replies in order.
struct Writes {
    settings_nyc: Reply,
    settings_big: Reply,
    approval: Reply,
    chat: Reply,
    unsubscribe: Reply,
    opt_out: Reply,
}

/// A `STOP` reply through the SMS webhook of `tenant`: a row referencing the tenant (a
/// foreign-key check takes a key-share lock on its row).
async fn sms_stop(api: &Api, tenant: &str) -> Reply {
    api.send(
        Request::post(format!("/api/v1/sms/inbound/{tenant}"))
            .header("x-webhook-secret", WEBHOOK_SECRET)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("From=%2B12025550199&Body=STOP"))
            .unwrap(),
    )
    .await
}

/// Asserts a write met the import as it must on `backend`: on SQLite (the lock is held)
/// 503 `database_busy` with Retry-After; on PostgreSQL (nothing of it is locked) 2xx.
fn met_the_import(backend: Backend, what: &str, reply: &Reply) {
    assert_ne!(reply.status, 500, "{what}: {}", reply.body);
    match backend {
        Backend::Sqlite => {
            assert_eq!(reply.status, 503, "{what}: {}", reply.body);
            assert_eq!(
                reply.headers["retry-after"],
                BUSY_RETRY_AFTER_SECONDS.to_string(),
                "{what}"
            );
        }
        Backend::Postgres => {
            assert!(reply.status.is_success(), "{what}: {}", reply.body)
        }
    }
}

async fn writes_during_an_import_answer_503_or_succeed_never_500(backend: Backend) {
    let api = busy_api(backend, 400).await;
    api.db.tenant("big").await;
    let files = tempfile::tempdir().expect("temp dir");
    let generated = parent_connection_testkit::generate::generate(files.path(), STUDENTS, 16)
        .expect("generate");
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let big_admin = api.user("big", "ta-1", &[Role::TenantAdmin]);
    let request = propose_update(&api, "stu-1", "par-1", json!({"givenName": "Pat"})).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let nyc = TenantId(
        api.db
            .count("SELECT id FROM tenants WHERE slug = 'nyc'")
            .await,
    );
    let secret = parent_connection::digest::unsubscribe_secret(&api.db.conn, nyc)
        .await
        .expect("link secret");
    let unsubscribe = format!(
        "/unsubscribe/{}",
        links::sign(
            &secret,
            Purpose::DigestUnsubscribe,
            nyc,
            par1.parse().unwrap()
        )
    );

    let (hold, mut phases, release) = hold_at("committing");
    let import = spawn_import(database(&api), files.path().to_path_buf(), "big", hold);

    // While the import applies: settings of another tenant and of the importing one.
    wait_for(&mut phases, "applying").await;
    let early_nyc = patch_settings(&api, &tenant_admin, json!({"digestEnabled": true})).await;
    let early_big = patch_settings(&api, &big_admin, json!({"digestEnabled": true})).await;
    met_the_import(backend, "settings during the apply", &early_nyc);
    met_the_import(backend, "settings of the importing tenant", &early_big);

    // Held before its commit: every lock of the run is still held.
    wait_for(&mut phases, "committing").await;
    let started = std::time::Instant::now();
    let sent = Writes {
        settings_nyc: patch_settings(
            &api,
            &tenant_admin,
            json!({"preferredInviteChannel": "sms"}),
        )
        .await,
        settings_big: patch_settings(&api, &big_admin, json!({"preferredInviteChannel": "sms"}))
            .await,
        approval: decide(&api, &request, "approve", None).await,
        chat: post(
            &api,
            "/api/v1/chats",
            &api.teacher(),
            Some(json!({"studentId": "stu-1", "contactIds": [par1]})),
            &[],
        )
        .await,
        unsubscribe: api
            .send(
                Request::post(&unsubscribe)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from("List-Unsubscribe=One-Click"))
                    .unwrap(),
            )
            .await,
        opt_out: sms_stop(&api, "big").await,
    };
    let waited = started.elapsed();
    // Reads go on meanwhile, and do not see the import before its commit.
    let read = api.get("/api/v1/settings", Some(&tenant_admin)).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let visible = api
        .db
        .count("SELECT COUNT(*) FROM students s JOIN tenants t ON t.id = s.tenant_id WHERE t.slug = 'big'")
        .await;
    assert_eq!(visible, 0, "the import is visible before its commit");
    release.send(()).expect("the import waits");
    let report = tokio::task::spawn_blocking(move || import.join().expect("import thread"))
        .await
        .unwrap();

    met_the_import(backend, "settings PATCH", &sent.settings_nyc);
    met_the_import(
        backend,
        "settings PATCH of the importing tenant",
        &sent.settings_big,
    );
    met_the_import(backend, "approval", &sent.approval);
    met_the_import(backend, "chat start", &sent.chat);
    met_the_import(backend, "unsubscribe page", &sent.unsubscribe);
    met_the_import(
        backend,
        "SMS opt-out in the importing tenant",
        &sent.opt_out,
    );
    if backend == Backend::Sqlite {
        for (what, reply) in [
            ("settings", &sent.settings_nyc),
            ("approval", &sent.approval),
            ("chat", &sent.chat),
        ] {
            assert_eq!(reply.error(503), "database_busy", "{what}");
            assert_eq!(
                reply.body["error"]["details"]["retryAfterSeconds"], BUSY_RETRY_AFTER_SECONDS,
                "{what}"
            );
        }
        let page = &sent.unsubscribe;
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{:?}",
            page.headers
        );
        assert!(page.body.as_str().unwrap().contains("Busy right now"));
        // Six writes, each waiting about the request wait (400 ms) for the lock; with
        // the jobs' 10 s they would take 60 s.
        assert!(waited < Duration::from_secs(20), "{waited:?}");
    }

    // The import is whole.
    assert_eq!(report.status, RunStatus::Applied, "{:?}", report.errors);
    assert_eq!(report.entities.students.created, STUDENTS);
    assert_eq!(report.entities.contacts.created, generated.contacts);
    assert_eq!(report.entities.links.created, generated.links);
    let count = |table: &str| {
        format!(
            "SELECT COUNT(*) FROM {table} x JOIN tenants t ON t.id = x.tenant_id WHERE t.slug = 'big'"
        )
    };
    assert_eq!(api.db.count(&count("students")).await, STUDENTS as i64);
    assert_eq!(
        api.db.count(&count("contacts")).await,
        generated.contacts as i64
    );

    // Sent again after the import, the writes that met it succeed (or are done already).
    if backend == Backend::Sqlite {
        let again = patch_settings(
            &api,
            &tenant_admin,
            json!({"preferredInviteChannel": "sms"}),
        )
        .await;
        assert_eq!(again.status, 200, "{}", again.body);
        let again =
            patch_settings(&api, &big_admin, json!({"preferredInviteChannel": "sms"})).await;
        assert_eq!(again.status, 200, "{}", again.body);
        let again = decide(&api, &request, "approve", None).await;
        assert_eq!(again.status, 200, "{}", again.body);
        let again = post(
            &api,
            "/api/v1/chats",
            &api.teacher(),
            Some(json!({"studentId": "stu-1", "contactIds": [par1]})),
            &[],
        )
        .await;
        assert!(again.status.is_success(), "{}", again.body);
        let again = sms_stop(&api, "big").await;
        assert_eq!(again.status, 200, "{}", again.body);
    }
    let opted_out = api.db.count("SELECT COUNT(*) FROM sms_opt_outs").await;
    assert_eq!(opted_out, 1);
    let settings = api.get("/api/v1/settings", Some(&tenant_admin)).await;
    assert_eq!(settings.ok()["preferredInviteChannel"], "sms");
    let settings = api.get("/api/v1/settings", Some(&big_admin)).await;
    assert_eq!(settings.ok()["preferredInviteChannel"], "sms");
    let approved = api
        .db
        .texts(
            "SELECT status FROM contact_requests WHERE id = $1",
            vec![request.parse::<i64>().unwrap().into()],
        )
        .await;
    assert_eq!(approved, ["approved"]);
}

/// A real busy error of the engine, from a second connection while a first one holds
/// the lock, goes through the API's one mapping to 503 `database_busy`; so does a pool
/// that has no connection to give. Other failures stay 500.
async fn a_busy_database_maps_to_503_database_busy(backend: Backend) {
    let api = Api::new(backend).await;
    // Long enough to open a PostgreSQL connection on a busy machine (the acquire timeout
    // covers that too), short enough for the test.
    let requests = request_pool(&api, 1, 1000).await;
    let holder = db::begin_write(&api.db.conn).await.expect("first writer");
    let lock = "UPDATE tenant_settings SET updated_at = updated_at WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'nyc')";
    holder.execute_unprepared(lock).await.expect("lock held");

    // SQLite: the writer waits 1 s for its turn behind the holder in this process
    // (`db::write`; another process's lock would be SQLITE_BUSY after the busy timeout);
    // PostgreSQL: the row lock is waited for 1 s (lock_timeout, 55P03).
    let busy: DbErr = async {
        let txn = db::begin_write(&requests).await?;
        txn.execute_unprepared(lock).await?;
        txn.commit().await
    }
    .await
    .expect_err("the lock is held");
    assert!(db::busy::is_busy(&busy), "{busy:?}");
    let error = ApiError::from(busy);
    assert_eq!(error.status(), 503);
    assert_eq!(error.code(), "database_busy");
    let response = axum::response::IntoResponse::into_response(error);
    assert_eq!(
        response.headers()["retry-after"],
        BUSY_RETRY_AFTER_SECONDS.to_string()
    );
    holder.rollback().await.expect("rollback");

    // The one connection of the pool is taken: the next statement waits 1 s for it.
    let taken = requests.begin().await.expect("the only connection");
    let starved = db::count(&requests, "SELECT COUNT(*) FROM tenants", vec![])
        .await
        .expect_err("no connection to give");
    assert!(db::busy::is_busy(&starved), "{starved:?}");
    assert_eq!(ApiError::from(starved).code(), "database_busy");
    taken.rollback().await.expect("rollback");

    // A broken statement is no busy database.
    let broken = db::count(&requests, "SELECT COUNT(*) FROM no_such_table", vec![])
        .await
        .expect_err("no such table");
    assert!(!db::busy::is_busy(&broken));
    assert_eq!(ApiError::from(broken).status(), 500);
}

/// Writers of one process take turns on a SQLite file (`db::write`): a writer waiting
/// for its turn holds no pooled connection, so reads go on beside a queue of writers; the
/// queue is waited for at most the request wait; every writer gets its turn in the end.
/// On PostgreSQL (no queue: rows are locked, not the database) writers of different rows
/// go on at once, and the same holds.
async fn waiting_writers_hold_no_connection_and_take_turns(backend: Backend) {
    let api = Api::new(backend).await;
    let requests = request_pool(&api, 2, 400).await;
    db::exec(
        &api.db.conn,
        "CREATE TABLE turn_probe (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
        vec![],
    )
    .await
    .expect("probe table");

    // A writer keeps its transaction open for a while.
    let holder = db::begin_write(&requests).await.expect("first writer");
    db::exec(
        &holder,
        "INSERT INTO turn_probe (id, n) VALUES (0, 0)",
        vec![],
    )
    .await
    .expect("first write");

    // Five more writers arrive meanwhile (one connection is left in the pool of two).
    let writers: Vec<_> = (1..=5_i64)
        .map(|i| {
            let pool = requests.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let outcome = async {
                    let txn = db::begin_write(&pool).await?;
                    db::exec(
                        &txn,
                        "INSERT INTO turn_probe (id, n) VALUES ($1, $2)",
                        vec![i.into(), i.into()],
                    )
                    .await?;
                    txn.commit().await
                }
                .await;
                (outcome, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A read meanwhile gets the free connection at once: the waiting writers hold none.
    let started = std::time::Instant::now();
    let tenants = db::count(&requests, "SELECT COUNT(*) FROM tenants", vec![])
        .await
        .expect("a read beside the waiting writers");
    assert!(tenants >= 1);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "the read waited {:?}",
        started.elapsed()
    );

    // Held past the request wait (400 ms): on SQLite the waiting writers give up as busy
    // (503 database_busy) within about that wait; on PostgreSQL they are done already.
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.commit().await.expect("first commit");
    for writer in writers {
        let (outcome, waited) = writer.await.expect("writer task");
        match backend {
            Backend::Sqlite => {
                let error = outcome.expect_err("no turn within the request wait");
                assert!(db::busy::is_busy(&error), "{error:?}");
                assert_eq!(ApiError::from(error).code(), "database_busy");
                assert!(
                    waited >= Duration::from_millis(350) && waited < Duration::from_secs(2),
                    "gave up after {waited:?}"
                );
            }
            Backend::Postgres => outcome.expect("a write of another row"),
        }
    }

    // Many writers at once, each reading then writing the same row: every one gets its
    // turn (SQLite: one at a time through the queue; PostgreSQL: the row lock), none fails,
    // none is lost.
    // (PostgreSQL's READ COMMITTED needs the row locked before it is read.)
    let read = match backend {
        Backend::Sqlite => "SELECT n FROM turn_probe WHERE id = 0",
        Backend::Postgres => "SELECT n FROM turn_probe WHERE id = 0 FOR UPDATE",
    };
    let increments: Vec<_> = (0..20)
        .map(|_| {
            let pool = requests.clone();
            tokio::spawn(async move {
                let txn = db::begin_write(&pool).await?;
                let n = db::count(&txn, read, vec![]).await?;
                db::exec(
                    &txn,
                    "UPDATE turn_probe SET n = $1 WHERE id = 0",
                    vec![(n + 1).into()],
                )
                .await?;
                txn.commit().await
            })
        })
        .collect();
    for increment in increments {
        increment
            .await
            .expect("task")
            .expect("every writer gets its turn");
    }
    let n = db::count(
        &api.db.conn,
        "SELECT n FROM turn_probe WHERE id = 0",
        vec![],
    )
    .await
    .expect("count");
    assert_eq!(n, 20);
}

/// Re-imports the `nyc` fixture with par-1's email changed, on its own thread; `hold`
/// stops it at `locking` (SQLite: files read and staged, the write lock not yet taken).
fn reimport_nyc(
    api: &Api,
    files: &crate::support::Fixture,
    hold: Arc<Hold>,
) -> std::thread::JoinHandle<ImportReport> {
    files.replace("users.csv", "linda.ng@example.com", "linda.new@example.com");
    spawn_import(database(api), files.path().to_path_buf(), "nyc", hold)
}

/// A hold at `phase`, its phases and the handle that lets it go.
fn hold_at(phase: &'static str) -> (Arc<Hold>, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (phases_to, phases) = mpsc::channel();
    let (release, released) = mpsc::channel();
    let hold = Arc::new(Hold {
        phases: Mutex::new(phases_to),
        release: Mutex::new(released),
        at: phase,
    });
    (hold, phases, release)
}

/// The deactivation the tests make "by hand" while an import reads its files.
const DEACTIVATE_PAR2: &str = "UPDATE student_contacts SET status = 'inactive' WHERE contact_id = (SELECT id FROM contacts WHERE source_key = 'par-2')";

/// SQLite: while an import reads and stages its files it holds no lock, so API writes
/// succeed; once it holds the lock they answer 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_succeed_while_an_import_reads_its_files() {
    let api = busy_api(Backend::Sqlite, 400).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let files = crate::support::Fixture::v21();
    let (hold, mut phases, release) = hold_at("locking");
    let import = reimport_nyc(&api, &files, hold);
    wait_for(&mut phases, "locking").await;
    let during = patch_settings(&api, &tenant_admin, json!({"digestEnabled": true})).await;
    assert_eq!(during.status, 200, "{}", during.body);
    release.send(()).expect("the import waits");
    let report = tokio::task::spawn_blocking(move || import.join().expect("import thread"))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Applied, "{:?}", report.errors);
    assert!(report.diffed);
    assert_eq!(report.entities.contacts.updated, 1);
    let after: Vec<String> = std::iter::from_fn(|| phases.try_recv().ok()).collect();
    let loads = after.iter().filter(|p| *p == "loading").count();
    assert_eq!(
        loads, 0,
        "a settings change is no reason to read the files again"
    );
    let verified = after.iter().any(|p| p == "verifying");
    assert!(
        verified,
        "a commit while the files were read: the live rows are compared again"
    );
}

/// SQLite: a synced row changed while the import read its files sends it back to read
/// them under the lock; the result is the one it has when the change came first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_import_notices_rows_changed_while_it_read_its_files() {
    // The reference: the change, then the import.
    let reference = busy_api(Backend::Sqlite, 400).await;
    reference.db.exec(DEACTIVATE_PAR2).await;
    let (hold, _, release) = hold_at("never");
    drop(release);
    let files = crate::support::Fixture::v21();
    let expected = tokio::task::spawn_blocking({
        let import = reimport_nyc(&reference, &files, hold);
        move || import.join().expect("import thread")
    })
    .await
    .unwrap();
    assert_eq!(
        expected.entities.links.reactivated, 1,
        "{:?}",
        expected.entities
    );

    // The same change made while the import reads its files.
    let api = busy_api(Backend::Sqlite, 400).await;
    let files = crate::support::Fixture::v21();
    let (hold, mut phases, release) = hold_at("locking");
    let import = reimport_nyc(&api, &files, hold);
    wait_for(&mut phases, "locking").await;
    api.db.exec(DEACTIVATE_PAR2).await;
    release.send(()).expect("the import waits");
    let report = tokio::task::spawn_blocking(move || import.join().expect("import thread"))
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Applied, "{:?}", report.errors);
    assert_eq!(
        format!("{:?}", report.entities),
        format!("{:?}", expected.entities)
    );
    let link = api.db.link("stu-1", "par-2").await;
    assert_eq!(link, reference.db.link("stu-1", "par-2").await);
    let reread = std::iter::from_fn(|| phases.try_recv().ok()).any(|p| p == "loading");
    assert!(
        reread,
        "the import must read the live rows again under the lock"
    );
}
