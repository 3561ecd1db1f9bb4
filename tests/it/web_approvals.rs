//! The approvers' pages without a browser (issue 18, item 2): the queue shows a pending
//! request with the values when requested, now and proposed; Approve changes the contact
//! and Reject with a reason leaves it, both through the API's services (audited as the page
//! session); a failed decision comes back next to the request's Reason field; teachers get
//! 403; a form without the session's CSRF token changes nothing; the student page shows
//! contacts with provenance and history, and erases with a reason only; the audit log
//! filters by action, actor and dates.

use crate::api_support::*;
use crate::approvals::{contact_id, decide, propose_update};
use crate::db_tests;
use crate::support::{APPLY, Backend, Fixture};
use axum::http::StatusCode;
use parent_connection::auth::Role;
use parent_connection::sync::Format;
use serde_json::json;

db_tests!(
    the_queue_shows_a_request_side_by_side_and_approve_changes_the_contact,
    a_rejection_needs_a_reason_and_changes_nothing,
    a_stale_request_is_flagged_and_approved_only_anyway,
    teachers_are_refused_and_forms_need_the_session_token,
    the_student_page_shows_contacts_history_and_erases_with_a_reason,
    the_audit_log_filters_by_action_actor_and_dates,
    the_queue_and_the_audit_log_are_paginated,
);

async fn api(backend: Backend) -> Api {
    Api::with(backend, |config| config.web.token_signin = true).await
}

/// A page session of the nyc global admin `admin-1`.
async fn approver(api: &Api) -> String {
    page_session(api, &api.admin("nyc")).await
}

/// Posts a decision on request `id` from the queue page's form.
async fn decide_page(
    api: &Api,
    cookie: &str,
    csrf: &str,
    id: &str,
    decision: &str,
    reason: &str,
) -> Reply {
    page_post(
        api,
        &format!("/admin/approvals/{id}"),
        cookie,
        &[
            ("csrf", csrf),
            (&format!("reason-{id}"), reason),
            ("decision", decision),
        ],
    )
    .await
}

async fn the_queue_shows_a_request_side_by_side_and_approve_changes_the_contact(backend: Backend) {
    let api = api(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@new.example"}),
    )
    .await;
    let cookie = approver(&api).await;
    let queue = page_get(&api, "/admin/approvals", Some(&cookie)).await;
    assert_eq!(queue.status, StatusCode::OK);
    let text = html(&queue);
    for column in ["When requested", "Now", "Proposed"] {
        assert!(
            text.contains(&format!(r#"<th scope="col">{column}</th>"#)),
            "{column}: {text}"
        );
    }
    assert!(
        text.contains(
            "<td>linda.ng@example.com</td><td>linda.ng@example.com</td><td>linda@new.example</td>"
        ),
        "the email's three values side by side: {text}"
    );
    assert!(text.contains(&format!(r#"id="f-reason-{id}""#)));
    assert!(!text.contains("Stale:"));
    assert!(
        text.contains(r#"href="/admin/approvals" aria-current="page""#),
        "in the navigation"
    );
    let csrf = csrf_of(&queue);

    let approved = decide_page(&api, &cookie, &csrf, &id, "approve", "checked by phone").await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        approved.headers["location"],
        format!("/admin/approvals?approved={id}").as_str()
    );
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (
            Some("linda@new.example".into()),
            Some("approved_edit".into())
        )
    );
    let actors = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'contact_request.approve'",
            vec![],
        )
        .await;
    assert_eq!(actors, ["web:user:admin-1@nyc"]);
    let after = page_get(
        &api,
        &format!("/admin/approvals?approved={id}"),
        Some(&cookie),
    )
    .await;
    let text = html(&after);
    assert!(text.contains(&format!("Request {id} approved")), "{text}");
    assert!(
        text.contains("Waiting for a decision: no requests."),
        "{text}"
    );

    // Decided requests behind the filter, with who decided and why; no form any more.
    let decided = page_get(&api, "/admin/approvals?status=approved", Some(&cookie)).await;
    let text = html(&decided);
    assert!(text.contains("Approved by web:user:admin-1@nyc"), "{text}");
    assert!(text.contains("checked by phone"));
    assert!(!text.contains(&format!(r#"id="f-reason-{id}""#)));
    let bad = page_get(&api, "/admin/approvals?status=everything", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad).contains(r#"id="f-status-error""#));

    // Deciding it again: the error next to its Reason field, the typed reason kept.
    let again = decide_page(&api, &cookie, &csrf, &id, "reject", "second thoughts").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&again);
    assert!(
        text.contains(&format!(r#"id="f-reason-{id}-error""#)),
        "{text}"
    );
    assert!(text.contains("already approved"), "{text}");
    assert!(text.contains("second thoughts"));
    assert_eq!(
        api.db.contact_field("par-1", "email").await.0.as_deref(),
        Some("linda@new.example")
    );
}

async fn a_rejection_needs_a_reason_and_changes_nothing(backend: Backend) {
    let api = api(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-2",
        json!({"emailAddress": "tom@new.example"}),
    )
    .await;
    let cookie = approver(&api).await;
    let csrf = csrf_of(&page_get(&api, "/admin/approvals", Some(&cookie)).await);
    let missing = decide_page(&api, &cookie, &csrf, &id, "reject", "  ").await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&missing);
    assert!(
        text.contains(&format!(r#"id="f-reason-{id}-error""#)),
        "{text}"
    );
    assert!(text.contains("Give a reason to reject"));
    assert!(text.contains(&format!(
        r#"aria-describedby="f-reason-{id}-hint f-reason-{id}-error""#
    )));
    let status = || async {
        api.db
            .texts("SELECT status FROM contact_requests", vec![])
            .await
    };
    assert_eq!(status().await, ["pending"]);

    let rejected = decide_page(
        &api,
        &cookie,
        &csrf,
        &id,
        "reject",
        "not the parent's address",
    )
    .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER);
    assert_eq!(status().await, ["rejected"]);
    assert_eq!(
        api.db.contact_field("par-2", "email").await,
        (Some("tom.ng@example.com".into()), Some("sync".into())),
        "a rejection leaves the contact"
    );
    let decided = page_get(&api, "/admin/approvals?status=rejected", Some(&cookie)).await;
    let text = html(&decided);
    assert!(text.contains("Rejected by web:user:admin-1@nyc"), "{text}");
    assert!(
        text.contains("not the parent&#x27;s address")
            || text.contains("not the parent&#39;s address"),
        "{text}"
    );
}

async fn a_stale_request_is_flagged_and_approved_only_anyway(backend: Backend) {
    let api = api(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@teacher.example"}),
    )
    .await;
    let cookie = approver(&api).await;
    let csrf = csrf_of(&page_get(&api, "/admin/approvals", Some(&cookie)).await);
    // The SIS changes the email after the request was made (the page was already open).
    let changed = Fixture::v21();
    changed.replace("users.csv", "linda.ng@example.com", "linda@sis.example");
    api.db
        .import("nyc", Format::SdsV21, changed.path(), APPLY)
        .await;
    let refused = decide_page(&api, &cookie, &csrf, &id, "approve", "").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&refused);
    assert!(
        text.contains("The contact changed since the request was made"),
        "{text}"
    );
    assert!(
        text.contains(
            "<td>linda.ng@example.com</td><td>linda@sis.example</td><td>linda@teacher.example</td>"
        ),
        "{text}"
    );
    assert!(text.contains("Approve anyway"));
    assert_eq!(
        api.db.contact_field("par-1", "email").await.0.as_deref(),
        Some("linda@sis.example"),
        "nothing changed"
    );
    let queue = page_get(&api, "/admin/approvals", Some(&cookie)).await;
    assert!(html(&queue).contains("Stale:"), "{}", html(&queue));
    let approved = decide_page(&api, &cookie, &csrf, &id, "approve-stale", "").await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (
            Some("linda@teacher.example".into()),
            Some("approved_edit".into())
        )
    );
}

async fn teachers_are_refused_and_forms_need_the_session_token(backend: Backend) {
    let api = api(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@new.example"}),
    )
    .await;
    let teacher = page_session(&api, &api.teacher()).await;
    for path in [
        "/admin/approvals".to_string(),
        format!("/admin/approvals/{id}"),
        "/admin/students/stu-1".to_string(),
        "/admin/audit".to_string(),
    ] {
        let reply = page_get(&api, &path, Some(&teacher)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(html(&reply).contains("Not allowed"));
    }
    let home = page_get(&api, "/", Some(&teacher)).await;
    let teacher_csrf = csrf_of(&home);
    assert!(!html(&home).contains("/admin/approvals"));
    let refused = decide_page(&api, &teacher, &teacher_csrf, &id, "approve", "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // An approver's form without the session's token: 403, nothing decided.
    let cookie = approver(&api).await;
    let forged = decide_page(&api, &cookie, "forged", &id, "approve", "").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged_erase = page_post(
        &api,
        &format!(
            "/admin/students/stu-1/contacts/{}/erase",
            contact_id(&api, "nyc", "par-1").await
        ),
        &cookie,
        &[("csrf", &teacher_csrf), ("reason", "moved")],
    )
    .await;
    assert_eq!(forged_erase.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.db
            .texts("SELECT status FROM contact_requests", vec![])
            .await,
        ["pending"]
    );
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_erasures").await,
        0
    );
    // A tenant admin reads the audit log but decides nothing.
    let tenant_admin = page_session(&api, &api.user("nyc", "ta-1", &[Role::TenantAdmin])).await;
    let audit = page_get(&api, "/admin/audit", Some(&tenant_admin)).await;
    assert_eq!(audit.status, StatusCode::OK);
    let queue = page_get(&api, "/admin/approvals", Some(&tenant_admin)).await;
    assert_eq!(queue.status, StatusCode::FORBIDDEN);
    // Another tenant's approver does not see nyc's request.
    let bos = page_session(&api, &api.admin("bos")).await;
    let other = page_get(&api, &format!("/admin/approvals/{id}"), Some(&bos)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

async fn the_student_page_shows_contacts_history_and_erases_with_a_reason(backend: Backend) {
    let api = api(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"mobilePhone": "202-555-0199"}),
    )
    .await;
    assert_eq!(decide(&api, &id, "approve", None).await.status, 200);
    let cookie = approver(&api).await;
    let page = page_get(&api, "/admin/students/stu-1", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = html(&page);
    assert!(text.contains("Student Ava Ng (stu-1)"), "{text}");
    for name in ["Linda Ng", "Tom Ng", "Grace Ng", "Dr House"] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    assert!(
        text.contains("+12025550199 <span class=\"small\">— approved edit,"),
        "{text}"
    );
    assert!(
        text.contains("Linda <span class=\"small\">— SIS sync,"),
        "{text}"
    );
    assert!(
        text.contains(&format!("Request {id}: update")),
        "history: {text}"
    );
    let unknown = page_get(&api, "/admin/students/nobody", Some(&cookie)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let tom = contact_id(&api, "nyc", "par-2").await;
    let erase = format!("/admin/students/stu-1/contacts/{tom}/erase");
    assert!(text.contains(&format!(r#"href="{erase}""#)));
    let confirm = page_get(&api, &erase, Some(&cookie)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    let text = html(&confirm);
    assert!(
        text.contains("Erase Tom Ng? This cannot be undone"),
        "{text}"
    );
    let csrf = csrf_of(&confirm);
    let linked = || async {
        api.db
            .count(&format!(
                "SELECT COUNT(*) FROM student_contacts WHERE contact_id = {tom}"
            ))
            .await
    };

    let refused = page_post(&api, &erase, &cookie, &[("csrf", &csrf), ("reason", " ")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&refused).contains(r#"id="f-reason-error""#));
    assert!(html(&refused).contains("There is a problem"));
    assert_eq!(linked().await, 1, "nothing erased without a reason");

    let erased = page_post(
        &api,
        &erase,
        &cookie,
        &[("csrf", &csrf), ("reason", "asked by the family")],
    )
    .await;
    assert_eq!(erased.status, StatusCode::SEE_OTHER);
    assert_eq!(erased.headers["location"], "/admin/students/stu-1?erased=1");
    assert_eq!(linked().await, 0);
    let audit = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'contact.erase'",
            vec![],
        )
        .await;
    assert_eq!(audit, ["web:user:admin-1@nyc"]);
    let after = page_get(&api, "/admin/students/stu-1?erased=1", Some(&cookie)).await;
    let text = html(&after);
    assert!(text.contains("The contact was erased from the student."));
    assert!(!text.contains("Tom Ng"), "{text}");
    assert!(
        text.contains(&format!(
            "Contact {tom} erased by web:user:admin-1@nyc (asked by the family)"
        )),
        "{text}"
    );
    // Gone: its erase page is not found.
    let gone = page_get(&api, &erase, Some(&cookie)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn the_audit_log_filters_by_action_actor_and_dates(backend: Backend) {
    let api = api(backend).await;
    let first = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@new.example"}),
    )
    .await;
    let second = propose_update(
        &api,
        "stu-1",
        "par-2",
        json!({"emailAddress": "tom@new.example"}),
    )
    .await;
    assert_eq!(decide(&api, &first, "approve", None).await.status, 200);
    assert_eq!(
        decide(&api, &second, "reject", Some(json!({"reason": "no"})))
            .await
            .status,
        200
    );
    let cookie = page_session(&api, &api.user("nyc", "ta-1", &[Role::TenantAdmin])).await;
    let rows = |reply: &Reply| html(reply).matches("<tr>").count() - 1;

    let approvals = page_get(
        &api,
        "/admin/audit?action=contact_request.approve",
        Some(&cookie),
    )
    .await;
    assert_eq!(approvals.status, StatusCode::OK);
    let text = html(&approvals);
    assert_eq!(rows(&approvals), 1, "{text}");
    assert!(text.contains(&format!("contact_request:{first}")));
    let decisions = page_get(&api, "/admin/audit?action=contact_request.", Some(&cookie)).await;
    assert_eq!(rows(&decisions), 4, "two submissions and two decisions");
    let by_teacher = page_get(
        &api,
        "/admin/audit?actor=api%3Auser%3Atch-1%40nyc",
        Some(&cookie),
    )
    .await;
    assert_eq!(rows(&by_teacher), 2, "{}", html(&by_teacher));
    assert!(
        html(&by_teacher).contains(r#"value="api:user:tch-1@nyc""#),
        "the filter is kept"
    );

    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let this_day = page_get(
        &api,
        &format!("/admin/audit?action=contact_request.&from={today}&to={today}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(rows(&this_day), 4);
    let later = page_get(
        &api,
        &format!("/admin/audit?from={tomorrow}"),
        Some(&cookie),
    )
    .await;
    assert!(html(&later).contains("No entries match."));
    let bad = page_get(&api, "/admin/audit?from=05%2F12%2F2026", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad).contains(r#"id="f-from-error""#));
    let backwards = page_get(
        &api,
        &format!("/admin/audit?from={tomorrow}&to={today}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&backwards).contains("The end date is before the start date."));
}

/// The `href` of the page's "Next page" link, unescaped.
fn next_page(reply: &Reply) -> Option<String> {
    let page = html(reply);
    let end = page.find(r#"">Next page</a>"#)?;
    let start = page[..end].rfind(r#"href=""#)? + r#"href=""#.len();
    Some(page[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

async fn the_queue_and_the_audit_log_are_paginated(backend: Backend) {
    let api = api(backend).await;
    let mut ids = Vec::new();
    for n in 0..26 {
        let email = format!("linda{n}@new.example");
        ids.push(propose_update(&api, "stu-1", "par-1", json!({"emailAddress": email})).await);
    }
    let cookie = approver(&api).await;
    let cards = |reply: &Reply| html(reply).matches(r#"<section class="request""#).count();
    let first = page_get(&api, "/admin/approvals", Some(&cookie)).await;
    assert_eq!(cards(&first), 20);
    let next = next_page(&first).expect("a next page");
    assert_eq!(
        next,
        format!("/admin/approvals?status=pending&cursor={}", ids[19])
    );
    let second = page_get(&api, &next, Some(&cookie)).await;
    assert_eq!(cards(&second), 6);
    assert!(html(&second).contains(&format!("Request {}:", ids[25])));
    assert_eq!(next_page(&second), None);

    for id in &ids {
        let reply = decide(&api, id, "reject", Some(json!({"reason": "no"}))).await;
        assert_eq!(reply.status, 200);
    }
    let rows = |reply: &Reply| html(reply).matches("<tr>").count() - 1;
    let first = page_get(&api, "/admin/audit?action=contact_request.", Some(&cookie)).await;
    assert_eq!(rows(&first), 50);
    let next = next_page(&first).expect("a next page");
    assert!(
        next.starts_with("/admin/audit?action=contact_request.&actor=&from=&to=&cursor="),
        "{next}"
    );
    let second = page_get(&api, &next, Some(&cookie)).await;
    assert_eq!(rows(&second), 2, "26 submissions and 26 rejections");
    assert_eq!(next_page(&second), None);
}
