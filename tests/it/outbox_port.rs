//! The outbox as a port: one message that cannot be rendered fails alone (recorded on its
//! row, retried with backoff, dead after `outbox.max_attempts`) while the round sends the
//! others; and a dispatcher asked to stop lets its sends in flight finish within
//! `outbox.shutdown_grace_seconds` and gives back, at once, what it did not send — including
//! the next batch, which it claims and renders while the one before is being sent.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings};
use crate::db_tests;
use crate::digest::two_assignments;
use crate::invitations::start_chat;
use crate::outbox_support::ScriptedSmtp;
use crate::support::Backend;
use parent_connection::auth::Role;
use parent_connection::digest::{self, IsoWeek, NoProgress, RunRequest};
use parent_connection::outbox::dispatcher::StopSwitch;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

db_tests!(
    a_message_that_cannot_be_rendered_fails_alone,
    a_stopping_dispatcher_finishes_its_sends_and_gives_back_the_rest,
    a_stopping_dispatcher_gives_up_sends_that_outlast_the_grace,
    the_next_batch_is_claimed_while_one_is_sent_and_given_back_on_stop,
);

/// One invitation (to par-1) and two digests of 2026-W48, queued in that order.
async fn queue_three(api: &Api) {
    let par1 = contact_id(api, "nyc", "par-1").await;
    start_chat(api, &[&par1]).await;
    two_assignments(api).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(api, &tenant_admin, json!({"digestEnabled": true}))
        .await
        .ok();
    let tenant = parent_connection::tenants::find(&api.db.conn, "nyc")
        .await
        .unwrap();
    let request = RunRequest {
        week: Some(IsoWeek::parse("2026-W48").unwrap()),
        dry_run: false,
        sample_size: 0,
        page_size: 10,
    };
    let links = parent_connection::links::Links::from_config(&api.config);
    let report = digest::run(&api.db.conn, &tenant, request, &NoProgress, &links)
        .await
        .unwrap();
    assert_eq!(report.queued, 2, "{report:?}");
}

/// Asserts the rows left after a stop: the one invitation sent, both digests free with no
/// attempt counted.
async fn assert_one_sent_two_free(api: &Api, why: &str) {
    let left = rows(api).await;
    assert_eq!(
        left.iter()
            .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("invitation:sent", "1", "-"),
            ("digest:queued", "0", "-"),
            ("digest:queued", "0", "-"),
        ],
        "{why}: {left:?}"
    );
}

/// Status, attempts, holder and last error of every outbox row, by id.
async fn rows(api: &Api) -> Vec<(String, String, String, String)> {
    let rows = api
        .db
        .texts(
            "SELECT kind || '|' || status || '|' || CAST(attempts AS TEXT) || '|' || \
             COALESCE(claimed_by, '-') || '|' || COALESCE(last_error, '-') FROM outbox ORDER BY id",
            vec![],
        )
        .await;
    rows.into_iter()
        .map(|row| {
            let mut parts = row.splitn(5, '|').map(str::to_string);
            let mut next = || parts.next().unwrap_or_default();
            let (kind, status, attempts, holder, error) = (next(), next(), next(), next(), next());
            (format!("{kind}:{status}"), attempts, holder, error)
        })
        .collect()
}

/// Queued rows whose `next_attempt_at` meets `condition` on `$1` = now.
async fn due_count(api: &Api, condition: &str) -> usize {
    let now = sea_orm::Value::ChronoDateTimeUtc(Some(chrono::Utc::now()));
    api.db
        .texts(
            &format!("SELECT CAST(id AS TEXT) FROM outbox WHERE status = 'queued' AND {condition}"),
            vec![now],
        )
        .await
        .len()
}

async fn a_message_that_cannot_be_rendered_fails_alone(backend: Backend) {
    let smtp = ScriptedSmtp::start(vec![]).await;
    let url = smtp.url();
    let api = Api::with(backend, move |config| {
        config.mail.url = url;
        config.outbox.max_attempts = 2;
        config.outbox.backoff_base_seconds = 60;
    })
    .await;
    queue_three(&api).await;
    // A delivery whose week no calendar has: its digest cannot be composed.
    api.db
        .exec(
            "UPDATE digest_deliveries SET week = '2026-W99' \
             WHERE id = (SELECT MIN(id) FROM digest_deliveries)",
        )
        .await;
    let dispatcher =
        parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let first = dispatcher.drain().await.expect("the round is not failed");
    assert_eq!(
        (first.sent, first.retried, first.failed, first.dead),
        (2, 1, 0, 0),
        "the invitation and the other digest are sent: {first:?}"
    );
    assert_eq!(smtp.accepted.load(Ordering::SeqCst), 2);
    let left = rows(&api).await;
    assert_eq!(
        left.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        vec!["invitation:sent", "digest:queued"],
        "the sent digest left the outbox; the failing one waits for its retry: {left:?}"
    );
    let failing = &left[1];
    assert_eq!(failing.1, "1", "one attempt: {failing:?}");
    assert_eq!(failing.2, "-", "no longer claimed: {failing:?}");
    assert!(
        failing.3.contains("2026-W99") && failing.3.contains("not an ISO week"),
        "the row says why: {failing:?}"
    );
    assert_eq!(
        due_count(&api, "next_attempt_at > $1").await,
        1,
        "retried later, with backoff"
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM email_suppressions")
            .await,
        0,
        "a message that cannot be rendered suppresses no address"
    );
    // Due again, it fails its last attempt and is dead-lettered.
    api.db
        .exec("UPDATE outbox SET next_attempt_at = created_at WHERE status = 'queued'")
        .await;
    let second = dispatcher.drain().await.unwrap();
    assert_eq!((second.claimed, second.dead), (1, 1), "{second:?}");
    let dead = rows(&api).await;
    assert_eq!(dead[1].0, "digest:dead", "{dead:?}");
    assert!(dead[1].3.contains("(after 2 attempts)"), "{dead:?}");
    assert_eq!(
        smtp.accepted.load(Ordering::SeqCst),
        2,
        "nothing more was sent"
    );
}

/// An SMTP server on loopback that accepts every message after `delay`, counting the
/// messages whose data it started to receive and those it accepted.
struct SlowSmtp {
    port: u16,
    started: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
}

impl SlowSmtp {
    async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (started.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (started, accepted) = (s.clone(), a.clone());
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 slow ESMTP\r\n").await;
                    let mut in_data = false;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply: &[u8] = if in_data {
                            if line != "." {
                                continue;
                            }
                            in_data = false;
                            tokio::time::sleep(delay).await;
                            accepted.fetch_add(1, Ordering::SeqCst);
                            b"250 2.0.0 accepted\r\n"
                        } else {
                            let upper = line.to_ascii_uppercase();
                            if upper.starts_with("EHLO") {
                                b"250-slow\r\n250 8BITMIME\r\n"
                            } else if upper.starts_with("DATA") {
                                in_data = true;
                                started.fetch_add(1, Ordering::SeqCst);
                                b"354 go ahead\r\n"
                            } else if upper.starts_with("QUIT") {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            } else {
                                b"250 ok\r\n"
                            }
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self {
            port,
            started,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Waits until the first message is on its way (at most 20 s).
    async fn first_in_flight(&self) {
        let until = Instant::now() + Duration::from_secs(20);
        while self.started.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < until, "no message was ever sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An API whose dispatcher sends one message at a time to `smtp`, with `grace` seconds
/// on stop and a lease far longer than the test.
async fn slow_api(backend: Backend, smtp: &SlowSmtp, grace: u64) -> Api {
    let url = smtp.url();
    Api::with(backend, move |config| {
        config.mail.url = url;
        config.mail.timeout_seconds = 30;
        config.outbox.concurrency = 1;
        config.outbox.lease_seconds = 600;
        config.outbox.shutdown_grace_seconds = grace;
    })
    .await
}

/// Runs a dispatcher until the first message is in flight, asks it to stop, and returns
/// how long it took to stop.
async fn stop_mid_send(api: &Api, smtp: &SlowSmtp) -> Duration {
    let dispatcher =
        parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let (stop, stopped) = StopSwitch::new();
    let running = tokio::spawn(Arc::new(dispatcher).run(stopped));
    smtp.first_in_flight().await;
    let asked = Instant::now();
    stop.stop();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the dispatcher stops")
        .unwrap();
    asked.elapsed()
}

async fn a_stopping_dispatcher_finishes_its_sends_and_gives_back_the_rest(backend: Backend) {
    let smtp = SlowSmtp::start(Duration::from_millis(1500)).await;
    let api = slow_api(backend, &smtp, 10).await;
    queue_three(&api).await;
    let took = stop_mid_send(&api, &smtp).await;
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert_eq!(
        smtp.started.load(Ordering::SeqCst),
        1,
        "no new send after the stop"
    );
    assert_eq!(
        smtp.accepted.load(Ordering::SeqCst),
        1,
        "the send in flight finished"
    );
    assert_one_sent_two_free(
        &api,
        "the sent one is recorded; the others are free, with no attempt counted",
    )
    .await;
    assert_eq!(
        due_count(&api, "next_attempt_at <= $1").await,
        2,
        "given back due at once, not after the lease"
    );
    // The next dispatcher sends them straight away.
    let next = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .unwrap()
        .drain()
        .await
        .unwrap();
    assert_eq!(next.sent, 2, "{next:?}");
    assert_eq!(smtp.accepted.load(Ordering::SeqCst), 3);
}

async fn a_stopping_dispatcher_gives_up_sends_that_outlast_the_grace(backend: Backend) {
    let smtp = SlowSmtp::start(Duration::from_secs(20)).await;
    let api = slow_api(backend, &smtp, 1).await;
    queue_three(&api).await;
    let took = stop_mid_send(&api, &smtp).await;
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(8),
        "waited the grace, not the send: {took:?}"
    );
    assert_eq!(smtp.accepted.load(Ordering::SeqCst), 0);
    let left = rows(&api).await;
    assert_eq!(
        left.iter()
            .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("invitation:queued", "0", "-"),
            ("digest:queued", "0", "-"),
            ("digest:queued", "0", "-"),
        ],
        "nothing was recorded as sent, and every claim was given back: {left:?}"
    );
}

async fn the_next_batch_is_claimed_while_one_is_sent_and_given_back_on_stop(backend: Backend) {
    let smtp = SlowSmtp::start(Duration::from_secs(4)).await;
    let url = smtp.url();
    let api = Api::with(backend, move |config| {
        config.mail.url = url;
        config.mail.timeout_seconds = 30;
        config.outbox.batch_size = 1;
        config.outbox.concurrency = 1;
        config.outbox.lease_seconds = 600;
        config.outbox.shutdown_grace_seconds = 10;
    })
    .await;
    queue_three(&api).await;
    let dispatcher =
        parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let (stop, stopped) = StopSwitch::new();
    let running = tokio::spawn(Arc::new(dispatcher).run(stopped));
    smtp.first_in_flight().await;
    // While the first batch (one message) is with the mail server, the second is claimed.
    let until = Instant::now() + Duration::from_secs(3);
    let holders = loop {
        let holders: Vec<bool> = rows(&api).await.iter().map(|r| r.2 != "-").collect();
        if holders == [true, true, false] || Instant::now() >= until {
            break holders;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        smtp.accepted.load(Ordering::SeqCst),
        0,
        "the first message is still in flight (the check above was too slow)"
    );
    assert_eq!(
        holders,
        [true, true, false],
        "the next batch is claimed while the first is sent"
    );
    stop.stop();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the dispatcher stops")
        .unwrap();
    assert_one_sent_two_free(
        &api,
        "the prepared batch is given back unsent, with no attempt counted",
    )
    .await;
    assert_eq!(
        smtp.started.load(Ordering::SeqCst),
        1,
        "nothing sent after the stop"
    );
}
