//! Who reaches what, through the real router: the contacts, classes and Graph routes for
//! every role, across tenants, and after links and enrollments become inactive.

use crate::api_support::*;
use crate::db_tests;
use crate::support::{Backend, FORCE, Fixture};
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::sync::Format;
use serde_json::Value;
use std::collections::BTreeSet;

fn contacts(student: &str) -> String {
    format!("/api/v1/students/{student}/contacts")
}

fn relationships(body: &Value) -> BTreeSet<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["relationship"].as_str().unwrap().to_string())
        .collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn teachers_see_active_parents_and_guardians_of_their_students(backend: Backend) {
    let api = Api::new(backend).await;
    let teacher = api.teacher();
    let body = api
        .get(&contacts("stu-1"), Some(&teacher))
        .await
        .ok()
        .clone();
    assert_eq!(body["view"], "teacher");
    assert_eq!(
        relationships(&body),
        BTreeSet::from(["guardian".to_string(), "parent".to_string()])
    );
    for item in body["items"].as_array().unwrap() {
        for field in [
            "displayName",
            "emailAddress",
            "mobilePhone",
            "relationship",
            "status",
        ] {
            assert!(item.get(field).is_some(), "{field} missing: {item}");
        }
        assert_eq!(item["status"], "active");
        assert!(item.get("provenance").is_none(), "{item}");
    }
    let linda = &body["items"][0];
    assert_eq!(linda["displayName"], "Linda Ng");
    assert_eq!(linda["emailAddress"], "linda.ng@example.com");
    assert_eq!(linda["mobilePhone"], "+12025550143");
    assert_eq!(
        ids(api.get(&contacts("stu-2"), Some(&teacher)).await.ok()).len(),
        1
    );

    // Not in the teacher's class, not existing, and another tenant's: the same 404.
    let outside = api.get(&contacts("stu-3"), Some(&teacher)).await;
    let missing = api.get(&contacts("nobody"), Some(&teacher)).await;
    let foreign = api.get(&contacts("ST1"), Some(&teacher)).await;
    assert_eq!(outside.error(404), "not_found");
    assert_eq!(outside.body, missing.body);
    assert_eq!(outside.body, foreign.body);

    // bos's teacher sees bos's students only.
    let bos_teacher = api.user("bos", "T1", &[Role::Teacher]);
    let body = api
        .get(&contacts("ST1"), Some(&bos_teacher))
        .await
        .ok()
        .clone();
    assert_eq!(
        relationships(&body),
        BTreeSet::from(["guardian".to_string(), "parent".to_string()])
    );
    assert_eq!(
        api.get(&contacts("stu-1"), Some(&bos_teacher))
            .await
            .error(404),
        "not_found"
    );
    // A nyc teacher's id under bos's tenant, and bos's teacher id under nyc: nothing.
    let swapped = api.user("bos", "tch-1", &[Role::Teacher]);
    assert_eq!(
        api.get(&contacts("stu-1"), Some(&swapped)).await.error(404),
        "not_found"
    );
    let swapped = api.user("nyc", "T1", &[Role::Teacher]);
    assert_eq!(
        api.get(&contacts("ST1"), Some(&swapped)).await.error(404),
        "not_found"
    );
    assert_eq!(
        api.get(&contacts("stu-1"), Some(&swapped)).await.error(404),
        "not_found"
    );
}

async fn admins_see_every_role_and_status_with_provenance(backend: Backend) {
    let api = Api::new(backend).await;
    for role in [Role::GlobalAdmin, Role::TeamsAdmin] {
        let admin = api.user("nyc", "admin-1", &[role]);
        let body = api.get(&contacts("stu-1"), Some(&admin)).await.ok().clone();
        assert_eq!(body["view"], "admin");
        assert_eq!(
            relationships(&body),
            ["doctor", "guardian", "parent", "relative"]
                .map(String::from)
                .into_iter()
                .collect()
        );
        for item in body["items"].as_array().unwrap() {
            assert_eq!(
                item["provenance"]["emailAddress"]["source"], "sync",
                "{item}"
            );
        }
        // Any student of the tenant, in a class or not.
        api.get(&contacts("stu-3"), Some(&admin)).await.ok();
        assert_eq!(
            api.get(&contacts("nobody"), Some(&admin)).await.error(404),
            "not_found"
        );
        assert_eq!(
            api.get(&contacts("ST1"), Some(&admin)).await.error(404),
            "not_found"
        );
    }
    // A teacher who is also an admin gets the admin view.
    let both = api.user("nyc", "tch-1", &[Role::Teacher, Role::GlobalAdmin]);
    assert_eq!(
        api.get(&contacts("stu-3"), Some(&both)).await.ok()["view"],
        "admin"
    );
}

async fn other_callers_are_refused(backend: Backend) {
    let api = Api::new(backend).await;
    let tokens = [
        api.user("nyc", "ta-1", &[Role::TenantAdmin]),
        api.user("nyc", "nobody", &[]),
        api.app("nyc", &["EduRoster.Read.All"]),
        api.mint(
            "nyc",
            Subject::Contact {
                contact_id: "2".into(),
            },
        ),
    ];
    for token in &tokens {
        for path in [
            contacts("stu-1"),
            "/api/v1/classes".into(),
            "/api/v1/classes/cls-1/students".into(),
        ] {
            assert_eq!(
                api.get(&path, Some(token)).await.error(403),
                "forbidden",
                "{path}"
            );
        }
    }
}

async fn inactive_links_and_enrollments_leave_the_teacher_view(backend: Backend) {
    let api = Api::new(backend).await;
    let fixture = Fixture::v21();
    fixture.remove_lines("relationships.csv", "stu-1,par-2");
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), FORCE)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let teacher = api.teacher();
    let body = api
        .get(&contacts("stu-1"), Some(&teacher))
        .await
        .ok()
        .clone();
    assert_eq!(relationships(&body), BTreeSet::from(["parent".to_string()]));
    let body = api
        .get(&contacts("stu-1"), Some(&api.admin("nyc")))
        .await
        .ok()
        .clone();
    let tom = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["displayName"] == "Tom Ng")
        .expect("admins still see Tom");
    assert_eq!(tom["status"], "inactive");

    // The teacher leaves the class: the class and its students are out of reach.
    fixture.remove_lines("enrollments.csv", "tch-1");
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), FORCE)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    assert_eq!(
        api.get(&contacts("stu-1"), Some(&teacher)).await.error(404),
        "not_found"
    );
    assert_eq!(
        api.get("/api/v1/classes", Some(&teacher)).await.ok()["items"],
        serde_json::json!([])
    );
    assert_eq!(
        api.get("/api/v1/classes/cls-1/students", Some(&teacher))
            .await
            .error(404),
        "not_found"
    );
}

async fn classes_for_teachers_and_admins_paginated(backend: Backend) {
    let api = Api::new(backend).await;
    let fixture = Fixture::v21();
    fixture
        .append("classes.csv", "cls-2,sch-1,Art 3")
        .append("enrollments.csv", "cls-2,stu-3,student");
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), FORCE)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let teacher = api.teacher();
    let admin = api.admin("nyc");

    let body = api
        .get("/api/v1/classes", Some(&teacher))
        .await
        .ok()
        .clone();
    assert_eq!(ids(&body), ["cls-1"]);
    assert_eq!(body["items"][0]["title"], "Math 3A");
    assert_eq!(body["nextCursor"], Value::Null);
    let body = api.get("/api/v1/classes", Some(&admin)).await.ok().clone();
    assert_eq!(ids(&body), ["cls-1", "cls-2"]);
    let page = api
        .get("/api/v1/classes?limit=1", Some(&admin))
        .await
        .ok()
        .clone();
    assert_eq!(ids(&page), ["cls-1"]);
    assert_eq!(page["nextCursor"], "cls-1");
    let page = api
        .get("/api/v1/classes?limit=1&cursor=cls-1", Some(&admin))
        .await
        .ok()
        .clone();
    assert_eq!(ids(&page), ["cls-2"]);
    assert_eq!(page["nextCursor"], Value::Null);

    let body = api
        .get("/api/v1/classes/cls-1/students", Some(&teacher))
        .await
        .ok()
        .clone();
    assert_eq!(ids(&body), ["stu-1", "stu-2"]);
    assert_eq!(body["items"][0]["displayName"], "Ava Ng");
    let page = api
        .get("/api/v1/classes/cls-1/students?limit=1", Some(&teacher))
        .await
        .ok()
        .clone();
    assert_eq!(
        (ids(&page), &page["nextCursor"]),
        (vec!["stu-1".to_string()], &Value::from("stu-1"))
    );
    let page = api
        .get(
            "/api/v1/classes/cls-1/students?limit=1&cursor=stu-1",
            Some(&teacher),
        )
        .await
        .ok()
        .clone();
    assert_eq!(ids(&page), ["stu-2"]);
    assert_eq!(
        api.get("/api/v1/classes/cls-2/students", Some(&teacher))
            .await
            .error(404),
        "not_found"
    );
    assert_eq!(
        ids(api
            .get("/api/v1/classes/cls-2/students", Some(&admin))
            .await
            .ok()),
        ["stu-3"]
    );
    // Another tenant's class, and an unknown one.
    for class in ["SEC1", "nope"] {
        assert_eq!(
            api.get(&format!("/api/v1/classes/{class}/students"), Some(&admin))
                .await
                .error(404),
            "not_found"
        );
    }
    let bos = api.user("bos", "T1", &[Role::Teacher]);
    assert_eq!(
        ids(api.get("/api/v1/classes", Some(&bos)).await.ok()),
        ["SEC1"]
    );
    for query in [
        "limit=0",
        "limit=abc",
        "limit=501",
        "limit=-1",
        "color=blue",
    ] {
        assert_eq!(
            api.get(&format!("/api/v1/classes?{query}"), Some(&admin))
                .await
                .error(400),
            "invalid_query",
            "{query}"
        );
    }
}

async fn graph_related_contacts_for_app_tokens(backend: Backend) {
    let api = Api::new(backend).await;
    let app = api.app("nyc", &["EduRoster.Read.All"]);
    let path = "/education/users/stu-1?$select=relatedContacts";
    let body = api.get(path, Some(&app)).await.ok().clone();
    assert_eq!(body["id"], "stu-1");
    assert!(body.get("displayName").is_none(), "{body}");
    let related = body["relatedContacts"].as_array().unwrap();
    assert_eq!(related.len(), 4, "{body}");
    for contact in related {
        let keys: BTreeSet<&str> = contact
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "accessConsent",
                "displayName",
                "emailAddress",
                "id",
                "mobilePhone",
                "relationship"
            ])
        );
    }
    let mut kinds: Vec<&str> = related
        .iter()
        .map(|c| c["relationship"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["doctor", "guardian", "parent", "relative"]);

    let plain = api
        .get("/education/users/stu-1", Some(&app))
        .await
        .ok()
        .clone();
    assert_eq!(plain["displayName"], "Ava Ng");
    assert_eq!(plain["surname"], "Ng");
    assert!(plain.get("relatedContacts").is_none(), "{plain}");
    assert_eq!(
        api.get(
            "/education/users/stu-1?$select=relatedContacts,password",
            Some(&app)
        )
        .await
        .error(400),
        "invalid_query"
    );
    // ReadWrite includes Read.
    let writer = api.app("nyc", &["EduRoster.ReadWrite.All"]);
    api.get(path, Some(&writer)).await.ok();

    for student in ["ST1", "nobody"] {
        assert_eq!(
            api.get(
                &format!("/education/users/{student}?$select=relatedContacts"),
                Some(&app)
            )
            .await
            .error(404),
            "not_found"
        );
    }
    let bos = api.app("bos", &["EduRoster.Read.All"]);
    let body = api
        .get("/education/users/ST2?$select=relatedContacts", Some(&bos))
        .await
        .ok()
        .clone();
    assert_eq!(body["relatedContacts"][0]["relationship"], "other");

    let unscoped = api.app("nyc", &["Something.Else"]);
    for token in [unscoped, api.teacher(), api.admin("nyc")] {
        assert_eq!(api.get(path, Some(&token)).await.error(403), "forbidden");
    }
}

db_tests!(
    teachers_see_active_parents_and_guardians_of_their_students,
    admins_see_every_role_and_status_with_provenance,
    other_callers_are_refused,
    inactive_links_and_enrollments_leave_the_teacher_view,
    classes_for_teachers_and_admins_paginated,
    graph_related_contacts_for_app_tokens,
);
