//! Approved edits against later syncs (SPEC §3.3, latest change wins per field), approved
//! additions and removals, and admin erasures, through the real router and the real
//! import pipeline.

use crate::api_support::*;
use crate::approvals::{contact_id, decide, post, propose_update, submit, teacher_view};
use crate::db_tests;
use crate::support::{APPLY, Backend, Fixture};
use parent_connection::sync::Format;
use parent_connection::sync::report::{ImportReport, RunStatus};
use serde_json::json;

db_tests!(
    a_unchanged_sis_value_keeps_a_later_approved_edit,
    b_changed_sis_value_overwrites_an_older_approved_edit,
    c_sync_change_then_later_approved_edit_keeps_the_edit,
    d_approved_removal_stays_removed_until_the_sis_changes_the_link,
    an_approved_addition_survives_syncs_that_do_not_carry_it,
    an_addition_with_a_known_email_links_the_existing_contact,
    an_erased_contact_is_not_recreated_until_the_erasure_is_lifted,
    erasing_every_contact_of_a_student,
    erase_is_for_admins_and_names_real_pairs,
    the_erasure_list_pages_newest_first_with_its_filters,
);

async fn sync(api: &Api, fixture: &Fixture) -> ImportReport {
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), APPLY)
        .await;
    assert_eq!(report.status, RunStatus::Applied, "{:?}", report.errors);
    report
}

async fn approve_update(api: &Api, key: &str, contact: serde_json::Value) {
    let id = propose_update(api, "stu-1", key, contact).await;
    assert_eq!(
        decide(api, &id, "approve", None).await.ok()["status"],
        "approved"
    );
}

async fn a_unchanged_sis_value_keeps_a_later_approved_edit(backend: Backend) {
    let api = Api::new(backend).await;
    approve_update(
        &api,
        "par-1",
        json!({"emailAddress": "linda@edited.example"}),
    )
    .await;
    let report = sync(&api, &Fixture::v21()).await;
    assert_eq!(report.rows_written, 0);
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (
            Some("linda@edited.example".into()),
            Some("approved_edit".into())
        ),
    );
}

async fn b_changed_sis_value_overwrites_an_older_approved_edit(backend: Backend) {
    let api = Api::new(backend).await;
    approve_update(
        &api,
        "par-1",
        json!({"emailAddress": "linda@edited.example", "givenName": "Lin"}),
    )
    .await;
    let changed = Fixture::v21();
    changed.replace("users.csv", "linda.ng@example.com", "linda@sis-new.example");
    let report = sync(&api, &changed).await;
    assert_eq!(report.entities.contacts.updated, 1);
    assert_eq!(
        api.db.contact_field("par-1", "email").await,
        (Some("linda@sis-new.example".into()), Some("sync".into())),
    );
    assert_eq!(
        api.db.contact_field("par-1", "given_name").await,
        (Some("Lin".into()), Some("approved_edit".into())),
        "per field: the name the SIS did not change keeps the edit"
    );
}

async fn c_sync_change_then_later_approved_edit_keeps_the_edit(backend: Backend) {
    let api = Api::new(backend).await;
    let changed = Fixture::v21();
    changed.replace("users.csv", "tom.ng@example.com", "tom@sis.example");
    sync(&api, &changed).await;
    assert_eq!(
        api.db.contact_field("par-2", "email").await.1.as_deref(),
        Some("sync")
    );
    approve_update(&api, "par-2", json!({"emailAddress": "tom@edit.example"})).await;
    let again = sync(&api, &changed).await;
    assert_eq!(again.rows_written, 0);
    assert_eq!(
        api.db.contact_field("par-2", "email").await,
        (
            Some("tom@edit.example".into()),
            Some("approved_edit".into())
        ),
    );
}

async fn d_approved_removal_stays_removed_until_the_sis_changes_the_link(backend: Backend) {
    let api = Api::new(backend).await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let reply = submit(
        &api,
        "stu-1",
        json!({"action": "remove", "contactId": par2}),
    )
    .await;
    let id = reply.body["id"].as_str().unwrap().to_string();
    decide(&api, &id, "approve", None).await.ok();
    assert_eq!(
        api.db.link("stu-1", "par-2").await,
        Some(("guardian".into(), "inactive".into()))
    );
    assert!(
        teacher_view(&api, "stu-1")
            .await
            .iter()
            .all(|c| c["id"] != par2.as_str()),
        "removed contacts are not shown"
    );
    // The SIS still sends the link unchanged: it stays removed, nothing is written.
    let unchanged = sync(&api, &Fixture::v21()).await;
    assert_eq!(unchanged.rows_written, 0);
    assert_eq!(unchanged.entities.links.reactivated, 0);
    assert_eq!(api.db.link("stu-1", "par-2").await.unwrap().1, "inactive",);
    // The SIS changes the link (guardian -> parent): that later change re-adds it.
    let changed = Fixture::v21();
    changed.replace(
        "relationships.csv",
        "stu-1,par-2,guardian",
        "stu-1,par-2,parent",
    );
    let readded = sync(&api, &changed).await;
    assert_eq!(readded.entities.links.reactivated, 1);
    assert_eq!(
        api.db.link("stu-1", "par-2").await,
        Some(("parent".into(), "active".into()))
    );

    // Removed again; then the SIS drops the link and later sends it again: re-added.
    let reply = submit(
        &api,
        "stu-1",
        json!({"action": "remove", "contactId": par2}),
    )
    .await;
    let id = reply.body["id"].as_str().unwrap().to_string();
    decide(&api, &id, "approve", None).await.ok();
    let dropped = Fixture::v21();
    dropped.remove_lines("relationships.csv", "stu-1,par-2");
    sync(&api, &dropped).await;
    assert_eq!(api.db.link("stu-1", "par-2").await.unwrap().1, "inactive");
    let back = sync(&api, &changed).await;
    assert_eq!(back.entities.links.reactivated, 1);
    assert_eq!(api.db.link("stu-1", "par-2").await.unwrap().1, "active");
}

async fn approve_add(api: &Api, student: &str, contact: serde_json::Value) -> serde_json::Value {
    let reply = submit(api, student, json!({"action": "add", "contact": contact})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.body["id"].as_str().unwrap().to_string();
    // A match is linked only when the approver says so (`onMatch`); without one it is ignored.
    decide(api, &id, "approve", Some(json!({"onMatch": "link"})))
        .await
        .ok()
        .clone()
}

async fn an_approved_addition_survives_syncs_that_do_not_carry_it(backend: Backend) {
    let api = Api::new(backend).await;
    let approved = approve_add(
        &api,
        "stu-2",
        json!({"givenName": "Maya", "familyName": "Ng", "emailAddress": "maya@example.com", "mobilePhone": "(202) 555-0188", "relationship": "guardian"}),
    )
    .await;
    let contact = approved["contactId"].as_str().unwrap().to_string();
    let shown = teacher_view(&api, "stu-2").await;
    let maya = shown
        .iter()
        .find(|c| c["id"] == contact.as_str())
        .expect("the added contact is shown");
    assert_eq!(maya["mobilePhone"], "+12025550188");
    assert_eq!(maya["relationship"], "guardian");
    for _ in 0..2 {
        let report = sync(&api, &Fixture::v21()).await;
        assert_eq!(report.rows_written, 0);
        assert_eq!(report.entities.links.deactivated, 0);
    }
    assert_eq!(
        api.db.link("stu-2", "maya@example.com").await,
        Some(("guardian".into(), "active".into())),
    );
    assert_eq!(
        api.db
            .contact_field("maya@example.com", "email")
            .await
            .1
            .as_deref(),
        Some("approved_edit")
    );
}

async fn an_addition_with_a_known_email_links_the_existing_contact(backend: Backend) {
    // The approver confirmed the match (`onMatch: link`); without it the answer is 409
    // `match_to_confirm` (tests/it/privilege.rs).
    let api = Api::new(backend).await;
    let approved = approve_add(
        &api,
        "stu-2",
        json!({"givenName": "Thomas", "emailAddress": "TOM.NG@example.com", "relationship": "guardian"}),
    )
    .await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    assert_eq!(approved["contactId"], par2.as_str());
    assert_eq!(
        api.db.link("stu-2", "par-2").await,
        Some(("guardian".into(), "active".into()))
    );
    assert_eq!(
        api.db.contact_field("par-2", "given_name").await,
        (Some("Tom".into()), Some("sync".into())),
        "the existing contact's values are not overwritten"
    );
    // The SIS never sent stu-2/par-2: the next sync leaves the approved link alone.
    let report = sync(&api, &Fixture::v21()).await;
    assert_eq!(report.rows_written, 0);
}

async fn erase(api: &Api, student: &str, contact: &str) -> serde_json::Value {
    post(
        api,
        &format!("/api/v1/students/{student}/contacts/{contact}/erase"),
        &api.admin("nyc"),
        Some(json!({"reason": "court order"})),
        &[],
    )
    .await
    .ok()
    .clone()
}

async fn an_erased_contact_is_not_recreated_until_the_erasure_is_lifted(backend: Backend) {
    let api = Api::new(backend).await;
    let par2 = contact_id(&api, "nyc", "par-2").await;
    let pending = propose_update(&api, "stu-1", "par-2", json!({"givenName": "Thomas"})).await;
    let erased = erase(&api, "stu-1", &par2).await;
    let erasure = &erased["erased"][0];
    assert_eq!(
        erasure["contactDeleted"], true,
        "par-2 had no other student"
    );
    assert_eq!(erasure["reason"], "court order");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contacts WHERE source_key = 'par-2'")
            .await,
        0,
        "the contact's data is gone"
    );
    assert_eq!(api.db.link("stu-1", "par-2").await, None);
    let request = api
        .get(
            &format!("/api/v1/contact-requests/{pending}"),
            Some(&api.admin("nyc")),
        )
        .await;
    assert_eq!(request.ok()["status"], "rejected", "pending requests close");

    // The SIS still carries the pair, unchanged and even changed: not re-created.
    let report = sync(&api, &Fixture::v21()).await;
    assert_eq!(report.entities.erased_links_skipped, 1);
    assert_eq!(report.entities.contacts.created, 0);
    assert_eq!(report.rows_written, 0);
    let changed = Fixture::v21();
    changed.replace("users.csv", "tom.ng@example.com", "tom@new.example");
    sync(&api, &changed).await;
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contacts WHERE source_key = 'par-2'")
            .await,
        0,
    );

    let erasures = api
        .get("/api/v1/erasures?active=true", Some(&api.admin("nyc")))
        .await;
    let id = erasures.ok()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lifted = post(
        &api,
        &format!("/api/v1/erasures/{id}/lift"),
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert!(lifted.ok()["liftedAt"].is_string());
    let again = post(
        &api,
        &format!("/api/v1/erasures/{id}/lift"),
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert_eq!(again.error(409), "already_lifted");
    let recreated = sync(&api, &changed).await;
    assert_eq!(recreated.entities.erased_links_skipped, 0);
    assert_eq!(
        api.db.link("stu-1", "par-2").await,
        Some(("guardian".into(), "active".into())),
    );
    let actions = api
        .db
        .texts(
            "SELECT action FROM audit_log WHERE action LIKE 'contact.erase%' ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(actions, vec!["contact.erase", "contact.erase_lift"]);
    let logged = api
        .db
        .texts(
            "SELECT COALESCE(before, '') || COALESCE(after, '') FROM audit_log WHERE action = 'contact.erase'",
            vec![],
        )
        .await;
    assert!(
        !logged[0].contains("tom.ng") && !logged[0].contains("Tom"),
        "the audit log keeps no erased values: {logged:?}"
    );
}

async fn erasing_every_contact_of_a_student(backend: Backend) {
    let api = Api::new(backend).await;
    let reply = post(
        &api,
        "/api/v1/students/stu-1/contacts/erase",
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    let erased = reply.ok()["erased"].as_array().unwrap().clone();
    assert_eq!(erased.len(), 4, "par-1, par-2, rel-1, doc-1");
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let kept = erased
        .iter()
        .find(|e| e["contactId"] == par1.as_str())
        .unwrap();
    assert_eq!(
        kept["contactDeleted"], false,
        "par-1 is still stu-2's parent"
    );
    assert_eq!(
        api.db.link("stu-2", "par-1").await,
        Some(("parent".into(), "active".into()))
    );
    let admin_view = api
        .get("/api/v1/students/stu-1/contacts", Some(&api.admin("nyc")))
        .await;
    assert_eq!(admin_view.ok()["items"], json!([]), "erased, not inactive");
    let report = sync(&api, &Fixture::v21()).await;
    assert_eq!(report.entities.erased_links_skipped, 4);
    assert_eq!(report.rows_written, 0);
    // The deletion guard counts only what a snapshot deactivates, not erasures.
    assert_eq!(report.entities.links.deactivated, 0);
}

async fn erase_is_for_admins_and_names_real_pairs(backend: Backend) {
    let api = Api::new(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let par3 = contact_id(&api, "nyc", "par-3").await;
    let path = format!("/api/v1/students/stu-1/contacts/{par1}/erase");
    for token in [
        api.teacher(),
        api.app("nyc", &["EduRoster.ReadWrite.All"]),
        api.user("nyc", "ta-1", &[parent_connection::auth::Role::TenantAdmin]),
    ] {
        let reply = post(&api, &path, &token, None, &[]).await;
        assert_eq!(reply.error(403), "forbidden");
    }
    let other_tenant = post(&api, &path, &api.admin("bos"), None, &[]).await;
    assert_eq!(other_tenant.error(404), "not_found");
    let not_linked = post(
        &api,
        &format!("/api/v1/students/stu-1/contacts/{par3}/erase"),
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert_eq!(not_linked.error(404), "not_found");
    let no_student = post(
        &api,
        "/api/v1/students/nobody/contacts/erase",
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert_eq!(no_student.error(404), "not_found");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_erasures").await,
        0
    );
}

async fn the_erasure_list_pages_newest_first_with_its_filters(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.admin("nyc");
    for path in [
        "/api/v1/students/stu-1/contacts/erase",
        "/api/v1/students/stu-2/contacts/erase",
        "/api/v1/students/stu-3/contacts/erase",
    ] {
        post(&api, path, &admin, None, &[]).await.ok();
    }
    let stored = |condition: &str| {
        format!("SELECT CAST(id AS TEXT) FROM contact_erasures WHERE {condition} ORDER BY id DESC")
    };
    let all = api.db.texts(&stored("1 = 1"), vec![]).await;
    assert_eq!(all.len(), 6, "four of stu-1, one of stu-2, one of stu-3");
    let lifted = &all[2];
    post(
        &api,
        &format!("/api/v1/erasures/{lifted}/lift"),
        &admin,
        None,
        &[],
    )
    .await
    .ok();

    let (items, pages) = every_page(&api, "/api/v1/erasures", &admin, 2).await;
    assert_eq!(field(&items, "id"), all, "newest first, each once");
    assert_eq!(pages, 3);
    let (of_stu1, _) = every_page(&api, "/api/v1/erasures?studentId=stu-1", &admin, 2).await;
    assert_eq!(
        field(&of_stu1, "id"),
        api.db
            .texts(&stored("student_source_id = 'stu-1'"), vec![])
            .await
    );
    assert_eq!(of_stu1.len(), 4);
    let (active, _) = every_page(&api, "/api/v1/erasures?active=true", &admin, 2).await;
    let unlifted: Vec<String> = all.iter().filter(|id| *id != lifted).cloned().collect();
    assert_eq!(field(&active, "id"), unlifted);
    let (both, _) = every_page(
        &api,
        "/api/v1/erasures?studentId=stu-1&active=true",
        &admin,
        2,
    )
    .await;
    assert_eq!(both.len(), 3, "{both:?}");
    let (bos, _) = every_page(&api, "/api/v1/erasures", &api.admin("bos"), 2).await;
    assert!(bos.is_empty(), "another tenant sees none");
}
