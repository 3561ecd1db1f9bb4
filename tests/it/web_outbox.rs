//! The outbox page without a browser (issue 18, item 2): counts, a dead letter requeued, a
//! suppressed address lifted, a digest unsubscribe lifted — each audited like its API
//! route; tenant admins manage only the digest unsubscribes; teachers see nothing; every
//! button needs the session's CSRF token.

use crate::api_support::*;
use crate::approvals::contact_id;
use crate::db_tests;
use crate::invitations::start_chat;
use crate::support::Backend;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use parent_connection::auth::Role;
use parent_connection::outbox;
use parent_connection::tenants;

db_tests!(
    an_admin_requeues_lifts_and_resubscribes,
    who_may_use_the_outbox_page
);

async fn api(backend: Backend) -> Api {
    Api::with(backend, |config| config.web.token_signin = true).await
}

/// A dead invitation, a suppressed address and an unsubscribed guardian in `nyc`: the dead
/// message's id and the guardian's contact id.
pub(crate) async fn trouble(api: &Api) -> (String, String) {
    let par1 = contact_id(api, "nyc", "par-1").await;
    start_chat(api, &[&par1]).await;
    api.db
        .exec("UPDATE outbox SET status = 'dead', attempts = 5, last_error = 'gateway said no'")
        .await;
    let dead = api
        .db
        .texts("SELECT CAST(id AS TEXT) FROM outbox", vec![])
        .await;
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap().id;
    outbox::suppress_email(
        &api.db.conn,
        tenant,
        "bounced@example.com",
        "550 no such user",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let unsubscribed = api
        .send(
            Request::post("/api/v1/digest/unsubscribes")
                .header("authorization", format!("Bearer {}", api.admin("nyc")))
                .header("content-type", "application/json")
                .body(Body::from(format!(r#"{{"contactId":"{par1}"}}"#)))
                .unwrap(),
        )
        .await;
    assert_eq!(unsubscribed.status, StatusCode::NO_CONTENT);
    (dead[0].clone(), par1)
}

async fn an_admin_requeues_lifts_and_resubscribes(backend: Backend) {
    let api = api(backend).await;
    let (dead, par1) = trouble(&api).await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, "/admin/outbox", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = html(&page);
    assert!(text.contains("gateway said no"), "{text}");
    assert!(text.contains("bounced@example.com"));
    assert!(text.contains("Linda Ng"));
    let csrf = csrf_of(&page);

    let forged = page_post(
        &api,
        &format!("/admin/outbox/{dead}/requeue"),
        &cookie,
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let requeued = page_post(
        &api,
        &format!("/admin/outbox/{dead}/requeue"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(requeued.status, StatusCode::SEE_OTHER);
    assert_eq!(requeued.headers["location"], "/admin/outbox?done=requeued");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM outbox WHERE status = 'queued'")
            .await,
        1
    );
    let again = page_post(
        &api,
        &format!("/admin/outbox/{dead}/requeue"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "no longer dead");

    let suppression = api
        .db
        .texts("SELECT CAST(id AS TEXT) FROM email_suppressions", vec![])
        .await;
    let lifted = page_post(
        &api,
        &format!("/admin/outbox/suppressions/{}/lift", suppression[0]),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(lifted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM email_suppressions")
            .await,
        0
    );

    let resubscribed = page_post(
        &api,
        &format!("/admin/outbox/unsubscribes/{par1}/lift"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(resubscribed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM digest_unsubscribes")
            .await,
        0
    );
    let shown = page_get(&api, "/admin/outbox?done=resubscribed", Some(&cookie)).await;
    assert!(html(&shown).contains("gets the weekly digest again"));
    let actors = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE actor LIKE 'web:%' AND action <> 'web.sign_in' ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(
        actors.len(),
        3,
        "requeue, lift, resubscribe audited: {actors:?}"
    );
}

async fn who_may_use_the_outbox_page(backend: Backend) {
    let api = api(backend).await;
    let (dead, par1) = trouble(&api).await;
    // A tenant admin: the digest unsubscribes only.
    let tenant_admin = page_session(&api, &api.user("nyc", "ta-1", &[Role::TenantAdmin])).await;
    let page = page_get(&api, "/admin/outbox", Some(&tenant_admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = html(&page);
    assert!(text.contains("Linda Ng"));
    assert!(!text.contains("gateway said no"));
    assert!(!text.contains("bounced@example.com"));
    let csrf = csrf_of(&page);
    let refused = page_post(
        &api,
        &format!("/admin/outbox/{dead}/requeue"),
        &tenant_admin,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // A teacher: nothing.
    let teacher = page_session(&api, &api.teacher()).await;
    assert_eq!(
        page_get(&api, "/admin/outbox", Some(&teacher)).await.status,
        StatusCode::FORBIDDEN
    );
    // Another tenant's admin cannot touch nyc's rows.
    let bos = page_session(&api, &api.admin("bos")).await;
    let page = page_get(&api, "/admin/outbox", Some(&bos)).await;
    assert!(!html(&page).contains("gateway said no"));
    let csrf = csrf_of(&page);
    let other = page_post(
        &api,
        &format!("/admin/outbox/unsubscribes/{par1}/lift"),
        &bos,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM digest_unsubscribes")
            .await,
        1
    );
}
