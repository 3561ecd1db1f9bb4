//! Page sessions and the settings page without a browser (issue 18, item 1): `POST
//! /web/session` only when `web.token_signin` is on; the cookie's attributes; the row keeps
//! only a hash of the token; idle and absolute expiry; sign-out; CSRF on every form; the
//! policy decides who reads and who changes settings; a bad value comes back next to its
//! field and saves nothing; a good form saves in one audited change.

use crate::api_support::*;
use crate::db_tests;
use crate::support::Backend;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, Utc};
use parent_connection::auth::Role;
use parent_connection::entities::web_sessions;
use parent_connection::tenants::{self, settings};
use sea_orm::{EntityTrait, sea_query::Expr};

db_tests!(
    token_sign_in_is_off_by_default,
    a_session_cookie_is_http_only_lax_and_stored_hashed,
    pages_without_a_session_ask_to_sign_in,
    sessions_end_when_idle_expired_or_signed_out,
    a_tenant_admin_changes_settings_through_the_form,
    the_policy_decides_who_sees_the_settings_page,
);

async fn api_with_token_signin(backend: Backend) -> Api {
    Api::with(backend, |config| config.web.token_signin = true).await
}

fn tenant_admin(api: &Api) -> String {
    api.user("nyc", "ta-1", &[Role::TenantAdmin])
}

/// Sets `column` of every session to `ago` before now.
async fn set_clock(api: &Api, column: web_sessions::Column, ago: Duration) {
    web_sessions::Entity::update_many()
        .col_expr(column, Expr::value(Utc::now() - ago))
        .exec(&api.db.conn)
        .await
        .unwrap();
}

async fn token_sign_in_is_off_by_default(backend: Backend) {
    let api = Api::new(backend).await;
    let reply = api
        .send(
            Request::post("/web/session")
                .header("authorization", format!("Bearer {}", tenant_admin(&api)))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.headers.get("set-cookie").is_none());
    assert!(html(&reply).contains("Page not found"), "an HTML page");
    assert_eq!(api.db.count("SELECT COUNT(*) FROM web_sessions").await, 0);
}

async fn a_session_cookie_is_http_only_lax_and_stored_hashed(backend: Backend) {
    let api = api_with_token_signin(backend).await;
    let reply = api
        .send(
            Request::post("/web/session?next=/admin/settings")
                .header("authorization", format!("Bearer {}", tenant_admin(&api)))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers["location"], "/admin/settings");
    let set = reply.headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("pc_session="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: not Secure: {set}");
    let token = set
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("pc_session=");
    let stored = api
        .db
        .texts("SELECT token_hash FROM web_sessions", vec![])
        .await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token, "the row holds a hash, not the token");
    assert_eq!(stored[0].len(), 64);
    let audit = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'web.sign_in'",
            vec![],
        )
        .await;
    assert_eq!(audit, ["web:user:ta-1@nyc"]);

    // A redirect target off this site is ignored.
    let reply = api
        .send(
            Request::post("/web/session?next=//evil.example/")
                .header("authorization", format!("Bearer {}", tenant_admin(&api)))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.headers["location"], "/");

    // Over TLS the cookie is Secure and host-only (`__Host-`).
    let tls = Api::with(backend, |config| {
        config.web.token_signin = true;
        config.web.public_url = "https://parents.example.org".into();
    })
    .await;
    let cookie = page_session(&tls, &tenant_admin(&tls)).await;
    assert!(cookie.starts_with("__Host-pc_session="), "{cookie}");
    let page = page_get(&tls, "/admin/settings", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);

    // The development sign-in form: the token pasted into a form field.
    let reply = api
        .send(
            Request::post("/web/session")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "token={}&next=%2Fadmin%2Fsettings",
                    tenant_admin(&api)
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers["location"], "/admin/settings");
    assert!(reply.headers.contains_key("set-cookie"));

    // Refused: an app-only token, a token that does not verify, no token.
    let app = api.app("nyc", &["EduRoster.Read.All"]);
    for (authorization, status) in [
        (Some(format!("Bearer {app}")), StatusCode::FORBIDDEN),
        (
            Some("Bearer nonsense".to_string()),
            StatusCode::UNAUTHORIZED,
        ),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let mut request = Request::post("/web/session");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let reply = api.send(request.body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, status);
        assert!(reply.headers.get("set-cookie").is_none());
    }
}

async fn pages_without_a_session_ask_to_sign_in(backend: Backend) {
    let api = api_with_token_signin(backend).await;
    let reply = page_get(&api, "/admin/settings?x=1", None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.headers["location"],
        "/signin?next=/admin/settings%3Fx%3D1"
    );
    // A cookie that names no session is the same as none.
    let reply = page_get(&api, "/", Some("pc_session=made-up")).await;
    assert_eq!(reply.headers["location"], "/signin?next=/");
    // A form posted without a session: the 401 page, nothing changed.
    let reply = page_post(
        &api,
        "/admin/settings",
        "pc_session=made-up",
        &[("csrf", "x"), ("preferred-invite-channel", "sms")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(html(&reply).contains("Please sign in"));
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let now = settings::get(&api.db.conn, tenant.id).await.unwrap();
    assert_eq!(now.preferred_invite_channel, "email");
}

async fn sessions_end_when_idle_expired_or_signed_out(backend: Backend) {
    let api = api_with_token_signin(backend).await;
    let start = page_session(&api, &tenant_admin(&api)).await;
    let home = page_get(&api, "/", Some(&start)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(html(&home).contains("ta-1 (tenant-admin) · nyc"));

    // Idle: no request for longer than web.session_idle_minutes (30).
    set_clock(
        &api,
        web_sessions::Column::LastSeenAt,
        Duration::minutes(31),
    )
    .await;
    let reply = page_get(&api, "/", Some(&start)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "idle session ended");
    assert_eq!(api.db.count("SELECT COUNT(*) FROM web_sessions").await, 0);

    // Absolute: past expires_at, however recent the last request.
    let second = page_session(&api, &tenant_admin(&api)).await;
    set_clock(&api, web_sessions::Column::ExpiresAt, Duration::minutes(1)).await;
    let reply = page_get(&api, "/", Some(&second)).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "expired session ended");

    // Sign-out: needs the session's CSRF token; then the cookie opens nothing.
    let third = page_session(&api, &tenant_admin(&api)).await;
    let home = page_get(&api, "/", Some(&third)).await;
    let csrf = csrf_of(&home);
    let refused = page_post(&api, "/web/signout", &third, &[("csrf", "wrong")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = page_post(&api, "/web/signout", &third, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(html(&out).contains("You are signed out"));
    let cleared = out.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let after = page_get(&api, "/", Some(&third)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM web_sessions").await, 0);
    let actions = api
        .db
        .texts(
            "SELECT action FROM audit_log WHERE action LIKE 'web.%' ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(
        actions,
        ["web.sign_in", "web.sign_in", "web.sign_in", "web.sign_out"]
    );
}

async fn a_tenant_admin_changes_settings_through_the_form(backend: Backend) {
    let api = api_with_token_signin(backend).await;
    let cookie = page_session(&api, &tenant_admin(&api)).await;
    let page = page_get(&api, "/admin/settings", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = html(&page);
    for label in ["Preferred invite channel", "Save", "Digest time zone"] {
        assert!(text.contains(label), "{label} missing");
    }
    let csrf = csrf_of(&page);
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();

    // A form without the session's CSRF token changes nothing.
    let forged = page_post(
        &api,
        "/admin/settings",
        &cookie,
        &[("csrf", "forged"), ("preferred-invite-channel", "sms")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // One bad value: 422, the error next to its field, nothing saved (not even the good one).
    let bad = page_post(
        &api,
        "/admin/settings",
        &cookie,
        &[
            ("csrf", &csrf),
            ("preferred-invite-channel", "sms"),
            ("digest-hour", "25"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&bad);
    assert!(text.contains(r#"id="f-digest-hour-error""#), "{text}");
    assert!(text.contains("valid values are whole numbers from 0 to 23"));
    assert!(text.contains(r#"aria-describedby="f-digest-hour-hint f-digest-hour-error""#));
    assert!(text.contains(r#"value="25""#), "the typed value is kept");
    assert!(text.contains("There is a problem"));
    let now = settings::get(&api.db.conn, tenant.id).await.unwrap();
    assert_eq!(now.preferred_invite_channel, "email");
    assert_eq!(now.digest_hour, 8);

    // A good form: saved, audited once with the page's actor, shown as saved.
    let good = page_post(
        &api,
        "/admin/settings",
        &cookie,
        &[
            ("csrf", &csrf),
            ("preferred-invite-channel", "sms"),
            ("digest-hour", "6"),
            ("digest-time-zone", "America/New_York"),
        ],
    )
    .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
    assert_eq!(good.headers["location"], "/admin/settings?saved=1");
    let now = settings::get(&api.db.conn, tenant.id).await.unwrap();
    assert_eq!(now.preferred_invite_channel, "sms");
    assert_eq!(now.digest_hour, 6);
    let audit = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'settings.update'",
            vec![],
        )
        .await;
    assert_eq!(audit, ["web:user:ta-1@nyc"]);
    let shown = page_get(&api, "/admin/settings?saved=1", Some(&cookie)).await;
    assert!(html(&shown).contains("Settings saved."));
    assert!(html(&shown).contains(r#"<option value="sms" selected>SMS</option>"#));
}

async fn the_policy_decides_who_sees_the_settings_page(backend: Backend) {
    let api = api_with_token_signin(backend).await;
    // A teacher: the 403 page, no Settings link on the start page.
    let teacher = page_session(&api, &api.teacher()).await;
    let reply = page_get(&api, "/admin/settings", Some(&teacher)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(html(&reply).contains("settings need the tenant-admin"));
    let home = page_get(&api, "/", Some(&teacher)).await;
    assert!(!html(&home).contains("/admin/settings"));
    // A global admin reads the settings but gets no form; a post is refused.
    let admin = page_session(&api, &api.admin("nyc")).await;
    let reply = page_get(&api, "/admin/settings", Some(&admin)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let text = html(&reply);
    assert!(text.contains("Only a tenant administrator can change these settings."));
    assert!(!text.contains("<select"));
    let csrf = csrf_of(&reply);
    let refused = page_post(
        &api,
        "/admin/settings",
        &admin,
        &[("csrf", &csrf), ("preferred-invite-channel", "sms")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Another tenant's admin changes only their own tenant.
    let bos = page_session(&api, &api.user("bos", "ta-9", &[Role::TenantAdmin])).await;
    let page = page_get(&api, "/admin/settings", Some(&bos)).await;
    let csrf = csrf_of(&page);
    let saved = page_post(
        &api,
        "/admin/settings",
        &bos,
        &[("csrf", &csrf), ("preferred-invite-channel", "sms")],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let nyc = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let now = settings::get(&api.db.conn, nyc.id).await.unwrap();
    assert_eq!(now.preferred_invite_channel, "email");
    // One session's CSRF token does not work with another session.
    let stolen = page_post(
        &api,
        "/admin/settings",
        &page_session(&api, &tenant_admin(&api)).await,
        &[("csrf", &csrf), ("preferred-invite-channel", "sms")],
    )
    .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
}
