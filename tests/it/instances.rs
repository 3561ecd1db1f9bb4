//! Several instances on one database (issue 20, item 1): migrations that many processes
//! start at once, scheduled jobs that run once across instances, outbox claims fenced by a
//! token and kept alive by lease renewal, shutdown within its bound, and invitation limits
//! under concurrency. The three-`serve` test runs the real binary three times on one fresh
//! PostgreSQL database and delivers to a real SMTP server.

use crate::api_support::{Api, Reply};
use crate::approvals::{contact_id, patch_settings, post};
use crate::invitations::{queue_many, set};
use crate::oneroster_server::{CLIENT_ID, CLIENT_SECRET, Provider, district};
use crate::support::{self, Backend, PRIVACY_KEY, TestDb};
use parent_connection::auth::Role;
use parent_connection::db::jobs::{self, Job};
use parent_connection::digest;
use parent_connection::outbox as store;
use parent_connection::outbox::dispatcher::StopSwitch;
use parent_connection::server;
use parent_connection::sync::Format;
use parent_connection::sync::oneroster;
use parent_connection_testkit::pg;
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The real binary.
fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_parent-connection")
}

/// An empty database, not migrated: a SQLite file in a temp dir or a new PostgreSQL
/// database (dropped at the end).
struct Fresh {
    url: String,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl Fresh {
    async fn new(backend: Backend) -> Self {
        support::show_logs();
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("fresh.db").display()
                ),
                _dir: dir,
                pg: None,
            },
            Backend::Postgres => {
                let admin = support::postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                let url = pg::create_database(&admin, &name).await.unwrap();
                Self {
                    url,
                    _dir: dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// The binary with `args`, on this database, with the tests' privacy key.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("PARENT_CONNECTION__PRIVACY__HASH_KEY", PRIVACY_KEY)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg {
            pg::drop_database_blocking(admin, name);
        }
    }
}

/// Processes migrating one fresh database at the same moment all succeed, and the schema
/// is migrated once (before the lock, two of three failed on PostgreSQL with
/// `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`).
async fn many_processes_migrate_a_fresh_database_at_once(backend: Backend) {
    let fresh = Fresh::new(backend).await;
    let children: Vec<_> = (0..4)
        .map(|_| {
            fresh
                .command(&["migrate"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("binary runs")
        })
        .collect();
    let outputs: Vec<_> = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for output in &outputs {
        assert!(
            output.status.success(),
            "a migrating process failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut config = support::config();
    config.database.url = fresh.url.clone();
    let conn = parent_connection::db::connect(&config.database)
        .await
        .unwrap();
    let applied =
        parent_connection::db::count(&conn, "SELECT COUNT(*) AS n FROM seaql_migrations", vec![])
            .await
            .unwrap();
    assert_eq!(applied as usize, migration_count());
    conn.close().await.unwrap();
}

fn migration_count() -> usize {
    use migration::MigratorTrait;
    migration::Migrator::migrations().len()
}

// ---------------------------------------------------------------------------------------
// A slow SMTP peer: accepts every message, but answers the end of its data only after a
// delay, recording each Message-ID it accepted.

/// An SMTP server on loopback that takes `delay` to accept each message.
struct SlowSmtp {
    port: u16,
    /// The Message-ID of every message accepted, in order.
    accepted: Arc<Mutex<Vec<String>>>,
    /// Messages whose data has been received (accepted or not yet answered).
    started: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowSmtp {
    async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let (ids, begun) = (accepted.clone(), started.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(Self::session(socket, delay, ids.clone(), begun.clone()));
            }
        });
        Self {
            port,
            accepted,
            started,
            task,
        }
    }

    async fn session(
        socket: tokio::net::TcpStream,
        delay: Duration,
        ids: Arc<Mutex<Vec<String>>>,
        started: Arc<AtomicUsize>,
    ) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        if write.write_all(b"220 slow ESMTP\r\n").await.is_err() {
            return;
        }
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "DATA" => {
                    if write.write_all(b"354 go on\r\n").await.is_err() {
                        return;
                    }
                    let mut id = String::new();
                    while let Ok(Some(data)) = lines.next_line().await {
                        if data == "." {
                            break;
                        }
                        if id.is_empty() && data.to_ascii_lowercase().starts_with("message-id:") {
                            id = data["message-id:".len()..].trim().to_string();
                        }
                    }
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    ids.lock().unwrap().push(id);
                    b"250 2.0.0 accepted\r\n"
                }
                "QUIT" => {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 ok\r\n",
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Drop for SlowSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `check` every 50 ms until it holds, for at most `limit`.
async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The API with mail going to `mail_url` and the outbox settings of `outbox`.
async fn api_with_mail(
    backend: Backend,
    mail_url: String,
    outbox: impl FnOnce(&mut parent_connection::config::OutboxConfig),
) -> Api {
    Api::with(backend, move |config| {
        config.mail.url = mail_url;
        config.outbox.poll_interval_ms = 50;
        outbox(&mut config.outbox);
    })
    .await
}

async fn statuses(api: &Api) -> Vec<String> {
    api.db
        .texts("SELECT status FROM outbox ORDER BY id", vec![])
        .await
}

// ---------------------------------------------------------------------------------------
// Claims: fencing tokens, lease renewal, shutdown.

/// A claim that ran out and was claimed again — even by the same worker name — is fenced
/// off: its holder cannot renew, record or give back; the current holder can.
async fn a_claim_taken_over_records_nothing(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api_with_mail(
        backend,
        format!("file://{}", files.path().display()),
        |_| {},
    )
    .await;
    queue_many(&api, 1).await;
    let now = chrono::Utc::now();
    let ran_out = now - chrono::Duration::seconds(1);
    let stale = store::claim(&api.db.conn, "worker", 10, now, ran_out)
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    let current = store::claim(
        &api.db.conn,
        "worker",
        10,
        now,
        now + chrono::Duration::seconds(60),
    )
    .await
    .unwrap();
    assert_eq!(current.len(), 1, "a claim whose lease ran out is due again");
    let (stale, current) = (stale[0].hold(), current[0].hold());
    assert_eq!(stale.id, current.id);
    assert!(current.token > stale.token, "each claim sets a new token");
    let sent = store::Outcome::Sent;
    assert!(
        !store::record(&api.db.conn, stale, &sent, now)
            .await
            .unwrap()
    );
    let later = now + chrono::Duration::seconds(600);
    assert_eq!(
        store::renew(&api.db.conn, &[stale], later).await.unwrap(),
        0
    );
    assert_eq!(
        store::release(&api.db.conn, &[stale], now).await.unwrap(),
        0
    );
    assert_eq!(
        statuses(&api).await,
        vec!["sending"],
        "the stale holder changed nothing"
    );
    assert_eq!(
        store::renew(&api.db.conn, &[current], later).await.unwrap(),
        1
    );
    assert!(
        store::record(&api.db.conn, current, &sent, now)
            .await
            .unwrap()
    );
    assert_eq!(statuses(&api).await, vec!["sent"]);
}

/// Sends slower than the lease: the dispatcher renews its claims while it sends, so the
/// other dispatcher polling beside it never claims them, and each message arrives once
/// (before renewal, the second dispatcher claimed and sent them again after one lease).
async fn lease_renewal_keeps_a_slow_send_from_being_sent_twice(backend: Backend) {
    let smtp = SlowSmtp::start(Duration::from_millis(2500)).await;
    let api = api_with_mail(backend, smtp.url(), |outbox| {
        outbox.lease_seconds = 1;
    })
    .await;
    queue_many(&api, 2).await;
    let (switch, stop) = StopSwitch::new();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let dispatcher = server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
            tokio::spawn(Arc::new(dispatcher).run(stop.clone()))
        })
        .collect();
    wait_for("both messages sent", Duration::from_secs(30), || async {
        statuses(&api).await == ["sent", "sent"]
    })
    .await;
    switch.stop();
    for run in runs {
        tokio::time::timeout(Duration::from_secs(15), run)
            .await
            .expect("the dispatcher stops")
            .unwrap();
    }
    let mut ids = smtp.accepted();
    ids.sort();
    ids.dedup();
    assert_eq!(
        smtp.accepted().len(),
        2,
        "each message once: {:?}",
        smtp.accepted()
    );
    assert_eq!(ids.len(), 2);
}

/// Asked to stop while a batch is being sent, a dispatcher claims nothing more, finishes
/// the send in flight within `outbox.shutdown_grace_seconds` and gives back the rest (due
/// at once, attempt not counted).
async fn shutdown_finishes_sends_in_flight_and_gives_back_the_rest(backend: Backend) {
    let smtp = SlowSmtp::start(Duration::from_millis(1500)).await;
    let api = api_with_mail(backend, smtp.url(), |outbox| {
        outbox.concurrency = 1;
        outbox.shutdown_grace_seconds = 10;
    })
    .await;
    queue_many(&api, 4).await;
    let (switch, stop) = StopSwitch::new();
    let dispatcher = server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let run = tokio::spawn(Arc::new(dispatcher).run(stop));
    wait_for("a send in flight", Duration::from_secs(20), || async {
        smtp.started.load(Ordering::SeqCst) >= 1
    })
    .await;
    let asked = Instant::now();
    switch.stop();
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("the dispatcher stops")
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "within the grace: {:?}",
        asked.elapsed()
    );
    let accepted = smtp.accepted().len();
    assert!(accepted >= 1, "the send in flight finished");
    let sent = api
        .db
        .count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
        .await;
    assert_eq!(
        sent as usize, accepted,
        "what was accepted is recorded sent"
    );
    assert_eq!(
        api.db
            .count(
                "SELECT COUNT(*) FROM outbox WHERE status = 'queued' AND claimed_by IS NULL \
                 AND lease_until IS NULL AND attempts = 0"
            )
            .await,
        4 - sent,
        "the rest given back: {:?}",
        statuses(&api).await
    );
}

// ---------------------------------------------------------------------------------------
// Invitation limits under concurrency.

/// Adds `n` guardians of stu-1 (`conc-g0`…) by a re-import; returns their contact ids.
async fn add_guardians(api: &Api, n: usize) -> Vec<String> {
    let fixture = crate::support::Fixture::v21();
    for i in 0..n {
        fixture
            .append(
                "users.csv",
                &format!("conc-g{i},c{i},Guardian,{i},c{i}@example.com,,"),
            )
            .append("relationships.csv", &format!("stu-1,conc-g{i},guardian"));
    }
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), crate::support::APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(contact_id(api, "nyc", &format!("conc-g{i}")).await);
    }
    ids
}

async fn chat_start(api: &Api, contact: &str) -> Reply {
    post(
        api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-1", "contactIds": [contact]})),
        &[],
    )
    .await
}

/// Concurrent chat starts and resends never exceed the tenant's daily limit or a
/// guardian's limit (on PostgreSQL, counting and inserting without a lock let them through).
async fn invitation_limits_hold_under_concurrency(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api_with_mail(
        backend,
        format!("file://{}", files.path().display()),
        |_| {},
    )
    .await;
    set(&api, json!({"inviteLimitPerTenantPerDay": 3})).await;
    let contacts = add_guardians(&api, 10).await;
    let starts = futures_util::future::join_all(contacts.iter().map(|c| chat_start(&api, c))).await;
    for reply in &starts {
        assert!(reply.status.is_success(), "{}", reply.body);
    }
    let invited = api.db.count("SELECT COUNT(*) FROM invitations").await;
    assert_eq!(invited, 3, "the tenant's daily limit");
    assert_eq!(api.db.count("SELECT COUNT(*) FROM outbox").await, 3);
    set(
        &api,
        json!({"inviteLimitPerTenantPerDay": 10000, "inviteLimitPerGuardian": 2}),
    )
    .await;
    let uninvited = api
        .db
        .texts(
            "SELECT CAST(c.id AS TEXT) FROM contacts c WHERE c.source_key LIKE 'conc-g%' \
             AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.contact_id = c.id) ORDER BY c.id",
            vec![],
        )
        .await;
    let guardian = &uninvited[0];
    let first = chat_start(&api, guardian).await;
    let chat = first.body["id"].as_str().unwrap().to_string();
    let (path, teacher) = (format!("/api/v1/chats/{chat}/invitations"), api.teacher());
    let resends = futures_util::future::join_all((0..8).map(|_| {
        post(
            &api,
            &path,
            &teacher,
            Some(json!({"contactId": guardian})),
            &[],
        )
    }))
    .await;
    for reply in &resends {
        assert!(
            reply.status.is_success() || reply.body["error"]["code"] == "invitation_not_sent",
            "{}",
            reply.body
        );
    }
    let of_guardian = api
        .db
        .count(&format!(
            "SELECT COUNT(*) FROM invitations WHERE contact_id = {guardian}"
        ))
        .await;
    assert_eq!(of_guardian, 2, "the guardian's limit");
}

// ---------------------------------------------------------------------------------------
// Scheduled jobs run once across instances.

/// Two schedulers checking at the same moment queue a due digest once: one of them runs
/// it, the other finds it claimed; later checks find it done.
async fn two_schedulers_run_a_due_digest_once(backend: Backend) {
    let api = Api::new(backend).await;
    crate::digest::two_assignments(&api).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(&api, &tenant_admin, json!({"digestEnabled": true}))
        .await
        .ok();
    // 2026-W48's digest is due Saturday 2026-11-28 08:00 in New York (13:00 UTC).
    let due = chrono::DateTime::parse_from_rfc3339("2026-11-28T13:30:00Z")
        .unwrap()
        .to_utc();
    let catch_up = chrono::Duration::hours(24);
    let links = parent_connection::links::Links::from_config(&api.config);
    let (left, right) = tokio::join!(
        digest::run_due(&api.db.conn, catch_up, due, &links),
        digest::run_due(&api.db.conn, catch_up, due, &links),
    );
    let mut ran = left.unwrap();
    ran.extend(right.unwrap());
    assert_eq!(ran, vec![("nyc".to_string(), 2)], "run by one scheduler");
    let again = digest::run_due(
        &api.db.conn,
        catch_up,
        due + chrono::Duration::minutes(5),
        &links,
    )
    .await
    .unwrap();
    assert!(again.is_empty(), "done: {again:?}");
    assert_eq!(
        api.db
            .count(
                "SELECT COUNT(*) FROM scheduled_runs WHERE job = 'digest' AND done_at IS NOT NULL"
            )
            .await,
        1
    );
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM digest_deliveries").await,
        2
    );
}

/// Two schedulers checking at the same moment sync a connection once per period; the
/// next period syncs again.
async fn two_schedulers_run_a_due_oneroster_sync_once(backend: Backend) {
    use parent_connection::sync::oneroster::connection::{self, NewConnection, Secret};
    let db = TestDb::new(backend).await;
    let tenant = db.tenant("nyc").await;
    let provider = Provider::start(district()).await;
    let mut config = support::config();
    config.oneroster.secret_key =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into();
    config.oneroster.schedule_hours = 6;
    connection::save(
        &db.conn,
        &config,
        tenant.id,
        &NewConnection {
            base_url: provider.base_url.clone(),
            token_url: provider.token_url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            page_size: Some(100),
        },
        "test",
    )
    .await
    .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T13:30:00Z")
        .unwrap()
        .to_utc();
    let (left, right) = tokio::join!(
        oneroster::run_due(&db.conn, &config, now),
        oneroster::run_due(&db.conn, &config, now),
    );
    assert_eq!(left.len() + right.len(), 1, "{left:?} {right:?}");
    let later_same_period = now + chrono::Duration::hours(4);
    assert!(
        oneroster::run_due(&db.conn, &config, later_same_period)
            .await
            .is_empty()
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM sync_runs").await, 1);
    let next_period = now + chrono::Duration::hours(6);
    assert_eq!(
        oneroster::run_due(&db.conn, &config, next_period).await,
        vec!["nyc"]
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM sync_runs").await, 2);
}

/// A run whose instance died (its lease ran out) is taken over; the dead instance's claim
/// can then neither finish nor give back the run.
async fn a_run_of_a_dead_instance_is_taken_over(backend: Backend) {
    let db = TestDb::new(backend).await;
    let key = (Job::Digest, "1:2026-W48");
    let now = chrono::Utc::now();
    let dead = jobs::claim(&db.conn, key, "dead", now, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claimed");
    let busy = jobs::claim(&db.conn, key, "other", now, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(busy.is_none(), "a current claim is not taken");
    let later = now + chrono::Duration::seconds(61);
    let taken = jobs::claim(&db.conn, key, "other", later, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("taken over after the lease");
    assert!(taken.token > dead.token);
    assert!(!jobs::finish(&db.conn, &dead, later).await.unwrap());
    assert!(!jobs::give_back(&db.conn, &dead).await.unwrap());
    assert!(jobs::finish(&db.conn, &taken, later).await.unwrap());
    assert!(jobs::is_done(&db.conn, key).await.unwrap());
    let much_later = later + chrono::Duration::days(1);
    assert!(
        jobs::claim(&db.conn, key, "third", much_later, Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "a finished run is never run again"
    );
}

crate::db_tests!(
    many_processes_migrate_a_fresh_database_at_once,
    a_claim_taken_over_records_nothing,
    lease_renewal_keeps_a_slow_send_from_being_sent_twice,
    shutdown_finishes_sends_in_flight_and_gives_back_the_rest,
    invitation_limits_hold_under_concurrency,
    two_schedulers_run_a_due_digest_once,
    two_schedulers_run_a_due_oneroster_sync_once,
    a_run_of_a_dead_instance_is_taken_over,
);

// ---------------------------------------------------------------------------------------
// Three `serve` processes on one fresh PostgreSQL database.

/// The development signing secret the three instances accept.
const JWT_SECRET: &str = "instances-test-secret-0123456789abcdef0123";

/// A token of `tenant` for a user, signed with [`JWT_SECRET`].
fn token(tenant: &str, source_id: &str, role: Role) -> String {
    use parent_connection::auth::mint::{self, SigningKey, Subject};
    let mut config = support::config();
    config.auth.development = true;
    config.auth.jwt_secret = JWT_SECRET.into();
    let key = SigningKey::from_config(&config.auth).expect("signing key");
    let subject = Subject::User {
        source_id: source_id.into(),
        roles: vec![role],
    };
    let claims = mint::claims(&config.auth, tenant, &subject, Duration::from_secs(600));
    mint::sign(&key, &claims).expect("sign")
}

/// A `serve` process; killed when dropped if still running.
struct Instance {
    base: String,
    child: std::process::Child,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Instance {
    fn start(fresh: &Fresh, mail_url: &str, log: &std::path::Path) -> Self {
        let port = crate::outbox_support::free_port();
        let log = std::fs::File::create(log).unwrap();
        let child = fresh
            .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("MAIL_URL", mail_url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("PARENT_CONNECTION__AUTH__DEVELOPMENT", "true")
            .env("PARENT_CONNECTION__OUTBOX__POLL_INTERVAL_MS", "100")
            .env("PARENT_CONNECTION__DIGEST__CHECK_INTERVAL_SECONDS", "10")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let reply = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the instance answers");
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or_default())
}

/// Three `serve` processes started at the same moment on one fresh PostgreSQL database
/// all come up (before the migration lock two of them exited with a duplicate key in
/// `pg_type`); an import, chats that invite three guardians (one through each instance), a
/// digest that becomes due and the three dispatchers deliver every invitation and digest
/// to a real SMTP server exactly once; the digest run is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built: no PostgreSQL server"
)]
async fn three_instances_start_schedule_and_send_together() {
    use crate::outbox_support::{Smtp, header};
    use chrono::{Datelike, Timelike};
    if support::postgres_url().is_none() {
        return;
    }
    let started = Instant::now();
    let fresh = Fresh::new(Backend::Postgres).await;
    let smtp = Smtp::start();
    let logs = tempfile::tempdir().unwrap();
    let mut instances: Vec<Instance> = (0..3)
        .map(|i| Instance::start(&fresh, &smtp.url(), &logs.path().join(format!("{i}.log"))))
        .collect();
    let log = |i: usize| std::fs::read_to_string(logs.path().join(format!("{i}.log"))).unwrap();
    parent_connection::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    for (i, instance) in instances.iter_mut().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(instance.running(), "instance {i} exited: {}", log(i));
            let ready = client.get(format!("{}/readyz", instance.base)).send().await;
            if matches!(&ready, Ok(r) if r.status() == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "instance {i} not ready: {}",
                log(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let came_up = started.elapsed();

    // The data: a tenant and an import (the CLI, a fourth process), then the API.
    let created = fresh
        .command(&["tenant", "create", "nyc"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let fixture = support::Fixture::v21();
    for i in 0..3 {
        fixture
            .append(
                "users.csv",
                &format!("inst-g{i},i{i},Guardian,{i},i{i}@example.com,,"),
            )
            .append("relationships.csv", &format!("stu-1,inst-g{i},guardian"));
    }
    let import = fresh
        .command(&["import", "--tenant", "nyc", "--format", "sds-v2.1"])
        .arg(fixture.path())
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let mut config = support::config();
    config.database.url = fresh.url.clone();
    let conn = parent_connection::db::connect(&config.database)
        .await
        .unwrap();
    let teacher = token("nyc", "tch-1", Role::Teacher);
    let now = chrono::Utc::now();
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/classes/cls-1/assignments", instances[0].base),
        &teacher,
        json!({"externalId": "hw-now", "title": "Due tomorrow", "points": 10,
               "dueAt": (now + chrono::Duration::days(1)).to_rfc3339()}),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    for (i, instance) in instances.iter().enumerate() {
        let contact = parent_connection::db::query(
            &conn,
            "SELECT CAST(id AS TEXT) AS id FROM contacts WHERE source_key = $1",
            vec![format!("inst-g{i}").into()],
        )
        .await
        .unwrap()[0]
            .try_get::<String>("", "id")
            .unwrap();
        let (status, body) = call(
            &client,
            reqwest::Method::POST,
            format!("{}/api/v1/chats", instance.base),
            &teacher,
            json!({"studentId": "stu-1", "contactIds": [contact]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["invitations"][0]["status"], "queued", "{body}");
    }
    // The digest becomes due now (this hour of today, UTC): the instances' next check runs it.
    let day = now.weekday().to_string().to_lowercase();
    let day = match day.as_str() {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    };
    let (status, body) = call(
        &client,
        reqwest::Method::PATCH,
        format!("{}/api/v1/settings", instances[2].base),
        &token("nyc", "ta-1", Role::TenantAdmin),
        json!({"digestEnabled": true, "digestDay": day, "digestHour": now.hour(),
               "digestTimeZone": "UTC"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Every invitation and digest arrives, once.
    let count = |sql: &'static str| {
        let conn = conn.clone();
        async move {
            parent_connection::db::count(&conn, sql, vec![])
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (invitations, digests) = loop {
        let messages = smtp.messages();
        let (digests, invitations): (Vec<&String>, Vec<&String>) = messages
            .iter()
            .partition(|m| header(m, "List-Unsubscribe").is_some());
        let expected = count("SELECT COUNT(*) AS n FROM digest_deliveries").await;
        let settled =
            count("SELECT COUNT(*) AS n FROM outbox WHERE status IN ('queued', 'sending')").await
                == 0
                && count("SELECT COUNT(*) AS n FROM scheduled_runs WHERE done_at IS NOT NULL")
                    .await
                    == 1;
        if settled && expected > 0 && invitations.len() >= 3 && digests.len() as i64 >= expected {
            let ids = |list: &[&String]| -> Vec<String> {
                list.iter().filter_map(|m| header(m, "To")).collect()
            };
            break (ids(&invitations), ids(&digests));
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {} invitations, {} digests of {expected}; logs: {}",
            invitations.len(),
            digests.len(),
            log(0)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let delivered = started.elapsed();
    let mut message_ids: Vec<String> = smtp
        .messages()
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    let total = message_ids.len();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), total, "a message arrived twice");
    let mut invited = invitations.clone();
    invited.sort();
    assert_eq!(invited.len(), 3, "{invited:?}");
    for i in 0..3 {
        assert_eq!(
            invited
                .iter()
                .filter(|to| to.contains(&format!("i{i}@example.com")))
                .count(),
            1,
            "{invited:?}"
        );
    }
    let mut digested = digests.clone();
    digested.sort();
    digested.dedup();
    assert_eq!(
        digested.len(),
        digests.len(),
        "a digest arrived twice: {digests:?}"
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM scheduled_runs WHERE job = 'digest'").await,
        1,
        "the digest job is recorded once"
    );
    for (i, instance) in instances.iter_mut().enumerate() {
        assert!(instance.running(), "instance {i} exited: {}", log(i));
        let ready = client
            .get(format!("{}/readyz", instance.base))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "instance {i}");
    }
    conn.close().await.unwrap();
    for instance in &instances {
        Command::new("kill")
            .args(["-TERM", &instance.child.id().to_string()])
            .status()
            .unwrap();
    }
    for (i, instance) in instances.iter_mut().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        while instance.running() {
            assert!(Instant::now() < deadline, "instance {i} did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            instance.child.wait().unwrap().success(),
            "instance {i}: {}",
            log(i)
        );
    }
    eprintln!(
        "three instances: ready after {came_up:?}; {} invitations and {} digests delivered once after {delivered:?}",
        invitations.len(),
        digests.len()
    );
}
