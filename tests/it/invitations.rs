//! Invitations through the transactional outbox against real peers (SPEC §5): a real SMTP
//! server process (aiosmtpd) and a real HTTP server standing in for the SMS gateway
//! (wiremock), the channel choice and its fallbacks, the limits, retries, final failures
//! and dead letters, a dispatcher killed mid-batch, two dispatchers on one database, and
//! the STOP/START webhook.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings, post};
use crate::db_tests;
use crate::outbox_support::{ScriptedSmtp, Smtp, header, read_dir_texts};
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::db;
use parent_connection::domain::TenantId;
use parent_connection::outbox as store;
use parent_connection::outbox::dispatcher::{Dispatcher, Stats};
use sea_orm::Value;
use serde_json::{Value as Json, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

db_tests!(
    an_email_invitation_reaches_a_real_smtp_server_as_plain_text,
    sms_preferred_goes_to_the_gateway_with_a_stable_idempotency_key,
    sms_falls_back_to_email_and_says_why,
    limits_stop_invitations_but_not_chats,
    gateway_answers_are_retried_failed_or_dead_lettered,
    smtp_4xx_is_retried_and_5xx_is_final,
    a_dispatcher_killed_mid_batch_loses_nothing,
    two_dispatchers_never_send_the_same_row_twice,
    the_sms_webhook_handles_stop_and_start,
    joined_guardians_are_not_invited_and_the_outbox_is_for_admins,
    invitation_lists_page_through_every_invitation_once,
    the_suppression_list_pages_newest_first,
);

const SMS_PATH: &str = "/2010-04-01/Accounts/AC123/Messages.json";
const WEBHOOK_SECRET: &str = "hook-secret-0123456789";

/// The API with mail going to `mail_url` and SMS to `sms_url` (empty: SMS disabled).
pub async fn api(backend: Backend, mail_url: &str, sms_url: &str) -> Api {
    let (mail_url, sms_url) = (mail_url.to_string(), sms_url.to_string());
    Api::with(backend, move |config| {
        config.mail.url = mail_url;
        config.sms.url = sms_url;
        config.sms.account_sid = "AC123".into();
        config.sms.auth_token = "token-secret".into();
        config.sms.from = "+15005550006".into();
        config.sms.timeout_seconds = 1;
        config.sms.webhook_secret = WEBHOOK_SECRET.into();
        config.outbox.max_attempts = 3;
        config.outbox.backoff_base_seconds = 60;
    })
    .await
}

fn dispatcher(api: &Api) -> Dispatcher {
    parent_connection::server::dispatcher(api.db.conn.clone(), &api.config).expect("dispatcher")
}

pub async fn dispatch(api: &Api) -> Stats {
    dispatcher(api).drain().await.expect("dispatch")
}

/// Makes every queued row due now (as if its retry time had come).
async fn make_due(api: &Api) {
    db::exec(
        &api.db.conn,
        "UPDATE outbox SET next_attempt_at = $1 WHERE status = 'queued'",
        vec![Value::ChronoDateTimeUtc(Some(
            chrono::Utc::now() - chrono::Duration::seconds(1),
        ))],
    )
    .await
    .unwrap();
}

/// Teacher tch-1 starts a chat about stu-1 with `contacts`; the chat as answered.
pub async fn start_chat(api: &Api, contacts: &[&str]) -> Json {
    let reply = post(
        api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-1", "contactIds": contacts})),
        &[],
    )
    .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    reply.body
}

pub async fn set(api: &Api, settings: Json) {
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(api, &tenant_admin, settings).await.ok();
}

async fn statuses(api: &Api) -> Vec<String> {
    api.db
        .texts("SELECT status FROM outbox ORDER BY id", vec![])
        .await
}

async fn an_email_invitation_reaches_a_real_smtp_server_as_plain_text(backend: Backend) {
    let smtp = Smtp::start();
    let api = api(backend, &smtp.url(), "").await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let invitation = &chat["invitations"][0];
    assert_eq!(invitation["status"], "queued", "{chat}");
    assert_eq!(invitation["channel"], "email");
    assert_eq!(invitation["contactId"], par1.as_str());
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM outbox").await,
        1,
        "the invitation and its outbox row commit together"
    );
    let stats = dispatch(&api).await;
    assert_eq!(stats.sent, 1, "{stats:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(
        header(message, "To").as_deref(),
        Some("linda.ng@example.com")
    );
    assert!(
        header(message, "From")
            .unwrap()
            .contains("no-reply@parent-connection.local")
    );
    assert_eq!(
        header(message, "Subject").as_deref(),
        Some("Sam Lee invited you to Parent Connection")
    );
    let outbox_id = api
        .db
        .texts("SELECT CAST(id AS TEXT) FROM outbox", vec![])
        .await[0]
        .clone();
    assert_eq!(
        header(message, "Message-ID").as_deref(),
        Some(format!("<outbox.{outbox_id}@parent-connection.local>").as_str())
    );
    assert!(
        header(message, "Content-Type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        !message.to_ascii_lowercase().contains("text/html"),
        "no HTML part"
    );
    assert!(
        !message.contains("<html") && !message.contains("<p>"),
        "no markup"
    );
    assert!(message.contains("Hello Linda Ng"), "{message}");
    assert!(message.contains("http://localhost:8080/join/"));
    let read = api
        .get(
            &format!("/api/v1/invitations/{}", invitation["id"].as_str().unwrap()),
            Some(&api.teacher()),
        )
        .await;
    assert_eq!(read.ok()["status"], "sent");
    let other_teacher = api.user("nyc", "tch-9", &[Role::Teacher]);
    let hidden = api
        .get(
            &format!("/api/v1/invitations/{}", invitation["id"].as_str().unwrap()),
            Some(&other_teacher),
        )
        .await;
    assert_eq!(hidden.error(404), "not_found");
}

pub async fn sms_gateway(answers: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    for answer in answers {
        Mock::given(method("POST"))
            .and(path(SMS_PATH))
            .respond_with(answer)
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

async fn sms_preferred_goes_to_the_gateway_with_a_stable_idempotency_key(backend: Backend) {
    let gateway = sms_gateway(vec![ResponseTemplate::new(503)]).await;
    let files = tempfile::tempdir().unwrap();
    let api = api(
        backend,
        &format!("file://{}", files.path().display()),
        &gateway.uri(),
    )
    .await;
    set(&api, json!({"preferredInviteChannel": "sms"})).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    assert_eq!(chat["invitations"][0]["channel"], "sms", "{chat}");
    let first = dispatch(&api).await;
    assert_eq!(first.retried, 1, "503 is retried: {first:?}");
    make_due(&api).await;
    let second = dispatch(&api).await;
    assert_eq!(second.sent, 1, "{second:?}");
    let requests = gateway.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let keys: Vec<String> = requests
        .iter()
        .map(|r| {
            r.headers
                .get("idempotency-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        keys[0], keys[1],
        "the retry carries the same idempotency key"
    );
    let form: Vec<(String, String)> = url_form(&requests[1].body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("To").as_deref(), Some("+12025550143"));
    assert_eq!(field("From").as_deref(), Some("+15005550006"));
    let body = field("Body").unwrap();
    assert!(
        body.starts_with("Parent Connection: Sam Lee invited you"),
        "{body}"
    );
    assert!(body.ends_with("Reply STOP to opt out."), "{body}");
    assert!(body.chars().count() <= 160 * 2, "{body}");
    let auth = requests[1]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.starts_with("Basic "), "HTTP basic auth");
    assert!(read_dir_texts(files.path()).is_empty(), "no email was sent");
}

fn url_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(raw: &str) -> String {
    parent_connection::outbox::email::percent_decode(&raw.replace('+', " "))
}

async fn sms_falls_back_to_email_and_says_why(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api(backend, &format!("file://{}", files.path().display()), "").await;
    set(&api, json!({"preferredInviteChannel": "sms"})).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let invitation = &chat["invitations"][0];
    assert_eq!(invitation["channel"], "email", "{chat}");
    assert_eq!(invitation["reason"], "sms_disabled");
    dispatch(&api).await;
    let mails = read_dir_texts(files.path());
    assert_eq!(mails.len(), 1, "the file transport wrote the message");
    assert!(mails[0].contains("linda.ng@example.com"));
    let stored = api
        .db
        .texts(
            "SELECT COALESCE(fallback_reason, '-') FROM invitations",
            vec![],
        )
        .await;
    assert_eq!(stored, vec!["sms_disabled"], "the reason is recorded");
}

async fn limits_stop_invitations_but_not_chats(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api(backend, &format!("file://{}", files.path().display()), "").await;
    set(&api, json!({"inviteLimitPerGuardian": 1})).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let first = start_chat(&api, &[&par1]).await;
    assert_eq!(first["invitations"][0]["status"], "queued");
    let again = start_chat(&api, &[&par1]).await;
    assert_eq!(again["reentered"], true, "the chat still starts");
    let not_sent: Vec<&Json> = again["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "not_sent")
        .collect();
    assert_eq!(not_sent.len(), 1, "{again}");
    assert_eq!(not_sent[0]["reason"], "guardian_limit");
    let chat_id = first["id"].as_str().unwrap();
    let resend = post(
        &api,
        &format!("/api/v1/chats/{chat_id}/invitations"),
        &api.teacher(),
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(resend.error(422), "invitation_not_sent");
    assert_eq!(resend.body["error"]["details"]["reason"], "guardian_limit");
    let limits = api
        .get(
            &format!("/api/v1/invitations/limits?contactId={par1}"),
            Some(&api.teacher()),
        )
        .await;
    let body = limits.ok();
    assert_eq!(body["guardian"]["used"], 1);
    assert_eq!(body["guardian"]["limit"], 1);
    assert!(body["guardian"]["resetsAt"].is_string());
    assert_eq!(body["tenant"]["used"], 1);
    assert_eq!(body["tenant"]["limit"], 10000, "the documented default");
    set(&api, json!({"inviteLimitPerTenantPerDay": 1})).await;
    let other = start_chat(&api, &[&par2]).await;
    assert_eq!(
        other["invitations"][0]["reason"], "tenant_daily_limit",
        "{other}"
    );
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chats").await, 2);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM outbox").await, 1);
}

async fn gateway_answers_are_retried_failed_or_dead_lettered(backend: Backend) {
    let gateway = MockServer::start().await;
    let api = api(backend, "file://data/unused-mail", &gateway.uri()).await;
    set(&api, json!({"preferredInviteChannel": "sms"})).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .and(wiremock::matchers::body_string_contains("%2B12025550143"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7200"))
        .mount(&gateway)
        .await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .and(wiremock::matchers::body_string_contains("%2B12025550177"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 21211, "message": "invalid 'To'"})),
        )
        .mount(&gateway)
        .await;
    start_chat(&api, &[&par1, &par2]).await;
    let stats = dispatch(&api).await;
    assert_eq!((stats.retried, stats.failed), (1, 1), "{stats:?}");
    let retry_in = api
        .db
        .texts(
            "SELECT CAST(next_attempt_at AS TEXT) FROM outbox WHERE recipient = '+12025550143'",
            vec![],
        )
        .await;
    let due: chrono::DateTime<chrono::Utc> = db::query(
        &api.db.conn,
        "SELECT next_attempt_at FROM outbox WHERE recipient = '+12025550143'",
        vec![],
    )
    .await
    .unwrap()[0]
        .try_get_by_index(0)
        .unwrap();
    let wait = due - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::seconds(7000),
        "Retry-After (2 h) wins over the 60 s backoff: {retry_in:?}"
    );
    let failed = api
        .db
        .texts(
            "SELECT last_error FROM outbox WHERE status = 'failed'",
            vec![],
        )
        .await;
    assert!(failed[0].contains("21211"), "{failed:?}");
    // Out of attempts: dead, with the last error; then an admin requeues it.
    for _ in 0..2 {
        make_due(&api).await;
        dispatch(&api).await;
    }
    let dead = api.get("/api/v1/outbox", Some(&api.admin("nyc"))).await;
    let view = dead.ok();
    assert_eq!(view["counts"]["dead"], 1, "{view}");
    assert_eq!(view["counts"]["failed"], 1);
    let letter = view["deadLetters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["status"] == "dead")
        .unwrap()
        .clone();
    assert_eq!(letter["attempts"], 3);
    assert!(letter["lastError"].as_str().unwrap().contains("429"));
    let requeued = post(
        &api,
        &format!("/api/v1/outbox/{}/requeue", letter["id"].as_str().unwrap()),
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert_eq!(requeued.status, 204);
    assert!(statuses(&api).await.contains(&"queued".to_string()));
    // A gateway slower than sms.timeout_seconds is a transient failure.
    gateway.reset().await;
    Mock::given(method("POST"))
        .and(path(SMS_PATH))
        .respond_with(ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(3)))
        .mount(&gateway)
        .await;
    let slow = dispatch(&api).await;
    assert_eq!(slow.retried, 1, "{slow:?}");
    let error = api
        .db
        .texts(
            "SELECT last_error FROM outbox WHERE status = 'queued'",
            vec![],
        )
        .await;
    assert!(error[0].contains("did not answer in time"), "{error:?}");
}

async fn smtp_4xx_is_retried_and_5xx_is_final(backend: Backend) {
    let smtp =
        ScriptedSmtp::start(vec!["451 4.3.0 try again later", "550 5.1.1 no such user"]).await;
    let api = api(backend, &smtp.url(), "").await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    start_chat(&api, &[&par1]).await;
    let first = dispatch(&api).await;
    assert_eq!(first.retried, 1, "451 is transient: {first:?}");
    start_chat(&api, &[&par2]).await;
    let second = dispatch(&api).await;
    assert_eq!(second.failed, 1, "550 is final: {second:?}");
    make_due(&api).await;
    let third = dispatch(&api).await;
    assert_eq!(third.sent, 1, "{third:?}");
    assert_eq!(smtp.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    let errors = api
        .db
        .texts(
            "SELECT COALESCE(last_error, '') FROM outbox ORDER BY id",
            vec![],
        )
        .await;
    assert!(errors[0].contains("451"), "{errors:?}");
    assert!(errors[1].contains("550"), "{errors:?}");
    // The refused address is suppressed: no more invitations until an admin lifts it.
    let list = api
        .get("/api/v1/email-suppressions", Some(&api.admin("nyc")))
        .await;
    let suppressed = list.ok()["items"].as_array().unwrap().clone();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["email"], "tom.ng@example.com");
    let again = start_chat(&api, &[&par2]).await;
    assert_eq!(
        again["invitations"].as_array().unwrap().last().unwrap()["reason"],
        "email_suppressed",
        "{again}"
    );
    let teacher = api
        .get("/api/v1/email-suppressions", Some(&api.teacher()))
        .await;
    assert_eq!(teacher.error(403), "forbidden");
    let id = suppressed[0]["id"].as_str().unwrap();
    let lifted = api
        .send(
            Request::delete(format!("/api/v1/email-suppressions/{id}"))
                .header("authorization", format!("Bearer {}", api.admin("nyc")))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(lifted.status, 204);
    let after = start_chat(&api, &[&par2]).await;
    let statuses: Vec<&str> = after["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"queued"),
        "invited again once lifted: {after}"
    );
}

/// Queues `n` invitations: one chat per extra guardian of stu-1.
pub async fn queue_many(api: &Api, n: usize) {
    let fixture = crate::support::Fixture::v21();
    for i in 0..n {
        fixture
            .append(
                "users.csv",
                &format!("bulk-g{i},g{i},Guardian,{i},g{i}@example.com,,"),
            )
            .append("relationships.csv", &format!("stu-1,bulk-g{i},guardian"));
    }
    let report = api
        .db
        .import(
            "nyc",
            parent_connection::sync::Format::SdsV21,
            fixture.path(),
            crate::support::APPLY,
        )
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    for i in 0..n {
        let contact = contact_id(api, "nyc", &format!("bulk-g{i}")).await;
        start_chat(api, &[&contact]).await;
    }
    assert_eq!(api.db.count("SELECT COUNT(*) FROM outbox").await, n as i64);
}

fn message_ids(dir: &std::path::Path) -> Vec<String> {
    let mut ids: Vec<String> = read_dir_texts(dir)
        .iter()
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    ids.sort();
    ids
}

async fn a_dispatcher_killed_mid_batch_loses_nothing(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api(backend, &format!("file://{}", files.path().display()), "").await;
    queue_many(&api, 6).await;
    // A dispatcher claims three rows and dies before recording anything.
    let now = chrono::Utc::now();
    let lease = now + chrono::Duration::seconds(120);
    let in_flight = store::claim(&api.db.conn, "killed-worker", 3, now, lease)
        .await
        .unwrap();
    assert_eq!(in_flight.len(), 3);
    let survivor = dispatch(&api).await;
    assert_eq!(
        survivor.sent, 3,
        "the other rows go out; the claimed ones wait for their lease"
    );
    // The lease runs out: the in-flight rows are claimed again and sent.
    db::exec(
        &api.db.conn,
        "UPDATE outbox SET lease_until = $1 WHERE status = 'sending'",
        vec![Value::ChronoDateTimeUtc(Some(
            now - chrono::Duration::seconds(1),
        ))],
    )
    .await
    .unwrap();
    let recovered = dispatch(&api).await;
    assert_eq!(recovered.sent, 3, "{recovered:?}");
    let ids = message_ids(files.path());
    assert_eq!(ids.len(), 6);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 6, "nothing lost, nothing sent twice here");
    assert_eq!(
        statuses(&api).await,
        vec!["sent"; 6]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    );
    // The dead worker's late answer does not overwrite the new outcome.
    let late = store::record(
        &api.db.conn,
        in_flight[0].hold(),
        &store::Outcome::Failed {
            error: "late".into(),
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(!late);
}

async fn two_dispatchers_never_send_the_same_row_twice(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api(backend, &format!("file://{}", files.path().display()), "").await;
    queue_many(&api, 60).await;
    let mut config = api.config.clone();
    config.outbox.batch_size = 7;
    let (a, b) = (
        parent_connection::server::dispatcher(api.db.conn.clone(), &config).unwrap(),
        parent_connection::server::dispatcher(api.db.conn.clone(), &config).unwrap(),
    );
    let (left, right) = tokio::join!(a.drain(), b.drain());
    let (left, right) = (left.unwrap(), right.unwrap());
    assert_eq!(left.sent + right.sent, 60, "{left:?} {right:?}");
    let ids = message_ids(files.path());
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), 60);
    assert_eq!(unique.len(), 60, "no row was sent twice");
}

async fn webhook(api: &Api, tenant: &str, secret: Option<&str>, from: &str, body: &str) -> Reply {
    let mut builder = Request::post(format!("/api/v1/sms/inbound/{tenant}"))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(secret) = secret {
        builder = builder.header("x-webhook-secret", secret);
    }
    let form = format!(
        "From={}&To=%2B15005550006&Body={}",
        from.replace('+', "%2B"),
        body.replace(' ', "+")
    );
    api.send(builder.body(Body::from(form)).unwrap()).await
}

async fn the_sms_webhook_handles_stop_and_start(backend: Backend) {
    let gateway = sms_gateway(vec![]).await;
    let files = tempfile::tempdir().unwrap();
    let api = api(
        backend,
        &format!("file://{}", files.path().display()),
        &gateway.uri(),
    )
    .await;
    set(&api, json!({"preferredInviteChannel": "sms"})).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    assert_eq!(
        webhook(&api, "nyc", None, "+12025550143", "STOP")
            .await
            .error(401),
        "invalid_webhook_secret"
    );
    assert_eq!(
        webhook(&api, "nyc", Some("wrong"), "+12025550143", "STOP")
            .await
            .error(401),
        "invalid_webhook_secret"
    );
    assert_eq!(
        webhook(
            &api,
            "nowhere",
            Some(WEBHOOK_SECRET),
            "+12025550143",
            "STOP"
        )
        .await
        .error(404),
        "not_found"
    );
    // par-2's SMS is queued, then par-2 replies STOP: it is never texted.
    start_chat(&api, &[&par2]).await;
    let stop = webhook(&api, "nyc", Some(WEBHOOK_SECRET), "(202) 555-0177", "stop").await;
    assert_eq!(stop.status, 200, "{:?}", stop.body);
    let stats = dispatch(&api).await;
    assert_eq!(stats.suppressed, 1, "{stats:?}");
    assert!(gateway.received_requests().await.unwrap().is_empty());
    // par-1 opts out too: the next invitation falls back to email, saying why.
    webhook(
        &api,
        "nyc",
        Some(WEBHOOK_SECRET),
        "+12025550143",
        "UNSUBSCRIBE",
    )
    .await;
    let chat = start_chat(&api, &[&par1]).await;
    assert_eq!(chat["invitations"][0]["channel"], "email", "{chat}");
    assert_eq!(chat["invitations"][0]["reason"], "sms_opted_out");
    // START opts back in; the opt-out is per sending number, whichever tenant's URL took it.
    webhook(&api, "bos", Some(WEBHOOK_SECRET), "+12025550143", "START").await;
    assert_eq!(api.db.count("SELECT COUNT(*) FROM sms_opt_outs").await, 1);
    let chat = start_chat(&api, &[&par1]).await;
    let latest = chat["invitations"].as_array().unwrap().last().unwrap();
    assert_eq!(latest["channel"], "sms", "{chat}");
}

async fn joined_guardians_are_not_invited_and_the_outbox_is_for_admins(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api(backend, &format!("file://{}", files.path().display()), "").await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let guardian = api.mint(
        "nyc",
        Subject::Contact {
            contact_id: par1.clone(),
        },
    );
    api.get("/api/v1/guardian/chats", Some(&guardian))
        .await
        .ok();
    let chat = start_chat(&api, &[&par1]).await;
    assert_eq!(
        chat["invitations"],
        json!([]),
        "a guardian who joined is not invited"
    );
    assert_eq!(api.db.count("SELECT COUNT(*) FROM outbox").await, 0);
    for token in [api.teacher(), api.user("nyc", "ta-1", &[Role::TenantAdmin])] {
        assert_eq!(
            api.get("/api/v1/outbox", Some(&token)).await.error(403),
            "forbidden"
        );
    }
    let other_tenant = api.get("/api/v1/outbox", Some(&api.admin("bos"))).await;
    assert_eq!(other_tenant.ok()["counts"]["queued"], 0);
}

/// STARTTLS to a relay whose certificate comes from a private CA (`mail.tls_root_certificate`);
/// without trusting that CA the send fails instead of going out unverified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_to_a_relay_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::outbox_support::test_certificates(certs.path());
    let smtp = Smtp::start_tls(&cert, &key);
    let url = format!("smtp://localhost:{}?tls=required", smtp.port);
    let untrusted = {
        let url = url.clone();
        api_with_mail(move |config| config.mail.url = url).await
    };
    let par1 = contact_id(&untrusted, "nyc", "par-1").await;
    start_chat(&untrusted, &[&par1]).await;
    let refused = dispatch(&untrusted).await;
    assert_eq!(
        refused.sent, 0,
        "an unverified certificate is not accepted: {refused:?}"
    );
    assert!(smtp.messages().is_empty());
    let trusted = api_with_mail(move |config| {
        config.mail.url = url;
        config.mail.tls_root_certificate = ca.display().to_string();
    })
    .await;
    let par1 = contact_id(&trusted, "nyc", "par-1").await;
    start_chat(&trusted, &[&par1]).await;
    let sent = dispatch(&trusted).await;
    assert_eq!(sent.sent, 1, "{sent:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        header(&messages[0], "To").as_deref(),
        Some("linda.ng@example.com")
    );
}

async fn api_with_mail(
    change: impl FnOnce(&mut parent_connection::config::Config) + Send + 'static,
) -> Api {
    Api::with(Backend::Sqlite, change).await
}

/// Ids of the stored invitations matching `condition`, in id order.
async fn invitation_ids(api: &Api, condition: &str) -> Vec<String> {
    let sql = format!("SELECT CAST(id AS TEXT) FROM invitations WHERE {condition} ORDER BY id");
    api.db.texts(&sql, vec![]).await
}

async fn invitation_lists_page_through_every_invitation_once(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let api = api(backend, &format!("file://{}", files.path().display()), "").await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    start_chat(&api, &[&par1]).await;
    let chat = start_chat(&api, &[&par1, &par2]).await;
    let chat = chat["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/chats/{chat}/invitations");
    let resend = post(
        &api,
        &path,
        &api.teacher(),
        Some(json!({"contactId": par2})),
        &[],
    )
    .await;
    assert!(resend.status.is_success(), "{}", resend.body);
    let third = post(
        &api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-2", "contactIds": [par1]})),
        &[],
    )
    .await;
    assert_eq!(third.status, 201, "{}", third.body);

    let (of_chat, pages) = every_page(&api, &path, &api.teacher(), 2).await;
    assert_eq!(pages, 2);
    assert_eq!(
        field(&of_chat, "id"),
        invitation_ids(&api, &format!("chat_id = {chat}")).await,
        "oldest first, each once"
    );
    assert_eq!(
        field(&of_chat, "contactId"),
        vec![par1.clone(), par2.clone(), par2.clone()]
    );
    let (as_admin, _) = every_page(&api, &path, &api.admin("nyc"), 2).await;
    assert_eq!(as_admin, of_chat);
    let other = api.user("nyc", "tch-2", &[Role::Teacher]);
    assert_eq!(
        api.get(&format!("{path}?limit=2"), Some(&other))
            .await
            .error(404),
        "not_found"
    );

    let contact_path = format!("/api/v1/contacts/{par1}/invitations");
    let (of_contact, pages) = every_page(&api, &contact_path, &api.admin("nyc"), 2).await;
    assert_eq!(pages, 2);
    let mut newest_first = invitation_ids(&api, &format!("contact_id = {par1}")).await;
    newest_first.reverse();
    assert_eq!(newest_first.len(), 3);
    assert_eq!(field(&of_contact, "id"), newest_first);
    let bos = api.get(&contact_path, Some(&api.admin("bos"))).await;
    assert_eq!(
        bos.error(404),
        "not_found",
        "another tenant's contact is none of this one"
    );
    let bad = api
        .get(&format!("{contact_path}?cursor=x"), Some(&api.admin("nyc")))
        .await;
    assert_eq!(bad.error(400), "invalid_query");
}

async fn the_suppression_list_pages_newest_first(backend: Backend) {
    let api = api(backend, "file:///dev/null", "").await;
    let tenant = |slug: &str| format!("SELECT id FROM tenants WHERE slug = '{slug}'");
    let (nyc, bos) = (
        api.db.count(&tenant("nyc")).await,
        api.db.count(&tenant("bos")).await,
    );
    let now = chrono::Utc::now();
    let mut emails = Vec::new();
    for n in 1..=5 {
        let email = format!("gone{n}@example.com");
        store::suppress_email(&api.db.conn, TenantId(nyc), &email, "550 no such user", now)
            .await
            .unwrap();
        emails.push(email);
    }
    store::suppress_email(&api.db.conn, TenantId(bos), "bos@example.com", "550", now)
        .await
        .unwrap();
    emails.reverse();
    let admin = api.admin("nyc");
    let (items, pages) = every_page(&api, "/api/v1/email-suppressions", &admin, 2).await;
    assert_eq!(field(&items, "email"), emails, "newest first, each once");
    assert_eq!(pages, 3);
    let (bos_items, _) = every_page(&api, "/api/v1/email-suppressions", &api.admin("bos"), 2).await;
    assert_eq!(field(&bos_items, "email"), vec!["bos@example.com"]);
}
