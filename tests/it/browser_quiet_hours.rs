//! Quiet hours in a real browser (issue 22, item 2), with the keyboard only: a text
//! invitation queued inside the quiet hours is listed on `/admin/outbox` under **Waiting for
//! quiet hours to end** with the time it goes; an approver tabs to **Send now (urgent)** and
//! presses Enter; the page says it goes now and the list is empty. axe checks every page
//! visited at 1280 and 375 px (browser_support.rs).

use crate::api_support::*;
use crate::approvals::contact_id;
use crate::browser_support::Browser;
use crate::db_tests;
use crate::invitations::{set, sms_gateway, start_chat};
use crate::support::Backend;
use chrono::{Duration, Timelike, Utc};
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::json;

db_tests!(an_approver_sends_a_held_text_invitation_now);

fn new_york(minutes: i64) -> String {
    let at = (Utc::now() + Duration::minutes(minutes)).with_timezone(&chrono_tz::America::New_York);
    format!("{:02}:{:02}", at.hour(), at.minute())
}

async fn an_approver_sends_a_held_text_invitation_now(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let gateway = sms_gateway(vec![]).await;
    let uri = gateway.uri();
    let (api, base) = served_with(backend, move |config| {
        config.web.token_signin = true;
        config.sms.url = uri;
        config.sms.account_sid = "AC123".into();
        config.sms.auth_token = "token-secret".into();
        config.sms.from = "+15005550006".into();
    })
    .await;
    set(
        &api,
        json!({"preferredInviteChannel": "sms", "quietHoursStart": new_york(-60), "quietHoursEnd": new_york(120)}),
    )
    .await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&linda]).await;
    let invitation = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    assert!(chat["invitations"][0]["heldUntil"].is_string(), "{chat}");
    let cookie = page_session(&api, &api.admin("nyc")).await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/admin/outbox"), "outbox-held")
        .await;
    let text = browser.text().await;
    assert!(text.contains("Waiting for quiet hours to end"), "{text}");
    assert!(text.contains("invitation by sms"), "{text}");
    browser.tab_to(&format!("urgent-{invitation}"), 40).await;
    browser.press(Key::Enter).await;
    let done = browser
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(15))
        .for_element(Locator::Css("p.status"))
        .await
        .expect("the status message")
        .text()
        .await
        .expect("its text");
    assert!(done.contains("goes now, as urgent"), "{done}");
    browser.check("outbox-urgent").await;
    assert!(
        browser
            .text()
            .await
            .contains("No text message is waiting for the quiet hours to end.")
    );
    browser.close().await;
}
