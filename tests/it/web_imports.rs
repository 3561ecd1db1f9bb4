//! The imports page without a browser (issue 18, item 2): an admin uploads an SDS file set
//! (a dry run by default, applied when asked) and reads the run's report; a file set with
//! an error is refused, its report lists the row (file, record, column) and the errors come
//! as CSV with formulas defused; tenant admins read runs but upload nothing; teachers see
//! nothing; the form carries the session's CSRF token; another tenant's run is not found.

use crate::api_support::*;
use crate::db_tests;
use crate::support::{Backend, Fixture};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use parent_connection::auth::Role;

db_tests!(
    an_admin_dry_runs_then_applies_an_upload,
    a_file_set_with_an_error_is_reported_row_by_row,
    who_may_see_and_use_the_imports_pages,
);

async fn api(backend: Backend) -> Api {
    Api::with(backend, |config| config.web.token_signin = true).await
}

/// Posts the upload form of `/admin/imports` with `fields` and `files`.
async fn post_upload(
    api: &Api,
    cookie: &str,
    csrf: &str,
    fields: &[(&str, &str)],
    files: &[(String, Vec<u8>)],
) -> Reply {
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = fields
        .iter()
        .map(|(k, v)| (*k, None, v.as_bytes()))
        .collect();
    for (name, content) in files {
        parts.push(("file", Some(name.as_str()), content.as_slice()));
    }
    let (content_type, body) = multipart(&parts);
    api.send(
        Request::post(format!("/admin/imports?csrf={csrf}"))
            .header("cookie", cookie)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// The upload form's CSRF token (in the form's action).
fn upload_csrf(page: &Reply) -> String {
    let text = html(page);
    let at = text.find("/admin/imports?csrf=").expect("the upload form");
    let rest = &text[at + "/admin/imports?csrf=".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn an_admin_dry_runs_then_applies_an_upload(backend: Backend) {
    let api = api(backend).await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, "/admin/imports", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = html(&page);
    assert!(text.contains(r#"enctype="multipart/form-data""#), "{text}");
    assert!(text.contains("Dry run (change nothing)"));
    let csrf = upload_csrf(&page);
    let fixture = Fixture::v21();
    fixture.replace("users.csv", "linda.ng@example.com", "linda@new.example");
    let files = fixture_files(&fixture);

    // The form's default: a dry run, which changes nothing.
    let dry = post_upload(
        &api,
        &cookie,
        &csrf,
        &[("format", "sds-v2.1"), ("dryRun", "true")],
        &files,
    )
    .await;
    assert_eq!(dry.status, StatusCode::SEE_OTHER, "{}", dry.body);
    let run = dry.headers["location"].to_str().unwrap().to_string();
    let report = page_get(&api, &run, Some(&cookie)).await;
    assert_eq!(report.status, StatusCode::OK);
    let text = html(&report);
    assert!(text.contains("Dry run (nothing changed)"), "{text}");
    assert!(text.contains("The dry run found no errors."), "{text}");
    assert!(text.contains("contacts"), "the counts table: {text}");
    let email = || async {
        api.db
            .texts(
                "SELECT email FROM contacts WHERE source_key = 'par-1'",
                vec![],
            )
            .await
    };
    assert_eq!(email().await, ["linda.ng@example.com"]);

    // Apply.
    let applied = post_upload(
        &api,
        &cookie,
        &csrf,
        &[("format", "sds-v2.1"), ("dryRun", "false")],
        &files,
    )
    .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER);
    let report = page_get(
        &api,
        applied.headers["location"].to_str().unwrap(),
        Some(&cookie),
    )
    .await;
    assert!(html(&report).contains("Applied"));
    assert_eq!(email().await, ["linda@new.example"]);
    let audited = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'import.upload'",
            vec![],
        )
        .await;
    assert_eq!(audited, ["web:user:admin-1@nyc", "web:user:admin-1@nyc"]);

    // The list shows both runs, newest first, each linked.
    let list = page_get(&api, "/admin/imports", Some(&cookie)).await;
    let text = html(&list);
    let applied_at = text.find("Applied").expect("applied run listed");
    let dry_at = text
        .find("Dry run (nothing changed)")
        .expect("dry run listed");
    assert!(applied_at < dry_at, "newest first");

    // An upload without files, or without the CSRF token.
    let empty = post_upload(&api, &cookie, &csrf, &[("format", "sds-v2.1")], &[]).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let text = html(&empty);
    assert!(text.contains(r#"id="f-file-error""#), "{text}");
    assert!(text.contains("the upload holds no file"), "{text}");
    let forged = post_upload(&api, &cookie, "forged", &[("format", "sds-v2.1")], &files).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn a_file_set_with_an_error_is_reported_row_by_row(backend: Backend) {
    let api = api(backend).await;
    let cookie = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, "/admin/imports", Some(&cookie)).await;
    let csrf = upload_csrf(&page);
    let fixture = Fixture::v21();
    // A second row with student stu-1's key: a duplicate, which refuses the whole set.
    fixture.append("users.csv", "stu-1,=HYPERLINK(x),Eve,Ng,,,");
    let refused = post_upload(
        &api,
        &cookie,
        &csrf,
        &[("format", "sds-v2.1"), ("dryRun", "false")],
        &fixture_files(&fixture),
    )
    .await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER, "{}", refused.body);
    let run = refused.headers["location"].to_str().unwrap().to_string();
    let report = page_get(&api, &run, Some(&cookie)).await;
    let text = html(&report);
    assert!(text.contains("Refused (nothing changed)"), "{text}");
    assert!(
        text.contains("<td>users.csv</td><td>11</td><td>sourcedId</td>"),
        "the row's file, record and column: {text}"
    );
    let csv = page_get(&api, &format!("{run}/errors.csv"), Some(&cookie)).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let body = csv.body.as_str().unwrap();
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("file,record,column,code,message"));
    let row = lines.next().expect("one error row");
    assert!(row.starts_with("users.csv,11,sourcedId,"), "{row}");
    for line in body.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "a cell a spreadsheet would run: {line}"
            );
        }
    }
}

async fn who_may_see_and_use_the_imports_pages(backend: Backend) {
    let api = api(backend).await;
    let admin = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, "/admin/imports", Some(&admin)).await;
    let csrf = upload_csrf(&page);
    let uploaded = post_upload(
        &api,
        &admin,
        &csrf,
        &[("format", "sds-v2.1")],
        &fixture_files(&Fixture::v21()),
    )
    .await;
    let run = uploaded.headers["location"].to_str().unwrap().to_string();

    // A tenant admin reads the runs and reports but gets no upload form; a post is refused.
    let tenant_admin = page_session(&api, &api.user("nyc", "ta-1", &[Role::TenantAdmin])).await;
    let page = page_get(&api, "/admin/imports", Some(&tenant_admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!html(&page).contains("multipart/form-data"));
    assert_eq!(
        page_get(&api, &run, Some(&tenant_admin)).await.status,
        StatusCode::OK
    );
    let home = page_get(&api, "/", Some(&tenant_admin)).await;
    let csrf = csrf_of(&home);
    let refused = post_upload(
        &api,
        &tenant_admin,
        &csrf,
        &[],
        &fixture_files(&Fixture::v21()),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // A teacher: 403 on every imports page, no link.
    let teacher = page_session(&api, &api.teacher()).await;
    for path in ["/admin/imports", run.as_str()] {
        assert_eq!(
            page_get(&api, path, Some(&teacher)).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert!(!html(&page_get(&api, "/", Some(&teacher)).await).contains("/admin/imports"));

    // Another tenant's admin: the run is not found; a made-up id neither.
    let bos = page_session(&api, &api.admin("bos")).await;
    assert_eq!(
        page_get(&api, &run, Some(&bos)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page_get(&api, "/admin/imports/abc", Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
