//! SMS consent (issue 19, item 3): an opt-out belongs to the sending number and the
//! recipient (a STOP through one tenant's webhook stops every tenant texting from the shared
//! number), it is stored as a keyed hash, the CTIA keywords are answered in TwiML, the
//! webhook takes Twilio's `X-Twilio-Signature` or the shared secret, and a burst of replies
//! from the gateway is never rate limited.

use crate::api_support::*;
use crate::db_tests;
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use parent_connection::db;
use sea_orm::Value;

db_tests!(
    a_stop_to_the_shared_sender_stops_every_tenant,
    the_webhook_takes_a_twilio_signature_and_is_never_rate_limited,
);

const SENDER: &str = "+15005550006";
const SECRET: &str = "hook-secret-0123456789";
const AUTH_TOKEN: &str = "twilio-auth-token-0123";
const PUBLIC: &str = "https://pc.example.org";
const NUMBER: &str = "+12025550143";

async fn api(backend: Backend) -> Api {
    Api::with(backend, |config| {
        config.sms.url = "http://127.0.0.1:9".into();
        config.sms.account_sid = "AC123".into();
        config.sms.auth_token = AUTH_TOKEN.into();
        config.sms.from = SENDER.into();
        config.sms.sender_name = "Acme Schools".into();
        config.sms.webhook_secret = SECRET.into();
        config.web.public_url = PUBLIC.into();
        config.api.client_requests_per_second = 1;
        config.api.client_burst = 2;
    })
    .await
}

fn form(from: &str, body: &str) -> String {
    serde_urlencoded::to_string([("From", from), ("To", SENDER), ("Body", body)]).unwrap()
}

/// A reply posted to tenant `tenant`'s webhook with the shared secret.
async fn reply(api: &Api, tenant: &str, body: &str) -> Reply {
    api.send(
        Request::post(format!("/api/v1/sms/inbound/{tenant}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-webhook-secret", SECRET)
            .body(Body::from(form(NUMBER, body)))
            .unwrap(),
    )
    .await
}

fn text(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.headers["content-type"], "text/xml");
    reply.body.as_str().unwrap_or_default().to_string()
}

/// Queues a text to `NUMBER` for `tenant` directly in the outbox (its invitation does not
/// exist: only the opt-out check can tell why it is not sent).
async fn queue_text(api: &Api, tenant: &str) {
    db::exec(
        &api.db.conn,
        "INSERT INTO outbox (tenant_id, kind, ref_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
         SELECT id, 'invitation', 0, 'sms', $1, 'queued', 0, $2, $2, $2 FROM tenants WHERE slug = $3",
        vec![
            NUMBER.into(),
            Value::ChronoDateTimeUtc(Some(chrono::Utc::now())),
            tenant.into(),
        ],
    )
    .await
    .unwrap();
}

async fn a_stop_to_the_shared_sender_stops_every_tenant(backend: Backend) {
    let api = api(backend).await;
    let stop = text(&reply(&api, "nyc", " Stop ").await);
    assert!(
        stop.contains("<Response><Message>Acme Schools: you are unsubscribed"),
        "{stop}"
    );
    assert!(stop.contains("Reply START"), "{stop}");
    // Stored as a keyed hash of (sender, recipient): no number, no tenant.
    assert_eq!(api.db.count("SELECT COUNT(*) FROM sms_opt_outs").await, 1);
    let stored = api
        .db
        .texts("SELECT key_hash FROM sms_opt_outs", vec![])
        .await;
    assert!(!stored[0].contains("2025550143"), "{stored:?}");
    // Boston texts from the same number: its text to the number is suppressed too.
    queue_text(&api, "bos").await;
    let stats = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .unwrap()
        .drain()
        .await
        .unwrap();
    assert_eq!(stats.suppressed, 1, "{stats:?}");
    assert_eq!(
        api.db.texts("SELECT last_error FROM outbox", vec![]).await,
        vec!["the number replied STOP"]
    );
    let help = text(&reply(&api, "bos", "info").await);
    assert!(
        help.contains("Acme Schools:") && help.contains("STOP"),
        "{help}"
    );
    assert!(help.contains("Msg&amp;data"), "escaped: {help}");
    assert_eq!(
        text(&reply(&api, "bos", "stop please").await),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
    );
    let start = text(&reply(&api, "bos", "UNSTOP").await);
    assert!(start.contains("subscribed again"), "{start}");
    assert_eq!(api.db.count("SELECT COUNT(*) FROM sms_opt_outs").await, 0);
}

/// Twilio's signature of a POST of `params` to `url`.
fn sign(url: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine;
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut signed = url.to_string();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        AUTH_TOKEN.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, signed.as_bytes()))
}

async fn signed(api: &Api, signature: &str) -> Reply {
    api.send(
        Request::post("/api/v1/sms/inbound/nyc")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(Body::from(form(NUMBER, "STOP")))
            .unwrap(),
    )
    .await
}

async fn the_webhook_takes_a_twilio_signature_and_is_never_rate_limited(backend: Backend) {
    let api = api(backend).await;
    let url = format!("{PUBLIC}/api/v1/sms/inbound/nyc");
    let good = sign(&url, &[("From", NUMBER), ("To", SENDER), ("Body", "STOP")]);
    // Far past the client limit (1/s, burst 2): the gateway's replies all go through.
    for _ in 0..8 {
        text(&signed(&api, &good).await);
    }
    assert_eq!(api.db.count("SELECT COUNT(*) FROM sms_opt_outs").await, 1);
    let other_url = sign(
        "https://elsewhere.example/api/v1/sms/inbound/nyc",
        &[("From", NUMBER), ("To", SENDER), ("Body", "STOP")],
    );
    for wrong in [other_url.as_str(), "AAAA", ""] {
        assert_eq!(
            signed(&api, wrong).await.error(401),
            "invalid_webhook_secret",
            "{wrong}"
        );
    }
}
