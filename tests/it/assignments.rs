//! Assignments through the real router and the CSV import (SPEC §6, §10): the upsert by
//! external id (201 then 200), validation naming the field, who may write and read, the
//! per-class digest switch, and the all-or-nothing bulk import with located errors.

use crate::api_support::*;
use crate::approvals::{add_second_teacher, post};
use crate::db_tests;
use crate::support::Backend;
use axum::body::Body;
use axum::http::Request;
use parent_connection::assignments::{self, ImportStatus};
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::domain::TenantId;
use parent_connection::sync::NoProgress;
use serde_json::{Value, json};

db_tests!(
    the_class_owner_creates_updates_lists_and_deletes,
    bad_fields_are_named,
    only_the_owner_or_a_scoped_app_may_write,
    the_owner_opts_a_class_out_of_the_digest,
    a_csv_import_applies_all_or_nothing,
    a_csv_import_names_file_record_and_column,
);

const PATH: &str = "/api/v1/classes/cls-1/assignments";

fn homework(id: &str, title: &str) -> Value {
    json!({"externalId": id, "title": title, "dueAt": "2026-11-24T23:59:00-05:00",
           "points": 10, "instructions": "Pages 4 and 5"})
}

/// `method path` with a JSON body and a token.
async fn send_json(api: &Api, method: &str, path: &str, token: &str, body: Value) -> Reply {
    api.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
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

async fn the_class_owner_creates_updates_lists_and_deletes(backend: Backend) {
    let api = Api::new(backend).await;
    let teacher = api.teacher();
    let created = post(
        &api,
        PATH,
        &teacher,
        Some(homework("hw-1", "Fractions")),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["externalId"], "hw-1");
    assert_eq!(created.body["classId"], "cls-1");
    assert_eq!(created.body["dueAt"], "2026-11-24T23:59:00-05:00");
    assert_eq!(created.body["points"], 10.0);
    // The same body again is an idempotent 200 that changes nothing.
    let again = post(
        &api,
        PATH,
        &teacher,
        Some(homework("hw-1", "Fractions")),
        &[],
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["updatedAt"], created.body["updatedAt"]);
    let changed = post(
        &api,
        PATH,
        &teacher,
        Some(homework("hw-1", "Fractions II")),
        &[],
    )
    .await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.body["title"], "Fractions II");
    // PUT creates or replaces; points and instructions may be null.
    let put = send_json(
        &api,
        "PUT",
        &format!("{PATH}/hw-2"),
        &teacher,
        json!({"title": "Reading log", "dueAt": "2026-12-02T13:00:00Z", "points": null}),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(put.body["points"], Value::Null);
    let mismatch = send_json(
        &api,
        "PUT",
        &format!("{PATH}/hw-2"),
        &teacher,
        json!({"externalId": "hw-9", "title": "x", "dueAt": "2026-12-02T13:00:00Z"}),
    )
    .await;
    assert_eq!(mismatch.error(422), "invalid_field");
    assert_eq!(mismatch.body["error"]["details"]["field"], "externalId");
    let all = api.get(PATH, Some(&teacher)).await;
    let ids: Vec<&str> = all.ok()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hw-1", "hw-2"]);
    let window = api
        .get(
            &format!("{PATH}?from=2026-12-01T00:00:00Z&to=2026-12-03T00:00:00Z"),
            Some(&teacher),
        )
        .await;
    assert_eq!(window.ok()["items"].as_array().unwrap().len(), 1);
    assert_eq!(window.body["items"][0]["externalId"], "hw-2");
    let paged = api.get(&format!("{PATH}?limit=1"), Some(&teacher)).await;
    let cursor = paged.ok()["nextCursor"].as_str().unwrap().to_string();
    let next = api
        .get(&format!("{PATH}?limit=1&cursor={cursor}"), Some(&teacher))
        .await;
    assert_eq!(next.ok()["items"][0]["externalId"], "hw-2");
    assert_eq!(next.body["nextCursor"], Value::Null);
    let naive = api
        .get(&format!("{PATH}?from=2026-12-01T00:00:00"), Some(&teacher))
        .await;
    assert_eq!(naive.error(400), "invalid_query");
    assert_eq!(
        delete(&api, &format!("{PATH}/hw-1"), &teacher).await.status,
        204
    );
    assert_eq!(
        delete(&api, &format!("{PATH}/hw-1"), &teacher)
            .await
            .error(404),
        "not_found"
    );
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM assignments").await,
        1,
        "the delete removed the row"
    );
}

async fn bad_fields_are_named(backend: Backend) {
    let api = Api::new(backend).await;
    let teacher = api.teacher();
    let cases = [
        (
            json!({"title": "x", "dueAt": "2026-11-24T23:59:00Z"}),
            "externalId",
        ),
        (
            json!({"externalId": "e".repeat(201), "title": "x", "dueAt": "2026-11-24T23:59:00Z"}),
            "externalId",
        ),
        (
            json!({"externalId": "a", "dueAt": "2026-11-24T23:59:00Z"}),
            "title",
        ),
        (
            json!({"externalId": "a", "title": "t".repeat(301), "dueAt": "2026-11-24T23:59:00Z"}),
            "title",
        ),
        (
            json!({"externalId": "a", "title": 7, "dueAt": "2026-11-24T23:59:00Z"}),
            "title",
        ),
        (
            json!({"externalId": "a", "title": "x", "dueAt": "2026-11-24T23:59:00"}),
            "dueAt",
        ),
        (
            json!({"externalId": "a", "title": "x", "dueAt": "tomorrow"}),
            "dueAt",
        ),
        (
            json!({"externalId": "a", "title": "x", "dueAt": "2026-11-24T23:59:00Z", "points": -1}),
            "points",
        ),
        (
            json!({"externalId": "a", "title": "x", "dueAt": "2026-11-24T23:59:00Z", "points": "10"}),
            "points",
        ),
        (
            json!({"externalId": "a", "title": "x", "dueAt": "2026-11-24T23:59:00Z", "instructions": "i".repeat(2001)}),
            "instructions",
        ),
    ];
    for (body, field) in cases {
        let reply = post(&api, PATH, &teacher, Some(body.clone()), &[]).await;
        assert_eq!(reply.error(422), "invalid_field", "{body}");
        assert_eq!(reply.body["error"]["details"]["field"], field, "{body}");
    }
    let naive = post(
        &api,
        PATH,
        &teacher,
        Some(json!({"externalId": "a", "title": "x", "dueAt": "2026-11-24T23:59:00"})),
        &[],
    )
    .await;
    assert!(
        naive.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no offset"),
        "{}",
        naive.body
    );
    let unknown = post(
        &api,
        PATH,
        &teacher,
        Some(
            json!({"externalId": "a", "title": "x", "dueAt": "2026-11-24T23:59:00Z", "colour": 1}),
        ),
        &[],
    )
    .await;
    assert_eq!(unknown.error(400), "invalid_body");
    assert_eq!(api.db.count("SELECT COUNT(*) FROM assignments").await, 0);
}

async fn only_the_owner_or_a_scoped_app_may_write(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let body = || Some(homework("hw-1", "Fractions"));
    let other_teacher = api.user("nyc", "tch-2", &[Role::Teacher]);
    assert_eq!(
        post(&api, PATH, &other_teacher, body(), &[])
            .await
            .error(404),
        "not_found"
    );
    assert_eq!(
        post(&api, PATH, &api.admin("nyc"), body(), &[])
            .await
            .error(403),
        "forbidden"
    );
    let tenant_admin = api.user("nyc", "it-1", &[Role::TenantAdmin]);
    assert_eq!(
        post(&api, PATH, &tenant_admin, body(), &[])
            .await
            .error(403),
        "forbidden"
    );
    // Another tenant's teacher with the same id never reaches nyc's class.
    let bos_teacher = api.user("bos", "tch-1", &[Role::Teacher]);
    assert_eq!(
        post(&api, PATH, &bos_teacher, body(), &[]).await.error(404),
        "not_found"
    );
    let bos_app = api.app("bos", &["EduAssignments.ReadWrite.All"]);
    assert_eq!(
        post(&api, PATH, &bos_app, body(), &[]).await.error(404),
        "not_found"
    );
    let roster_app = api.app("nyc", &["EduRoster.Read.All"]);
    assert_eq!(
        post(&api, PATH, &roster_app, body(), &[]).await.error(403),
        "forbidden"
    );
    assert_eq!(
        api.get(PATH, Some(&roster_app)).await.error(403),
        "forbidden"
    );
    let guardian = api.mint(
        "nyc",
        Subject::Contact {
            contact_id: "1".into(),
        },
    );
    assert_eq!(
        post(&api, PATH, &guardian, body(), &[]).await.error(403),
        "forbidden"
    );
    let unauthenticated = api.get(PATH, None).await;
    assert_eq!(unauthenticated.error(401), "unauthenticated");
    assert_eq!(api.db.count("SELECT COUNT(*) FROM assignments").await, 0);

    let app = api.app("nyc", &["EduAssignments.ReadWrite.All"]);
    assert_eq!(post(&api, PATH, &app, body(), &[]).await.status, 201);
    assert_eq!(
        api.get(PATH, Some(&app)).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Admins read every class's assignments; the other teacher still sees nothing.
    assert_eq!(
        api.get(PATH, Some(&api.admin("nyc"))).await.ok()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get(PATH, Some(&other_teacher)).await.error(404),
        "not_found"
    );
    assert_eq!(
        delete(&api, &format!("{PATH}/hw-1"), &other_teacher)
            .await
            .error(404),
        "not_found"
    );
    assert_eq!(
        delete(&api, &format!("{PATH}/hw-1"), &app).await.status,
        204
    );
    // The second teacher owns cls-2.
    let theirs = post(
        &api,
        "/api/v1/classes/cls-2/assignments",
        &other_teacher,
        body(),
        &[],
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
}

async fn the_owner_opts_a_class_out_of_the_digest(backend: Backend) {
    let api = Api::new(backend).await;
    add_second_teacher(&api).await;
    let path = "/api/v1/classes/cls-1/digest";
    let teacher = api.teacher();
    assert_eq!(
        api.get(path, Some(&teacher)).await.ok()["notifyGuardians"],
        true
    );
    let off = send_json(
        &api,
        "PATCH",
        path,
        &teacher,
        json!({"notifyGuardians": false}),
    )
    .await;
    assert_eq!(off.ok()["notifyGuardians"], false);
    assert_eq!(
        api.get(path, Some(&api.admin("nyc"))).await.ok()["notifyGuardians"],
        false
    );
    let other = api.user("nyc", "tch-2", &[Role::Teacher]);
    let refused = send_json(
        &api,
        "PATCH",
        path,
        &other,
        json!({"notifyGuardians": true}),
    )
    .await;
    assert_eq!(refused.error(404), "not_found");
    let admin = send_json(
        &api,
        "PATCH",
        path,
        &api.admin("nyc"),
        json!({"notifyGuardians": true}),
    )
    .await;
    assert_eq!(admin.error(403), "forbidden");
    let bad = send_json(
        &api,
        "PATCH",
        path,
        &teacher,
        json!({"notifyGuardians": "no"}),
    )
    .await;
    assert_eq!(bad.error(400), "invalid_body");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'class.digest_update'")
            .await,
        1
    );
}

const HEADER: &str = "classSourcedId,externalId,title,dueAt,points,instructions\n";

async fn nyc(api: &Api) -> TenantId {
    parent_connection::tenants::find(&api.db.conn, "nyc")
        .await
        .unwrap()
        .id
}

async fn import_file(api: &Api, content: &str, dry_run: bool) -> assignments::ImportReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("assignments.csv");
    std::fs::write(&path, content).unwrap();
    let config = crate::support::config().import;
    assignments::import_file(
        &api.db.conn,
        &config,
        nyc(api).await,
        &path,
        dry_run,
        "test",
        &NoProgress,
    )
    .await
    .expect("import ran")
}

async fn a_csv_import_applies_all_or_nothing(backend: Backend) {
    let api = Api::new(backend).await;
    let good = format!(
        "{HEADER}cls-1,hw-1,Fractions,2026-11-24T23:59:00-05:00,10,Pages 4-5\n\
         cls-1,hw-2,\"Reading log, week 3\",2026-12-02T13:00:00Z,,\n"
    );
    let dry = import_file(&api, &good, true).await;
    assert_eq!(dry.status, ImportStatus::DryRun, "{:?}", dry.errors);
    assert_eq!((dry.rows, dry.created), (2, 2));
    assert_eq!(api.db.count("SELECT COUNT(*) FROM assignments").await, 0);
    let applied = import_file(&api, &good, false).await;
    assert_eq!(applied.status, ImportStatus::Applied);
    assert_eq!(
        (applied.created, applied.updated, applied.unchanged),
        (2, 0, 0)
    );
    let titles = api
        .db
        .texts("SELECT title FROM assignments ORDER BY external_id", vec![])
        .await;
    assert_eq!(titles, ["Fractions", "Reading log, week 3"]);
    let again = import_file(&api, &good, false).await;
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));
    let changed = import_file(&api, &good.replace("Fractions", "Decimals"), false).await;
    assert_eq!(
        (changed.created, changed.updated, changed.unchanged),
        (0, 1, 1)
    );
    // One bad row refuses the whole file: the good rows before it are not written.
    let mixed =
        format!("{HEADER}cls-1,hw-3,New one,2026-11-25T10:00:00Z,,\ncls-1,hw-4,Bad,2026-11-25,,\n");
    let refused = import_file(&api, &mixed, false).await;
    assert_eq!(refused.status, ImportStatus::Refused);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM assignments").await, 2);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'assignments.import'")
            .await,
        3
    );
}

async fn a_csv_import_names_file_record_and_column(backend: Backend) {
    let api = Api::new(backend).await;
    let bad = format!(
        "{HEADER}cls-9,hw-1,Unknown class,2026-11-24T23:59:00Z,,\n\
         cls-1,hw-2,,2026-11-24T23:59:00Z,,\n\
         cls-1,hw-3,Naive,2026-11-24T23:59:00,,\n\
         cls-1,hw-4,Negative,2026-11-24T23:59:00Z,-5,\n\
         cls-1,hw-5,First,2026-11-24T23:59:00Z,,\n\
         cls-1,hw-5,Again,2026-11-24T23:59:00Z,,\n"
    );
    let report = import_file(&api, &bad, false).await;
    assert_eq!(report.status, ImportStatus::Refused);
    let located: Vec<(Option<u64>, Option<&str>, &str)> = report
        .errors
        .iter()
        .map(|e| {
            assert_eq!(e.file, "assignments.csv");
            (e.record, e.column.as_deref(), e.code)
        })
        .collect();
    assert_eq!(
        located,
        [
            (Some(2), Some("classSourcedId"), "unknown_class"),
            (Some(3), Some("title"), "invalid_value"),
            (Some(4), Some("dueAt"), "invalid_value"),
            (Some(5), Some("points"), "invalid_value"),
            (Some(7), Some("externalId"), "duplicate_key"),
        ]
    );
    assert!(
        report.errors[4].message.contains("record 6"),
        "{}",
        report.errors[4]
    );
    let missing = import_file(&api, "classSourcedId,externalId,title\ncls-1,a,b\n", false).await;
    assert_eq!(missing.status, ImportStatus::Refused);
    assert!(
        missing
            .errors
            .iter()
            .any(|e| e.to_string().contains("dueAt")),
        "{:?}",
        missing.errors
    );
    assert_eq!(api.db.count("SELECT COUNT(*) FROM assignments").await, 0);
}
