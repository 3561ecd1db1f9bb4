//! Least privilege (issue 19, item 2): contact values in the audit log and import reports
//! only for roles that read contacts; a teacher's view of old requests; an "add" matching an
//! existing contact; nobody decides their own request; capped chat inputs; blocks that
//! reveal no name; capped token lifetimes.

use crate::api_support::*;
use crate::approvals::{contact_id, decide, post, propose_update, submit};
use crate::db_tests;
use crate::support::Backend;
use parent_connection::auth::Role;
use parent_connection::auth::mint;
use serde_json::{Value, json};
use std::time::Duration;

db_tests!(
    tenant_admins_read_the_audit_log_without_contact_values,
    tenant_admins_read_import_reports_without_the_quoted_values,
    a_teacher_who_left_reads_old_requests_without_contact_values,
    an_add_matching_an_existing_email_waits_for_the_approvers_choice,
    nobody_decides_their_own_request,
    chat_members_are_capped_and_deduplicated,
    blocks_reveal_no_contact_the_teacher_may_not_see,
    tokens_living_longer_than_the_cap_are_refused,
);

/// The test API with page sessions from tokens.
async fn with_pages(backend: Backend) -> Api {
    Api::with(backend, |c| c.web.token_signin = true).await
}

fn tenant_admin(api: &Api) -> String {
    api.user("nyc", "ta-1", &[Role::TenantAdmin])
}

async fn tenant_admins_read_the_audit_log_without_contact_values(backend: Backend) {
    let api = with_pages(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@new.example"}),
    )
    .await;
    decide(&api, &id, "approve", None).await.ok();
    let path = "/api/v1/audit?action=contact_request.";
    let admin = api.get(path, Some(&api.admin("nyc"))).await;
    assert!(admin.ok().to_string().contains("linda@new.example"));
    let hidden = api.get(path, Some(&tenant_admin(&api))).await;
    let text = hidden.ok().to_string();
    for value in [
        "linda@new.example",
        "linda.ng@example.com",
        "Linda",
        "2025550143",
    ] {
        assert!(!text.contains(value), "{value} in {text}");
    }
    let approve = &hidden.body["items"][0];
    assert_eq!(approve["before"]["proposed"]["emailAddress"], "changed");
    assert_eq!(approve["before"]["current"]["givenName"], "changed");
    assert_eq!(approve["before"]["studentId"], "stu-1", "ids stay");

    let cookie = page_session(&api, &tenant_admin(&api)).await;
    let page = page_get(&api, "/admin/audit", Some(&cookie)).await;
    let html = html(&page);
    assert!(html.contains("contact_request.approve"), "{html}");
    assert!(!html.contains("linda@new.example"), "{html}");
}

async fn tenant_admins_read_import_reports_without_the_quoted_values(backend: Backend) {
    let api = with_pages(backend).await;
    // The nyc fixture's par-3 has the phone "555-12": its import report quotes it.
    let admin = api.admin("nyc");
    let runs = api.get("/api/v1/imports", Some(&admin)).await;
    let run = runs.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["warningCount"].as_i64() > Some(0) || r["errorCount"].as_i64() > Some(0))
        .expect("a run with issues")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/imports/{run}");
    let full = api.get(&path, Some(&admin)).await;
    assert!(full.ok().to_string().contains("555-12"), "{}", full.body);
    let hidden = api.get(&path, Some(&tenant_admin(&api))).await;
    let text = hidden.ok().to_string();
    assert!(!text.contains("555-12"), "{text}");
    let issue = &hidden.body["report"]["warnings"][0];
    assert!(
        issue["file"].is_string() && issue["code"].is_string(),
        "{issue}"
    );

    let cookie = page_session(&api, &tenant_admin(&api)).await;
    let page = page_get(&api, &format!("/admin/imports/{run}"), Some(&cookie)).await;
    assert!(!html(&page).contains("555-12"), "{}", html(&page));
}

async fn a_teacher_who_left_reads_old_requests_without_contact_values(backend: Backend) {
    let api = Api::new(backend).await;
    let id = propose_update(&api, "stu-1", "par-1", json!({"givenName": "Lin"})).await;
    let path = format!("/api/v1/contact-requests/{id}");
    let before = api.get(&path, Some(&api.teacher())).await;
    assert_eq!(
        before.ok()["current"]["emailAddress"],
        "linda.ng@example.com"
    );

    api.db
        .exec("UPDATE enrollments SET status = 'inactive' WHERE role = 'teacher'")
        .await;
    let after = api.get(&path, Some(&api.teacher())).await;
    let text = after.ok().to_string();
    assert!(!text.contains("linda.ng@example.com"), "{text}");
    assert!(after.body["current"].is_null() && after.body["submitted"].is_null());
    assert_eq!(
        after.body["proposed"]["givenName"], "Lin",
        "their own proposal stays"
    );
    let list = api
        .get("/api/v1/contact-requests", Some(&api.teacher()))
        .await;
    assert!(!list.ok().to_string().contains("linda.ng@example.com"));
    // Approvers still see everything.
    let admin = api.get(&path, Some(&api.admin("nyc"))).await;
    assert_eq!(
        admin.ok()["current"]["emailAddress"],
        "linda.ng@example.com"
    );
}

async fn an_add_matching_an_existing_email_waits_for_the_approvers_choice(backend: Backend) {
    let api = with_pages(backend).await;
    // par-3 (Rosa) is the contact of stu-3, whom tch-1 does not teach.
    let rosa = contact_id(&api, "nyc", "par-3").await;
    let reply = submit(
        &api,
        "stu-1",
        json!({"action": "add", "contact": {"emailAddress": "rosa.ortiz@example.com", "relationship": "guardian"}}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_string();
    assert!(!reply.body.to_string().contains("Rosa"), "{}", reply.body);
    let path = format!("/api/v1/contact-requests/{id}");
    let teacher = api.get(&path, Some(&api.teacher())).await;
    assert!(
        teacher.ok().get("matchedContact").is_none(),
        "{}",
        teacher.body
    );
    let admin = api.get(&path, Some(&api.admin("nyc"))).await;
    assert_eq!(admin.ok()["matchedContact"]["contactId"], rosa.as_str());
    assert_eq!(admin.body["matchedContact"]["givenName"], "Rosa");

    let cookie = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, &format!("/admin/approvals/{id}"), Some(&cookie)).await;
    let html = html(&page);
    assert!(html.contains("Link that contact") && html.contains("Create a new contact"));
    assert!(html.contains("rosa.ortiz@example.com") && !html.contains(">Approve<"));

    let silent = decide(&api, &id, "approve", None).await;
    assert_eq!(silent.error(409), "match_to_confirm");
    assert_eq!(
        silent.body["error"]["details"]["matchedContact"]["contactId"],
        rosa.as_str()
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM student_contacts WHERE contact_id IN (SELECT id FROM contacts WHERE source_key = 'par-3')")
            .await,
        1,
        "nothing linked"
    );
    let bad = decide(&api, &id, "approve", Some(json!({"onMatch": "merge"}))).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let linked = decide(&api, &id, "approve", Some(json!({"onMatch": "link"}))).await;
    assert_eq!(linked.ok()["contactId"], rosa.as_str());

    // Or a new contact, keeping the existing one apart.
    let again = submit(
        &api,
        "stu-2",
        json!({"action": "add", "contact": {"givenName": "R", "emailAddress": "rosa.ortiz@example.com", "relationship": "parent"}}),
    )
    .await;
    let id = again.body["id"].as_str().unwrap().to_string();
    let created = decide(&api, &id, "approve", Some(json!({"onMatch": "create"}))).await;
    let created_id = created.ok()["contactId"].as_str().unwrap();
    assert_ne!(created_id, rosa.as_str());
}

async fn nobody_decides_their_own_request(backend: Backend) {
    let api = with_pages(backend).await;
    let both = api.user("nyc", "tch-1", &[Role::Teacher, Role::GlobalAdmin]);
    let id = propose_update(&api, "stu-1", "par-1", json!({"givenName": "Lin"})).await;
    for verb in ["approve", "reject"] {
        let own = post(
            &api,
            &format!("/api/v1/contact-requests/{id}/{verb}"),
            &both,
            Some(json!({"reason": "mine"})),
            &[],
        )
        .await;
        assert_eq!(own.error(403), "own_request", "{verb}");
    }
    let cookie = page_session(&api, &both).await;
    let queue = page_get(&api, "/admin/approvals", Some(&cookie)).await;
    let csrf = csrf_of(&queue);
    let page = page_post(
        &api,
        &format!("/admin/approvals/{id}"),
        &cookie,
        &[("csrf", csrf.as_str()), ("decision", "approve")],
    )
    .await;
    assert_eq!(page.status, 422);
    assert!(
        html(&page).contains("You made this request"),
        "{}",
        html(&page)
    );
    decide(&api, &id, "approve", None).await.ok();
}

async fn chat_members_are_capped_and_deduplicated(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let many: Vec<Value> = (0..21).map(|_| Value::from(par1.as_str())).collect();
    let capped = post(
        &api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-1", "contactIds": many})),
        &[],
    )
    .await;
    assert_eq!(capped.error(422), "too_many_members");
    let twice = post(
        &api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-1", "contactIds": [par1, "999999", "999999"]})),
        &[],
    )
    .await;
    assert_eq!(twice.error(422), "invalid_members");
    assert_eq!(
        twice.body["error"]["details"]["invalid"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "each id once: {}",
        twice.body
    );
}

async fn blocks_reveal_no_contact_the_teacher_may_not_see(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;

    // rel-1 (a relative) is linked to stu-1 but is no contact a teacher sees.
    let relative = contact_id(&api, "nyc", "rel-1").await;
    for contact in [relative.as_str(), "999999"] {
        let block = post(
            &api,
            "/api/v1/blocks",
            &api.teacher(),
            Some(json!({"contactId": contact})),
            &[],
        )
        .await;
        assert_eq!(block.error(404), "not_found", "{contact}");
        assert!(!block.body.to_string().contains("Grace"));
    }
    let guardian = post(
        &api,
        "/api/v1/blocks",
        &api.teacher(),
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(guardian.status, 201, "{}", guardian.body);
}

async fn tokens_living_longer_than_the_cap_are_refused(backend: Backend) {
    let api = Api::with(backend, |c| c.auth.max_token_lifetime = "1h".into()).await;
    let key = mint::SigningKey::from_config(&api.config.auth).unwrap();
    let subject = mint::Subject::User {
        source_id: "admin-1".into(),
        roles: vec![Role::GlobalAdmin],
    };
    let sign = |ttl: u64| {
        let claims = mint::claims(&api.config.auth, "nyc", &subject, Duration::from_secs(ttl));
        mint::sign(&key, &claims).unwrap()
    };
    let long = api.get("/api/v1/audit", Some(&sign(7200))).await;
    assert_eq!(long.error(401), "token_lifetime_too_long");
    api.get("/api/v1/audit", Some(&sign(3600))).await.ok();
    // Without iat, the lifetime counts from now.
    let mut claims = mint::claims(&api.config.auth, "nyc", &subject, Duration::from_secs(7200));
    claims.iat = 0;
    let no_iat = api
        .get("/api/v1/audit", Some(&mint::sign(&key, &claims).unwrap()))
        .await;
    assert_eq!(no_iat.error(401), "token_lifetime_too_long");
}
