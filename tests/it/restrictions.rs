//! Per-child restrictions (issue 22, docs/restrictions.md) through the real router, real
//! syncs, the digest composer and the dispatcher: what a restriction hides and from whom,
//! the contact's other children, chats and banners, invitations, the digest, syncs that
//! never lift it, its end date, validation, authorization, the audit log and the history.

use crate::api_support::*;
use crate::approvals::{contact_id, post, teacher_view};
use crate::db_tests;
use crate::digest::{digests, summary, two_assignments};
use crate::support::{APPLY, Backend, Fixture};
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::sync::Format;
use serde_json::{Value, json};

db_tests!(
    a_restriction_hides_one_child_from_teachers_and_the_graph_read,
    a_restricted_guardian_cannot_join_a_chat_and_existing_chats_get_a_banner,
    no_invitation_goes_out_for_a_restricted_child,
    the_digest_leaves_out_the_restricted_child_only,
    syncs_never_lift_a_restriction,
    a_restriction_ends_at_its_end_or_when_lifted,
    restrictions_are_validated_audited_and_for_approvers_only,
    the_admin_pages_restrict_with_a_date_and_lift,
);

fn path(student: &str, contact: &str) -> String {
    format!("/api/v1/students/{student}/contacts/{contact}/restriction")
}

/// Restricts `contact` of `student` as the nyc admin; the reply.
async fn restrict(api: &Api, student: &str, contact: &str, body: Value) -> Reply {
    post(
        api,
        &path(student, contact),
        &api.admin("nyc"),
        Some(body),
        &[],
    )
    .await
}

/// [`restrict`], which must succeed.
async fn restricted(api: &Api, student: &str, contact: &str, body: Value) {
    let reply = restrict(api, student, contact, body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

async fn lift(api: &Api, student: &str, contact: &str, token: &str) -> Reply {
    api.send(
        Request::delete(path(student, contact))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn admin_item(api: &Api, student: &str, contact: &str) -> Value {
    let all = api
        .get(
            &format!("/api/v1/students/{student}/contacts"),
            Some(&api.admin("nyc")),
        )
        .await;
    all.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == contact)
        .cloned()
        .unwrap_or_else(|| panic!("contact {contact} not in the admin view: {}", all.body))
}

async fn graph_ids(api: &Api, student: &str) -> Vec<String> {
    let app = api.app("nyc", &["EduRoster.Read.All"]);
    let body = api
        .get(
            &format!("/education/users/{student}?$select=relatedContacts"),
            Some(&app),
        )
        .await;
    ids(body.ok()["relatedContacts"].as_array().unwrap())
}

async fn a_restriction_hides_one_child_from_teachers_and_the_graph_read(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    assert!(ids(&teacher_view(&api, "stu-1").await).contains(&par1));
    assert!(graph_ids(&api, "stu-1").await.contains(&par1));
    let until = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let made = restrict(
        &api,
        "stu-1",
        &par1,
        json!({"reason": "Court order 2026-114", "until": until}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["studentId"], "stu-1");
    assert_eq!(made.body["contactId"], par1.as_str());
    assert_eq!(made.body["reason"], "Court order 2026-114");
    assert!(
        made.body["restrictedBy"]
            .as_str()
            .unwrap()
            .contains("admin-1")
    );
    assert!(made.body["endedAt"].is_null());
    // Hidden from the teacher about Ava, still there about her brother Ben.
    assert!(!ids(&teacher_view(&api, "stu-1").await).contains(&par1));
    assert!(ids(&teacher_view(&api, "stu-2").await).contains(&par1));
    assert!(!graph_ids(&api, "stu-1").await.contains(&par1));
    assert!(graph_ids(&api, "stu-2").await.contains(&par1));
    // Admins see the contact with its restriction; teachers never see the reason.
    let item = admin_item(&api, "stu-1", &par1).await;
    assert_eq!(item["status"], "active");
    assert_eq!(item["restriction"]["reason"], "Court order 2026-114");
    assert_eq!(item["restriction"]["id"], made.body["id"]);
    assert!(admin_item(&api, "stu-2", &par1).await["restriction"].is_null());
    let teacher_json = api
        .get("/api/v1/students/stu-2/contacts", Some(&api.teacher()))
        .await;
    assert!(!teacher_json.body.to_string().contains("restriction"));
    // The guardian's own view of their children leaves Ava out, and they cannot start a
    // chat about her.
    let guardian = api.mint(
        "nyc",
        Subject::Contact {
            contact_id: par1.clone(),
        },
    );
    let refused = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian,
        Some(json!({"ownerId": "tch-1", "studentId": "stu-1"})),
        &[],
    )
    .await;
    assert!(
        refused.status.is_client_error(),
        "{} {}",
        refused.status,
        refused.body
    );
    let allowed = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian,
        Some(json!({"ownerId": "tch-1", "studentId": "stu-2"})),
        &[],
    )
    .await;
    assert_eq!(allowed.status, 201, "{}", allowed.body);
}

async fn chat(api: &Api, id: &str) -> Value {
    api.get(&format!("/api/v1/chats/{id}"), Some(&api.teacher()))
        .await
        .ok()
        .clone()
}

async fn start(api: &Api, student: &str, contacts: &[&str]) -> Reply {
    post(
        api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": student, "contactIds": contacts})),
        &[],
    )
    .await
}

async fn a_restricted_guardian_cannot_join_a_chat_and_existing_chats_get_a_banner(
    backend: Backend,
) {
    let api = Api::new(backend).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let started = start(&api, "stu-1", &[&par1, &par2]).await;
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["id"].as_str().unwrap().to_string();
    let about_ben = start(&api, "stu-2", &[&par1]).await;
    let ben_chat = about_ben.body["id"].as_str().unwrap().to_string();
    restricted(&api, "stu-1", &par1, json!({"reason": "custody"})).await;
    let view = chat(&api, &id).await;
    let banners = view["banners"].as_array().unwrap();
    assert_eq!(banners.len(), 1, "{view}");
    assert_eq!(banners[0]["contactId"], par1.as_str());
    assert_eq!(banners[0]["cause"], "restricted");
    assert!(!banners[0]["message"].as_str().unwrap().contains("custody"));
    assert_eq!(chat(&api, &ben_chat).await["banners"], json!([]));
    // A new chat with them about Ava is refused as if they were no contact of hers.
    let refused = start(&api, "stu-1", &[&par1]).await;
    assert_eq!(refused.error(422), "invalid_members");
    assert_eq!(
        refused.body["error"]["details"]["invalid"][0]["reason"],
        "not_a_contact_of_student"
    );
    // A sync that reactivates other links does not clear the banner.
    let dropped = Fixture::v21();
    dropped.remove_lines("relationships.csv", "stu-1,rel-1");
    api.db
        .import("nyc", Format::SdsV21, dropped.path(), APPLY)
        .await;
    api.db
        .import("nyc", Format::SdsV21, Fixture::v21().path(), APPLY)
        .await;
    assert_eq!(
        chat(&api, &id).await["banners"].as_array().unwrap().len(),
        1
    );
    // Lifting it clears the banner and lets the teacher chat with them again.
    lift(&api, "stu-1", &par1, &api.admin("nyc")).await.ok();
    assert_eq!(chat(&api, &id).await["banners"], json!([]));
    assert_eq!(start(&api, "stu-1", &[&par1]).await.status, 201);
}

async fn no_invitation_goes_out_for_a_restricted_child(backend: Backend) {
    let api = Api::new(backend).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let started = start(&api, "stu-1", &[&par1, &par2]).await;
    assert_eq!(started.status, 201, "{}", started.body);
    restricted(&api, "stu-1", &par1, json!({"reason": "court order"})).await;
    let stats = crate::invitations::dispatch(&api).await;
    assert_eq!((stats.sent, stats.suppressed), (1, 1), "{stats:?}");
    let sent_to = api
        .db
        .texts(
            "SELECT CAST(contact_id AS TEXT) FROM invitations i JOIN outbox o ON o.ref_id = i.id \
             WHERE o.status = 'sent' ORDER BY i.id",
            vec![],
        )
        .await;
    assert_eq!(sent_to, vec![par2]);
}

async fn the_digest_leaves_out_the_restricted_child_only(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    restricted(&api, "stu-1", &par1, json!({"reason": "court order"})).await;
    assert_eq!(
        summary(&digests(&api, "2026-W48").await),
        vec![
            "linda.ng@example.com: Ben Ng (Math 3A: hw-1 / hw-2)".to_string(),
            "tom.ng@example.com: Ava Ng (Math 3A: hw-1 / hw-2)".to_string(),
        ]
    );
}

async fn syncs_never_lift_a_restriction(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    restricted(&api, "stu-1", &par1, json!({"reason": "court order"})).await;
    // The same snapshot, one without the link (it goes inactive), one that brings it back
    // with another relationship, then the original again.
    let dropped = Fixture::v21();
    dropped.remove_lines("relationships.csv", "stu-1,par-1");
    let changed = Fixture::v21();
    changed.replace(
        "relationships.csv",
        "stu-1,par-1,parent",
        "stu-1,par-1,guardian",
    );
    for fixture in [Fixture::v21(), dropped, changed, Fixture::v21()] {
        api.db
            .import("nyc", Format::SdsV21, fixture.path(), APPLY)
            .await;
        assert!(!ids(&teacher_view(&api, "stu-1").await).contains(&par1));
        assert!(
            !admin_item(&api, "stu-1", &par1).await["restriction"].is_null(),
            "a sync lifted the restriction"
        );
    }
    assert_eq!(admin_item(&api, "stu-1", &par1).await["status"], "active");
}

async fn a_restriction_ends_at_its_end_or_when_lifted(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    restricted(
        &api,
        "stu-1",
        &par1,
        json!({"reason": "until the hearing", "until": until.to_rfc3339()}),
    )
    .await;
    restricted(&api, "stu-1", &par2, json!({"reason": "no end"})).await;
    let expire = |at| parent_connection::restrictions::expire_due(&api.db.conn, at);
    assert_eq!(
        expire(until - chrono::Duration::seconds(1)).await.unwrap(),
        0
    );
    assert_eq!(expire(until).await.unwrap(), 1, "ends at its end");
    assert_eq!(expire(until).await.unwrap(), 0, "once");
    let visible = ids(&teacher_view(&api, "stu-1").await);
    assert!(visible.contains(&par1) && !visible.contains(&par2));
    assert!(admin_item(&api, "stu-1", &par1).await["restriction"].is_null());
    // Lifting: the admin sees who lifted; a second lift finds nothing to lift.
    let lifted = lift(&api, "stu-1", &par2, &api.admin("nyc")).await;
    let admin = lifted.ok()["endedBy"].as_str().unwrap().to_string();
    assert!(admin.contains("admin-1"), "{admin}");
    assert_eq!(
        lift(&api, "stu-1", &par2, &api.admin("nyc"))
            .await
            .error(404),
        "not_found"
    );
    assert!(ids(&teacher_view(&api, "stu-1").await).contains(&par2));
    let history = api
        .get(
            "/api/v1/students/stu-1/restrictions",
            Some(&api.admin("nyc")),
        )
        .await;
    let ended: Vec<(&str, &str)> = history.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().unwrap(),
                r["endedBy"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ended,
        vec![("no end", admin.as_str()), ("until the hearing", "expired")]
    );
    let actions = api
        .db
        .texts(
            "SELECT action FROM audit_log WHERE action LIKE 'contact.%restrict%' ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(
        actions,
        vec![
            "contact.restrict",
            "contact.restrict",
            "contact.restriction_expired",
            "contact.unrestrict"
        ]
    );
}

async fn restrictions_are_validated_audited_and_for_approvers_only(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let teacher = post(
        &api,
        &path("stu-1", &par1),
        &api.teacher(),
        Some(json!({"reason": "x"})),
        &[],
    )
    .await;
    assert_eq!(teacher.error(403), "forbidden");
    assert_eq!(
        lift(&api, "stu-1", &par1, &api.teacher()).await.error(403),
        "forbidden"
    );
    let history = api
        .get("/api/v1/students/stu-1/restrictions", Some(&api.teacher()))
        .await;
    assert_eq!(history.error(403), "forbidden");
    let field = |reply: &Reply| reply.body["error"]["details"]["field"].clone();
    let blank = restrict(&api, "stu-1", &par1, json!({"reason": "  "})).await;
    assert_eq!(blank.error(422), "invalid_field");
    assert_eq!(field(&blank), "reason");
    let past = restrict(
        &api,
        "stu-1",
        &par1,
        json!({"reason": "x", "until": "2020-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(past.error(422), "invalid_field");
    assert_eq!(field(&past), "until");
    let garbled = restrict(
        &api,
        "stu-1",
        &par1,
        json!({"reason": "x", "until": "soon"}),
    )
    .await;
    assert_eq!(field(&garbled), "until");
    assert_eq!(
        restrict(&api, "stu-x", &par1, json!({"reason": "x"}))
            .await
            .error(404),
        "not_found"
    );
    let rel = contact_id(&api, "nyc", "par-3").await;
    assert_eq!(
        restrict(&api, "stu-1", &rel, json!({"reason": "x"}))
            .await
            .error(404),
        "not_found",
        "a contact not linked to the student"
    );
    assert_eq!(
        restrict(&api, "stu-1", "abc", json!({"reason": "x"}))
            .await
            .error(404),
        "not_found"
    );
    // Another tenant's admin finds nothing.
    api.db.tenant("boston").await;
    let other = post(
        &api,
        &path("stu-1", &par1),
        &api.user("boston", "adm-9", &[Role::GlobalAdmin]),
        Some(json!({"reason": "x"})),
        &[],
    )
    .await;
    assert_eq!(other.error(404), "not_found");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM link_restrictions").await,
        0
    );
    // Restricting again replaces: one in force, the old one ended by the same admin.
    restricted(&api, "stu-1", &par1, json!({"reason": "first"})).await;
    let second = restrict(&api, "stu-1", &par1, json!({"reason": "second"})).await;
    assert_eq!(second.status, 201);
    assert_eq!(
        admin_item(&api, "stu-1", &par1).await["restriction"]["reason"],
        "second"
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM link_restrictions WHERE ended_at IS NULL")
            .await,
        1
    );
    let audit = api
        .get(
            "/api/v1/audit?action=contact.restrict",
            Some(&api.admin("nyc")),
        )
        .await;
    let items = audit.ok()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["before"]["reason"], "first");
    assert_eq!(items[0]["after"]["reason"], "second");
    assert_eq!(
        items[0]["target"],
        format!("student:stu-1/contact:{par1}").as_str()
    );
}

async fn the_admin_pages_restrict_with_a_date_and_lift(backend: Backend) {
    let api = Api::with(backend, |config| config.web.token_signin = true).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    let student = page_get(&api, "/admin/students/stu-1", Some(&cookie)).await;
    assert!(html(&student).contains("No contact of this student was restricted."));
    let form_path = format!("/admin/students/stu-1/contacts/{par1}/restrict");
    let form = page_get(&api, &form_path, Some(&cookie)).await;
    assert!(
        html(&form).contains("America/New_York"),
        "the tenant's zone is named"
    );
    let csrf = csrf_of(&form);
    // Both errors at once, each next to its field; nothing is restricted.
    let refused = page_post(
        &api,
        &form_path,
        &cookie,
        &[("csrf", &csrf), ("reason", " "), ("until", "2001-01-01")],
    )
    .await;
    assert_eq!(refused.status, 422);
    let page = html(&refused);
    assert!(page.contains("Give a reason") && page.contains("Choose a day after today"));
    assert!(page.contains(r#"aria-invalid="true""#));
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM link_restrictions").await,
        0
    );
    let done = page_post(
        &api,
        &form_path,
        &cookie,
        &[
            ("csrf", &csrf),
            ("reason", "Court order"),
            ("until", "2099-07-01"),
        ],
    )
    .await;
    assert_eq!(done.status, 303);
    let item = admin_item(&api, "stu-1", &par1).await;
    // The start of 1 July 2099 in New York.
    assert_eq!(item["restriction"]["until"], "2099-07-01T04:00:00Z");
    let student = page_get(&api, "/admin/students/stu-1?restricted=1", Some(&cookie)).await;
    let page = html(&student);
    assert!(page.contains("The contact is restricted for this student."));
    assert!(
        page.contains("until 2099-07-01 04:00 UTC: Court order"),
        "{page}"
    );
    assert!(page.contains("; in force"));
    // A forged form without the page's token changes nothing.
    let lift_path = format!("/admin/students/stu-1/contacts/{par1}/restriction/lift");
    let forged = page_post(&api, &lift_path, &cookie, &[("csrf", "nope")]).await;
    assert_eq!(forged.status, 403);
    let lifted = page_post(&api, &lift_path, &cookie, &[("csrf", &csrf_of(&student))]).await;
    assert_eq!(lifted.status, 303);
    assert!(admin_item(&api, "stu-1", &par1).await["restriction"].is_null());
    let student = page_get(&api, "/admin/students/stu-1?lifted=1", Some(&cookie)).await;
    assert!(html(&student).contains("; lifted by"));
    // Teachers do not reach the pages.
    let teacher = page_session(&api, &api.teacher()).await;
    assert_eq!(page_get(&api, &form_path, Some(&teacher)).await.status, 403);
}
