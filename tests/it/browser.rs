//! The pages in a real browser (issue 18, items 5 and 6): headless Chromium driven through
//! chromedriver with `fantoccini`, against the real server on loopback. On every page a test
//! visits, axe-core (`axe.min.js`, npm) checks the WCAG 2.1 A and AA rules at desktop (1280)
//! and phone (375) width and the test fails on any violation, listing rule, impact and
//! targets; a screenshot of each page at each width goes to `target/screenshots/`
//! (`{page}-{width}-{engine}.png`). The forms are used with the keyboard only (Tab, Enter).
//!
//! The browser tests are skipped, saying why, when chromium, chromedriver or axe-core is
//! missing — unless `REQUIRE_BROWSER` is set (as `scripts/test.sh` does). Found through
//! `CHROMIUM` (default `/usr/bin/chromium`), `CHROMEDRIVER` (default `chromedriver`) and
//! `AXE_JS` (default `target/npm/node_modules/axe-core/axe.min.js`, where `scripts/test.sh`
//! installs it). The security headers of the pages are checked without a browser.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings};
use crate::browser_support::Browser;
use crate::db_tests;
use crate::invitations::start_chat;
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use fantoccini::key::Key;
use parent_connection::auth::Role;
use parent_connection::links::{self, Purpose};
use parent_connection::tenants;
use sea_orm::Value;
use serde_json::json;

db_tests!(
    every_page_response_carries_the_security_headers,
    a_guardian_accepts_an_invitation_with_the_keyboard,
    a_guardian_unsubscribes_with_the_keyboard,
    a_tenant_admin_sets_the_channel_to_sms_with_the_keyboard,
    an_admin_uploads_a_file_set_with_an_error_and_reads_the_report,
    an_admin_requeues_a_dead_message_with_the_keyboard,
);

/// The digest's unsubscribe path of `nyc`'s contact `contact` (its id), signed as the
/// digest signs it.
pub async fn unsubscribe_path(api: &Api, contact: &str) -> String {
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap().id;
    let secret = links::tenant_secret(&api.db.conn, tenant)
        .await
        .unwrap()
        .expect("a link secret");
    let contact: i64 = contact.parse().unwrap();
    let token = links::sign(&secret, Purpose::DigestUnsubscribe, tenant, contact);
    format!("/unsubscribe/{token}")
}

async fn count(api: &Api, sql: &str) -> i64 {
    api.db.count(sql).await
}

/// Every page response — pages, notices, HTML errors, the stylesheet — carries the CSP
/// (no script), `no-referrer`, `nosniff` and no framing; the API keeps its JSON bodies.
async fn every_page_response_carries_the_security_headers(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let id = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    let join = format!("/join/{}", join_token(&api, &id).await);
    let unsubscribe = unsubscribe_path(&api, &par1).await;
    let requests = [
        ("GET", join.as_str(), 200, "text/html"),
        ("GET", unsubscribe.as_str(), 200, "text/html"),
        ("GET", "/static/web.css", 200, "text/css"),
        (
            "GET",
            "/join/0123456789abcdef0123456789abcdef",
            404,
            "text/html",
        ),
        ("GET", "/join/", 404, "text/html"),
        ("GET", "/unsubscribe/AAAA", 404, "text/html"),
        ("PUT", "/join/abc", 405, "text/html"),
        ("GET", "/static/none.css", 404, "text/html"),
        ("POST", join.as_str(), 200, "text/html"),
    ];
    for (method, path, status, content_type) in requests {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap();
        let reply = api.send(request).await;
        let header = |name: &str| {
            reply
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path}: {}",
            reply.body
        );
        assert!(
            header("content-type").starts_with(content_type),
            "{method} {path}: {:?}",
            reply.headers
        );
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'none'",
            "style-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{method} {path}: CSP {csp:?}");
        }
        assert!(!csp.contains("unsafe"), "{method} {path}: CSP {csp:?}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{method} {path}");
        assert_eq!(
            header("x-content-type-options"),
            "nosniff",
            "{method} {path}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{method} {path}");
        if content_type == "text/html" {
            let page = reply.body.as_str().unwrap_or_default();
            assert!(!page.contains("<script"), "{method} {path}: inline script");
            assert!(!page.contains("style="), "{method} {path}: inline style");
            assert!(!page.contains("<style"), "{method} {path}: inline style");
        }
    }
    // The API keeps its own JSON answers, with `nosniff` too.
    let reply = api.get("/api/v1/no-such-route", None).await;
    assert_eq!(reply.status.as_u16(), 404);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.code(), "not_found");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    let reply = api.get("/api/v1/classes", Some(&api.teacher())).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert!(!reply.headers.contains_key("content-security-policy"));
}

/// A guardian opens the join link, tabs to Accept and presses Enter; the result page, the
/// database and the notices of an expired and an unknown invitation are checked.
async fn a_guardian_accepts_an_invitation_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served(backend).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let chat = start_chat(&api, &[&par1, &par2]).await;
    let ids: Vec<String> = chat["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{chat}");
    let url = format!("{base}/join/{}", join_token(&api, &ids[0]).await);
    browser.visit(&url, "join").await;
    let text = browser.text().await;
    assert!(text.contains("Join Parent Connection"), "{text}");
    assert!(text.contains("invited you to chat about"), "{text}");
    assert!(text.contains("Accept"), "{text}");
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM contacts WHERE joined_at IS NOT NULL"
        )
        .await,
        0,
        "opening the page changes nothing"
    );
    browser.tab_to_and_press("Accept").await;
    browser.wait_for_heading("You joined").await;
    browser.check("join-accepted").await;
    let text = browser.text().await;
    assert!(text.contains("You accepted"), "{text}");
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM invitations WHERE accepted_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM contacts WHERE joined_at IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'invitation.accept'"
        )
        .await,
        1,
        "accepted once, audited once"
    );
    browser.visit(&url, "join-already").await;
    assert!(browser.text().await.contains("already accepted"));
    // par-2's invitation is 4 days old with 3 days' validity: expired.
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(&api, &tenant_admin, json!({"invitationValidityDays": 3}))
        .await
        .ok();
    parent_connection::db::exec(
        &api.db.conn,
        "UPDATE invitations SET created_at = $1 WHERE id = $2",
        vec![
            Value::ChronoDateTimeUtc(Some(chrono::Utc::now() - chrono::Duration::days(4))),
            Value::BigInt(Some(ids[1].parse().unwrap())),
        ],
    )
    .await
    .unwrap();
    let expired = format!("{base}/join/{}", join_token(&api, &ids[1]).await);
    browser.visit(&expired, "join-expired").await;
    assert!(browser.text().await.contains("This invitation has expired"));
    browser
        .visit(
            &format!("{base}/join/0123456789abcdef0123456789abcdef"),
            "join-unknown",
        )
        .await;
    assert!(browser.text().await.contains("Invitation not found"));
    browser.close().await;
}

/// A guardian opens the digest's unsubscribe link, tabs to Unsubscribe and presses Enter;
/// the result page, the database and the page seen again are checked.
async fn a_guardian_unsubscribes_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let url = format!("{base}{}", unsubscribe_path(&api, &par1).await);
    browser.visit(&url, "unsubscribe").await;
    let text = browser.text().await;
    assert!(
        text.contains("Unsubscribe from the weekly summary"),
        "{text}"
    );
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        0,
        "opening the page changes nothing"
    );
    browser.tab_to_and_press("Unsubscribe").await;
    browser.wait_for_heading("You are unsubscribed").await;
    browser.check("unsubscribe-done").await;
    let text = browser.text().await;
    assert!(text.contains("will not receive the weekly"), "{text}");
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        1
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'digest.unsubscribe'"
        )
        .await,
        1
    );
    browser.visit(&url, "unsubscribe-already").await;
    let text = browser.text().await;
    assert!(text.contains("does not receive the weekly"), "{text}");
    browser
        .visit(&format!("{base}/unsubscribe/AAAA"), "unsubscribe-unknown")
        .await;
    assert!(browser.text().await.contains("Link not valid"));
    browser.close().await;
}

/// A tenant admin (a page session from a token: `web.token_signin`) opens the settings,
/// moves with Tab to **Preferred invite channel**, picks SMS with the arrow key, types a
/// digest hour that is not valid and presses Enter: the form comes back with the error next
/// to the field and nothing saved; the hour corrected, Enter saves both.
async fn a_tenant_admin_sets_the_channel_to_sms_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served_with(backend, |config| config.web.token_signin = true).await;
    let cookie = page_session(&api, &api.user("nyc", "ta-1", &[Role::TenantAdmin])).await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/admin/settings"), "admin-settings")
        .await;
    browser.tab_to("f-preferred-invite-channel", 25).await;
    browser.press(Key::Down).await;
    browser.tab_to("f-digest-hour", 10).await;
    browser.replace_text("25").await;
    browser.press(Key::Enter).await;
    browser.wait_for_heading("Settings").await;
    let text = browser.text().await;
    assert!(text.contains("There is a problem"), "{text}");
    assert!(text.contains("from 0 to 23"), "{text}");
    browser.check("admin-settings-error").await;
    let settings = || async {
        api.db
            .texts(
                "SELECT preferred_invite_channel || ' ' || CAST(digest_hour AS TEXT) FROM tenant_settings s JOIN tenants t ON t.id = s.tenant_id WHERE t.slug = 'nyc'",
                vec![],
            )
            .await
    };
    assert_eq!(settings().await, ["email 8"], "nothing saved");
    browser.tab_to("f-digest-hour", 40).await;
    browser.replace_text("6").await;
    browser.press(Key::Enter).await;
    browser
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(15))
        .for_element(fantoccini::Locator::Css("p.status"))
        .await
        .expect("the saved notice");
    assert!(browser.text().await.contains("Settings saved."));
    assert_eq!(settings().await, ["sms 6"]);
    // The start page lists the pages of a tenant admin; Sign out ends the session.
    browser.visit(&format!("{base}/"), "home").await;
    let text = browser.text().await;
    assert!(text.contains("ta-1 (tenant-admin) · nyc"), "{text}");
    browser.tab_to_and_press_within("Sign out", 25).await;
    browser.wait_for_heading("You are signed out").await;
    browser.check("signed-out").await;
    assert_eq!(count(&api, "SELECT COUNT(*) FROM web_sessions").await, 0);
    browser
        .client
        .goto(&format!("{base}/admin/settings"))
        .await
        .unwrap();
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/signin", "signed out: sent to sign in");
    browser.close().await;
}

/// An admin opens the imports page, tabs to **Files**, gives the files of an export with
/// one duplicate row (WebDriver types the paths into the file control, as a person picks
/// them), chooses Apply with the arrow key and presses Enter: the run's report says it was
/// refused, lists the row by file, record and column, and offers the errors as CSV.
async fn an_admin_uploads_a_file_set_with_an_error_and_reads_the_report(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served_with(backend, |config| config.web.token_signin = true).await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/admin/imports"), "admin-imports")
        .await;
    let fixture = crate::support::Fixture::v21();
    fixture.append("users.csv", "stu-1,eve,Eve,Ng,,,");
    let paths: Vec<String> = fixture_files(&fixture)
        .into_iter()
        .map(|(name, _)| fixture.path().join(name).display().to_string())
        .collect();
    browser.tab_to("f-file", 25).await;
    let input = browser.client.active_element().await.expect("focus");
    input
        .send_keys(&paths.join("\n"))
        .await
        .expect("files chosen");
    browser.tab_to("f-dryRun", 4).await;
    browser.press(Key::Down).await;
    browser.press(Key::Tab).await;
    assert_eq!(browser.focused().await, "Upload");
    browser.press(Key::Enter).await;
    browser.wait_for_heading("Import run").await;
    browser.check("admin-import-run").await;
    let text = browser.text().await;
    assert!(text.contains("Refused (nothing changed)"), "{text}");
    assert!(text.contains("duplicate user sourcedId"), "{text}");
    assert!(text.contains("Download the errors as CSV"), "{text}");
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM sync_runs WHERE status = 'refused'"
        )
        .await,
        1
    );
    browser.close().await;
}

/// An admin opens the outbox (a dead message, a suppressed address, an unsubscribed
/// guardian), tabs to the dead message's **Requeue** and presses Enter: it is queued again.
async fn an_admin_requeues_a_dead_message_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served_with(backend, |config| config.web.token_signin = true).await;
    let (dead, _) = crate::web_outbox::trouble(&api).await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/admin/outbox"), "admin-outbox")
        .await;
    browser.tab_to_and_press_within("Requeue", 25).await;
    browser.wait_for_heading("Outbox").await;
    assert!(
        browser
            .text()
            .await
            .contains("The message is queued again.")
    );
    assert_eq!(
        count(
            &api,
            &format!("SELECT COUNT(*) FROM outbox WHERE id = {dead} AND status = 'queued'")
        )
        .await,
        1
    );
    browser.close().await;
}
