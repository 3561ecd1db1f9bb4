//! Guardians' sign-in with a one-time code and their page, without a browser (issue 18,
//! items 1 and 4): the code goes out through the outbox (read from the delivered message),
//! only to an address on record, ahead of other messages, stored salted and hashed and
//! wiped once sent; a wrong, expired, reused or out-of-tries code gets one answer; an
//! unknown address gets the same answer as a known one; the per-address limit; the join
//! page signs the guardian in; `/guardian` shows children, teachers and chats, starts a
//! chat (a block says so), unsubscribes and subscribes again, stops and allows texts, each
//! audited; staff get 403.

use crate::api_support::*;
use crate::approvals::{contact_id, post};
use crate::db_tests;
use crate::invitations::start_chat;
use crate::outbox_support::read_dir_texts;
use crate::support::Backend;
use axum::http::StatusCode;
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use sea_orm::Value;
use serde_json::json;

db_tests!(
    a_guardian_signs_in_with_a_code_sent_through_the_outbox,
    codes_refuse_wrong_expired_and_worn_out_and_tell_no_one_who_is_on_record,
    accepting_an_invitation_signs_the_guardian_in,
    the_guardian_page_shows_the_family_and_changes_preferences,
);

const LINDA: &str = "linda.ng@example.com";

async fn api_with_mail(backend: Backend, mail: &std::path::Path) -> Api {
    let mail = format!("file://{}", mail.display());
    Api::with(backend, move |config| {
        config.web.token_signin = true;
        config.mail.url = mail;
    })
    .await
}

/// The flow cookie (`pc_signin=…`) the code page gives a browser, and the page.
async fn open_flow(api: &Api) -> (String, Reply) {
    let reply = page_get(api, "/signin/code?tenant=nyc", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let set = reply.headers["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    (set.split(';').next().unwrap().to_string(), reply)
}

fn flow_value(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

async fn ask_code(api: &Api, cookie: &str, address: &str) -> Reply {
    let reply = page_post(
        api,
        "/signin/code",
        cookie,
        &[
            ("csrf", flow_value(cookie)),
            ("tenant", "nyc"),
            ("address", address),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(
        reply.headers["location"],
        "/signin/code/verify?tenant=nyc&lang=en"
    );
    reply
}

async fn enter_code(api: &Api, cookie: &str, code: &str) -> Reply {
    page_post(
        api,
        "/signin/code/verify",
        cookie,
        &[
            ("csrf", flow_value(cookie)),
            ("tenant", "nyc"),
            ("code", code),
        ],
    )
    .await
}

/// The session cookie a reply sets (`pc_session=…`).
fn session_cookie(reply: &Reply) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("pc_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", reply.headers))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The code still waiting in the newest row (before the outbox sent it).
async fn pending_code(api: &Api) -> String {
    api.db
        .texts(
            "SELECT pending_code FROM sign_in_codes ORDER BY id DESC LIMIT 1",
            vec![],
        )
        .await
        .pop()
        .expect("a code row")
}

async fn count(api: &Api, sql: &str) -> i64 {
    api.db.count(sql).await
}

fn refused(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    let page = html(reply);
    assert!(
        page.contains("That code is not right or no longer works"),
        "{page}"
    );
    assert!(
        page.contains("aria-invalid=\"true\""),
        "next to the field: {page}"
    );
    assert!(reply.headers.get("set-cookie").is_none());
}

async fn a_guardian_signs_in_with_a_code_sent_through_the_outbox(backend: Backend) {
    let mail = tempfile::tempdir().unwrap();
    let api = api_with_mail(backend, mail.path()).await;
    let (cookie, page) = open_flow(&api).await;
    let page_html = html(&page);
    assert!(page_html.contains("<label for=\"f-address\">Email address or mobile number</label>"));
    assert_eq!(
        csrf_of(&page),
        flow_value(&cookie),
        "the form carries the flow"
    );

    ask_code(&api, &cookie, "Linda.Ng@EXAMPLE.com").await;
    assert_eq!(
        api.db
            .texts(
                "SELECT kind || ' ' || channel || ' ' || recipient FROM outbox",
                vec![]
            )
            .await,
        [format!("sign_in_code email {LINDA}")]
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM outbox WHERE next_attempt_at < created_at"
        )
        .await,
        1,
        "queued ahead of everything due now"
    );
    let verify = page_get(&api, "/signin/code/verify?tenant=nyc", Some(&cookie)).await;
    assert!(html(&verify).contains("If this address is on record"));

    let stats = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .unwrap()
        .drain()
        .await
        .unwrap();
    assert_eq!(stats.sent, 1, "{stats:?}");
    let messages = read_dir_texts(mail.path());
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert!(
        message.contains("Your Parent Connection sign-in code"),
        "{message}"
    );
    let code: String = message
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {message}"))
        .to_string();
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM sign_in_codes WHERE pending_code IS NULL"
        )
        .await,
        1,
        "wiped once sent"
    );
    let stored = api
        .db
        .texts("SELECT code_hash FROM sign_in_codes", vec![])
        .await;
    assert_eq!(stored[0].len(), 64);
    assert!(!stored[0].contains(&code));

    let wrong = if code == "000000" { "111111" } else { "000000" };
    refused(&enter_code(&api, &cookie, wrong).await);
    let reply = enter_code(&api, &cookie, "12 34").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&reply).contains("Enter the 6 digits"));

    let reply = enter_code(&api, &cookie, &code).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.headers["location"], "/guardian");
    let flow_cleared = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("pc_signin=;"));
    assert!(flow_cleared, "the flow cookie is forgotten");
    let session = session_cookie(&reply);
    let page = page_get(&api, "/guardian", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(html(&page).contains("Hello Linda Ng"), "{}", page.body);
    assert_eq!(
        api.db
            .texts(
                "SELECT actor || ' ' || after FROM audit_log WHERE action = 'web.sign_in'",
                vec![]
            )
            .await
            .len(),
        1
    );
    // Used once: the same code again is refused.
    refused(&enter_code(&api, &cookie, &code).await);
}

async fn codes_refuse_wrong_expired_and_worn_out_and_tell_no_one_who_is_on_record(
    backend: Backend,
) {
    let api = Api::new(backend).await;
    // Unknown address: the same answer, nothing queued.
    let (cookie, _) = open_flow(&api).await;
    let known = ask_code(&api, &cookie, LINDA).await;
    let (other, _) = open_flow(&api).await;
    let unknown = ask_code(&api, &other, "nobody@example.com").await;
    assert_eq!(known.headers["location"], unknown.headers["location"]);
    assert_eq!(known.body, unknown.body);
    // A relative (not a parent or guardian) and a doctor are not on record for sign-in.
    ask_code(&api, &other, "grace@example.com").await;
    // A mobile number while SMS is off: nothing either.
    ask_code(&api, &other, "+1 202 555 0177").await;
    assert_eq!(count(&api, "SELECT COUNT(*) FROM sign_in_codes").await, 1);
    assert_eq!(count(&api, "SELECT COUNT(*) FROM outbox").await, 1);
    refused(&enter_code(&api, &other, "123456").await);

    // Expired.
    let code = pending_code(&api).await;
    parent_connection::db::exec(
        &api.db.conn,
        "UPDATE sign_in_codes SET expires_at = $1",
        vec![Value::ChronoDateTimeUtc(Some(
            chrono::Utc::now() - chrono::Duration::seconds(1),
        ))],
    )
    .await
    .unwrap();
    refused(&enter_code(&api, &cookie, &code).await);

    // Five wrong tries kill the code; the right one then fails too.
    ask_code(&api, &cookie, LINDA).await;
    let code = pending_code(&api).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        refused(&enter_code(&api, &cookie, wrong).await);
    }
    refused(&enter_code(&api, &cookie, &code).await);

    // Three codes per address in 15 minutes; the fourth request answers the same, sends nothing.
    ask_code(&api, &cookie, LINDA).await;
    assert_eq!(count(&api, "SELECT COUNT(*) FROM sign_in_codes").await, 3);
    ask_code(&api, &cookie, LINDA).await;
    assert_eq!(count(&api, "SELECT COUNT(*) FROM sign_in_codes").await, 3);
    // Only the newest code of a flow works: the third still does.
    let code = pending_code(&api).await;
    assert_eq!(
        enter_code(&api, &cookie, &code).await.status,
        StatusCode::SEE_OTHER
    );

    // A form without the flow's CSRF value changes nothing.
    let reply = page_post(
        &api,
        "/signin/code",
        &cookie,
        &[("csrf", "forged"), ("tenant", "nyc"), ("address", LINDA)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Not an address: the error next to the field.
    let (fresh, _) = open_flow(&api).await;
    let reply = page_post(
        &api,
        "/signin/code",
        &fresh,
        &[
            ("csrf", flow_value(&fresh)),
            ("tenant", "nyc"),
            ("address", "hello"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&reply).contains("Enter your email address"));
    // Two districts and no ?tenant=: the page asks for the school's link.
    let reply = page_get(&api, "/signin/code", None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(html(&reply).contains("Which school district?"));
}

async fn accepting_an_invitation_signs_the_guardian_in(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let invitation = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/join/{}", join_token(&api, &invitation).await);
    let reply = page_post(&api, &path, "", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(html(&reply).contains("You joined"));
    assert!(html(&reply).contains("href=\"/guardian\">Go to your page"));
    let session = session_cookie(&reply);
    let page = page_get(&api, "/guardian", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(html(&page).contains("Hello Linda Ng"));
    // Already accepted: the page offers the way in, and the button signs in again.
    let reply = page_get(&api, &path, None).await;
    assert!(html(&reply).contains("already accepted"));
    assert!(html(&reply).contains("Go to your page</button>"));
    let reply = page_post(&api, &path, "", &[]).await;
    assert!(html(&reply).contains("already accepted"));
    session_cookie(&reply);
    // A post another site made the browser send opens no session.
    let reply = api
        .send(
            axum::http::Request::post(&path)
                .header("sec-fetch-site", "cross-site")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("set-cookie").is_none());
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'web.sign_in' AND after LIKE '%join%'"
        )
        .await,
        2
    );
}

async fn the_guardian_page_shows_the_family_and_changes_preferences(backend: Backend) {
    let api = Api::with(backend, |config| config.web.token_signin = true).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let token = api.mint(
        "nyc",
        Subject::Contact {
            contact_id: par1.clone(),
        },
    );
    let session = page_session(&api, &token).await;
    let page = page_get(&api, "/guardian", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let text = html(&page);
    for expected in [
        "Ava Ng",
        "Ben Ng",
        "Sam Lee",
        "Chat with Sam Lee about Ava Ng",
        "You have no chats yet",
        "Unsubscribe",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(
        text.contains("href=\"/guardian\" aria-current=\"page\""),
        "in the navigation"
    );
    let csrf = csrf_of(&page);

    // A chat with a teacher of the child, as the API's guardian route starts it.
    let reply = page_post(
        &api,
        "/guardian/chats",
        &session,
        &[("csrf", &csrf), ("teacher", "tch-1"), ("student", "stu-1")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let page = page_get(&api, "/guardian?done=chat", Some(&session)).await;
    let text = html(&page);
    assert!(text.contains("Your chat is open"), "{text}");
    assert!(
        text.contains("About Ava Ng with Sam Lee · started"),
        "{text}"
    );
    // Not a teacher of this child: 404.
    let reply = page_post(
        &api,
        "/guardian/chats",
        &session,
        &[("csrf", &csrf), ("teacher", "tch-1"), ("student", "stu-3")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // Blocked by the teacher: the page says so.
    let blocked = post(
        &api,
        "/api/v1/blocks",
        &api.teacher(),
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert!(blocked.status.is_success(), "{}", blocked.body);
    let reply = page_post(
        &api,
        "/guardian/chats",
        &session,
        &[("csrf", &csrf), ("teacher", "tch-1"), ("student", "stu-2")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(html(&reply).contains("Sam Lee does not accept chats from you"));

    // Unsubscribe from the digest, then subscribe again: each audited.
    let reply = page_post(
        &api,
        "/guardian/digest",
        &session,
        &[("csrf", &csrf), ("subscribe", "no")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.headers["location"], "/guardian?done=digest-off");
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        1
    );
    let page = page_get(&api, "/guardian?done=digest-off", Some(&session)).await;
    assert!(html(&page).contains("Subscribe again"));
    page_post(
        &api,
        "/guardian/digest",
        &session,
        &[("csrf", &csrf), ("subscribe", "yes")],
    )
    .await;
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        0
    );
    for action in ["digest.unsubscribe", "digest.resubscribe"] {
        let actors = api
            .db
            .texts(
                "SELECT actor FROM audit_log WHERE action = $1",
                vec![action.into()],
            )
            .await;
        assert_eq!(actors, [format!("web:contact:{par1}@nyc")], "{action}");
    }
    // A form without the session's CSRF token: 403, nothing changed.
    let reply = page_post(
        &api,
        "/guardian/digest",
        &session,
        &[("csrf", "x"), ("subscribe", "no")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        0
    );
    // Staff: 403.
    let staff = page_session(&api, &api.user("nyc", "ta-1", &[Role::TenantAdmin])).await;
    let reply = page_get(&api, "/guardian", Some(&staff)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(!html(&reply).contains("Your children"));

    // Text messages (par-2 has a mobile number): stop, then allow again — the list STOP
    // and START replies keep — each audited.
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let token = api.mint("nyc", Subject::Contact { contact_id: par2 });
    let session = page_session(&api, &token).await;
    let page = page_get(&api, "/guardian", Some(&session)).await;
    assert!(
        html(&page).contains("We may text +12025550177"),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page);
    let reply = page_post(
        &api,
        "/guardian/sms",
        &session,
        &[("csrf", &csrf), ("receive", "no")],
    )
    .await;
    assert_eq!(reply.headers["location"], "/guardian?done=sms-off");
    // Kept as a keyed hash of (sending number, recipient), never the number.
    assert_eq!(count(&api, "SELECT COUNT(*) FROM sms_opt_outs").await, 1);
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM sms_opt_outs WHERE key_hash LIKE '%2025550177%' OR legacy_phone IS NOT NULL"
        )
        .await,
        0
    );
    let page = page_get(&api, "/guardian?done=sms-off", Some(&session)).await;
    assert!(html(&page).contains("We will not send you text messages"));
    assert!(html(&page).contains("Allow text messages"));
    page_post(
        &api,
        "/guardian/sms",
        &session,
        &[("csrf", &csrf), ("receive", "yes")],
    )
    .await;
    assert_eq!(count(&api, "SELECT COUNT(*) FROM sms_opt_outs").await, 0);
    assert_eq!(
        api.db
            .texts(
                "SELECT action FROM audit_log WHERE action LIKE 'sms.%' ORDER BY id",
                vec![]
            )
            .await,
        ["sms.opt_out", "sms.opt_in"]
    );
}
