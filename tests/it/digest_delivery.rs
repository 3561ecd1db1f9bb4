//! Digest delivery through the outbox (SPEC §6): one digest per (tenant, guardian, week)
//! whatever re-runs or concurrent runs, a real SMTP server receiving it, the disclosure
//! log, and the built-in scheduler.

use crate::api_support::*;
use crate::approvals::patch_settings;
use crate::db_tests;
use crate::digest::two_assignments;
use crate::outbox_support::{ScriptedSmtp, Smtp, header};
use crate::support::Backend;
use parent_connection::auth::Role;
use parent_connection::digest::{self, IsoWeek, NoProgress, RunReport, RunRequest};
use parent_connection::tenants;
use serde_json::json;

db_tests!(
    a_run_queues_one_digest_per_guardian_and_week,
    concurrent_runs_queue_each_digest_once,
    a_real_smtp_server_receives_the_digest_and_the_log_shows_it,
    the_scheduler_runs_due_digests_once,
    a_suppressed_address_gets_no_digest,
    dispatchers_hand_digests_to_the_outbox_a_batch_at_a_time,
    a_digest_that_is_not_sent_keeps_its_outbox_row,
    two_dispatchers_send_each_digest_once,
);

async fn enable(api: &Api) {
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(api, &tenant_admin, json!({"digestEnabled": true}))
        .await
        .ok();
}

async fn run(api: &Api, week: &str) -> RunReport {
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let request = RunRequest {
        week: Some(IsoWeek::parse(week).unwrap()),
        dry_run: false,
        sample_size: 0,
        page_size: 1,
    };
    let links = parent_connection::links::Links::from_config(&api.config);
    digest::run(&api.db.conn, &tenant, request, &NoProgress, &links)
        .await
        .expect("digest run")
}

async fn a_run_queues_one_digest_per_guardian_and_week(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    enable(&api).await;
    let first = run(&api, "2026-W48").await;
    assert_eq!((first.queued, first.already_queued), (2, 0), "{first:?}");
    let again = run(&api, "2026-W48").await;
    assert_eq!(
        (again.queued, again.already_queued),
        (0, 2),
        "a re-run queues nothing"
    );
    assert_eq!(
        statuses(&api).await,
        vec!["queued", "queued"],
        "recorded, waiting for a dispatcher"
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM outbox WHERE kind = 'digest'")
            .await,
        0,
        "a run writes no outbox rows: dispatchers take the deliveries a batch at a time"
    );
    let outbox = api.get("/api/v1/outbox", Some(&api.admin("nyc"))).await;
    assert_eq!(
        outbox.ok()["counts"]["queued"],
        2,
        "waiting digests count as queued in the outbox view"
    );
    // Another week is another digest.
    let next = run(&api, "2026-W49").await;
    assert_eq!(next.queued, 2, "{next:?}");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM digest_deliveries").await,
        4
    );
}

async fn concurrent_runs_queue_each_digest_once(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    enable(&api).await;
    let (a, b) = tokio::join!(run(&api, "2026-W48"), run(&api, "2026-W48"));
    assert_eq!(a.queued + b.queued, 2, "{a:?} {b:?}");
    assert_eq!(a.queued + a.already_queued, 2);
    assert_eq!(b.queued + b.already_queued, 2);
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM digest_deliveries").await,
        2
    );
}

async fn a_real_smtp_server_receives_the_digest_and_the_log_shows_it(backend: Backend) {
    let smtp = Smtp::start();
    let url = smtp.url();
    let api = Api::with(backend, move |config| config.mail.url = url).await;
    two_assignments(&api).await;
    enable(&api).await;
    run(&api, "2026-W48").await;
    let stats = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .unwrap()
        .drain()
        .await
        .unwrap();
    assert_eq!(stats.sent, 2, "{stats:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2);
    let linda = messages
        .iter()
        .find(|m| header(m, "To").as_deref() == Some("linda.ng@example.com"))
        .expect("Linda's digest");
    assert!(
        header(linda, "Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(!linda.to_ascii_lowercase().contains("text/html"));
    assert!(header(linda, "Subject").is_some());
    assert!(
        linda.contains("Fractions") && linda.contains("Reading log"),
        "{linda}"
    );
    assert!(
        linda.contains("Ava") && linda.contains("Ben"),
        "both children: {linda}"
    );
    let log = api
        .get(
            "/api/v1/digest/deliveries?week=2026-W48",
            Some(&api.admin("nyc")),
        )
        .await;
    let items = log.ok()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    for item in &items {
        assert_eq!(item["status"], "sent");
        assert_eq!(item["week"], "2026-W48");
    }
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM outbox WHERE kind = 'digest'")
            .await,
        0,
        "a sent digest's outbox row is gone; the log still says it was sent"
    );
    let mut students: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            i["students"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for list in &mut students {
        list.sort();
    }
    students.sort();
    assert_eq!(
        students,
        vec![
            vec!["stu-1".to_string()],
            vec!["stu-1".into(), "stu-2".into()]
        ]
    );
    let one = items[0]["contactId"].as_str().unwrap();
    let theirs = api
        .get(
            &format!("/api/v1/digest/deliveries?contactId={one}"),
            Some(&api.admin("nyc")),
        )
        .await;
    let theirs = theirs.ok()["items"].as_array().unwrap().clone();
    assert_eq!(theirs.len(), 1, "one guardian's log: {theirs:?}");
    assert_eq!(theirs[0]["contactId"], one);
    let teacher = api
        .get("/api/v1/digest/deliveries", Some(&api.teacher()))
        .await;
    assert_eq!(teacher.error(403), "forbidden");
}

async fn the_scheduler_runs_due_digests_once(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    // 2026-W48's digest is due Saturday 2026-11-28 08:00 in New York (13:00 UTC).
    let due = chrono::DateTime::parse_from_rfc3339("2026-11-28T13:30:00Z")
        .unwrap()
        .to_utc();
    let catch_up = chrono::Duration::hours(24);
    let links = parent_connection::links::Links::from_config(&api.config);
    let off = digest::run_due(&api.db.conn, catch_up, due, &links)
        .await
        .unwrap();
    assert!(off.is_empty(), "digestEnabled is off by default: {off:?}");
    enable(&api).await;
    let early = digest::run_due(
        &api.db.conn,
        catch_up,
        due - chrono::Duration::hours(2),
        &links,
    )
    .await
    .unwrap();
    assert!(early.is_empty(), "not due yet: {early:?}");
    let ran = digest::run_due(&api.db.conn, catch_up, due, &links)
        .await
        .unwrap();
    assert_eq!(ran, vec![("nyc".to_string(), 2)]);
    let again = digest::run_due(
        &api.db.conn,
        catch_up,
        due + chrono::Duration::minutes(5),
        &links,
    )
    .await
    .unwrap();
    assert!(again.is_empty(), "run once: the week is done ({again:?})");
    let late = digest::run_due(
        &api.db.conn,
        catch_up,
        due + chrono::Duration::hours(30),
        &links,
    )
    .await
    .unwrap();
    assert!(late.is_empty(), "past the catch-up window: {late:?}");
}

async fn a_suppressed_address_gets_no_digest(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    enable(&api).await;
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();
    parent_connection::outbox::suppress_email(
        &api.db.conn,
        tenant.id,
        "Linda.Ng@example.com",
        "550 no such user",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let report = run(&api, "2026-W48").await;
    assert_eq!(report.queued, 1, "only Tom: {report:?}");
}

/// An API whose mail goes to `smtp` and whose dispatchers take `batch` rows a round.
async fn scripted_api(backend: Backend, smtp: &ScriptedSmtp, batch: u64) -> Api {
    let url = smtp.url();
    let api = Api::with(backend, move |config| {
        config.mail.url = url;
        config.outbox.batch_size = batch;
    })
    .await;
    two_assignments(&api).await;
    enable(&api).await;
    api
}

/// The disclosure log's statuses, sorted.
async fn statuses(api: &Api) -> Vec<String> {
    let log = api
        .get("/api/v1/digest/deliveries", Some(&api.admin("nyc")))
        .await;
    let mut statuses: Vec<String> = log.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect();
    statuses.sort();
    statuses
}

async fn dispatchers_hand_digests_to_the_outbox_a_batch_at_a_time(backend: Backend) {
    let smtp = ScriptedSmtp::start(vec![]).await;
    let api = scripted_api(backend, &smtp, 1).await;
    run(&api, "2026-W48").await;
    let dispatcher =
        parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let round = dispatcher.run_once().await.unwrap();
    assert_eq!((round.claimed, round.sent), (1, 1), "{round:?}");
    assert_eq!(
        statuses(&api).await,
        vec!["queued", "sent"],
        "one handed over and sent"
    );
    let rest = dispatcher.drain().await.unwrap();
    assert_eq!(rest.sent, 1, "{rest:?}");
    assert_eq!(statuses(&api).await, vec!["sent", "sent"]);
    assert_eq!(smtp.accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM outbox").await, 0);
    let outbox = api.get("/api/v1/outbox", Some(&api.admin("nyc"))).await;
    assert_eq!(outbox.ok()["counts"]["queued"], 0, "nothing waits any more");
    // The next week is another run, handed over after the first one.
    run(&api, "2026-W49").await;
    let next = dispatcher.drain().await.unwrap();
    assert_eq!(next.sent, 2, "{next:?}");
    assert_eq!(statuses(&api).await, vec!["sent"; 4]);
    assert_eq!(smtp.accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
}

async fn a_digest_that_is_not_sent_keeps_its_outbox_row(backend: Backend) {
    let smtp =
        ScriptedSmtp::start(vec!["451 4.3.0 try again later", "550 5.1.1 no such user"]).await;
    let api = scripted_api(backend, &smtp, 10).await;
    run(&api, "2026-W48").await;
    let dispatcher =
        parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let first = dispatcher.drain().await.unwrap();
    assert_eq!((first.retried, first.failed), (1, 1), "{first:?}");
    assert_eq!(statuses(&api).await, vec!["failed", "queued"]);
    // The retried one goes out once it is due; the refused address stays failed.
    db_exec(
        &api,
        "UPDATE outbox SET next_attempt_at = $1 WHERE status = 'queued'",
    )
    .await;
    let second = dispatcher.drain().await.unwrap();
    assert_eq!(second.sent, 1, "{second:?}");
    assert_eq!(statuses(&api).await, vec!["failed", "sent"]);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM outbox WHERE kind = 'digest' AND status = 'failed'")
            .await,
        1,
        "the failed digest stays in the outbox for the admin view"
    );
    assert_eq!(smtp.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

async fn db_exec(api: &Api, sql: &str) {
    parent_connection::db::exec(
        &api.db.conn,
        sql,
        vec![sea_orm::Value::ChronoDateTimeUtc(Some(
            chrono::Utc::now() - chrono::Duration::seconds(1),
        ))],
    )
    .await
    .unwrap();
}

async fn two_dispatchers_send_each_digest_once(backend: Backend) {
    let smtp = ScriptedSmtp::start(vec![]).await;
    let api = scripted_api(backend, &smtp, 1).await;
    run(&api, "2026-W48").await;
    let a = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let b = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).unwrap();
    let (x, y) = tokio::join!(a.drain(), b.drain());
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.sent + y.sent, 2, "{x:?} {y:?}");
    assert_eq!(smtp.accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(statuses(&api).await, vec!["sent", "sent"]);
}
