//! Chats, block lists and removal banners through the real router and real syncs (SPEC §7):
//! who may start a chat with whom, re-entry, members, blocks seen from the guardian side,
//! the three causes of a banner and who sees it, bulk banners from one sync, and the tenant
//! switch that removes inactive guardians instead.

use crate::api_support::*;
use crate::approvals::{add_second_teacher, contact_id, decide, patch_settings, post, submit};
use crate::db_tests;
use crate::support::{APPLY, Backend, FORCE, Fixture};
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::sync::Format;
use serde_json::{Value, json};

db_tests!(
    a_teacher_starts_chats_only_with_active_guardians_of_their_students,
    starting_the_same_chat_again_reenters_it,
    the_owner_adds_and_removes_guardians,
    a_blocked_guardian_cannot_start_a_chat_with_that_owner,
    blocking_can_remove_the_guardian_from_a_chat,
    blocks_do_not_cross_tenants,
    a_sync_deactivation_shows_a_banner_to_the_owner_only,
    an_approved_removal_and_an_erase_show_banners,
    one_sync_creates_banners_for_many_chats,
    the_tenant_can_remove_inactive_guardians_automatically,
    chat_lists_page_through_every_chat_once_newest_first,
    the_block_list_pages_newest_first,
);

fn guardian(api: &Api, tenant: &str, contact: &str) -> String {
    api.mint(
        tenant,
        Subject::Contact {
            contact_id: contact.into(),
        },
    )
}

async fn start(api: &Api, token: &str, student: &str, contacts: &[&str]) -> Reply {
    post(
        api,
        "/api/v1/chats",
        token,
        Some(json!({"studentId": student, "contactIds": contacts})),
        &[],
    )
    .await
}

async fn delete(api: &Api, path: &str, token: &str) -> Reply {
    api.send(
        Request::delete(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn member_ids(chat: &Value) -> Vec<String> {
    chat["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "guardian")
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn chat(api: &Api, id: &str, token: &str) -> Value {
    api.get(&format!("/api/v1/chats/{id}"), Some(token))
        .await
        .ok()
        .clone()
}

async fn a_teacher_starts_chats_only_with_active_guardians_of_their_students(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let started = start(&api, &api.teacher(), "stu-1", &[&par1, &par2]).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(member_ids(&started.body), vec![par1.clone(), par2.clone()]);
    assert_eq!(started.body["ownerId"], "tch-1");
    assert_eq!(started.body["banners"], json!([]));
    let invited: Vec<&str> = started.body["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        invited,
        vec!["queued", "queued"],
        "guardians who have not joined are invited"
    );
    let rel1 = contact_id(&api, "nyc", "rel-1").await;
    let par3 = contact_id(&api, "nyc", "par-3").await;
    let refused = start(&api, &api.teacher(), "stu-1", &[&par1, &rel1, &par3, "x"]).await;
    assert_eq!(refused.error(422), "invalid_members");
    let reasons: Vec<(&str, &str)> = refused.body["error"]["details"]["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["contactId"].as_str().unwrap(),
                i["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            (rel1.as_str(), "not_parent_or_guardian"),
            (par3.as_str(), "not_a_contact_of_student"),
            ("x", "not_a_contact_of_student"),
        ]
    );
    let empty = start(&api, &api.teacher(), "stu-1", &[]).await;
    assert_eq!(empty.error(422), "invalid_field");
    // A student of another teacher's class, another tenant, an app, a guardian: refused.
    let other_class = start(&api, &api.teacher(), "stu-3", &[&par3]).await;
    assert_eq!(other_class.error(404), "not_found");
    let bos_teacher = api.user("bos", "tch-1", &[Role::Teacher]);
    assert_eq!(
        start(&api, &bos_teacher, "stu-1", &[&par1])
            .await
            .error(404),
        "not_found"
    );
    let app = api.app("nyc", &["EduRoster.ReadWrite.All"]);
    assert_eq!(
        start(&api, &app, "stu-1", &[&par1]).await.error(403),
        "forbidden"
    );
    let parent = guardian(&api, "nyc", &par1);
    assert_eq!(
        start(&api, &parent, "stu-1", &[&par1]).await.error(403),
        "forbidden"
    );
    // An inactive link is refused too.
    let dropped = Fixture::v21();
    dropped.remove_lines("relationships.csv", "stu-1,par-2");
    api.db
        .import("nyc", Format::SdsV21, dropped.path(), APPLY)
        .await;
    let inactive = start(&api, &api.teacher(), "stu-1", &[&par2]).await;
    assert_eq!(
        inactive.body["error"]["details"]["invalid"][0]["reason"],
        "inactive"
    );
    // The owner's list holds the chat; another teacher's holds nothing.
    let mine = api.get("/api/v1/chats", Some(&api.teacher())).await;
    assert_eq!(mine.ok()["items"].as_array().unwrap().len(), 1);
    let theirs = api
        .get(
            "/api/v1/chats",
            Some(&api.user("nyc", "tch-2", &[Role::Teacher])),
        )
        .await;
    assert_eq!(theirs.ok()["items"], json!([]));
    let id = started.body["id"].as_str().unwrap();
    let peek = api
        .get(
            &format!("/api/v1/chats/{id}"),
            Some(&api.user("nyc", "tch-2", &[Role::Teacher])),
        )
        .await;
    assert_eq!(peek.error(404), "not_found");
}

async fn starting_the_same_chat_again_reenters_it(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let first = start(&api, &api.teacher(), "stu-1", &[&par1]).await;
    assert_eq!(first.status, 201);
    let again = start(&api, &api.teacher(), "stu-1", &[&par1, &par1]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["reentered"], true);
    assert_eq!(again.body["id"], first.body["id"]);
    let other = start(&api, &api.teacher(), "stu-1", &[&par1, &par2]).await;
    assert_eq!(
        other.status, 201,
        "another set of guardians is another chat"
    );
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chats").await, 2);
}

async fn the_owner_adds_and_removes_guardians(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let started = start(&api, &api.teacher(), "stu-1", &[&par1]).await;
    let id = started.body["id"].as_str().unwrap().to_string();
    let members = format!("/api/v1/chats/{id}/members");
    let added = post(
        &api,
        &members,
        &api.teacher(),
        Some(json!({"contactId": par2})),
        &[],
    )
    .await;
    assert_eq!(member_ids(added.ok()), vec![par1.clone(), par2.clone()]);
    let other = api.user("nyc", "tch-2", &[Role::Teacher]);
    let not_theirs = delete(&api, &format!("{members}/{par2}"), &other).await;
    assert_eq!(not_theirs.error(404), "not_found");
    let removed = delete(&api, &format!("{members}/{par2}"), &api.teacher()).await;
    assert_eq!(member_ids(removed.ok()), vec![par1.clone()]);
    let again = delete(&api, &format!("{members}/{par2}"), &api.teacher()).await;
    assert_eq!(again.error(404), "not_found");
    let rel1 = contact_id(&api, "nyc", "rel-1").await;
    let relative = post(
        &api,
        &members,
        &api.teacher(),
        Some(json!({"contactId": rel1})),
        &[],
    )
    .await;
    assert_eq!(relative.error(422), "invalid_members");
}

async fn a_blocked_guardian_cannot_start_a_chat_with_that_owner(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let blocked = post(
        &api,
        "/api/v1/blocks",
        &api.teacher(),
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(blocked.status, 201, "{}", blocked.body);
    assert_eq!(blocked.body["displayName"], "Linda Ng");
    let list = api.get("/api/v1/blocks", Some(&api.teacher())).await;
    assert_eq!(list.ok()["items"][0]["contactId"], par1.as_str());
    let body = json!({"ownerId": "tch-1", "studentId": "stu-1"});
    let refused = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "nyc", &par1),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(refused.error(403), "blocked");
    let allowed = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "nyc", &par2),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(allowed.status, 201, "{}", allowed.body);
    assert_eq!(allowed.body["startedBy"], "guardian");
    assert_eq!(allowed.body["banners"], json!([]));
    let again = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "nyc", &par2),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], allowed.body["id"]);
    // The owner cannot put a blocked guardian in a chat either.
    let owner_side = start(&api, &api.teacher(), "stu-1", &[&par1]).await;
    assert_eq!(owner_side.error(409), "contact_blocked");
    // The block is the owner's: another teacher of the child is reachable.
    let other = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "nyc", &par1),
        Some(json!({"ownerId": "tch-2", "studentId": "stu-1"})),
        &[],
    )
    .await;
    assert_eq!(other.error(404), "not_found", "tch-2 does not teach stu-1");
    // A guardian of another family, or for a student not theirs, is not found.
    let par3 = contact_id(&api, "nyc", "par-3").await;
    let stranger = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "nyc", &par3),
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!(stranger.error(404), "not_found");
    let lifted = delete(&api, &format!("/api/v1/blocks/{par1}"), &api.teacher()).await;
    assert_eq!(lifted.status, 204);
    let now_allowed = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "nyc", &par1),
        Some(body),
        &[],
    )
    .await;
    assert_eq!(now_allowed.status, 201, "{}", now_allowed.body);
    let not_blocked = delete(&api, &format!("/api/v1/blocks/{par1}"), &api.teacher()).await;
    assert_eq!(not_blocked.error(404), "not_found");
    let mine = api
        .get(
            "/api/v1/guardian/chats",
            Some(&guardian(&api, "nyc", &par1)),
        )
        .await;
    assert_eq!(mine.ok()["items"].as_array().unwrap().len(), 1);
    let actions = api
        .db
        .texts(
            "SELECT action FROM audit_log WHERE action LIKE 'chat.%' ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(actions, vec!["chat.block", "chat.unblock"]);
}

async fn blocking_can_remove_the_guardian_from_a_chat(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let started = start(&api, &api.teacher(), "stu-1", &[&par1, &par2]).await;
    let id = started.body["id"].as_str().unwrap().to_string();
    let blocked = post(
        &api,
        "/api/v1/blocks",
        &api.teacher(),
        Some(json!({"contactId": par2, "chatId": id, "removeFromChat": true})),
        &[],
    )
    .await;
    assert_eq!(blocked.status, 201, "{}", blocked.body);
    assert_eq!(blocked.body["removedFromChat"], true);
    assert_eq!(
        member_ids(&chat(&api, &id, &api.teacher()).await),
        vec![par1]
    );
    let without_chat = post(
        &api,
        "/api/v1/blocks",
        &api.teacher(),
        Some(json!({"contactId": par2, "removeFromChat": true})),
        &[],
    )
    .await;
    assert_eq!(without_chat.error(422), "invalid_field");
}

async fn blocks_do_not_cross_tenants(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let bos_teacher = api.user("bos", "tch-1", &[Role::Teacher]);
    let cross = post(
        &api,
        "/api/v1/blocks",
        &bos_teacher,
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(cross.error(404), "not_found");
    post(
        &api,
        "/api/v1/blocks",
        &api.teacher(),
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    let bos_list = api.get("/api/v1/blocks", Some(&bos_teacher)).await;
    assert_eq!(bos_list.ok()["items"], json!([]));
    // A guardian token of another tenant never reaches nyc's chats or teachers.
    let foreign = post(
        &api,
        "/api/v1/guardian/chats",
        &guardian(&api, "bos", &par1),
        Some(json!({"ownerId": "tch-1", "studentId": "stu-1"})),
        &[],
    )
    .await;
    assert_eq!(foreign.error(404), "not_found");
}

/// Starts tch-1's chat about stu-1 with par-1 and par-2, tch-2 as a second teacher.
async fn family_chat(api: &Api) -> (String, String, String) {
    add_second_teacher(api).await;
    let par1 = contact_id(api, "nyc", "par-1").await;
    let par2 = contact_id(api, "nyc", "par-2").await;
    let started = post(
        api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-1", "contactIds": [par1, par2], "teacherIds": ["tch-2"]})),
        &[],
    )
    .await;
    assert_eq!(started.status, 201, "{}", started.body);
    (started.body["id"].as_str().unwrap().to_string(), par1, par2)
}

async fn a_sync_deactivation_shows_a_banner_to_the_owner_only(backend: Backend) {
    let api = Api::new(backend).await;
    let (id, par1, par2) = family_chat(&api).await;
    let dropped = Fixture::v21();
    dropped.remove_lines("relationships.csv", "stu-1,par-2");
    api.db
        .import("nyc", Format::SdsV21, dropped.path(), APPLY)
        .await;
    let owner_view = chat(&api, &id, &api.teacher()).await;
    let banners = owner_view["banners"].as_array().unwrap();
    assert_eq!(banners.len(), 1, "{owner_view}");
    assert_eq!(banners[0]["contactId"], par2.as_str());
    assert_eq!(banners[0]["cause"], "sync");
    assert!(banners[0]["message"].as_str().unwrap().contains("remove"));
    assert_eq!(
        member_ids(&owner_view),
        vec![par1.clone(), par2.clone()],
        "membership is not changed"
    );
    let listed = api.get("/api/v1/chats", Some(&api.teacher())).await;
    assert_eq!(
        listed.ok()["items"][0]["banners"].as_array().unwrap().len(),
        1
    );
    let other_teacher = chat(&api, &id, &api.user("nyc", "tch-2", &[Role::Teacher])).await;
    assert_eq!(other_teacher["banners"], json!([]));
    let admin = chat(&api, &id, &api.admin("nyc")).await;
    assert_eq!(admin["banners"], json!([]));
    let parent = api
        .get(
            "/api/v1/guardian/chats",
            Some(&guardian(&api, "nyc", &par1)),
        )
        .await;
    assert_eq!(parent.ok()["items"][0]["banners"], json!([]));
    // Re-running the same snapshot adds no second banner; the link coming back clears it.
    api.db
        .import("nyc", Format::SdsV21, dropped.path(), APPLY)
        .await;
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chat_banners").await, 1);
    api.db
        .import("nyc", Format::SdsV21, Fixture::v21().path(), APPLY)
        .await;
    assert_eq!(chat(&api, &id, &api.teacher()).await["banners"], json!([]));
}

async fn an_approved_removal_and_an_erase_show_banners(backend: Backend) {
    let api = Api::new(backend).await;
    let (id, par1, par2) = family_chat(&api).await;
    let reply = submit(
        &api,
        "stu-1",
        json!({"action": "remove", "contactId": par1}),
    )
    .await;
    let request = reply.body["id"].as_str().unwrap().to_string();
    decide(&api, &request, "approve", None).await.ok();
    let erased = post(
        &api,
        &format!("/api/v1/students/stu-1/contacts/{par2}/erase"),
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    let owner_view = chat(&api, &id, &api.teacher()).await;
    let causes: Vec<(&str, &str)> = owner_view["banners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["contactId"].as_str().unwrap(),
                b["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        causes,
        vec![(par1.as_str(), "approved_edit"), (par2.as_str(), "erased")]
    );
    let erased_member = owner_view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == par2.as_str())
        .unwrap();
    assert_eq!(erased_member["displayName"], "(erased contact)");
    assert_eq!(erased_member["linkStatus"], "erased");
    let removed = delete(
        &api,
        &format!("/api/v1/chats/{id}/members/{par1}"),
        &api.teacher(),
    )
    .await;
    let left: Vec<&str> = removed.ok()["banners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["contactId"].as_str().unwrap())
        .collect();
    assert_eq!(
        left,
        vec![par2.as_str()],
        "removing the guardian clears their banner"
    );
}

async fn one_sync_creates_banners_for_many_chats(backend: Backend) {
    let api = Api::new(backend).await;
    const FAMILIES: usize = 120;
    let fixture = Fixture::v21();
    for i in 0..FAMILIES {
        fixture
            .append("users.csv", &format!("bulk-s{i},s{i},Kid,{i},,,"))
            .append(
                "users.csv",
                &format!("bulk-p{i},p{i},Parent,{i},p{i}@example.com,,"),
            )
            .append("roles.csv", &format!("bulk-s{i},sch-1,student"))
            .append("enrollments.csv", &format!("cls-1,bulk-s{i},student"))
            .append("relationships.csv", &format!("bulk-s{i},bulk-p{i},parent"));
    }
    api.db
        .import("nyc", Format::SdsV21, fixture.path(), APPLY)
        .await;
    for i in 0..FAMILIES {
        let parent = contact_id(&api, "nyc", &format!("bulk-p{i}")).await;
        let reply = start(&api, &api.teacher(), &format!("bulk-s{i}"), &[&parent]).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let without = Fixture::v21();
    for i in 0..FAMILIES {
        without
            .append("users.csv", &format!("bulk-s{i},s{i},Kid,{i},,,"))
            .append(
                "users.csv",
                &format!("bulk-p{i},p{i},Parent,{i},p{i}@example.com,,"),
            )
            .append("roles.csv", &format!("bulk-s{i},sch-1,student"))
            .append("enrollments.csv", &format!("cls-1,bulk-s{i},student"));
    }
    let report = api
        .db
        .import("nyc", Format::SdsV21, without.path(), FORCE)
        .await;
    assert_eq!(report.entities.links.deactivated, FAMILIES as u64);
    let banners = api
        .db
        .count("SELECT COUNT(*) FROM chat_banners WHERE cause = 'sync' AND cleared_at IS NULL")
        .await;
    assert_eq!(banners, FAMILIES as i64);
    let run_times = api
        .db
        .count(
            "SELECT COUNT(*) FROM chat_banners b WHERE b.created_at = (SELECT MAX(started_at) FROM sync_runs)",
        )
        .await;
    assert_eq!(
        run_times, FAMILIES as i64,
        "created by the run, at its time"
    );
}

async fn the_tenant_can_remove_inactive_guardians_automatically(backend: Backend) {
    let api = Api::new(backend).await;
    let (id, par1, _par2) = family_chat(&api).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let settings = api.get("/api/v1/settings", Some(&tenant_admin)).await;
    assert_eq!(settings.ok()["autoRemoveInactiveGuardians"], false);
    let on = patch_settings(
        &api,
        &tenant_admin,
        json!({"autoRemoveInactiveGuardians": true}),
    )
    .await;
    assert_eq!(on.ok()["autoRemoveInactiveGuardians"], true);
    let dropped = Fixture::v21();
    dropped.remove_lines("relationships.csv", "stu-1,par-2");
    api.db
        .import("nyc", Format::SdsV21, dropped.path(), APPLY)
        .await;
    let owner_view = chat(&api, &id, &api.teacher()).await;
    assert_eq!(member_ids(&owner_view), vec![par1]);
    assert_eq!(owner_view["banners"], json!([]));
    let audit = api
        .get(
            "/api/v1/audit?action=chat.auto_remove",
            Some(&api.admin("nyc")),
        )
        .await;
    let entry = &audit.ok()["items"][0];
    assert_eq!(entry["after"]["removedMembers"], 1);
    assert_eq!(entry["after"]["cause"], "sync");
}

/// Starts a chat as `token` and returns its id.
async fn started(api: &Api, token: &str, body: Value) -> String {
    let reply = post(api, "/api/v1/chats", token, Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().unwrap().to_string()
}

async fn chat_lists_page_through_every_chat_once_newest_first(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let [par1, par2, par3] = [
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
        contact_id(&api, "nyc", "par-3").await,
    ];
    let (teacher, other) = (api.teacher(), api.user("nyc", "tch-2", &[Role::Teacher]));
    // tch-1 owns a, c, d, e and is a member of tch-2's b: the two sources interleave.
    let a = started(
        &api,
        &teacher,
        json!({"studentId": "stu-1", "contactIds": [par1]}),
    )
    .await;
    let b = started(
        &api,
        &other,
        json!({"studentId": "stu-3", "contactIds": [par3], "teacherIds": ["tch-1"]}),
    )
    .await;
    let c = started(
        &api,
        &teacher,
        json!({"studentId": "stu-1", "contactIds": [par2]}),
    )
    .await;
    let d = started(
        &api,
        &teacher,
        json!({"studentId": "stu-1", "contactIds": [par1, par2]}),
    )
    .await;
    let e = started(
        &api,
        &teacher,
        json!({"studentId": "stu-2", "contactIds": [par1]}),
    )
    .await;

    let ids = |items: Vec<Value>| field(&items, "id");
    let (a, b, c, d, e) = (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str());
    let (mine, pages) = every_page(&api, "/api/v1/chats", &teacher, 2).await;
    assert_eq!(
        ids(mine),
        vec![e, d, c, b, a],
        "owned and joined, newest first"
    );
    assert_eq!(pages, 3);
    let (theirs, _) = every_page(&api, "/api/v1/chats", &other, 2).await;
    assert_eq!(ids(theirs), vec![b]);
    let (about_stu1, _) = every_page(&api, "/api/v1/chats?studentId=stu-1", &teacher, 2).await;
    assert_eq!(ids(about_stu1), vec![d, c, a]);
    let (every, _) = every_page(&api, "/api/v1/chats", &api.admin("nyc"), 2).await;
    assert_eq!(ids(every), vec![e, d, c, b, a]);
    let (bos, _) = every_page(&api, "/api/v1/chats", &api.admin("bos"), 2).await;
    assert!(bos.is_empty(), "another tenant's admin sees none");

    let parent = guardian(&api, "nyc", &par1);
    let (theirs, pages) = every_page(&api, "/api/v1/guardian/chats", &parent, 2).await;
    assert_eq!(ids(theirs), vec![e, d, a]);
    assert_eq!(pages, 2);
    let removed = delete(&api, &format!("/api/v1/chats/{d}/members/{par1}"), &teacher).await;
    removed.ok();
    let (after, _) = every_page(&api, "/api/v1/guardian/chats", &parent, 2).await;
    assert_eq!(
        ids(after),
        vec![e, a],
        "a removed member no longer lists the chat"
    );
    let (one, _) = every_page(&api, "/api/v1/guardian/chats?studentId=stu-2", &parent, 2).await;
    assert_eq!(ids(one), vec![e]);

    let bad = api.get("/api/v1/chats?cursor=x1", Some(&teacher)).await;
    assert_eq!(bad.error(400), "invalid_query");
    let too_many = api.get("/api/v1/chats?limit=0", Some(&teacher)).await;
    assert_eq!(too_many.error(400), "invalid_query");
}

async fn the_block_list_pages_newest_first(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    // A teacher blocks only contacts they may see (parents and guardians): make the relative
    // and the doctor guardians, for four blocks.
    api.db
        .exec("UPDATE student_contacts SET relationship = 'guardian'")
        .await;
    let mut blocked = Vec::new();
    for key in ["par-2", "rel-1", "par-1", "doc-1"] {
        let contact = contact_id(&api, "nyc", key).await;
        let reply = post(
            &api,
            "/api/v1/blocks",
            &api.teacher(),
            Some(json!({"contactId": contact})),
            &[],
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        blocked.push(contact);
    }
    blocked.reverse();
    let (items, pages) = every_page(&api, "/api/v1/blocks", &api.teacher(), 2).await;
    assert_eq!(field(&items, "contactId"), blocked, "newest first");
    assert_eq!(pages, 2, "two full pages, the second with a null cursor");
    assert_eq!(items[3]["displayName"], "Tom Ng");
    let other = api.user("nyc", "tch-2", &[Role::Teacher]);
    let (theirs, _) = every_page(&api, "/api/v1/blocks", &other, 2).await;
    assert!(theirs.is_empty(), "block lists are per owner");
}
