//! Teacher contact edits and admin approval through the real router (SPEC §4): submission
//! and validation, idempotent retries, visibility, decisions (stale, concurrent, after the
//! teacher left), the settings switch, authorization, and the audit trail.

use crate::api_support::*;
use crate::db_tests;
use crate::support::{APPLY, Backend, Fixture};
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;
use parent_connection::sync::Format;
use sea_orm::Value as Db;
use serde_json::{Value, json};

db_tests!(
    an_update_waits_for_approval_then_applies_as_approved_edit,
    bad_fields_are_named_in_the_error,
    a_retried_submission_with_the_same_key_creates_nothing_new,
    teachers_see_only_their_own_requests,
    turning_edits_off_refuses_submissions,
    outsiders_are_refused_without_leaking_anything,
    two_approvers_at_once_record_exactly_one_decision,
    a_stale_request_shows_current_values_and_needs_confirmation,
    a_request_stays_decidable_after_the_teacher_left,
    a_rejection_changes_nothing,
    an_update_that_changes_nothing_is_refused,
    the_audit_log_filters_by_action_and_is_for_admins,
    the_audit_log_pages_through_every_entry_once_with_its_filters,
);

/// `POST path` with a JSON body (or none), a token and extra headers.
pub async fn post(
    api: &Api,
    path: &str,
    token: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut builder = Request::post(path).header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    api.send(builder.body(body).unwrap()).await
}

/// `PATCH /api/v1/settings`.
pub async fn patch_settings(api: &Api, token: &str, body: Value) -> Reply {
    api.send(
        Request::patch("/api/v1/settings")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// The contact id of a contact key in the tenant.
pub async fn contact_id(api: &Api, tenant: &str, key: &str) -> String {
    api.db
        .texts(
            "SELECT CAST(c.id AS TEXT) FROM contacts c JOIN tenants t ON t.id = c.tenant_id WHERE t.slug = $1 AND c.source_key = $2",
            vec![tenant.into(), key.into()],
        )
        .await
        .pop()
        .unwrap_or_else(|| panic!("no contact {key} in {tenant}"))
}

/// Submits a request for `student` as teacher `tch-1`.
pub async fn submit(api: &Api, student: &str, body: Value) -> Reply {
    post(
        api,
        &format!("/api/v1/students/{student}/contact-requests"),
        &api.teacher(),
        Some(body),
        &[],
    )
    .await
}

/// Submits an update of `key`'s fields for `student`; returns the request id.
pub async fn propose_update(api: &Api, student: &str, key: &str, contact: Value) -> String {
    let id = contact_id(api, "nyc", key).await;
    let reply = submit(
        api,
        student,
        json!({"action": "update", "contactId": id, "contact": contact}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["status"], "pending");
    reply.body["id"].as_str().unwrap().to_string()
}

/// Approves (or rejects) request `id` as the nyc admin.
pub async fn decide(api: &Api, id: &str, verb: &str, body: Option<Value>) -> Reply {
    post(
        api,
        &format!("/api/v1/contact-requests/{id}/{verb}"),
        &api.admin("nyc"),
        body,
        &[],
    )
    .await
}

/// The teacher view of a student's contacts: `(id, email)` pairs.
pub async fn teacher_view(api: &Api, student: &str) -> Vec<Value> {
    api.get(
        &format!("/api/v1/students/{student}/contacts"),
        Some(&api.teacher()),
    )
    .await
    .ok()["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn an_update_waits_for_approval_then_applies_as_approved_edit(backend: Backend) {
    let api = Api::new(backend).await;
    let before = api.db.fingerprint().await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@new.example", "mobilePhone": "202-555-0199"}),
    )
    .await;
    assert_eq!(
        api.db.fingerprint().await,
        before,
        "nothing changes before approval"
    );
    let view = teacher_view(&api, "stu-1").await;
    assert!(
        view.iter()
            .all(|c| c["emailAddress"] != "linda@new.example"),
        "pending data is not in the contact views: {view:?}"
    );
    let pending = api
        .get(
            "/api/v1/contact-requests?status=pending",
            Some(&api.admin("nyc")),
        )
        .await;
    let item = &pending.ok()["items"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["submitted"]["emailAddress"], "linda.ng@example.com");
    assert_eq!(item["current"]["emailAddress"], "linda.ng@example.com");
    assert_eq!(item["proposed"]["emailAddress"], "linda@new.example");
    assert_eq!(item["proposed"]["mobilePhone"], "+12025550199", "E.164");
    assert_eq!(item["stale"], false);

    let approved = decide(
        &api,
        &id,
        "approve",
        Some(json!({"reason": "checked by phone"})),
    )
    .await;
    let body = approved.ok();
    assert_eq!(body["status"], "approved");
    assert_eq!(body["reason"], "checked by phone");
    assert_eq!(
        body["applied"]["values"]["emailAddress"],
        "linda@new.example"
    );
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (
            Some("linda@new.example".into()),
            Some("approved_edit".into())
        )
    );
    let changed_at = api
        .db
        .texts(
            "SELECT CAST(email_changed_at AS TEXT) FROM contacts WHERE source_key = 'par-1'",
            vec![],
        )
        .await;
    let decided_at = api
        .db
        .texts(
            "SELECT CAST(decided_at AS TEXT) FROM contact_requests",
            vec![],
        )
        .await;
    assert_eq!(
        changed_at, decided_at,
        "the change time is the approval time"
    );
    let admin_view = api
        .get("/api/v1/students/stu-1/contacts", Some(&api.admin("nyc")))
        .await;
    let linda = admin_view.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["emailAddress"] == "linda@new.example")
        .cloned()
        .expect("the edit is visible");
    assert_eq!(
        linda["provenance"]["emailAddress"]["source"],
        "approved_edit"
    );
    assert_eq!(linda["provenance"]["givenName"]["source"], "sync");
    let actions = api
        .db
        .texts("SELECT action FROM audit_log ORDER BY id", vec![])
        .await;
    assert!(actions.contains(&"contact_request.submit".to_string()));
    assert!(actions.contains(&"contact_request.approve".to_string()));
}

async fn bad_fields_are_named_in_the_error(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let cases = [
        (
            json!({"emailAddress": "not-an-email"}),
            "contact.emailAddress",
        ),
        (json!({"mobilePhone": "555-12"}), "contact.mobilePhone"),
        (json!({"relationship": "uncle"}), "contact.relationship"),
    ];
    for (contact, field) in cases {
        let reply = submit(
            &api,
            "stu-1",
            json!({"action": "update", "contactId": par1, "contact": contact}),
        )
        .await;
        assert_eq!(reply.error(422), "invalid_field");
        assert_eq!(
            reply.body["error"]["details"]["field"], field,
            "{}",
            reply.body
        );
    }
    let add_without_channel = submit(
        &api,
        "stu-1",
        json!({"action": "add", "contact": {"givenName": "Al", "relationship": "parent"}}),
    )
    .await;
    assert_eq!(add_without_channel.error(422), "invalid_field");
    let unknown_field = submit(
        &api,
        "stu-1",
        json!({"action": "update", "contactId": par1, "contact": {"nickname": "Lin"}}),
    )
    .await;
    assert_eq!(unknown_field.error(400), "invalid_body");
    let bad_action = submit(&api, "stu-1", json!({"action": "merge"})).await;
    assert_eq!(bad_action.body["error"]["details"]["field"], "action");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        0
    );
}

async fn a_retried_submission_with_the_same_key_creates_nothing_new(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let body = json!({"action": "update", "contactId": par1, "contact": {"givenName": "Lin"}});
    let path = "/api/v1/students/stu-1/contact-requests";
    let key = [("idempotency-key", "retry-7f3a")];
    let first = post(&api, path, &api.teacher(), Some(body.clone()), &key).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = post(&api, path, &api.teacher(), Some(body), &key).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body, first.body, "the first result is returned");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        1
    );
    let other = json!({"action": "update", "contactId": par1, "contact": {"givenName": "Lyn"}});
    let reused = post(&api, path, &api.teacher(), Some(other), &key).await;
    assert_eq!(reused.error(422), "idempotency_key_reused");
    // Without a key every submission is a new request.
    let without_key = post(
        &api,
        path,
        &api.teacher(),
        Some(json!({"action": "remove", "contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(without_key.status, 201);
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        2
    );
}

/// Imports the nyc fixture with a second teacher `tch-2` teaching `stu-3` in `cls-2`.
pub async fn add_second_teacher(api: &Api) {
    let fixture = Fixture::v21();
    fixture
        .append("users.csv", "tch-2,ms.roy,Ana,Roy,ms.roy@school.example,,")
        .append("roles.csv", "tch-2,sch-1,teacher")
        .append("classes.csv", "cls-2,sch-1,Art 3B")
        .append("enrollments.csv", "cls-2,stu-3,student")
        .append("enrollments.csv", "cls-2,tch-2,teacher");
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
}

async fn teachers_see_only_their_own_requests(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let mine = propose_update(&api, "stu-1", "par-1", json!({"givenName": "Lin"})).await;
    let par3 = contact_id(&api, "nyc", "par-3").await;
    let other_teacher = api.user("nyc", "tch-2", &[Role::Teacher]);
    let theirs = post(
        &api,
        "/api/v1/students/stu-3/contact-requests",
        &other_teacher,
        Some(json!({"action": "update", "contactId": par3, "contact": {"givenName": "Rosie"}})),
        &[],
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    let list = api
        .get("/api/v1/contact-requests", Some(&api.teacher()))
        .await;
    let ids: Vec<&str> = list.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.as_str()]);
    let theirs_id = theirs.body["id"].as_str().unwrap();
    let peek = api
        .get(
            &format!("/api/v1/contact-requests/{theirs_id}"),
            Some(&api.teacher()),
        )
        .await;
    assert_eq!(peek.error(404), "not_found");
    let all = api
        .get("/api/v1/contact-requests", Some(&api.admin("nyc")))
        .await;
    assert_eq!(all.ok()["items"].as_array().unwrap().len(), 2);
    let other_tenant = api
        .get("/api/v1/contact-requests", Some(&api.admin("bos")))
        .await;
    assert_eq!(other_tenant.ok()["items"], json!([]));
}

async fn turning_edits_off_refuses_submissions(backend: Backend) {
    let api = Api::new(backend).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let settings = api.get("/api/v1/settings", Some(&tenant_admin)).await;
    assert_eq!(settings.ok()["updateParentInformation"], true);
    let bad = patch_settings(
        &api,
        &tenant_admin,
        json!({"updateParentInformation": "no"}),
    )
    .await;
    assert_eq!(bad.error(422), "invalid_setting");
    let unknown = patch_settings(&api, &tenant_admin, json!({"colour": "red"})).await;
    assert_eq!(unknown.error(422), "invalid_setting");
    let channel = patch_settings(
        &api,
        &tenant_admin,
        json!({"preferredInviteChannel": "fax"}),
    )
    .await;
    assert!(
        channel.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email, sms"),
        "{}",
        channel.body
    );
    let by_admin = patch_settings(
        &api,
        &api.admin("nyc"),
        json!({"updateParentInformation": false}),
    )
    .await;
    assert_eq!(by_admin.error(403), "forbidden");
    let off = patch_settings(
        &api,
        &tenant_admin,
        json!({"updateParentInformation": false}),
    )
    .await;
    assert_eq!(off.ok()["updateParentInformation"], false);
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let refused = submit(
        &api,
        "stu-1",
        json!({"action": "update", "contactId": par1, "contact": {"givenName": "Lin"}}),
    )
    .await;
    assert_eq!(refused.error(403), "edits_disabled");
    let audit = api
        .get("/api/v1/audit?action=settings.update", Some(&tenant_admin))
        .await;
    let entry = &audit.ok()["items"][0];
    assert_eq!(entry["before"]["updateParentInformation"], true);
    assert_eq!(entry["after"]["updateParentInformation"], false);
    assert_eq!(entry["actor"], "api:user:ta-1@nyc");
    // The other tenant keeps its own setting.
    let bos = api
        .get(
            "/api/v1/settings",
            Some(&api.user("bos", "ta-1", &[Role::TenantAdmin])),
        )
        .await;
    assert_eq!(bos.ok()["updateParentInformation"], true);
}

async fn outsiders_are_refused_without_leaking_anything(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let body = json!({"action": "update", "contactId": par1, "contact": {"givenName": "Lin"}});
    let path = "/api/v1/students/stu-1/contact-requests";
    let callers = [
        (api.user("nyc", "tch-2", &[Role::Teacher]), 404, "not_found"),
        (api.user("bos", "tch-1", &[Role::Teacher]), 404, "not_found"),
        (
            api.app("nyc", &["EduRoster.ReadWrite.All"]),
            403,
            "forbidden",
        ),
        (api.admin("nyc"), 403, "forbidden"),
    ];
    for (token, status, code) in &callers {
        let reply = post(&api, path, token, Some(body.clone()), &[]).await;
        assert_eq!(reply.error(*status), *code);
        let text = reply.body.to_string();
        for secret in ["Linda", "linda.ng", "par-1", "Ava", "cls-1"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
    // A teacher proposing for a contact of another student of theirs is not found either.
    let par3 = contact_id(&api, "nyc", "par-3").await;
    let wrong_contact = submit(
        &api,
        "stu-1",
        json!({"action": "remove", "contactId": par3}),
    )
    .await;
    assert_eq!(wrong_contact.error(404), "not_found");
    // Non-parent roles are not offered to teachers, so not editable by them.
    let doctor = contact_id(&api, "nyc", "doc-1").await;
    let hidden = submit(
        &api,
        "stu-1",
        json!({"action": "remove", "contactId": doctor}),
    )
    .await;
    assert_eq!(hidden.error(404), "not_found");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        0
    );
    let id = propose_update(&api, "stu-1", "par-1", json!({"givenName": "Lin"})).await;
    for token in [
        api.teacher(),
        api.app("nyc", &["EduRoster.ReadWrite.All"]),
        api.user("nyc", "ta-1", &[Role::TenantAdmin]),
    ] {
        let reply = post(
            &api,
            &format!("/api/v1/contact-requests/{id}/approve"),
            &token,
            None,
            &[],
        )
        .await;
        assert_eq!(reply.error(403), "forbidden");
    }
    let other_tenant = post(
        &api,
        &format!("/api/v1/contact-requests/{id}/approve"),
        &api.admin("bos"),
        None,
        &[],
    )
    .await;
    assert_eq!(other_tenant.error(404), "not_found");
    let app_list = api
        .get(
            "/api/v1/contact-requests",
            Some(&api.app("nyc", &["EduRoster.Read.All"])),
        )
        .await;
    assert_eq!(app_list.error(403), "forbidden");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contact_requests WHERE status = 'pending'")
            .await,
        1
    );
}

async fn two_approvers_at_once_record_exactly_one_decision(backend: Backend) {
    let api = Api::new(backend).await;
    for round in 0..3 {
        let id = propose_update(
            &api,
            "stu-1",
            "par-1",
            json!({"givenName": format!("Lin{round}")}),
        )
        .await;
        let teams_admin = api.user("nyc", "admin-2", &[Role::TeamsAdmin]);
        let path = format!("/api/v1/contact-requests/{id}/approve");
        let reject_path = format!("/api/v1/contact-requests/{id}/reject");
        let admin = api.admin("nyc");
        let (a, b) = tokio::join!(
            post(&api, &path, &admin, None, &[]),
            post(&api, &reject_path, &teams_admin, None, &[]),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);
        let loser = if a.status == 409 { &a } else { &b };
        assert_eq!(loser.code(), "already_decided");
        let decisions = api
            .db
            .count(&format!(
                "SELECT COUNT(*) FROM audit_log WHERE target = 'contact_request:{id}' AND action IN ('contact_request.approve', 'contact_request.reject')"
            ))
            .await;
        assert_eq!(decisions, 1);
    }
}

async fn a_stale_request_shows_current_values_and_needs_confirmation(backend: Backend) {
    let api = Api::new(backend).await;
    let id = propose_update(
        &api,
        "stu-1",
        "par-1",
        json!({"emailAddress": "linda@teacher.example"}),
    )
    .await;
    let changed = Fixture::v21();
    changed.replace("users.csv", "linda.ng@example.com", "linda@sis.example");
    api.db
        .import("nyc", Format::SdsV21, changed.path(), APPLY)
        .await;
    let item = api
        .get(
            &format!("/api/v1/contact-requests/{id}"),
            Some(&api.admin("nyc")),
        )
        .await;
    let item = item.ok();
    assert_eq!(item["stale"], true);
    assert_eq!(item["submitted"]["emailAddress"], "linda.ng@example.com");
    assert_eq!(item["current"]["emailAddress"], "linda@sis.example");
    assert_eq!(item["proposed"]["emailAddress"], "linda@teacher.example");
    let refused = decide(&api, &id, "approve", None).await;
    assert_eq!(refused.error(409), "stale_request");
    assert_eq!(
        refused.body["error"]["details"]["current"]["emailAddress"],
        "linda@sis.example"
    );
    assert_eq!(
        refused.body["error"]["details"]["proposed"]["emailAddress"],
        "linda@teacher.example"
    );
    assert_eq!(
        api.db.contact_field("par-1", "email").await.0.as_deref(),
        Some("linda@sis.example"),
        "a refused approval changes nothing"
    );
    let approved = decide(&api, &id, "approve", Some(json!({"confirmStale": true}))).await;
    assert_eq!(approved.ok()["status"], "approved");
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (
            Some("linda@teacher.example".into()),
            Some("approved_edit".into())
        )
    );
}

async fn a_request_stays_decidable_after_the_teacher_left(backend: Backend) {
    let api = Api::new(backend).await;
    let id = propose_update(&api, "stu-1", "par-1", json!({"familyName": "Ng-Park"})).await;
    let left = Fixture::v21();
    left.remove_lines("enrollments.csv", "tch-1")
        .remove_lines("roles.csv", "tch-1")
        .remove_lines("users.csv", "tch-1");
    let report = api
        .db
        .import("nyc", Format::SdsV21, left.path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let list = api
        .get(
            "/api/v1/contact-requests?status=pending",
            Some(&api.admin("nyc")),
        )
        .await;
    assert_eq!(list.ok()["items"][0]["id"], id.as_str());
    let approved = decide(&api, &id, "approve", None).await;
    assert_eq!(approved.ok()["status"], "approved");
    assert_eq!(
        api.db
            .contact_field("par-1", "family_name")
            .await
            .0
            .as_deref(),
        Some("Ng-Park")
    );
}

async fn a_rejection_changes_nothing(backend: Backend) {
    let api = Api::new(backend).await;
    let id = propose_update(&api, "stu-1", "par-2", json!({"relationship": "parent"})).await;
    let before = api.db.fingerprint().await;
    let rejected = decide(
        &api,
        &id,
        "reject",
        Some(json!({"reason": "not the guardian"})),
    )
    .await;
    assert_eq!(rejected.ok()["status"], "rejected");
    assert_eq!(rejected.body["reason"], "not the guardian");
    assert_eq!(api.db.fingerprint().await, before);
    let again = decide(&api, &id, "approve", None).await;
    assert_eq!(again.error(409), "already_decided");
    assert_eq!(again.body["error"]["details"]["status"], "rejected");
    let teacher_view = api
        .get(
            "/api/v1/contact-requests?status=rejected",
            Some(&api.teacher()),
        )
        .await;
    assert_eq!(teacher_view.ok()["items"][0]["reason"], "not the guardian");
    let missing = decide(&api, "999999", "approve", None).await;
    assert_eq!(missing.error(404), "not_found");
    let garbage = decide(&api, "abc", "approve", None).await;
    assert_eq!(garbage.error(404), "not_found");
    let bad_body = decide(&api, &id, "reject", Some(json!({"because": 1}))).await;
    assert_eq!(bad_body.error(400), "invalid_body");
}

async fn an_update_that_changes_nothing_is_refused(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let same = submit(
        &api,
        "stu-1",
        json!({"action": "update", "contactId": par1, "contact": {"givenName": "Linda", "relationship": "parent"}}),
    )
    .await;
    assert_eq!(same.error(422), "no_change");
}

async fn the_audit_log_filters_by_action_and_is_for_admins(backend: Backend) {
    let api = Api::new(backend).await;
    let id = propose_update(&api, "stu-1", "par-1", json!({"givenName": "Lin"})).await;
    decide(&api, &id, "approve", None).await.ok();
    let admin = api.admin("nyc");
    let requests = api
        .get("/api/v1/audit?action=contact_request.", Some(&admin))
        .await;
    let actions: Vec<&str> = requests.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["contact_request.approve", "contact_request.submit"],
        "newest first"
    );
    let approve = &requests.body["items"][0];
    assert_eq!(approve["before"]["current"]["givenName"], "Linda");
    assert_eq!(approve["after"]["applied"]["values"]["givenName"], "Lin");
    assert_eq!(approve["actor"], "api:user:admin-1@nyc");
    assert!(
        approve["at"].as_str().unwrap().ends_with('Z')
            || approve["at"].as_str().unwrap().contains("+00:00")
    );
    let paged = api.get("/api/v1/audit?limit=1", Some(&admin)).await;
    let cursor = paged.ok()["nextCursor"].as_str().unwrap().to_string();
    let next = api
        .get(
            &format!("/api/v1/audit?limit=1&cursor={cursor}"),
            Some(&admin),
        )
        .await;
    assert_ne!(next.ok()["items"][0]["id"], paged.body["items"][0]["id"]);
    let by_target = api
        .get(
            &format!("/api/v1/audit?target=contact_request:{id}&actor=api:user:tch-1@nyc"),
            Some(&admin),
        )
        .await;
    assert_eq!(by_target.ok()["items"].as_array().unwrap().len(), 1);
    let future = api
        .get("/api/v1/audit?since=2999-01-01T00:00:00Z", Some(&admin))
        .await;
    assert_eq!(future.ok()["items"], json!([]));
    let teacher = api.get("/api/v1/audit", Some(&api.teacher())).await;
    assert_eq!(teacher.error(403), "forbidden");
    let other_tenant = api
        .get(
            "/api/v1/audit?action=contact_request.",
            Some(&api.admin("bos")),
        )
        .await;
    assert_eq!(other_tenant.ok()["items"], json!([]));
}

async fn the_audit_log_pages_through_every_entry_once_with_its_filters(backend: Backend) {
    let api = Api::new(backend).await;
    for (key, name) in [("par-1", "Lin"), ("par-2", "Tommy"), ("par-1", "Lindy")] {
        let id = propose_update(&api, "stu-1", key, json!({"givenName": name})).await;
        decide(&api, &id, "approve", None).await.ok();
    }
    // Five entries at the same instant: the order (time, then id) and the cursor must break
    // the tie by id, across pages.
    let instant = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    for n in 0..5 {
        parent_connection::db::exec(
            &api.db.conn,
            "INSERT INTO audit_log (tenant_id, actor, action, target, at) \
             SELECT id, 'cli:test', $1, $2, $3 FROM tenants WHERE slug = 'nyc'",
            vec![
                if n % 2 == 0 { "test.even" } else { "test.odd" }.into(),
                format!("test:{n}").into(),
                Db::ChronoDateTimeUtc(Some(instant)),
            ],
        )
        .await
        .unwrap();
    }
    let admin = api.admin("nyc");
    let stored = |condition: &str| {
        format!(
            "SELECT CAST(a.id AS TEXT) FROM audit_log a JOIN tenants t ON t.id = a.tenant_id \
             WHERE t.slug = 'nyc' AND {condition} ORDER BY a.at DESC, a.id DESC"
        )
    };
    let (every, _) = every_page(&api, "/api/v1/audit", &admin, 500).await;
    let at = |i: usize| every[i]["at"].as_str().unwrap().to_string();
    let time = |i: usize| Db::ChronoDateTimeUtc(Some(at(i).parse().unwrap()));
    // A window of entries (the older bound included, the newer one not).
    let (since, until) = (every.len() - 2, 1);
    for (query, condition, values) in [
        ("".to_string(), "1 = 1", vec![]),
        (
            "?action=contact_request.".to_string(),
            "a.action LIKE 'contact\\_request.%' ESCAPE '\\'",
            vec![],
        ),
        (
            "?action=test.".to_string(),
            "a.action LIKE 'test.%'",
            vec![],
        ),
        (
            "?action=contact_request.approve".to_string(),
            "a.action = 'contact_request.approve'",
            vec![],
        ),
        (
            "?action=test.odd".to_string(),
            "a.action = 'test.odd'",
            vec![],
        ),
        (
            "?actor=api:user:tch-1@nyc".to_string(),
            "a.actor = 'api:user:tch-1@nyc'",
            vec![],
        ),
        (
            format!("?since={}&until={}", at(since), at(until)),
            "a.at >= $1 AND a.at < $2",
            vec![time(since), time(until)],
        ),
        (
            format!("?until={}", at(until)),
            "a.at < $1",
            vec![time(until)],
        ),
    ] {
        let expected = api.db.texts(&stored(condition), values).await;
        assert!(expected.len() >= 2, "{query}: {expected:?}");
        let query = query.replace('+', "%2B");
        let (items, pages) = every_page(&api, &format!("/api/v1/audit{query}"), &admin, 2).await;
        assert_eq!(
            field(&items, "id"),
            expected,
            "{query}: newest first, each once"
        );
        assert_eq!(pages, expected.len().div_ceil(2), "{query}");
    }
    let none = api
        .get("/api/v1/audit?action=oneroster.", Some(&admin))
        .await;
    assert_eq!(none.ok()["items"], json!([]), "a prefix no entry has");
    assert_eq!(none.body["nextCursor"], Value::Null);
}
