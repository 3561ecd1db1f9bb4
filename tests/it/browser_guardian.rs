//! A guardian in a real browser, keyboard only (issue 18, items 1, 4, 5 and 6): asks for a
//! sign-in code on `/signin/code`, types it on the next page, lands on `/guardian` (their
//! children, teachers and chats), unsubscribes from the weekly digest and subscribes again.
//! axe-core checks every page visited at 1280 and 375 px (see `browser.rs`).

use crate::api_support::*;
use crate::browser_support::Browser;
use crate::db_tests;
use crate::support::Backend;
use fantoccini::key::Key;

db_tests!(a_guardian_signs_in_with_a_code_and_changes_the_digest_with_the_keyboard,);

async fn count(api: &Api, sql: &str) -> i64 {
    api.db.count(sql).await
}

/// Enter on the focused button, then waits for the page headed `heading`.
async fn press_and_wait(browser: &Browser, heading: &str) {
    browser.press(Key::Enter).await;
    browser.wait_for_heading(heading).await;
}

/// Enter on the focused button, then waits for an element matching `css` (the next page
/// has the same heading as this one).
async fn press_and_find(browser: &Browser, css: &str) {
    browser.press(Key::Enter).await;
    browser
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(15))
        .for_element(fantoccini::Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} after Enter: {e}"));
}

async fn a_guardian_signs_in_with_a_code_and_changes_the_digest_with_the_keyboard(
    backend: Backend,
) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served(backend).await;
    browser
        .visit(&format!("{base}/signin/code?tenant=nyc"), "signin-code")
        .await;
    browser.tab_to("f-address", 10).await;
    browser.replace_text("linda.ng@example.com").await;
    press_and_wait(&browser, "Enter your code").await;
    browser.check("signin-code-verify").await;
    let code = api
        .db
        .texts("SELECT pending_code FROM sign_in_codes", vec![])
        .await
        .pop()
        .expect("a code on its way");
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'sign_in_code'"
        )
        .await,
        1
    );

    // A wrong code comes back with the error next to the field.
    browser.tab_to("f-code", 10).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    browser.replace_text(wrong).await;
    press_and_find(&browser, ".error-summary").await;
    let text = browser.text().await;
    assert!(text.contains("There is a problem"), "{text}");
    assert!(text.contains("That code is not right"), "{text}");
    browser.check("signin-code-wrong").await;

    browser.tab_to("f-code", 20).await;
    browser.replace_text(&code).await;
    press_and_wait(&browser, "Your page").await;
    browser.check("guardian").await;
    let text = browser.text().await;
    for expected in [
        "Ava Ng",
        "Ben Ng",
        "Sam Lee",
        "Your chats",
        "Weekly assignment summary",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }

    browser.tab_to("digest-unsubscribe", 30).await;
    press_and_find(&browser, "#digest-subscribe").await;
    assert!(browser.text().await.contains("You are unsubscribed"));
    browser.check("guardian-unsubscribed").await;
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        1
    );

    browser.tab_to("digest-subscribe", 30).await;
    press_and_find(&browser, "#digest-unsubscribe").await;
    assert!(
        browser
            .text()
            .await
            .contains("You will get the weekly summary again")
    );
    assert_eq!(
        count(&api, "SELECT COUNT(*) FROM digest_unsubscribes").await,
        0
    );
    assert_eq!(
        count(
            &api,
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('digest.unsubscribe', 'digest.resubscribe', 'web.sign_in')"
        )
        .await,
        3
    );
    browser.close().await;
}
