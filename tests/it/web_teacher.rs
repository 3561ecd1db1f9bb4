//! The teacher pages without a browser (issue 18, item 3): each page's content for
//! teacher tch-1 of nyc (classes, a class's students, assignments and digest switch, a
//! student's active parents and guardians, requests, chats, blocks); out-of-reach classes,
//! students and chats are the 404 page for another teacher and another tenant; a proposal
//! with a bad email comes back with the error next to the field and stores nothing, a good
//! one is a pending request on /teacher/requests; starting a chat makes the chat and its
//! invitations; every form is refused without the session's CSRF token.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings, post};
use crate::db_tests;
use crate::support::{APPLY, Backend, Fixture};
use axum::http::StatusCode;
use parent_connection::auth::Role;
use parent_connection::sync::Format;
use serde_json::json;

db_tests!(
    a_teacher_sees_classes_students_assignments_and_guardians,
    out_of_reach_pages_are_not_found,
    a_proposal_shows_its_errors_next_to_the_fields_and_a_good_one_waits,
    a_teacher_starts_a_chat_removes_and_blocks_a_guardian,
    teacher_forms_need_the_csrf_token,
);

async fn api(backend: Backend) -> Api {
    Api::with(backend, |config| config.web.token_signin = true).await
}

/// `GET path` as the session `cookie`: status and HTML.
async fn get(api: &Api, path: &str, cookie: &str) -> (StatusCode, String) {
    let reply = page_get(api, path, Some(cookie)).await;
    (reply.status, html(&reply).to_string())
}

async fn a_teacher_sees_classes_students_assignments_and_guardians(backend: Backend) {
    let api = Api::with(backend, |config| {
        config.web.token_signin = true;
        config.api.default_page_size = 1;
    })
    .await;
    let cookie = page_session(&api, &api.teacher()).await;

    let (status, page) = get(&api, "/teacher/classes", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<a href="/teacher/classes/cls-1">Math 3A</a>"#),
        "{page}"
    );
    assert!(page.contains(r#"href="/teacher/classes" aria-current="page">My classes"#));
    for link in ["/teacher/requests", "/teacher/chats", "/teacher/blocks"] {
        assert!(page.contains(link), "the navigation lists {link}");
    }

    // Students one page at a time (page size 1 here), with a "Next page" link.
    let created = post(
        &api,
        "/api/v1/classes/cls-1/assignments",
        &api.teacher(),
        Some(json!({"externalId": "hw-1", "title": "Fractions worksheet", "dueAt": "2026-12-10T23:59:00-05:00", "points": 10})),
        &[],
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let (status, class) = get(&api, "/teacher/classes/cls-1", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(class.contains("<h1>Math 3A</h1>"), "{class}");
    assert!(class.contains(r#"<a href="/teacher/students/stu-1">Ava Ng</a>"#));
    assert!(!class.contains("Ben Ng"), "one student per page");
    assert!(class.contains(r#"href="/teacher/classes/cls-1?cursor=stu-1""#));
    assert!(class.contains("Fractions worksheet"));
    assert!(class.contains("2026-12-10T23:59:00-05:00"));
    assert!(class.contains("Include this class in the guardians&#39; weekly digest"));
    assert!(
        class.contains(r#"value="on" checked"#),
        "the digest is on by default"
    );
    let (_, next) = get(&api, "/teacher/classes/cls-1?cursor=stu-1", &cookie).await;
    assert!(
        next.contains("Ben Ng") && !next.contains("Ava Ng"),
        "{next}"
    );

    // The digest switch: unchecked and saved, audited like the API's.
    let csrf = {
        let reply = page_get(&api, "/teacher/classes/cls-1", Some(&cookie)).await;
        csrf_of(&reply)
    };
    let saved = page_post(
        &api,
        "/teacher/classes/cls-1/digest",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.headers["location"], "/teacher/classes/cls-1?saved=1");
    let digest = api
        .get("/api/v1/classes/cls-1/digest", Some(&api.teacher()))
        .await;
    assert_eq!(digest.ok()["notifyGuardians"], false);
    let (_, class) = get(&api, "/teacher/classes/cls-1?saved=1", &cookie).await;
    assert!(class.contains("Digest setting saved."));
    assert!(!class.contains(r#"value="on" checked"#));
    assert_eq!(
        api.db
            .texts(
                "SELECT actor FROM audit_log WHERE action = 'class.digest_update'",
                vec![]
            )
            .await,
        ["web:user:tch-1@nyc"]
    );

    // A student's active parents and guardians only: no relative, no doctor.
    let (status, student) = get(&api, "/teacher/students/stu-1", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(student.contains("<h1>Ava Ng</h1>"), "{student}");
    for shown in ["Linda Ng", "Tom Ng", "linda.ng@example.com", "+12025550143"] {
        assert!(student.contains(shown), "{shown} missing");
    }
    for hidden in ["Grace", "House"] {
        assert!(
            !student.contains(hidden),
            "{hidden} is not a parent or guardian"
        );
    }
    assert!(student.contains("Propose a new parent or guardian"));
    assert!(student.contains("<legend>Start a chat with</legend>"));

    // Teacher edits off: the page says so and offers no proposal.
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(
        &api,
        &tenant_admin,
        json!({"updateParentInformation": false}),
    )
    .await
    .ok();
    let (_, student) = get(&api, "/teacher/students/stu-1", &cookie).await;
    assert!(student.contains("turned off teacher edits"), "{student}");
    assert!(!student.contains("Propose a new parent or guardian"));
    let (status, _) = get(&api, "/teacher/students/stu-1/proposals/new", &cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Empty lists say so.
    let (_, requests) = get(&api, "/teacher/requests", &cookie).await;
    assert!(requests.contains("You have not proposed any change yet."));
    let (_, chats) = get(&api, "/teacher/chats", &cookie).await;
    assert!(chats.contains("You have no chats yet."));
    let (_, blocks) = get(&api, "/teacher/blocks", &cookie).await;
    assert!(blocks.contains("You have not blocked anyone."));
}

async fn out_of_reach_pages_are_not_found(backend: Backend) {
    let api = api(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = crate::invitations::start_chat(&api, &[&par1]).await;
    let chat = format!("/teacher/chats/{}", chat["id"].as_str().unwrap());
    let mine = page_session(&api, &api.teacher()).await;
    assert_eq!(get(&api, &chat, &mine).await.0, StatusCode::OK);
    // stu-3 is in no class of tch-1.
    assert_eq!(
        get(&api, "/teacher/students/stu-3", &mine).await.0,
        StatusCode::NOT_FOUND
    );
    let contact = format!(
        "/teacher/students/stu-1/contacts/{}/change",
        contact_id(&api, "nyc", "rel-1").await
    );
    assert_eq!(
        get(&api, &contact, &mine).await.0,
        StatusCode::NOT_FOUND,
        "a relative is not a teacher's to change"
    );

    let other_teacher = page_session(&api, &api.user("nyc", "tch-9", &[Role::Teacher])).await;
    let other_tenant = page_session(&api, &api.user("bos", "T1", &[Role::Teacher])).await;
    for cookie in [&other_teacher, &other_tenant] {
        for path in [
            "/teacher/classes/cls-1",
            "/teacher/students/stu-1",
            "/teacher/students/stu-1/proposals/new",
            chat.as_str(),
        ] {
            let (status, page) = get(&api, path, cookie).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(page.contains("Page not found"));
        }
    }
    let (_, classes) = get(&api, "/teacher/classes", &other_tenant).await;
    assert!(
        classes.contains("/teacher/classes/SEC1") && !classes.contains("cls-1"),
        "{classes}"
    );

    // A teacher who is also an admin gets the teacher's view here: active parents and
    // guardians only (the admin view lists the relative and the doctor too).
    let both = page_session(
        &api,
        &api.user("nyc", "tch-1", &[Role::Teacher, Role::GlobalAdmin]),
    )
    .await;
    let (status, page) = get(&api, "/teacher/students/stu-1", &both).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Linda Ng") && !page.contains("Grace") && !page.contains("House"));

    // Not a teacher: the 403 page, and no teacher links in the navigation.
    let admin = page_session(&api, &api.admin("nyc")).await;
    let (status, page) = get(&api, "/teacher/classes", &admin).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("the teacher pages need the teacher role"));
    assert!(!page.contains(r#"href="/teacher/chats""#));
}

async fn a_proposal_shows_its_errors_next_to_the_fields_and_a_good_one_waits(backend: Backend) {
    let api = api(backend).await;
    let cookie = page_session(&api, &api.teacher()).await;
    let form = page_get(&api, "/teacher/students/stu-1/proposals/new", Some(&cookie)).await;
    assert_eq!(form.status, StatusCode::OK);
    let text = html(&form);
    for label in [
        "Given name",
        "Family name",
        "Email address",
        "Mobile phone",
        "Relationship",
    ] {
        assert!(text.contains(&format!(">{label}</label>")), "{label}");
    }
    let csrf = csrf_of(&form);
    let path = "/teacher/students/stu-1/proposals/new";

    let bad = page_post(
        &api,
        path,
        &cookie,
        &[
            ("csrf", &csrf),
            ("given-name", "Ana"),
            ("family-name", "Ng"),
            ("email", "ana-at-example"),
            ("mobile-phone", "555-12"),
            ("relationship", "guardian"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&bad);
    assert!(text.contains("There is a problem"));
    assert!(text.contains(r#"id="f-email-error""#), "{text}");
    assert!(text.contains("is not a valid email address"));
    assert!(text.contains(r#"id="f-mobile-phone-error""#));
    assert!(text.contains(r#"aria-describedby="f-email-hint f-email-error" aria-invalid="true""#));
    assert!(
        text.contains(r#"value="ana-at-example""#),
        "the typed value is kept"
    );
    assert!(!text.contains(r#"id="f-given-name-error""#));
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        0
    );

    // The form's key makes a second press of the button store nothing new.
    let key = {
        let page = html(&bad);
        let at = page.find(r#"name="key" value=""#).expect("a key field") + 18;
        page[at..at + page[at..].find('"').unwrap()].to_string()
    };
    let good_form = [
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("given-name", "Ana"),
        ("family-name", "Ng"),
        ("email", "ana@example.com"),
        ("mobile-phone", "(202) 555-0188"),
        ("relationship", "guardian"),
    ];
    for _ in 0..2 {
        let good = page_post(&api, path, &cookie, &good_form).await;
        assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
        assert_eq!(good.headers["location"], "/teacher/requests?sent=1");
    }
    let mut other = good_form;
    other[4] = ("email", "ana@other.example");
    let reused = page_post(&api, path, &cookie, &other).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&reused).contains("This form was sent already."));
    assert!(
        !html(&reused).contains(&key),
        "a fresh key to send it again"
    );
    let stored = api
        .db
        .texts(
            "SELECT status || ' ' || action || ' ' || requested_by FROM contact_requests",
            vec![],
        )
        .await;
    assert_eq!(stored, ["pending add tch-1"]);

    // A change proposes only what differs; a change that changes nothing is refused.
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let change = format!("/teacher/students/stu-1/contacts/{par1}/change");
    let form = page_get(&api, &change, Some(&cookie)).await;
    let text = html(&form);
    assert!(
        text.contains(r#"value="linda.ng@example.com""#),
        "prefilled: {text}"
    );
    assert!(text.contains("Propose removal"));
    let same = page_post(
        &api,
        &change,
        &cookie,
        &[
            ("csrf", &csrf),
            ("given-name", "Linda"),
            ("family-name", "Ng"),
            ("email", "linda.ng@example.com"),
            ("mobile-phone", "+12025550143"),
            ("relationship", "parent"),
        ],
    )
    .await;
    assert_eq!(same.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&same).contains("Change at least one field"));
    let changed = page_post(
        &api,
        &change,
        &cookie,
        &[
            ("csrf", &csrf),
            ("given-name", "Linda"),
            ("family-name", "Ng"),
            ("email", "linda@new.example"),
            ("mobile-phone", "+12025550143"),
            ("relationship", "parent"),
        ],
    )
    .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let removal = format!("/teacher/students/stu-1/contacts/{par1}/removal");
    let removed = page_post(&api, &removal, &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    let proposed = api
        .db
        .texts(
            "SELECT action || ' ' || proposed FROM contact_requests ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(proposed.len(), 3);
    assert_eq!(
        proposed[1],
        r#"update {"emailAddress":"linda@new.example"}"#
    );
    assert!(proposed[2].starts_with("remove"));

    let (_, requests) = get(&api, "/teacher/requests?sent=1", &cookie).await;
    assert!(requests.contains("Your proposal was sent."));
    assert!(requests.contains(r#"<a href="/teacher/students/stu-1">Ava Ng</a>"#));
    assert!(
        requests.contains("Add a contact") && requests.contains("Email address: ana@example.com")
    );
    assert!(requests.contains("Mobile phone: +12025550188"));
    assert!(requests.contains("Change a contact") && requests.contains("Remove a contact"));
    assert_eq!(requests.matches(">pending</span>").count(), 3, "{requests}");
}

async fn a_teacher_starts_a_chat_removes_and_blocks_a_guardian(backend: Backend) {
    let api = api(backend).await;
    let cookie = page_session(&api, &api.teacher()).await;
    let student = page_get(&api, "/teacher/students/stu-1", Some(&cookie)).await;
    let csrf = csrf_of(&student);
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    assert!(html(&student).contains(&format!(r#"name="contact" value="{par1}""#)));

    // Nobody chosen: the error next to the boxes, no chat.
    let none = page_post(
        &api,
        "/teacher/students/stu-1/chats",
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&none).contains(r#"id="f-contact-error""#));
    assert!(html(&none).contains("Choose at least one parent or guardian."));
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chats").await, 0);

    let started = page_post(
        &api,
        "/teacher/students/stu-1/chats",
        &cookie,
        &[("csrf", &csrf), ("contact", &par1), ("contact", &par2)],
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let location = started.headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/teacher/chats/") && location.ends_with("?started=1"));
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chats").await, 1);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM invitations").await, 2);
    let (status, chat) = get(&api, &location, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(chat.contains("The chat is ready."));
    assert!(chat.contains("Linda Ng") && chat.contains("Tom Ng"));
    assert!(chat.contains("Invitations"));
    let chat_path = location.trim_end_matches("?started=1").to_string();
    let (_, list) = get(&api, "/teacher/chats", &cookie).await;
    assert!(
        list.contains(&chat_path)
            && list.contains("Chat about Ava Ng")
            && list.contains("With Linda Ng, Tom Ng"),
        "{list}"
    );

    // Tom stops being an active contact of stu-1 (a sync): a removal banner with its button.
    let fixture = Fixture::v21();
    fixture.remove_lines("relationships.csv", "stu-1,par-2");
    let report = api
        .db
        .import("nyc", Format::SdsV21, fixture.path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let (_, chat) = get(&api, &chat_path, &cookie).await;
    assert!(
        chat.contains(r#"<div class="banner" role="alert">"#),
        "{chat}"
    );
    assert!(chat.contains("Remove Tom Ng from this chat"));
    let (_, list) = get(&api, "/teacher/chats", &cookie).await;
    assert!(list.contains("1 removal notice"), "{list}");
    let removed = page_post(
        &api,
        &format!("{chat_path}/members/{par2}/remove"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        removed.headers["location"],
        format!("{chat_path}?done=removed")
    );
    let (_, chat) = get(&api, &format!("{chat_path}?done=removed"), &cookie).await;
    assert!(chat.contains("The guardian was removed from this chat."));
    assert!(
        !chat.contains("Tom Ng") && !chat.contains(r#"class="banner""#),
        "{chat}"
    );

    // Block Linda (which also removes her); the block list shows her until unblocked.
    let blocked = page_post(
        &api,
        &format!("{chat_path}/members/{par1}/block"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(blocked.status, StatusCode::SEE_OTHER);
    let (_, chat) = get(&api, &format!("{chat_path}?done=blocked"), &cookie).await;
    assert!(chat.contains("was blocked"));
    assert!(chat.contains("Nobody else is in this chat."), "{chat}");
    let (_, blocks) = get(&api, "/teacher/blocks", &cookie).await;
    assert!(blocks.contains("Linda Ng"), "{blocks}");
    let unblocked = page_post(
        &api,
        &format!("/teacher/blocks/{par1}/unblock"),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(unblocked.status, StatusCode::SEE_OTHER);
    let (_, blocks) = get(&api, "/teacher/blocks?unblocked=1", &cookie).await;
    assert!(blocks.contains("The block was lifted.") && !blocks.contains("Linda Ng"));
    let actions = api
        .db
        .texts(
            "SELECT action || ' ' || actor FROM audit_log WHERE action LIKE 'chat.%' ORDER BY id",
            vec![],
        )
        .await;
    assert_eq!(
        actions,
        [
            "chat.block web:user:tch-1@nyc",
            "chat.unblock web:user:tch-1@nyc"
        ]
    );
}

async fn teacher_forms_need_the_csrf_token(backend: Backend) {
    let api = api(backend).await;
    let cookie = page_session(&api, &api.teacher()).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = crate::invitations::start_chat(&api, &[&par1]).await;
    let chat = chat["id"].as_str().unwrap().to_string();
    let before = api.db.fingerprint().await;
    let forms = [
        "/teacher/classes/cls-1/digest".to_string(),
        "/teacher/students/stu-1/chats".to_string(),
        "/teacher/students/stu-1/proposals/new".to_string(),
        format!("/teacher/students/stu-1/contacts/{par1}/change"),
        format!("/teacher/students/stu-1/contacts/{par1}/removal"),
        format!("/teacher/chats/{chat}/members/{par1}/remove"),
        format!("/teacher/chats/{chat}/members/{par1}/block"),
        format!("/teacher/blocks/{par1}/unblock"),
    ];
    for path in &forms {
        let reply = page_post(
            &api,
            path,
            &cookie,
            &[
                ("contact", &par1),
                ("email", "x@example.com"),
                ("relationship", "parent"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(html(&reply).contains("This form has expired"), "{path}");
    }
    assert_eq!(api.db.fingerprint().await, before, "nothing changed");
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM contact_requests").await,
        0
    );
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chat_blocks").await, 0);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM chats").await, 1);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM chat_members WHERE removed_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM class_digest_settings")
            .await,
        0
    );
}
