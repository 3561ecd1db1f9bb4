//! The digest page without a browser (issue 18, item 2): one guardian's digest previewed as
//! it would be sent (nothing queued), bad input next to its field, the runs and the
//! disclosure log with its filters; teachers are refused.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings};
use crate::db_tests;
use crate::digest::two_assignments;
use crate::support::Backend;
use axum::http::StatusCode;
use parent_connection::auth::Role;
use parent_connection::digest::{self, IsoWeek, NoProgress, RunRequest};
use parent_connection::tenants;
use serde_json::json;

db_tests!(an_admin_previews_a_digest_and_reads_the_log);

async fn an_admin_previews_a_digest_and_reads_the_log(backend: Backend) {
    let api = Api::with(backend, |config| config.web.token_signin = true).await;
    two_assignments(&api).await;
    let linda = contact_id(&api, "nyc", "par-1").await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, "/admin/digest", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(html(&page).contains("No digest has been queued yet."));

    // The preview: Linda's digest of 2026-W48, nothing queued.
    let preview = page_get(
        &api,
        &format!("/admin/digest?guardian={linda}&week=2026-W48"),
        Some(&cookie),
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK);
    let text = html(&preview);
    assert!(text.contains("linda.ng@example.com"), "{text}");
    assert!(
        text.contains("Fractions") && text.contains("Reading log"),
        "{text}"
    );
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM digest_deliveries").await,
        0
    );
    // Bad input next to its field.
    let bad = page_get(
        &api,
        "/admin/digest?guardian=abc&week=2026-W48",
        Some(&cookie),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad).contains(r#"id="f-guardian-error""#));
    let bad = page_get(
        &api,
        &format!("/admin/digest?guardian={linda}&week=2026-48"),
        Some(&cookie),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad).contains(r#"id="f-week-error""#));

    // A real run: the run and the log, filtered by guardian.
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(&api, &tenant_admin, json!({"digestEnabled": true}))
        .await
        .ok();
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let links = parent_connection::links::Links::from_config(&api.config);
    let request = RunRequest {
        week: Some(IsoWeek::parse("2026-W48").unwrap()),
        dry_run: false,
        sample_size: 0,
        page_size: 100,
    };
    digest::run(&api.db.conn, &tenant, request, &NoProgress, &links)
        .await
        .unwrap();
    let page = page_get(&api, "/admin/digest", Some(&cookie)).await;
    let text = html(&page);
    assert!(text.contains("2026-W48: queued"), "{text}");
    assert_eq!(
        text.matches("<td>2026-W48</td>").count(),
        2,
        "two guardians"
    );
    let one = page_get(
        &api,
        &format!("/admin/digest?logGuardian={linda}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(html(&one).matches("<td>2026-W48</td>").count(), 1);
    // Teachers may not.
    let teacher = page_session(&api, &api.teacher()).await;
    assert_eq!(
        page_get(&api, "/admin/digest", Some(&teacher)).await.status,
        StatusCode::FORBIDDEN
    );
}
