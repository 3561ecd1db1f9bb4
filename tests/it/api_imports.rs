//! `POST /api/v1/imports` and the run routes through the real router: multipart files and
//! zips, the CLI's rules and report, refusals, malformed and oversized uploads, zip bombs
//! and path escapes, roles and tenants.

use crate::api_support::*;
use crate::db_tests;
use crate::support::{Backend, Fixture};
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;

async fn admins_upload_files_and_read_runs(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.admin("nyc");
    let fixture = Fixture::v21();
    fixture.remove_lines("relationships.csv", "stu-1,par-2");
    let reply = upload(
        &api,
        &admin,
        &[("format", "sds-v2.1")],
        &fixture_files(&fixture),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert_eq!(reply.body["status"], "applied");
    let source = reply.body["source"].as_str().unwrap_or_default();
    assert!(
        source.starts_with("upload: ") && source.contains("users.csv"),
        "the run names the uploaded files, not a temporary folder: {source}"
    );
    assert_eq!(reply.body["counts"]["deactivated"], 1, "{}", reply.body);
    assert_eq!(reply.body["warningCount"], 1);
    let run = reply.body["runId"].as_i64().unwrap();
    assert_eq!(reply.headers["location"], format!("/api/v1/imports/{run}"));
    // Same rules as the CLI: the link left the snapshot and is inactive now.
    assert_eq!(api.db.link("stu-1", "par-2").await.unwrap().1, "inactive");
    let audit = api
        .db
        .texts(
            "SELECT actor FROM audit_log WHERE action = 'import.upload'",
            vec![],
        )
        .await;
    assert_eq!(audit, ["api:user:admin-1@nyc"]);

    for reader in [admin.clone(), api.user("nyc", "ta-1", &[Role::TenantAdmin])] {
        let list = api.get("/api/v1/imports", Some(&reader)).await.ok().clone();
        assert_eq!(list["items"][0]["id"], run.to_string());
        assert_eq!(list["items"][0]["status"], "applied");
        assert!(list["items"][0].get("report").is_none());
        assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
        let one = api
            .get(&format!("/api/v1/imports/{run}"), Some(&reader))
            .await
            .ok()
            .clone();
        assert_eq!(one["report"]["status"], "applied");
        assert_eq!(one["counts"]["deactivated"], 1);
    }
    let page = api
        .get("/api/v1/imports?limit=1", Some(&admin))
        .await
        .ok()
        .clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let next = page["nextCursor"].as_str().unwrap().to_string();
    let page = api
        .get(
            &format!("/api/v1/imports?limit=1&cursor={next}"),
            Some(&admin),
        )
        .await
        .ok()
        .clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["nextCursor"], serde_json::Value::Null);

    // Another tenant's run, a bad id: not found. Roles without reach: forbidden.
    let bos = api.admin("bos");
    for path in [
        format!("/api/v1/imports/{run}"),
        "/api/v1/imports/x1".into(),
    ] {
        assert_eq!(api.get(&path, Some(&bos)).await.error(404), "not_found");
    }
    assert!(
        api.get("/api/v1/imports", Some(&bos)).await.ok()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"].as_str() != Some(run.to_string().as_str()))
    );
    for token in [api.teacher(), api.app("nyc", &["EduRoster.ReadWrite.All"])] {
        assert_eq!(
            api.get("/api/v1/imports", Some(&token)).await.error(403),
            "forbidden"
        );
    }
    for token in [
        api.teacher(),
        api.user("nyc", "ta-1", &[Role::TenantAdmin]),
        api.app("nyc", &["EduRoster.ReadWrite.All"]),
    ] {
        let reply = upload(
            &api,
            &token,
            &[("format", "sds-v2.1")],
            &fixture_files(&fixture),
        )
        .await;
        assert_eq!(reply.error(403), "forbidden");
    }
}

async fn zips_dry_runs_and_refusals(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.user("bos", "admin-2", &[Role::TeamsAdmin]);
    // A zip with the files in a folder, as exports usually are; options in the query.
    let files: Vec<(String, Vec<u8>)> = fixture_files(&Fixture::v1())
        .into_iter()
        .map(|(name, content)| (format!("export/{name}"), content))
        .collect();
    let zipped = zip(&files);
    let before = api.db.fingerprint().await;
    let (content_type, body) = multipart(&[("file", Some("sds.zip"), &zipped)]);
    let reply = api
        .send(
            Request::post("/api/v1/imports?format=sds-v1&dryRun=true")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", &content_type)
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "dry_run");
    assert_eq!(reply.body["dryRun"], true);
    assert!(
        reply.body["source"]
            .as_str()
            .unwrap_or_default()
            .starts_with("upload (zip): "),
        "{}",
        reply.body
    );
    assert_eq!(api.db.fingerprint().await, before);
    let reply = api
        .send(
            Request::post("/api/v1/imports?format=sds-v1")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", &content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert_eq!(reply.body["rowsWritten"], 0, "the same snapshot again");

    // A broken file: 422 with the CLI's report in details; nothing changed.
    let fixture = Fixture::v21();
    fixture.append("users.csv", "par-9,x,Bad,Row");
    let before = api.db.fingerprint().await;
    let reply = upload(
        &api,
        &api.admin("nyc"),
        &[("format", "sds-v2.1")],
        &fixture_files(&fixture),
    )
    .await;
    assert_eq!(reply.error(422), "import_refused");
    let report = &reply.body["error"]["details"];
    assert_eq!(report["status"], "refused");
    assert_eq!(report["errors"][0]["file"], "users.csv", "{report}");
    assert!(report["errors"][0]["record"].is_number(), "{report}");
    assert_eq!(api.db.fingerprint().await, before);
    let runs = api
        .get("/api/v1/imports", Some(&api.admin("nyc")))
        .await
        .ok()
        .clone();
    assert_eq!(runs["items"][0]["status"], "refused");
}

async fn malformed_uploads_get_clear_errors(backend: Backend) {
    let api = Api::with(backend, |config| {
        config.api.max_upload_files = 9;
    })
    .await;
    let admin = api.admin("nyc");
    let files = fixture_files(&Fixture::v21());
    let format = [("format", "sds-v2.1")];
    type Case<'a> = (
        Vec<(&'a str, &'a str)>,
        Vec<(String, Vec<u8>)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (vec![], files.clone(), 400, "missing_format"),
        (vec![("format", "csv")], files.clone(), 400, "invalid_field"),
        (
            vec![("format", "sds-v2.1"), ("dryRun", "maybe")],
            files.clone(),
            400,
            "invalid_field",
        ),
        (
            vec![("format", "sds-v2.1"), ("colour", "red")],
            files.clone(),
            400,
            "invalid_field",
        ),
        (format.to_vec(), vec![], 400, "no_files"),
        (
            format.to_vec(),
            vec![
                ("users.csv".into(), b"a".to_vec()),
                ("USERS.csv".into(), b"b".to_vec()),
            ],
            400,
            "duplicate_file",
        ),
        (
            format.to_vec(),
            vec![("..".into(), b"a".to_vec())],
            400,
            "invalid_file_name",
        ),
        (
            format.to_vec(),
            (0..10)
                .map(|i| (format!("f{i}.csv"), b"a".to_vec()))
                .collect(),
            400,
            "too_many_files",
        ),
        (
            format.to_vec(),
            vec![
                ("users.csv".into(), b"a".to_vec()),
                ("set.zip".into(), zip(&files)),
            ],
            400,
            "invalid_upload",
        ),
        (
            format.to_vec(),
            vec![("set.zip".into(), b"this is not a zip".to_vec())],
            400,
            "invalid_zip",
        ),
        (
            format.to_vec(),
            vec![(
                "set.zip".into(),
                zip(&[("../../etc/users.csv".into(), b"x".to_vec())]),
            )],
            400,
            "invalid_zip",
        ),
    ];
    for (fields, files, status, code) in cases {
        let reply = upload(&api, &admin, &fields, &files).await;
        assert_eq!(reply.error(status), code, "{fields:?}");
    }

    // Not multipart: a JSON body, malformed or not.
    for body in [r#"{"format": "sds-v2.1""#, r#"{"format": "sds-v2.1"}"#] {
        let reply = api
            .send(
                Request::post("/api/v1/imports")
                    .header("authorization", format!("Bearer {admin}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.error(415), "unsupported_media_type");
    }
    // A multipart body cut short.
    let reply = api
        .send(
            Request::post("/api/v1/imports?format=sds-v2.1")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "multipart/form-data; boundary=XYZ")
                .body(Body::from(
                    "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"users.csv\"\r\n\r\nsourcedId",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.error(400), "malformed_body");
}

async fn size_limits_and_zip_bombs(backend: Backend) {
    let api = Api::with(backend, |config| {
        config.api.max_upload_bytes = 64 * 1024;
        config.api.max_zip_ratio = 10;
        config.import.max_file_bytes = 3 * 1024 * 1024;
    })
    .await;
    let admin = api.admin("nyc");
    let format = [("format", "sds-v2.1")];
    // The body limit.
    let big = vec![b'a'; 100 * 1024];
    let reply = upload(&api, &admin, &format, &[("users.csv".into(), big)]).await;
    assert_eq!(reply.error(413), "payload_too_large");
    // A zip entry that unpacks far beyond its packed size.
    let bomb = zip(&[("users.csv".into(), vec![b'a'; 2 * 1024 * 1024])]);
    assert!(bomb.len() < 64 * 1024);
    let reply = upload(&api, &admin, &format, &[("set.zip".into(), bomb)]).await;
    assert_eq!(reply.error(413), "payload_too_large");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("zip bomb"),
        "{}",
        reply.body
    );
    // A zip entry beyond the per-file limit.
    let api = Api::with(backend, |config| {
        config.import.max_file_bytes = 1000;
    })
    .await;
    let admin = api.admin("nyc");
    let large = zip(&[("users.csv".into(), vec![b'a'; 5000])]);
    let reply = upload(&api, &admin, &format, &[("set.zip".into(), large)]).await;
    assert_eq!(reply.error(413), "payload_too_large");
    let reply = upload(
        &api,
        &admin,
        &format,
        &[("users.csv".into(), vec![b'a'; 5000])],
    )
    .await;
    assert_eq!(reply.error(413), "payload_too_large");
}

db_tests!(
    admins_upload_files_and_read_runs,
    zips_dry_runs_and_refusals,
    malformed_uploads_get_clear_errors,
    size_limits_and_zip_bombs,
);
