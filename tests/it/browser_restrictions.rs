//! Per-child restrictions in a real browser (issue 22, item 1), with the keyboard only: an
//! approver opens a student, tabs to **Restrict Linda Ng for this student…**, sends the form
//! without a reason (the error comes back next to the field), gives one, restricts, sees the
//! restriction on the contact and in the history, then lifts it with its button. axe checks
//! every page visited at 1280 and 375 px (browser_support.rs).

use crate::api_support::*;
use crate::approvals::{contact_id, teacher_view};
use crate::browser_support::Browser;
use crate::db_tests;
use crate::support::Backend;
use fantoccini::Locator;
use fantoccini::key::Key;
use std::time::Duration;

db_tests!(an_approver_restricts_a_guardian_for_one_child_and_lifts_it);

/// Waits for the page's status message that contains `text` (the page before may show
/// another one until the browser has left it).
async fn status(browser: &Browser, text: &str) -> String {
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(&format!(
            "//p[@class='status' and contains(., '{text}')]"
        )))
        .await
        .expect("the status message")
        .text()
        .await
        .expect("its text")
}

async fn an_approver_restricts_a_guardian_for_one_child_and_lifts_it(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let (api, base) = served_with(backend, |config| config.web.token_signin = true).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/admin/students/stu-1"), "restrict-student")
        .await;
    browser.tab_to(&format!("restrict-{linda}"), 40).await;
    browser.press(Key::Enter).await;
    browser.wait_for_heading("Restrict Linda Ng").await;
    browser.check("restrict-form").await;

    // Without a reason: the page comes back with the error next to the field.
    browser.tab_to("f-reason", 20).await;
    browser.tab_to_and_press_within("Restrict", 10).await;
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#f-reason-error"))
        .await
        .expect("the reason's error");
    browser.check("restrict-error").await;
    browser.tab_to("f-reason", 20).await;
    browser.replace_text("Court order 2026-114").await;
    browser.tab_to_and_press_within("Restrict", 10).await;
    let done = status(&browser, "restricted for this student").await;
    assert!(done.contains("restricted for this student"), "{done}");
    browser.check("restrict-done").await;
    let text = browser.text().await;
    assert!(text.contains("no end date: Court order 2026-114"), "{text}");
    assert!(text.contains("; in force"), "{text}");
    let seen: Vec<String> = teacher_view(&api, "stu-1")
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!seen.contains(&linda), "the teacher no longer sees her");

    browser.tab_to(&format!("lift-{linda}"), 40).await;
    browser.press(Key::Enter).await;
    let done = status(&browser, "lifted").await;
    assert!(done.contains("lifted"), "{done}");
    browser.check("restrict-lifted").await;
    assert!(browser.text().await.contains("; lifted by"));
    browser.close().await;
}
