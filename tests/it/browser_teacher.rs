//! The teacher pages in headless Chromium (issue 18, items 3, 5 and 6; the harness is
//! tests/it/browser_support.rs): a teacher proposes an edit and starts a chat with the
//! keyboard only, and axe-core checks every page on the way (classes, class, student, the
//! proposal form with an error, requests, chat) at 1280 and 375 px, with screenshots.

use crate::api_support::*;
use crate::approvals::contact_id;
use crate::browser_support::Browser;
use crate::db_tests;
use crate::support::Backend;
use fantoccini::key::Key;

db_tests!(a_teacher_proposes_an_edit_and_starts_a_chat_with_the_keyboard);

/// Presses Tab until the focused element's text starts with `text` (at most `stops`
/// times), then Enter.
async fn tab_to_and_follow(browser: &Browser, text: &str, stops: usize) {
    for _ in 0..stops {
        browser.press(Key::Tab).await;
        if browser.focused().await.starts_with(text) {
            browser.press(Key::Enter).await;
            return;
        }
    }
    panic!("no Tab stop within {stops} reaches {text:?}");
}

/// Teacher tch-1 opens My classes, follows Math 3A to Ava Ng, opens the change form of
/// Linda Ng, types an email that is not valid (the error comes back next to the field and
/// nothing is stored), corrects it and sends: the request waits on My requests. From there
/// back to Ava Ng, a guardian's box ticked with Space, "Start chat": the chat's page.
async fn a_teacher_proposes_an_edit_and_starts_a_chat_with_the_keyboard(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served_with(backend, |config| config.web.token_signin = true).await;
    let cookie = page_session(&api, &api.teacher()).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/teacher/classes"), "teacher-classes")
        .await;

    tab_to_and_follow(&browser, "Math 3A", 20).await;
    browser.wait_for_heading("Math 3A").await;
    browser.check("teacher-class").await;

    tab_to_and_follow(&browser, "Ava Ng", 20).await;
    browser.wait_for_heading("Ava Ng").await;
    browser.check("teacher-student").await;

    tab_to_and_follow(&browser, "Propose a change or removal", 20).await;
    browser
        .wait_for_heading("Propose a change to Linda Ng")
        .await;
    browser.tab_to("f-email", 20).await;
    browser.replace_text("linda-at-new.example").await;
    browser.press(Key::Enter).await;
    browser.wait_for_heading("Propose a change").await;
    let text = browser.text().await;
    assert!(text.contains("There is a problem"), "{text}");
    assert!(text.contains("is not a valid email address"), "{text}");
    browser.check("teacher-proposal-error").await;
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        0
    );

    browser.tab_to("f-email", 40).await;
    browser.replace_text("linda@new.example").await;
    browser.press(Key::Enter).await;
    browser.wait_for_heading("My requests").await;
    assert!(browser.text().await.contains("Your proposal was sent."));
    browser.check("teacher-requests").await;
    assert_eq!(
        api.db
            .texts(
                "SELECT status || ' ' || proposed FROM contact_requests",
                vec![]
            )
            .await,
        [r#"pending {"emailAddress":"linda@new.example"}"#]
    );

    tab_to_and_follow(&browser, "Ava Ng", 20).await;
    browser.wait_for_heading("Ava Ng").await;
    browser.tab_to(&format!("f-contact-opt-{par1}"), 30).await;
    browser.press(Key::Space).await;
    tab_to_and_follow(&browser, "Start chat", 5).await;
    browser.wait_for_heading("Chat about Ava Ng").await;
    let text = browser.text().await;
    assert!(text.contains("The chat is ready."), "{text}");
    assert!(text.contains("Linda Ng"), "{text}");
    browser.check("teacher-chat").await;
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chats").await, 1);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM invitations").await, 1);
    browser.close().await;
}
