//! The OneRoster page without a browser (issue 18, item 2): an admin connects (a bad URL
//! comes back next to its field), tests the connection against a real provider on loopback
//! (a wrong secret is reported, not a 500), runs a full sync and lands on its report; the
//! secret never appears in a page; tenant admins and teachers are refused.

use crate::api_support::*;
use crate::db_tests;
use crate::oneroster_server::{CLIENT_ID, CLIENT_SECRET, Provider, district};
use crate::support::Backend;
use axum::http::StatusCode;
use parent_connection::auth::Role;

db_tests!(an_admin_connects_tests_and_runs_a_sync);

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

async fn an_admin_connects_tests_and_runs_a_sync(backend: Backend) {
    let api = Api::with(backend, |config| {
        config.web.token_signin = true;
        config.oneroster.secret_key = KEY.into();
        config.oneroster.retry_base_ms = 10;
        config.oneroster.retry_max_ms = 100;
        config.oneroster.max_retries = 1;
    })
    .await;
    // A district with no data yet (nyc's fixture roster would trip the deletion guard).
    api.db.tenant("oak").await;
    let provider = Provider::start(district()).await;
    let cookie = page_session(&api, &api.admin("oak")).await;
    let page = page_get(&api, "/admin/oneroster", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(html(&page).contains("no OneRoster connection yet"));
    let csrf = csrf_of(&page);
    let connect = |base: &str, secret: &str| {
        vec![
            ("csrf".to_string(), csrf.clone()),
            ("base_url".to_string(), base.to_string()),
            ("token_url".to_string(), provider.token_url.clone()),
            ("client_id".to_string(), CLIENT_ID.to_string()),
            ("client_secret".to_string(), secret.to_string()),
            ("page_size".to_string(), "2".to_string()),
        ]
    };
    let post = |fields: Vec<(String, String)>, path: &'static str| {
        let api = &api;
        let cookie = cookie.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            page_post(api, path, &cookie, &pairs).await
        }
    };

    // A malformed URL: next to its field, nothing stored.
    let bad = post(connect("ftp:/nowhere", "wrong-secret"), "/admin/oneroster").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&bad);
    assert!(text.contains(r#"id="f-base_url-error""#), "{text}");
    assert!(
        !text.contains("wrong-secret"),
        "the secret is never sent back"
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM oneroster_connections")
            .await,
        0
    );

    // Stored with a wrong secret: the test says so.
    let saved = post(
        connect(&provider.base_url, "wrong-secret"),
        "/admin/oneroster",
    )
    .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let tested = post(vec![("csrf".into(), csrf.clone())], "/admin/oneroster/test").await;
    assert_eq!(tested.status, StatusCode::OK);
    assert!(
        html(&tested).contains("The connection does not work"),
        "{}",
        html(&tested)
    );

    // The right secret: the test lists the schools; a blank secret keeps the stored one.
    post(
        connect(&provider.base_url, CLIENT_SECRET),
        "/admin/oneroster",
    )
    .await;
    let kept = post(connect(&provider.base_url, ""), "/admin/oneroster").await;
    assert_eq!(kept.status, StatusCode::SEE_OTHER, "{}", kept.body);
    let tested = post(vec![("csrf".into(), csrf.clone())], "/admin/oneroster/test").await;
    let text = html(&tested);
    assert!(text.contains("The connection works"), "{text}");
    assert!(!text.contains(CLIENT_SECRET));

    // A full sync now: its report is the imports page's.
    let run = post(
        vec![
            ("csrf".into(), csrf.clone()),
            ("mode".into(), "full".into()),
        ],
        "/admin/oneroster/run",
    )
    .await;
    assert_eq!(run.status, StatusCode::SEE_OTHER, "{}", run.body);
    let location = run.headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/admin/imports/"), "{location}");
    let report = page_get(&api, &location, Some(&cookie)).await;
    assert!(html(&report).contains("Applied"), "{}", html(&report));

    // Tenant admins and teachers may not.
    for token in [api.user("oak", "ta-1", &[Role::TenantAdmin]), api.teacher()] {
        let other = page_session(&api, &token).await;
        assert_eq!(
            page_get(&api, "/admin/oneroster", Some(&other))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
}
