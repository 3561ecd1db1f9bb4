//! The approvals queue in a real browser (issue 18, items 2, 5 and 6): an approver approves
//! one request (the contact changes) and rejects another with a reason, with the keyboard
//! only (a rejection without a reason first comes back with the error next to the field);
//! then lists the decided requests with the filter form, opens the student, a contact's
//! erase confirmation and the audit log; links the district contact an "add" matched by
//! email (issue 19, item 2) and reads the disclosure log of the invitation that followed
//! (item 6). axe checks every page visited at 1280 and 375 px (browser_support.rs).

use crate::api_support::*;
use crate::approvals::{contact_id, propose_update, submit};
use crate::browser_support::Browser;
use crate::db_tests;
use crate::invitations::{dispatch, start_chat};
use crate::support::Backend;
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::json;
use std::time::Duration;

db_tests!(an_approver_approves_one_request_and_rejects_another);

/// Waits for the page's status message.
async fn wait_for_status(browser: &Browser) -> String {
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("p.status"))
        .await
        .expect("the status message")
        .text()
        .await
        .expect("its text")
}

async fn an_approver_approves_one_request_and_rejects_another(backend: Backend) {
    let Some(browser) = Browser::open(backend).await else {
        return;
    };
    let mail = tempfile::tempdir().unwrap();
    let mail_url = format!("file://{}", mail.path().display());
    let (api, base) = served_with(backend, |config| {
        config.web.token_signin = true;
        config.mail.url = mail_url;
    })
    .await;
    let linda = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@new.example"}),
    )
    .await;
    let tom = propose_update(
        &api,
        "stu-1",
        "par-2",
        json!({"emailAddress": "tom@new.example"}),
    )
    .await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    browser.sign_in(&base, &cookie).await;
    browser
        .visit(&format!("{base}/admin/approvals"), "approvals-queue")
        .await;
    let text = browser.text().await;
    assert!(text.contains("linda@new.example"), "{text}");

    // Approve Linda's change: Tab to its Approve button, Enter.
    browser.tab_to(&format!("approve-{linda}"), 20).await;
    browser.press(Key::Enter).await;
    let done = wait_for_status(&browser).await;
    assert!(
        done.contains(&format!("Request {linda} approved")),
        "{done}"
    );
    browser.check("approvals-approved").await;
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (
            Some("linda@new.example".into()),
            Some("approved_edit".into())
        )
    );

    // Reject Tom's change, first without a reason: the error comes back next to the field.
    browser.tab_to(&format!("reject-{tom}"), 20).await;
    browser.press(Key::Enter).await;
    browser.wait_for_heading(&format!("Request {tom}")).await;
    let text = browser.text().await;
    assert!(text.contains("Give a reason to reject"), "{text}");
    browser.check("approvals-reject-error").await;
    browser.tab_to(&format!("f-reason-{tom}"), 20).await;
    browser
        .replace_text("The family did not ask for this")
        .await;
    browser.tab_to(&format!("reject-{tom}"), 3).await;
    browser.press(Key::Enter).await;
    let done = wait_for_status(&browser).await;
    assert!(done.contains(&format!("Request {tom} rejected")), "{done}");
    browser.check("approvals-after-decisions").await;
    assert!(
        browser
            .text()
            .await
            .contains("Waiting for a decision: no requests.")
    );
    assert_eq!(
        api.db.contact_field("par-2", "email").await.0.as_deref(),
        Some("tom.ng@example.com"),
        "a rejection leaves the contact"
    );

    // The decided requests: pick "Rejected" in the filter with the arrow keys, Show.
    browser.tab_to("f-status", 20).await;
    browser.press(Key::Down).await;
    browser.press(Key::Down).await;
    browser.tab_to("filter-show", 3).await;
    browser.press(Key::Enter).await;
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath("//dd[contains(., 'Rejected by')]"))
        .await
        .expect("the rejected request");
    browser.check("approvals-rejected").await;
    let text = browser.text().await;
    assert!(text.contains("The family did not ask for this"), "{text}");

    browser
        .visit(&format!("{base}/admin/students/stu-1"), "admin-student")
        .await;
    let text = browser.text().await;
    assert!(text.contains("linda@new.example — approved edit"), "{text}");
    assert!(text.contains(&format!("Request {tom}: update")), "{text}");
    let tom_id = contact_id(&api, "nyc", "par-2").await;
    browser
        .visit(
            &format!("{base}/admin/students/stu-1/contacts/{tom_id}/erase"),
            "admin-erase",
        )
        .await;
    assert!(browser.text().await.contains("This cannot be undone"));
    browser
        .visit(
            &format!("{base}/admin/audit?action=contact_request."),
            "admin-audit",
        )
        .await;
    assert!(browser.text().await.contains("contact_request.reject"));

    // An "add" whose email a contact of the district (Rosa, of stu-3) already has: the card
    // offers to link her or to create a new contact; the approver links her.
    let added = submit(
        &api,
        "stu-1",
        json!({"action": "add", "contact": {"emailAddress": "rosa.ortiz@example.com", "relationship": "guardian"}}),
    )
    .await;
    let added = added.body["id"].as_str().expect("request id").to_string();
    browser
        .visit(&format!("{base}/admin/approvals"), "approvals-match")
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("Same email as") && text.contains("Create a new contact"),
        "{text}"
    );
    browser.tab_to(&format!("approve-link-{added}"), 30).await;
    browser.press(Key::Enter).await;
    let done = wait_for_status(&browser).await;
    assert!(
        done.contains(&format!("Request {added} approved")),
        "{done}"
    );
    browser.check("approvals-match-linked").await;
    let rosa = contact_id(&api, "nyc", "par-3").await;
    assert_eq!(
        api.db
            .count(&format!(
                "SELECT COUNT(*) FROM student_contacts WHERE contact_id = {rosa}"
            ))
            .await,
        2,
        "Rosa is linked to stu-1 too"
    );

    // She is invited; the disclosure log shows what was sent to her.
    start_chat(&api, &[&rosa]).await;
    dispatch(&api).await;
    browser
        .visit(&format!("{base}/admin/disclosures"), "admin-disclosures")
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("rosa.ortiz@example.com") && text.contains("SHA-256"),
        "{text}"
    );
    browser.close().await;
}
