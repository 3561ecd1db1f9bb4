//! Quiet hours (issue 22, item 2; docs/invitations.md#quiet-hours) through the real router,
//! the dispatcher and a real HTTP server standing in for the SMS gateway (wiremock): the two
//! settings, a text message queued inside the window waits in the outbox with the time it
//! goes, email is not held, the guardian's own time zone, a message the dispatcher would send
//! inside the window is held again (attempt not counted), and an admin's urgent send.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings, post};
use crate::db_tests;
use crate::invitations::{api as api_with, dispatch, set, sms_gateway, start_chat};
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use chrono::{Duration, Timelike, Utc};
use parent_connection::auth::Role;
use serde_json::{Value, json};

db_tests!(
    quiet_hours_are_two_settings_of_hh_mm,
    a_text_inside_quiet_hours_waits_and_email_does_not,
    the_guardians_own_time_zone_decides,
    the_dispatcher_holds_a_text_that_falls_due_inside_the_window,
    an_admin_sends_one_held_invitation_as_urgent,
    approvers_set_a_guardians_language_and_time_zone,
);

/// `HH:MM` in New York (the tenant's zone) `minutes` from now.
fn new_york(minutes: i64) -> String {
    let at = (Utc::now() + Duration::minutes(minutes)).with_timezone(&chrono_tz::America::New_York);
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// Quiet hours from an hour ago to two hours from now, New York time.
async fn quiet_now(api: &Api) {
    set(
        api,
        json!({"quietHoursStart": new_york(-60), "quietHoursEnd": new_york(120)}),
    )
    .await;
}

async fn sms_api(backend: Backend) -> (Api, wiremock::MockServer, tempfile::TempDir) {
    let gateway = sms_gateway(vec![]).await;
    let files = tempfile::tempdir().unwrap();
    let api = api_with(
        backend,
        &format!("file://{}", files.path().display()),
        &gateway.uri(),
    )
    .await;
    set(&api, json!({"preferredInviteChannel": "sms"})).await;
    (api, gateway, files)
}

async fn outbox(api: &Api) -> Value {
    api.get("/api/v1/outbox", Some(&api.admin("nyc")))
        .await
        .ok()
        .clone()
}

async fn quiet_hours_are_two_settings_of_hh_mm(backend: Backend) {
    let api = Api::new(backend).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let settings = api.get("/api/v1/settings", Some(&tenant_admin)).await;
    assert_eq!(settings.ok()["quietHoursStart"], "");
    assert_eq!(settings.ok()["quietHoursEnd"], "");
    let saved = patch_settings(
        &api,
        &tenant_admin,
        json!({"quietHoursStart": "21:00", "quietHoursEnd": "08:00"}),
    )
    .await;
    assert_eq!(saved.ok()["quietHoursStart"], "21:00");
    assert_eq!(saved.ok()["quietHoursEnd"], "08:00");
    for bad in [json!("9pm"), json!("24:00"), json!("9:00"), json!(2100)] {
        let refused = patch_settings(&api, &tenant_admin, json!({ "quietHoursStart": bad })).await;
        assert_eq!(refused.error(422), "invalid_setting", "{bad}");
    }
    let cleared = patch_settings(&api, &tenant_admin, json!({"quietHoursEnd": ""})).await;
    assert_eq!(cleared.ok()["quietHoursEnd"], "");
    let audit = api
        .db
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'settings.update'")
        .await;
    assert_eq!(audit, 2);
}

async fn a_text_inside_quiet_hours_waits_and_email_does_not(backend: Backend) {
    let (api, gateway, files) = sms_api(backend).await;
    quiet_now(&api).await;
    let (linda, tom) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let chat = start_chat(&api, &[&linda]).await;
    let sms = &chat["invitations"][0];
    assert_eq!(sms["channel"], "sms", "{chat}");
    // The same hour, an emailed invitation goes at once.
    set(&api, json!({"preferredInviteChannel": "email"})).await;
    let chat = start_chat(&api, &[&tom]).await;
    let email = &chat["invitations"][0];
    assert_eq!(email["channel"], "email", "{chat}");
    let held_until = sms["heldUntil"].as_str().expect("the text waits");
    assert!(email.get("heldUntil").is_none(), "email is not held");
    let goes = chrono::DateTime::parse_from_rfc3339(held_until).unwrap();
    let in_two_hours = Utc::now() + Duration::minutes(120);
    assert!(
        (goes.with_timezone(&Utc) - in_two_hours)
            .num_minutes()
            .abs()
            <= 1,
        "it goes when the quiet hours end: {held_until}"
    );
    let stats = dispatch(&api).await;
    assert_eq!(
        (stats.sent, stats.claimed),
        (1, 1),
        "only the email: {stats:?}"
    );
    assert!(gateway.received_requests().await.unwrap().is_empty());
    assert!(!crate::outbox_support::read_dir_texts(files.path()).is_empty());
    let view = outbox(&api).await;
    let held = view["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{view}");
    assert_eq!(held[0]["kind"], "invitation");
    assert_eq!(held[0]["heldFor"], "quiet_hours");
    assert_eq!(held[0]["refId"], sms["id"]);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(held[0]["nextAttemptAt"].as_str().unwrap()).unwrap(),
        goes
    );
    let one = api
        .get(
            &format!("/api/v1/invitations/{}", sms["id"].as_str().unwrap()),
            Some(&api.teacher()),
        )
        .await;
    assert_eq!(one.ok()["status"], "queued");
    assert_eq!(one.ok()["heldUntil"], held_until);
}

async fn the_guardians_own_time_zone_decides(backend: Backend) {
    let (api, gateway, _files) = sms_api(backend).await;
    quiet_now(&api).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    // Twelve hours away from New York, Linda's window is not now.
    let patched = api
        .send(
            Request::patch(format!("/api/v1/students/stu-1/contacts/{linda}"))
                .header("authorization", format!("Bearer {}", api.admin("nyc")))
                .header("content-type", "application/json")
                .body(Body::from(json!({"timeZone": "Asia/Kolkata"}).to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(patched.ok()["timeZone"], "Asia/Kolkata");
    let chat = start_chat(&api, &[&linda]).await;
    assert!(chat["invitations"][0].get("heldUntil").is_none(), "{chat}");
    assert_eq!(dispatch(&api).await.sent, 1);
    assert_eq!(gateway.received_requests().await.unwrap().len(), 1);
}

async fn the_dispatcher_holds_a_text_that_falls_due_inside_the_window(backend: Backend) {
    let (api, gateway, _files) = sms_api(backend).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&linda]).await;
    assert!(chat["invitations"][0].get("heldUntil").is_none());
    // The district turns quiet hours on before the dispatcher gets to it.
    quiet_now(&api).await;
    let stats = dispatch(&api).await;
    assert_eq!((stats.held, stats.sent), (1, 0), "{stats:?}");
    assert!(gateway.received_requests().await.unwrap().is_empty());
    let row = api
        .db
        .texts(
            "SELECT status || ' ' || CAST(attempts AS TEXT) || ' ' || held_for FROM outbox",
            vec![],
        )
        .await;
    assert_eq!(
        row,
        vec!["queued 0 quiet_hours"],
        "the attempt is not counted"
    );
    assert_eq!(outbox(&api).await["held"].as_array().unwrap().len(), 1);
    // Nothing is due again until the window ends.
    assert_eq!(dispatch(&api).await.claimed, 0);
}

async fn an_admin_sends_one_held_invitation_as_urgent(backend: Backend) {
    let (api, gateway, _files) = sms_api(backend).await;
    quiet_now(&api).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&linda]).await;
    let id = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/invitations/{id}/urgent");
    let teacher = post(&api, &path, &api.teacher(), None, &[]).await;
    assert_eq!(teacher.error(403), "forbidden");
    let urgent = post(&api, &path, &api.admin("nyc"), None, &[]).await;
    assert_eq!(urgent.status, 200, "{}", urgent.body);
    assert!(urgent.body["urgentAt"].is_string());
    assert!(urgent.body.get("heldUntil").is_none());
    assert!(outbox(&api).await["held"].as_array().unwrap().is_empty());
    let stats = dispatch(&api).await;
    assert_eq!((stats.sent, stats.held), (1, 0), "{stats:?}");
    assert_eq!(gateway.received_requests().await.unwrap().len(), 1);
    let again = post(&api, &path, &api.admin("nyc"), None, &[]).await;
    assert_eq!(again.error(409), "not_waiting");
    assert_eq!(
        post(
            &api,
            "/api/v1/invitations/999999/urgent",
            &api.admin("nyc"),
            None,
            &[]
        )
        .await
        .error(404),
        "not_found"
    );
    let logged = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'invitation.urgent'",
            vec![],
        )
        .await;
    assert_eq!(logged.len(), 1);
    assert!(logged[0].contains("admin-1"), "{logged:?}");
}

async fn patch(api: &Api, student: &str, contact: &str, token: &str, body: Value) -> Reply {
    api.send(
        Request::patch(format!("/api/v1/students/{student}/contacts/{contact}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn approvers_set_a_guardians_language_and_time_zone(backend: Backend) {
    let api = Api::new(backend).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let admin = api.admin("nyc");
    let set = patch(
        &api,
        "stu-1",
        &linda,
        &admin,
        json!({"preferredLanguage": "es-mx", "timeZone": "America/Chicago"}),
    )
    .await;
    assert_eq!(set.ok()["preferredLanguage"], "es-MX", "canonical case");
    assert_eq!(set.ok()["timeZone"], "America/Chicago");
    // Teachers see the language in the contact items of either child.
    let seen = crate::approvals::teacher_view(&api, "stu-2").await;
    let item = seen.iter().find(|c| c["id"] == linda.as_str()).unwrap();
    assert_eq!(item["preferredLanguage"], "es-MX");
    // null clears one field and leaves the other.
    let cleared = patch(&api, "stu-1", &linda, &admin, json!({"timeZone": null})).await;
    assert!(cleared.ok()["timeZone"].is_null());
    assert_eq!(cleared.ok()["preferredLanguage"], "es-MX");
    let field = |r: &Reply| r.body["error"]["details"]["field"].clone();
    let bad = patch(
        &api,
        "stu-1",
        &linda,
        &admin,
        json!({"preferredLanguage": "Spanish!"}),
    )
    .await;
    assert_eq!(bad.error(422), "invalid_field");
    assert_eq!(field(&bad), "preferredLanguage");
    let bad = patch(&api, "stu-1", &linda, &admin, json!({"timeZone": "EST"})).await;
    assert_eq!(field(&bad), "timeZone");
    assert_eq!(
        patch(&api, "stu-1", &linda, &admin, json!({}))
            .await
            .error(400),
        "invalid_body"
    );
    assert_eq!(
        patch(&api, "stu-1", &linda, &admin, json!({"colour": "red"}))
            .await
            .error(400),
        "invalid_body"
    );
    let rosa = contact_id(&api, "nyc", "par-3").await;
    assert_eq!(
        patch(
            &api,
            "stu-1",
            &rosa,
            &admin,
            json!({"preferredLanguage": "es"})
        )
        .await
        .error(404),
        "not_found",
        "not a contact of this student"
    );
    assert_eq!(
        patch(
            &api,
            "stu-1",
            &linda,
            &api.teacher(),
            json!({"preferredLanguage": "es"})
        )
        .await
        .error(403),
        "forbidden"
    );
    let audited = api
        .db
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'contact.preferences'")
        .await;
    assert_eq!(audited, 2);
}
