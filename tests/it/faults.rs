//! Faults of the things around the service (issue 20, item 4): the database unreachable
//! (refusing, hanging or cutting connections, behind [`FaultProxy`]) and the database full
//! during an import; an SMTP server refusing connections or hanging; a OneRoster provider that answers garbage in the middle of paging. The service answers 503 with a stable code and
//! `Retry-After` within a bound, `/readyz` names the database, nothing is half-applied,
//! and it recovers by itself when the fault clears.

use crate::api_support::*;
use crate::db_tests;
use crate::support::{Backend, Fixture, postgres_url};
use parent_connection::api::{self, AppState};
use parent_connection::config::DatabaseConfig;
use parent_connection::db::{self, Workload};
use parent_connection_testkit::proxy::{FaultProxy, Mode};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

db_tests!(
    a_full_database_fails_the_import_whole_with_503_storage_full,
    a_provider_breaking_mid_paging_fails_the_sync_whole,
    an_smtp_server_refusing_or_hanging_delays_the_message_and_loses_none,
);

/// The request wait of these tests (`database.request_busy_timeout_ms`).
const WAIT_MS: u64 = 1000;

/// The longest a request may take while the database is down: the wait, the readiness
/// margin of a second, and slack for a loaded machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(6);

/// How long the service may take to serve again once the fault cleared.
const RECOVER_WITHIN: Duration = Duration::from_secs(30);

/// `api` answering through a request pool on `url` (every connection pinged before use,
/// a wait of [`WAIT_MS`]); its jobs stay on the harness's pool.
async fn through(api: Api, url: &str) -> Api {
    let database = DatabaseConfig {
        url: url.to_string(),
        request_busy_timeout_ms: WAIT_MS,
        request_ping_idle_ms: 0,
        max_connections: 2,
        ..api.config.database.clone()
    };
    let requests = db::connect_for(&database, Workload::Requests)
        .await
        .expect("request pool");
    let mut config = api.config.clone();
    config.database = database;
    let state = AppState::new(requests, config.clone())
        .expect("state")
        .with_jobs(api.db.conn.clone());
    Api {
        app: api::router(state),
        config,
        ..api
    }
}

/// The `host:port` of a PostgreSQL URL and the URL with it replaced by `proxy`.
fn behind(url: &str, proxy: SocketAddr) -> (SocketAddr, String) {
    let (head, rest) = url.split_once('@').expect("URL with credentials");
    let (authority, tail) = rest.split_once('/').expect("URL with a database");
    let target = authority
        .parse()
        .expect("numeric host:port in TEST_DATABASE_URL");
    (target, format!("{head}@{proxy}/{tail}"))
}

/// Asserts a 503 answered within [`ANSWER_WITHIN`] with `Retry-After` and one of `codes`.
fn unavailable(reply: &Reply, took: Duration, codes: &[&str], what: &str) {
    let code = reply.error(503);
    assert!(codes.contains(&code), "{what}: {code} not in {codes:?}");
    assert!(
        reply.headers.contains_key("retry-after"),
        "{what}: {reply:?}"
    );
    assert!(took < ANSWER_WITHIN, "{what} took {took:?}");
}

/// Sends GET `path` and measures it.
async fn timed(api: &Api, path: &str, token: Option<&str>) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = api.get(path, token).await;
    (reply, started.elapsed())
}

/// Polls `/readyz` until it answers 200; returns how long that took.
async fn recovers(api: &Api) -> Duration {
    let started = Instant::now();
    loop {
        let reply = api.get("/readyz", None).await;
        if reply.status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RECOVER_WITHIN,
            "not ready again after {RECOVER_WITHIN:?}: {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The API, `/readyz` and a page while the database is down: 503, never 500, never a hang.
async fn down(api: &Api, teacher: &str, codes: &[&str], what: &str) {
    let (reply, took) = timed(api, "/api/v1/classes", Some(teacher)).await;
    unavailable(&reply, took, codes, &format!("{what}: API"));
    let (reply, took) = timed(api, "/readyz", None).await;
    unavailable(
        &reply,
        took,
        &["database_unavailable"],
        &format!("{what}: readyz"),
    );
    assert_eq!(reply.body["error"]["details"]["dependency"], "database");
    let started = Instant::now();
    let page = page_get(api, "/join/nosuchinvitation", None).await;
    assert_eq!(page.status, 503, "{what}: page {page:?}");
    assert!(page.headers.contains_key("retry-after"), "{what}: {page:?}");
    assert!(
        started.elapsed() < ANSWER_WITHIN,
        "{what}: page took too long"
    );
}

/// Everything answers as usual.
async fn up(api: &Api, teacher: &str) {
    api.get("/readyz", None).await.ok();
    api.get("/api/v1/classes", Some(teacher)).await.ok();
    let page = page_get(api, "/join/nosuchinvitation", None).await;
    assert_ne!(page.status, 503, "{page:?}");
}

/// PostgreSQL refusing connections, then hanging (behind the proxy): the API, the pages and
/// `/readyz` answer 503 within seconds; switched back, the pool reconnects by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built: no PostgreSQL server"
)]
async fn postgres_unreachable_answers_503_and_recovers() {
    if postgres_url().is_none() {
        return;
    }
    let api = Api::new(Backend::Postgres).await;
    let (target, _) = behind(&api.db.url, "127.0.0.1:1".parse().unwrap());
    let proxy = FaultProxy::start(target).await.expect("proxy");
    let (_, url) = behind(&api.db.url, proxy.address());
    let api = through(api, &url).await;
    let teacher = api.teacher();
    up(&api, &teacher).await;
    for mode in [Mode::Refuse, Mode::Hang, Mode::Cut] {
        proxy.set(mode);
        let what = format!("{mode:?}");
        // A hung server cannot be told from a saturated one: busy or unavailable.
        down(
            &api,
            &teacher,
            &["database_unavailable", "database_busy"],
            &what,
        )
        .await;
        proxy.set(Mode::Pass);
        let took = recovers(&api).await;
        eprintln!("postgres {what}: ready again {took:?} after the fault cleared");
        up(&api, &teacher).await;
    }
}

/// A jobs pool on the test's database that cannot grow: SQLite pages capped at the
/// current size (`max_page_count`); PostgreSQL raising `53100 disk_full` on every insert
/// into `contacts` (a trigger: no real way to fill a disk the other tests share).
async fn full_jobs(api: &Api) -> DatabaseConnection {
    match api.db.backend {
        Backend::Sqlite => {
            let mut options = ConnectOptions::new(api.db.url.clone());
            options.max_connections(2).sqlx_logging(false);
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .pragma("temp_store", "MEMORY")
                    .pragma("max_page_count", "1")
            });
            Database::connect(options).await.expect("full pool")
        }
        Backend::Postgres => {
            api.db
                .exec(
                    "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' \
                     USING ERRCODE = '53100'; END $$",
                )
                .await;
            api.db
                .exec(
                    "CREATE TRIGGER disk_full BEFORE INSERT ON contacts \
                     FOR EACH STATEMENT EXECUTE FUNCTION disk_full()",
                )
                .await;
            api.db.conn.clone()
        }
    }
}

/// The database fills up during an import: the API answers 503 `storage_full` with
/// `Retry-After`, not a row of the run is applied; with room again the same upload
/// applies.
async fn a_full_database_fails_the_import_whole_with_503_storage_full(backend: Backend) {
    let mut api = Api::new(backend).await;
    api.db.tenant("lax").await;
    let admin = api.admin("lax");
    let files = fixture_files(&Fixture::v21());
    let before = api.db.fingerprint().await;
    let contacts = api.db.count("SELECT COUNT(*) FROM contacts").await;

    let jobs = full_jobs(&api).await;
    let roomy = std::mem::replace(
        &mut api.app,
        api::router(
            AppState::new(api.db.conn.clone(), api.config.clone())
                .expect("state")
                .with_jobs(jobs),
        ),
    );
    let reply = upload(&api, &admin, &[("format", "sds-v2.1")], &files).await;
    assert_eq!(reply.error(503), "storage_full", "{reply:?}");
    assert_eq!(reply.headers["retry-after"], "60");
    assert_eq!(api.db.fingerprint().await, before, "nothing applied");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contacts").await,
        contacts
    );

    if backend == Backend::Postgres {
        api.db.exec("DROP TRIGGER disk_full ON contacts").await;
    }
    api.app = roomy;
    let reply = upload(&api, &admin, &[("format", "sds-v2.1")], &files).await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert_eq!(reply.body["status"], "applied");
    assert!(api.db.count("SELECT COUNT(*) FROM contacts").await > contacts);
}

/// A OneRoster provider whose second page of users is garbage (truncated JSON, then an
/// HTML error page with status 200): the run fails whole with an error naming the
/// collection and page, nothing is applied; once the provider is fixed the next run applies
/// everything.
async fn a_provider_breaking_mid_paging_fails_the_sync_whole(backend: Backend) {
    use crate::oneroster::Setup;
    use crate::oneroster_server::{Fault, district};
    use parent_connection::sync::report::RunStatus;
    let s = Setup::new(backend, district(), 1).await;
    s.provider.with(|p| p.max_page = Some(1));
    let before = s.db.fingerprint().await;
    for fault in [Fault::Malformed, Fault::Html] {
        s.provider.with(|p| {
            p.page_faults.insert(("users".into(), 1), fault.clone());
        });
        let report = s.sync(false, false).await;
        assert_eq!(report.status, RunStatus::Failed, "{fault:?}");
        assert_eq!(Setup::failure_code(&report), "provider_malformed");
        let message = &report.errors[0].message;
        assert!(message.contains("users"), "{fault:?}: {message}");
        assert!(message.contains("offset=1"), "names the page: {message}");
        assert_eq!(s.db.fingerprint().await, before, "nothing applied");
    }
    s.applied(false).await;
    assert_ne!(s.db.fingerprint().await, before);
}

/// Queued outbox rows due later than now (retried with backoff), and all rows' statuses.
async fn outbox(api: &Api) -> (i64, Vec<String>) {
    let later = db::count(
        &api.db.conn,
        "SELECT COUNT(*) FROM outbox WHERE status = 'queued' AND next_attempt_at > $1",
        vec![sea_orm::Value::ChronoDateTimeUtc(Some(chrono::Utc::now()))],
    )
    .await
    .expect("count");
    let statuses = api
        .db
        .texts("SELECT status FROM outbox ORDER BY id", vec![])
        .await;
    (later, statuses)
}

/// The SMTP server refuses connections, then accepts them and never answers (behind the
/// proxy): a dispatcher round ends within the timeout, marks nothing sent and schedules
/// the invitation again with backoff; when the server is back the invitation is delivered
/// once.
async fn an_smtp_server_refusing_or_hanging_delays_the_message_and_loses_none(backend: Backend) {
    use parent_connection_testkit::smtp::Sink;
    let sink = Sink::accept_all().await.expect("SMTP sink");
    let proxy = FaultProxy::start(([127, 0, 0, 1], sink.port()).into())
        .await
        .expect("proxy");
    let mail_url = format!("smtp://127.0.0.1:{}?tls=none", proxy.port());
    let api = Api::with(backend, |c| {
        c.mail.url = mail_url;
        c.mail.timeout_seconds = 1;
        c.sms.url = String::new();
        c.outbox.backoff_base_seconds = 60;
        c.outbox.max_attempts = 5;
    })
    .await;
    let guardian = crate::approvals::contact_id(&api, "nyc", "par-1").await;
    crate::invitations::start_chat(&api, &[&guardian]).await;
    let dispatcher = || {
        parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).expect("dispatcher")
    };
    for mode in [Mode::Refuse, Mode::Hang] {
        proxy.set(mode);
        let started = Instant::now();
        let round = dispatcher().drain().await.expect("dispatch");
        let took = started.elapsed();
        assert_eq!((round.sent, round.retried), (0, 1), "{mode:?}: {round:?}");
        assert!(
            took < Duration::from_secs(10),
            "{mode:?}: the round took {took:?}"
        );
        assert_eq!(
            outbox(&api).await,
            (1, vec!["queued".to_string()]),
            "{mode:?}"
        );
        assert_eq!(sink.unique(), 0);
        eprintln!("smtp {mode:?}: round ended in {took:?}, message queued for later");
        db::exec(
            &api.db.conn,
            "UPDATE outbox SET next_attempt_at = $1 WHERE status = 'queued'",
            vec![sea_orm::Value::ChronoDateTimeUtc(Some(
                chrono::Utc::now() - chrono::Duration::seconds(1),
            ))],
        )
        .await
        .expect("due now");
    }
    proxy.set(Mode::Pass);
    let round = dispatcher().drain().await.expect("dispatch");
    assert_eq!(round.sent, 1, "{round:?}");
    let round = dispatcher().drain().await.expect("dispatch");
    assert_eq!(round.sent, 0, "{round:?}");
    assert_eq!((sink.unique(), sink.duplicates()), (1, 0));
}
