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
