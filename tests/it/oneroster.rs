//! OneRoster 1.1 REST sync against a real HTTP provider on loopback
//! ([`crate::oneroster_server`]): paging, agents unioned from both sides, tobedeleted and
//! enabledUser, delta runs, token refresh, retries, timeouts, malformed data, paging loops,
//! the API route and the CLI.

use crate::api_support::Api;
use crate::db_tests;
use crate::oneroster_server::{
    CLIENT_ID, CLIENT_SECRET, Fault, Provider, district, enrollment, user,
};
use crate::support::{self, Backend, TestDb};
use axum::body::Body;
use axum::http::Request;
use parent_connection::auth::Role;
use parent_connection::config::Config;
use parent_connection::sync::oneroster::connection::{self, NewConnection, Secret};
use parent_connection::sync::oneroster::{self, OneRosterError, SyncRequest};
use parent_connection::sync::report::{ImportReport, RunStatus};
use serde_json::json;
use std::time::{Duration, Instant};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Test settings: a secret key, quick retries, short timeouts.
pub(crate) fn or_config(mut config: Config) -> Config {
    config.oneroster.secret_key = KEY.into();
    config.oneroster.retry_base_ms = 10;
    config.oneroster.retry_max_ms = 3_000;
    config.oneroster.request_timeout_seconds = 2;
    config.oneroster.connect_timeout_seconds = 1;
    config
}

pub(crate) struct Setup {
    pub(crate) db: TestDb,
    pub(crate) provider: Provider,
    config: Config,
}

impl Setup {
    /// Tenant `nyc` connected to a provider serving `data` with pages of `page_size`.
    pub(crate) async fn new(backend: Backend, data: serde_json::Value, page_size: u64) -> Self {
        let db = TestDb::new(backend).await;
        db.tenant("nyc").await;
        let provider = Provider::start(data).await;
        let config = or_config(support::config());
        let setup = Self {
            db,
            provider,
            config,
        };
        setup.connect(CLIENT_SECRET, page_size).await;
        setup
    }

    async fn connect(&self, secret: &str, page_size: u64) {
        let tenant = parent_connection::tenants::find(&self.db.conn, "nyc")
            .await
            .unwrap();
        connection::save(
            &self.db.conn,
            &self.config,
            tenant.id,
            &NewConnection {
                base_url: self.provider.base_url.clone(),
                token_url: self.provider.token_url.clone(),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(secret),
                page_size: Some(page_size),
            },
            "test",
        )
        .await
        .expect("connection stored");
    }

    async fn try_sync(&self, delta: bool, force: bool) -> Result<ImportReport, OneRosterError> {
        let request = SyncRequest {
            tenant: "nyc".into(),
            delta,
            force,
            actor: "test".into(),
        };
        oneroster::sync(&self.db.conn, &self.config, &request).await
    }

    pub(crate) async fn sync(&self, delta: bool, force: bool) -> ImportReport {
        self.try_sync(delta, force).await.expect("sync ran")
    }

    pub(crate) async fn applied(&self, delta: bool) -> ImportReport {
        let report = self.sync(delta, false).await;
        assert_eq!(
            report.status,
            RunStatus::Applied,
            "{:#?} {:#?}",
            report.errors,
            report.warnings
        );
        report
    }

    async fn link(&self, student: &str, contact: &str) -> Option<(String, String)> {
        self.db.link(student, contact).await
    }

    /// Every sync run so far, oldest first, as "status source".
    async fn runs(&self) -> Vec<String> {
        self.db
            .texts(
                "SELECT status || ' ' || source FROM sync_runs ORDER BY id",
                vec![],
            )
            .await
    }

    async fn watermark(&self) -> Option<String> {
        self.db
            .texts("SELECT watermark FROM oneroster_connections", vec![])
            .await
            .pop()
    }

    /// The only error of a report that did not apply.
    pub(crate) fn failure_code(report: &ImportReport) -> &str {
        assert_eq!(report.errors.len(), 1, "{:#?}", report.errors);
        report.errors[0].code
    }
}

fn active(relationship: &str) -> Option<(String, String)> {
    Some((relationship.into(), "active".into()))
}

fn inactive(relationship: &str) -> Option<(String, String)> {
    Some((relationship.into(), "inactive".into()))
}

async fn full_sync_pages_and_unions_agents_from_both_sides(backend: Backend) {
    let s = Setup::new(backend, district(), 2).await;
    // The server gives one row per page whatever `limit` asks.
    s.provider.with(|p| p.max_page = Some(1));
    let report = s.applied(false).await;
    assert_eq!(report.format, "oneroster");
    let e = &report.entities;
    assert_eq!(
        (
            e.schools.created,
            e.students.created,
            e.staff.created,
            e.classes.created
        ),
        (2, 3, 1, 1)
    );
    assert_eq!((e.enrollments.created, e.contacts.created), (3, 3));
    assert_eq!(e.links.created, 4, "{e:#?}");
    // Only on the student's agents; only on the guardian's; on both (one link); only on
    // the parent's.
    assert_eq!(s.link("stu-1", "par-1").await, active("parent"));
    assert_eq!(s.link("stu-2", "gdn-1").await, active("guardian"));
    assert_eq!(s.link("stu-3", "par-2").await, active("parent"));
    assert_eq!(s.link("stu-1", "par-2").await, active("parent"));
    // Disabled (enabledUser "false") and tobedeleted users make no link.
    assert_eq!(s.link("stu-1", "rel-1").await, None);
    assert_eq!(s.link("stu-2", "par-3").await, None);
    assert_eq!(
        s.db.contact_field("par-1", "mobile_phone")
            .await
            .0
            .as_deref(),
        Some("+12125550101")
    );
    assert_eq!(
        s.db.contact_field("gdn-1", "mobile_phone")
            .await
            .0
            .as_deref(),
        Some("+12125550102")
    );
    // The offset advanced by the rows received (1), not by the limit asked (2), and the
    // collection ended when it reached X-Total-Count.
    let users: Vec<String> = s
        .provider
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/users?"))
        .collect();
    let expected: Vec<String> = (0..9)
        .map(|o| format!("/users?limit=2&offset={o}"))
        .collect();
    assert_eq!(users, expected);
    assert_eq!(
        s.watermark().await.as_deref(),
        Some("2026-01-10T08:00:00.000Z")
    );
    assert_eq!(
        s.db.texts("SELECT format FROM sync_runs", vec![]).await,
        vec!["oneroster"]
    );
    // The secret is stored encrypted and never audited.
    let stored =
        s.db.texts(
            "SELECT client_secret_encrypted FROM oneroster_connections",
            vec![],
        )
        .await;
    assert!(stored[0].starts_with("v1:") && !stored[0].contains(CLIENT_SECRET));
    let audit =
        s.db.texts("SELECT COALESCE(after, '') FROM audit_log", vec![])
            .await;
    assert!(
        audit.iter().all(|a| !a.contains(CLIENT_SECRET)),
        "{audit:?}"
    );
    // The same data again writes nothing.
    let again = s.applied(false).await;
    assert_eq!(again.rows_written, 0, "{:#?}", again.entities);
}

async fn tobedeleted_and_disabled_users_become_inactive_past_the_guard(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    s.applied(false).await;
    let before = s.db.fingerprint().await;
    s.provider
        .patch("users", "par-1", json!({"status": "tobedeleted"}));
    // 1 of 4 active links is more than the default 20%.
    let refused = s.sync(false, false).await;
    assert_eq!(refused.status, RunStatus::Refused);
    assert_eq!(Setup::failure_code(&refused), "deletion_guard");
    assert_eq!(s.db.fingerprint().await, before);
    let forced = s.sync(false, true).await;
    assert_eq!(forced.status, RunStatus::Applied, "{:#?}", forced.errors);
    assert_eq!(forced.entities.links.deactivated, 1);
    assert_eq!(s.link("stu-1", "par-1").await, inactive("parent"));
    assert_eq!(s.link("stu-1", "par-2").await, active("parent"));
    // enabledUser 0 (a number) disables too.
    s.provider
        .patch("users", "gdn-1", json!({"enabledUser": 0}));
    assert_eq!(s.sync(false, true).await.status, RunStatus::Applied);
    assert_eq!(s.link("stu-2", "gdn-1").await, inactive("guardian"));
    // Back to enabled (the boolean spelling): reactivated.
    s.provider
        .patch("users", "gdn-1", json!({"enabledUser": true}));
    let back = s.applied(false).await;
    assert_eq!(back.entities.links.reactivated, 1);
    assert_eq!(s.link("stu-2", "gdn-1").await, active("guardian"));
}

async fn delta_applies_changes_without_deactivating_the_rest(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    assert!(matches!(
        s.try_sync(true, false).await,
        Err(OneRosterError::NoWatermark(_))
    ));
    s.applied(false).await;
    let later = "2026-02-01T00:00:00.000Z";
    s.provider.patch(
        "users",
        "gdn-1",
        json!({"email": "new-gdn1@example.com", "dateLastModified": later}),
    );
    // New people whose agents name users the delta does not hold (looked up one by one).
    s.provider.upsert(
        "users",
        user(
            "par-9",
            "parent",
            &["stu-3"],
            json!({"dateLastModified": later}),
        ),
    );
    s.provider.upsert(
        "users",
        user(
            "stu-4",
            "student",
            &["par-1"],
            json!({"dateLastModified": later}),
        ),
    );
    s.provider.patch(
        "enrollments",
        "enr-2",
        json!({"status": "tobedeleted", "dateLastModified": later}),
    );
    let report = s.applied(true).await;
    let requests = s.provider.requests();
    assert!(
        requests.contains(
            &"/users?filter=dateLastModified>'2026-01-10T08:00:00.000Z'&limit=100&offset=0"
                .to_string()
        ),
        "{requests:#?}"
    );
    assert!(
        requests.contains(&"/users/par-1".to_string()),
        "{requests:#?}"
    );
    assert!(
        requests.contains(&"/users/stu-3".to_string()),
        "{requests:#?}"
    );
    assert_eq!(report.entities.links.created, 2, "{:#?}", report.entities);
    assert_eq!(report.entities.links.deactivated, 0);
    assert_eq!(report.entities.enrollments.deactivated, 1);
    assert_eq!(
        report.entities.schools.deactivated
            + report.entities.classes.deactivated
            + report.entities.staff.deactivated
            + report.entities.students.deactivated,
        0
    );
    assert_eq!(
        s.db.contact_field("gdn-1", "email").await.0.as_deref(),
        Some("new-gdn1@example.com")
    );
    assert_eq!(s.link("stu-3", "par-9").await, active("parent"));
    assert_eq!(s.link("stu-4", "par-1").await, active("parent"));
    for (student, contact) in [
        ("stu-1", "par-1"),
        ("stu-1", "par-2"),
        ("stu-3", "par-2"),
        ("stu-2", "gdn-1"),
    ] {
        assert_eq!(
            s.link(student, contact).await.map(|l| l.1).as_deref(),
            Some("active"),
            "{student} {contact}"
        );
    }
    let enrollment = |student: &'static str| {
        format!(
            "SELECT e.status FROM enrollments e JOIN students s ON s.id = e.person_id AND e.role = 'student' WHERE s.source_id = '{student}'"
        )
    };
    assert_eq!(
        s.db.texts(&enrollment("stu-2"), vec![]).await,
        vec!["inactive"]
    );
    assert_eq!(
        s.db.texts(&enrollment("stu-1"), vec![]).await,
        vec!["active"]
    );
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM schools WHERE status = 'active'")
            .await
            + s.db
                .count("SELECT COUNT(*) FROM classes WHERE status = 'active'")
                .await
            + s.db
                .count("SELECT COUNT(*) FROM staff WHERE status = 'active'")
                .await,
        4
    );
    assert_eq!(s.watermark().await.as_deref(), Some(later));
    // Nothing changed since: the next delta writes nothing.
    let quiet = s.applied(true).await;
    assert_eq!(quiet.rows_written, 0, "{:#?}", quiet.entities);
    // A user the delta marks tobedeleted loses its links (2 of 6: forced past the guard).
    s.provider.patch(
        "users",
        "par-2",
        json!({"status": "tobedeleted", "dateLastModified": "2026-03-01T00:00:00.000Z"}),
    );
    let gone = s.sync(true, true).await;
    assert_eq!(gone.status, RunStatus::Applied, "{:#?}", gone.errors);
    assert_eq!(gone.entities.links.deactivated, 2);
    assert_eq!(s.link("stu-3", "par-2").await, inactive("parent"));
    assert_eq!(s.link("stu-1", "par-2").await, inactive("parent"));
    assert_eq!(s.link("stu-3", "par-9").await, active("parent"));
}

async fn token_refresh_retries_and_retry_after(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    s.provider.fault("orgs", Fault::Status(503, None));
    s.provider.fault("users", Fault::Status(429, Some(1)));
    s.provider.fault("users", Fault::Status(500, None));
    // Every token is revoked after the third API request: the next one gets a 401.
    s.provider.with(|p| p.revoke_after = Some(3));
    let started = Instant::now();
    s.applied(false).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(
        s.provider.with(|p| p.issued),
        2,
        "one token, then one refresh"
    );
    let users = s
        .provider
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/users?"))
        .count();
    assert!(users >= 3, "429 and 500 retried");
    assert_eq!(s.link("stu-2", "gdn-1").await, active("guardian"));
}

async fn malformed_data_fails_and_leaves_the_database_unchanged(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    s.applied(false).await;
    let before = s.db.fingerprint().await;
    s.provider.with(|p| {
        p.always.insert("users".into(), Fault::Malformed);
    });
    let report = s.sync(false, false).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(Setup::failure_code(&report), "provider_malformed");
    assert_eq!(s.db.fingerprint().await, before);
    s.provider.with(|p| p.always.clear());
    s.provider.fault("classes", Fault::WrongShape);
    let report = s.sync(false, false).await;
    assert_eq!(Setup::failure_code(&report), "provider_malformed");
    assert!(
        report.errors[0].message.contains("\"classes\""),
        "{:?}",
        report.errors
    );
    // A record that is not a valid user is a row error located by collection and record.
    s.provider.upsert(
        "users",
        json!({"sourcedId": "bad-1", "role": "parent", "agents": "stu-1"}),
    );
    let refused = s.sync(false, false).await;
    assert_eq!(refused.status, RunStatus::Refused);
    let issue = support::error(&refused, "invalid_record");
    assert_eq!((issue.file.as_str(), issue.record), ("/users", Some(10)));
    assert_eq!(s.db.fingerprint().await, before);
    let statuses =
        s.db.texts("SELECT status FROM sync_runs ORDER BY id", vec![])
            .await;
    assert_eq!(statuses, vec!["applied", "failed", "failed", "refused"]);
    assert_eq!(
        s.watermark().await.as_deref(),
        Some("2026-01-10T08:00:00.000Z")
    );
}

async fn unreachable_slow_and_unauthorised_providers_fail_cleanly(backend: Backend) {
    let mut s = Setup::new(backend, district(), 100).await;
    s.config.oneroster.max_retries = 1;
    // Wrong secret: the token endpoint says invalid_client.
    s.connect("not-the-secret", 100).await;
    let report = s.sync(false, false).await;
    assert_eq!(Setup::failure_code(&report), "provider_auth");
    assert!(report.errors[0].message.contains("invalid_client"));
    assert!(!report.errors[0].message.contains("not-the-secret"));
    s.connect(CLIENT_SECRET, 100).await;
    // Slower than request_timeout_seconds (2), on every try.
    s.provider
        .fault("orgs", Fault::Slow(Duration::from_secs(3)));
    s.provider
        .fault("orgs", Fault::Slow(Duration::from_secs(3)));
    let report = s.sync(false, false).await;
    assert_eq!(Setup::failure_code(&report), "provider_unreachable");
    assert!(
        report.errors[0].message.contains("timed out"),
        "{:?}",
        report.errors
    );
    // Nothing listens on the port any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}/ims/oneroster/v1p1");
    let tenant = parent_connection::tenants::find(&s.db.conn, "nyc")
        .await
        .unwrap();
    connection::save(
        &s.db.conn,
        &s.config,
        tenant.id,
        &NewConnection {
            base_url: base.clone(),
            token_url: format!("http://127.0.0.1:{port}/token"),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            page_size: None,
        },
        "test",
    )
    .await
    .unwrap();
    let report = s.sync(false, false).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(Setup::failure_code(&report), "provider_unreachable");
    assert_eq!(s.db.count("SELECT COUNT(*) FROM student_contacts").await, 0);
}

async fn paging_ends_by_the_rules_whatever_the_link_header_says(backend: Backend) {
    let mut s = Setup::new(backend, district(), 4).await;
    // No total, a Link header that always says next, short pages: the run ends at the
    // first empty page.
    s.provider.with(|p| {
        p.total_header = false;
        p.link_always_next = true;
        p.max_page = Some(3);
    });
    s.applied(false).await;
    let users: Vec<String> = s
        .provider
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/users?"))
        .collect();
    assert_eq!(
        users,
        ["0", "3", "6", "9"].map(|o| format!("/users?limit=4&offset={o}"))
    );
    let before = s.db.fingerprint().await;
    // A provider that ignores offset would serve the same page for ever.
    s.provider.with(|p| p.ignore_offset = true);
    let report = s.sync(false, false).await;
    assert_eq!(Setup::failure_code(&report), "provider_paging_loop");
    assert!(
        report.errors[0].message.contains("/orgs") && report.errors[0].message.contains("offset 2"),
        "{:?}",
        report.errors
    );
    // The page cap.
    s.provider.with(|p| p.ignore_offset = false);
    s.config.oneroster.max_pages = 2;
    let report = s.sync(false, false).await;
    assert_eq!(Setup::failure_code(&report), "provider_paging_loop");
    assert!(report.errors[0].message.contains("max_pages"));
    // A total the provider does not deliver.
    s.config.oneroster.max_pages = 100;
    s.provider.with(|p| {
        p.total_header = true;
        p.total_bonus = 5;
    });
    let report = s.sync(false, false).await;
    assert_eq!(Setup::failure_code(&report), "provider_truncated");
    assert_eq!(s.db.fingerprint().await, before);
}

async fn the_api_runs_a_sync_and_never_shows_the_secret(backend: Backend) {
    let api = Api::with(backend, |config| *config = or_config(config.clone())).await;
    let provider = Provider::start(district()).await;
    let admin = api.admin("nyc");
    let send = |method: &str, path: &str, token: &str, body: serde_json::Value| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let missing = api.get("/api/v1/oneroster/connection", Some(&admin)).await;
    assert_eq!(missing.error(404), "not_found");
    let put = api
        .send(send(
            "PUT",
            "/api/v1/oneroster/connection",
            &admin,
            json!({"baseUrl": provider.base_url, "tokenUrl": provider.token_url,
                   "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "pageSize": 50}),
        ))
        .await;
    assert_eq!(put.ok()["pageSize"], 50);
    let shown = api.get("/api/v1/oneroster/connection", Some(&admin)).await;
    assert_eq!(shown.ok()["secretStored"], true);
    assert!(
        !shown.body.to_string().contains(CLIENT_SECRET),
        "{}",
        shown.body
    );
    let teacher = api.teacher();
    let forbidden = api
        .send(send("POST", "/api/v1/oneroster/runs", &teacher, json!({})))
        .await;
    assert_eq!(forbidden.error(403), "forbidden");
    // nyc holds the SDS fixture: a OneRoster snapshot would deactivate every link.
    let refused = api
        .send(send("POST", "/api/v1/oneroster/runs", &admin, json!({})))
        .await;
    assert_eq!(refused.error(422), "import_refused");
    assert_eq!(refused.body["error"]["details"]["format"], "oneroster");
    let applied = api
        .send(send(
            "POST",
            "/api/v1/oneroster/runs",
            &admin,
            json!({"force": true}),
        ))
        .await;
    assert_eq!(applied.status.as_u16(), 201, "{}", applied.body);
    assert_eq!(applied.body["status"], "applied");
    let run = applied.headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        api.get(&run, Some(&admin)).await.ok()["format"],
        "oneroster"
    );
    let delta = api
        .send(send(
            "POST",
            "/api/v1/oneroster/runs",
            &admin,
            json!({"delta": true}),
        ))
        .await;
    assert_eq!(delta.status.as_u16(), 201, "{}", delta.body);
    drop(provider);
    let failed = api
        .send(send("POST", "/api/v1/oneroster/runs", &admin, json!({})))
        .await;
    assert_eq!(failed.error(502), "provider_failed");
    let admin_user = api.user("nyc", "admin-2", &[Role::TenantAdmin]);
    let tenant_admin = api
        .send(send(
            "POST",
            "/api/v1/oneroster/runs",
            &admin_user,
            json!({}),
        ))
        .await;
    assert_eq!(tenant_admin.error(403), "forbidden");
}

async fn the_schedule_syncs_every_connected_tenant(backend: Backend) {
    let mut s = Setup::new(backend, district(), 100).await;
    s.config.oneroster.schedule_delta = true;
    // No watermark yet: the scheduled delta becomes a full run; the next round is a delta.
    oneroster::run_scheduled(&s.db.conn, &s.config).await;
    oneroster::run_scheduled(&s.db.conn, &s.config).await;
    let runs = s.runs().await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs[0].starts_with("applied ") && runs[0].ends_with("(full)"),
        "{runs:?}"
    );
    assert!(
        runs[1].starts_with("applied ")
            && runs[1].contains("(delta since 2026-01-10T08:00:00.000Z)"),
        "{runs:?}"
    );
    let actors =
        s.db.texts(
            "SELECT DISTINCT actor FROM audit_log WHERE action = 'import.applied'",
            vec![],
        )
        .await;
    assert_eq!(actors, vec!["scheduler:oneroster"]);
    assert!(
        oneroster::spawn_schedule(s.db.conn.clone(), std::sync::Arc::new(support::config()))
            .is_none()
    );
}

db_tests!(
    the_schedule_syncs_every_connected_tenant,
    full_sync_pages_and_unions_agents_from_both_sides,
    tobedeleted_and_disabled_users_become_inactive_past_the_guard,
    delta_applies_changes_without_deactivating_the_rest,
    token_refresh_retries_and_retry_after,
    malformed_data_fails_and_leaves_the_database_unchanged,
    unreachable_slow_and_unauthorised_providers_fail_cleanly,
    paging_ends_by_the_rules_whatever_the_link_header_says,
    the_api_runs_a_sync_and_never_shows_the_secret,
    enrollments_of_every_staff_role_make_class_staff,
    a_full_pull_writes_only_changes_and_keeps_the_warnings_of_unchanged_contacts,
    a_full_pull_counts_and_warns_step_by_step,
    a_delta_deactivates_a_link_dropped_from_both_agents_lists,
    a_delta_needing_more_lookups_than_allowed_changes_nothing,
    a_full_pull_leaves_out_contacts_no_link_names,
);

async fn a_delta_deactivates_a_link_dropped_from_both_agents_lists(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    s.applied(false).await;
    let later = json!({"dateLastModified": "2026-02-01T00:00:00.000Z"});
    let changed = |agents: &[&str]| {
        let mut fields = later.clone();
        fields["agents"] = json!(
            agents
                .iter()
                .map(|a| json!({"sourcedId": a, "type": "user"}))
                .collect::<Vec<_>>()
        );
        fields
    };
    // stu-3 ↔ par-2 was named on both sides: both records drop it (both come in the
    // delta). par-2 still names stu-1 (looked up: a link named on one side stays).
    s.provider.patch("users", "stu-3", changed(&[]));
    s.provider.patch("users", "par-2", changed(&["stu-1"]));
    // 1 of 4 active links is past the default guard of 20%.
    let refused = s.sync(true, false).await;
    assert_eq!(Setup::failure_code(&refused), "deletion_guard");
    let report = s.sync(true, true).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(
        report.entities.links.deactivated, 1,
        "{:#?}",
        report.entities
    );
    assert_eq!(s.link("stu-3", "par-2").await, inactive("parent"));
    for (student, contact, relationship) in [
        ("stu-1", "par-2", "parent"),
        ("stu-1", "par-1", "parent"),
        ("stu-2", "gdn-1", "guardian"),
    ] {
        assert_eq!(
            s.link(student, contact).await,
            active(relationship),
            "{student} {contact}"
        );
    }
    // Named again by one side: reactivated.
    s.provider.patch(
        "users",
        "stu-3",
        json!({"dateLastModified": "2026-03-01T00:00:00.000Z",
               "agents": [{"sourcedId": "par-2", "type": "user"}]}),
    );
    let back = s.applied(true).await;
    assert_eq!(back.entities.links.reactivated, 1, "{:#?}", back.entities);
    assert_eq!(s.link("stu-3", "par-2").await, active("parent"));
}

async fn a_delta_needing_more_lookups_than_allowed_changes_nothing(backend: Backend) {
    let mut s = Setup::new(backend, district(), 100).await;
    s.applied(false).await;
    // par-2's agents name stu-3 and stu-1, which the delta does not hold: two lookups.
    s.provider.patch(
        "users",
        "par-2",
        json!({"email": "new-par2@example.com", "dateLastModified": "2026-02-01T00:00:00.000Z"}),
    );
    s.config.oneroster.max_delta_lookups = 1;
    let before = s.db.fingerprint().await;
    let report = s.sync(true, false).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(Setup::failure_code(&report), "delta_too_large");
    let message = &report.errors[0].message;
    assert!(
        message.contains("names 2 users") && message.contains("max_delta_lookups (1)"),
        "{message}"
    );
    assert_eq!(s.db.fingerprint().await, before);
    assert_eq!(
        s.watermark().await.as_deref(),
        Some("2026-01-10T08:00:00.000Z"),
        "the watermark stays: the change is not skipped"
    );
    assert!(
        !s.provider
            .requests()
            .iter()
            .any(|r| r.starts_with("/users/")),
        "no lookup before knowing they all fit"
    );
    // A scheduled delta that is too large runs a full sync instead.
    s.config.oneroster.schedule_delta = true;
    oneroster::run_scheduled(&s.db.conn, &s.config).await;
    let runs = s.runs().await;
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(
        runs[2].starts_with("failed ") && runs[2].contains("(delta since"),
        "{runs:?}"
    );
    assert!(
        runs[3].starts_with("applied ") && runs[3].ends_with("(full)"),
        "{runs:?}"
    );
    assert_eq!(
        s.db.contact_field("par-2", "email").await.0.as_deref(),
        Some("new-par2@example.com")
    );
    // Within the limit, the delta applies.
    s.provider.patch(
        "users",
        "par-2",
        json!({"email": "par2@example.com", "dateLastModified": "2026-03-01T00:00:00.000Z"}),
    );
    s.config.oneroster.max_delta_lookups = 2;
    s.applied(true).await;
    assert_eq!(
        s.db.contact_field("par-2", "email").await.0.as_deref(),
        Some("par2@example.com")
    );
}

async fn a_full_pull_leaves_out_contacts_no_link_names(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    s.provider.patch("users", "par-1", json!({"sms": "12"}));
    let first = s.applied(false).await;
    assert!(first.diffed);
    let phone_warnings = |report: &ImportReport| {
        report
            .warnings
            .iter()
            .filter(|w| w.code == "invalid_phone")
            .count()
    };
    assert_eq!(phone_warnings(&first), 1, "{:#?}", first.warnings);
    // par-1 (unchanged) loses its only link; par-7 is new and no link names it.
    s.provider.patch("users", "stu-1", json!({"agents": []}));
    s.provider.upsert(
        "users",
        user("par-7", "parent", &[], json!({"phone": "13"})),
    );
    let report = s.sync(false, true).await;
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert!(report.diffed);
    assert_eq!(
        report.entities.links.deactivated, 1,
        "{:#?}",
        report.entities
    );
    assert_eq!(
        report.entities.contacts.created, 0,
        "{:#?}",
        report.entities
    );
    assert_eq!(phone_warnings(&report), 0, "{:#?}", report.warnings);
    assert_eq!(
        s.db.count("SELECT COUNT(*) FROM contacts WHERE source_key = 'par-7'")
            .await,
        0
    );
    assert_eq!(s.link("stu-1", "par-1").await, inactive("parent"));
}

/// Full pulls after single changes at the provider: the counts of every entity (only the
/// non-zero ones) and the warnings, as a pull staged whole gave them before full pulls were
/// diffed. Records of unchanged contacts still warn; a guardian that is `tobedeleted`
/// loses its link (its contact stays, unstaged) and gets it back when active again.
async fn a_full_pull_counts_and_warns_step_by_step(backend: Backend) {
    let s = Setup::new(backend, district(), 100).await;
    let rosters = |n: u64| {
        json!({"schools": {"unchanged": 2}, "students": {"unchanged": 3}, "staff": {"unchanged": 1},
               "classes": {"unchanged": 1}, "enrollments": {"unchanged": 3}, "contacts": {"unchanged": n}})
    };
    let with =
        |mut base: serde_json::Value, links: serde_json::Value, contacts: serde_json::Value| {
            base["links"] = links;
            if !contacts.is_null() {
                base["contacts"] = contacts;
            }
            base
        };
    let steps: [(&str, serde_json::Value, serde_json::Value); 4] = [
        (
            "par-2",
            json!({"phone": "12"}),
            json!({"schools": {"created": 2}, "students": {"created": 3}, "staff": {"created": 1},
                   "classes": {"created": 1}, "enrollments": {"created": 3},
                   "contacts": {"created": 3}, "links": {"created": 4}}),
        ),
        (
            "par-1",
            json!({"givenName": "Lina"}),
            with(
                rosters(2),
                json!({"unchanged": 4}),
                json!({"unchanged": 2, "updated": 1}),
            ),
        ),
        (
            "gdn-1",
            json!({"status": "tobedeleted"}),
            with(
                rosters(2),
                json!({"deactivated": 1, "unchanged": 3}),
                json!(null),
            ),
        ),
        (
            "gdn-1",
            json!({"status": "active"}),
            with(
                rosters(3),
                json!({"reactivated": 1, "unchanged": 3}),
                json!(null),
            ),
        ),
    ];
    for (user, fields, expected) in steps {
        s.provider.patch("users", user, fields.clone());
        let report = s.sync(false, true).await;
        assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
        assert!(report.diffed);
        let entities = serde_json::to_value(&report.entities).unwrap();
        let non_zero: serde_json::Map<String, serde_json::Value> = entities
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(entity, counts)| {
                let counts: serde_json::Map<String, serde_json::Value> = counts
                    .as_object()?
                    .iter()
                    .filter(|(_, n)| n.as_u64() != Some(0))
                    .map(|(k, n)| (k.clone(), n.clone()))
                    .collect();
                Some((entity.clone(), counts.into()))
            })
            .collect();
        assert_eq!(
            serde_json::Value::from(non_zero),
            expected,
            "after {user} {fields}"
        );
        assert_eq!(report.entities.erased_links_skipped, 0);
        let warned: Vec<_> = report
            .warnings
            .iter()
            .map(|w| (w.file.as_str(), w.record, w.column.as_deref(), w.code))
            .collect();
        assert_eq!(
            warned,
            [("/users", Some(7), Some("phone"), "invalid_phone")],
            "after {user} {fields}"
        );
        assert_eq!(report.warning_count, 1);
    }
}

async fn a_full_pull_writes_only_changes_and_keeps_the_warnings_of_unchanged_contacts(
    backend: Backend,
) {
    let s = Setup::new(backend, district(), 100).await;
    s.provider.patch("users", "par-2", json!({"phone": "12"}));
    let first = s.applied(false).await;
    assert!(first.diffed);
    let warned = |report: &ImportReport| -> Vec<(String, Option<u64>, &'static str)> {
        report
            .warnings
            .iter()
            .map(|w| (w.file.clone(), w.record, w.code))
            .collect()
    };
    assert!(
        warned(&first).iter().any(|w| w.2 == "invalid_phone"),
        "{:#?}",
        first.warnings
    );
    let before = s.db.fingerprint().await;
    let again = s.applied(false).await;
    assert!(again.diffed);
    assert_eq!(again.rows_written, 0, "{:#?}", again.entities);
    assert_eq!(again.entities.contacts.unchanged, 3);
    assert_eq!(
        warned(&again),
        warned(&first),
        "unchanged contacts still warn"
    );
    assert_eq!(s.db.fingerprint().await, before);
    s.provider
        .patch("users", "par-1", json!({"givenName": "Lina"}));
    let changed = s.applied(false).await;
    assert_eq!(
        changed.entities.contacts.updated, 1,
        "{:#?}",
        changed.entities
    );
    assert_eq!(changed.rows_written, 1, "{:#?}", changed.entities);
    assert_eq!(warned(&changed), warned(&first));
    assert_eq!(
        s.db.contact_field("par-1", "given_name").await.0.as_deref(),
        Some("Lina")
    );
}

/// The real binary: `oneroster connect` (secret on standard input), `sync oneroster` with
/// its exit statuses and JSON report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_connects_and_syncs() {
    let provider = Provider::start(district()).await;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let run = move |args: Vec<String>, key: bool, stdin: Option<&'static str>| {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_parent-connection"));
            command
                .args(&args)
                .env("DATABASE_URL", database)
                .env_remove("RUST_LOG")
                .env_remove("ONEROSTER_CLIENT_SECRET")
                .env("PARENT_CONNECTION__ONEROSTER__MAX_RETRIES", "0")
                .env("PARENT_CONNECTION__OUTBOUND__ALLOW_PRIVATE", "true")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            if key {
                command.env("PARENT_CONNECTION__ONEROSTER__SECRET_KEY", KEY);
            } else {
                command.env_remove("PARENT_CONNECTION__ONEROSTER__SECRET_KEY");
            }
            let mut child = command.spawn().expect("binary runs");
            if let Some(input) = stdin {
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
            }
            drop(child.stdin.take());
            child.wait_with_output().unwrap()
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let created = run(args(&["tenant", "create", "nyc"]), true, None)
        .await
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let connect = args(&[
        "oneroster",
        "connect",
        "--tenant",
        "nyc",
        "--base-url",
        &provider.base_url,
        "--token-url",
        &provider.token_url,
        "--client-id",
        CLIENT_ID,
    ]);
    let mut as_flag = connect.clone();
    as_flag.extend(args(&["--client-secret", CLIENT_SECRET]));
    assert_eq!(
        run(as_flag, true, None).await.unwrap().status.code(),
        Some(2)
    );
    let connected = run(connect, true, Some("pc-secret-value-42\n"))
        .await
        .unwrap();
    assert!(connected.status.success(), "{connected:?}");
    assert!(!String::from_utf8_lossy(&connected.stdout).contains(CLIENT_SECRET));
    let synced = run(
        args(&["sync", "oneroster", "--tenant", "nyc", "--json"]),
        true,
        None,
    )
    .await
    .unwrap();
    assert!(synced.status.success(), "{synced:?}");
    let report: serde_json::Value = serde_json::from_slice(&synced.stdout).unwrap();
    assert_eq!(
        (report["format"].as_str(), report["status"].as_str()),
        (Some("oneroster"), Some("applied"))
    );
    assert_eq!(report["entities"]["links"]["created"], 4);
    let delta = run(
        args(&["sync", "oneroster", "--tenant", "nyc", "--delta"]),
        true,
        None,
    )
    .await
    .unwrap();
    assert!(delta.status.success(), "{delta:?}");
    assert!(String::from_utf8_lossy(&delta.stdout).contains("(oneroster)"));
    drop(provider);
    let failed = run(args(&["sync", "oneroster", "--tenant", "nyc"]), true, None)
        .await
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let reason = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(reason.lines().count(), 1, "{reason}");
    assert!(reason.contains("unreachable"), "{reason}");
}

/// Runs the binary with `database`, the OneRoster key `key` (none: the variable is
/// removed) and `stdin`, off the runtime (the provider runs on it).
async fn run_cli(
    database: &str,
    args: &[&str],
    key: Option<&str>,
    stdin: Option<&str>,
) -> std::process::Output {
    let database = database.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let key = key.map(str::to_string);
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_parent-connection"));
        command
            .args(&args)
            .env("DATABASE_URL", database)
            .env_remove("RUST_LOG")
            .env_remove("ONEROSTER_CLIENT_SECRET")
            .env_remove("PARENT_CONNECTION__ONEROSTER__SECRET_KEY")
            .env("PARENT_CONNECTION__ONEROSTER__MAX_RETRIES", "0")
            .env("PARENT_CONNECTION__OUTBOUND__ALLOW_PRIVATE", "true")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(key) = key {
            command.env("PARENT_CONNECTION__ONEROSTER__SECRET_KEY", key);
        }
        let mut child = command.spawn().expect("binary runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// On SQLite with no key configured, the first `oneroster connect` makes
/// `oneroster-secret.key` (0600) beside the database and says so; a second process reuses
/// it; a configured key wins over the file. On PostgreSQL the key stays required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_made_on_sqlite_and_required_on_postgres() {
    let provider = Provider::start(district()).await;
    let dir = tempfile::tempdir().unwrap();
    // No ?mode=rwc: the file is created all the same.
    let database = format!("sqlite://{}", dir.path().join("own.db").display());
    let connect = [
        "oneroster",
        "connect",
        "--tenant",
        "nyc",
        "--base-url",
        &provider.base_url,
        "--token-url",
        &provider.token_url,
        "--client-id",
        CLIENT_ID,
    ];
    let secret = format!("{CLIENT_SECRET}\n");
    let created = run_cli(&database, &["tenant", "create", "nyc"], None, None).await;
    assert!(created.status.success(), "{created:?}");
    let key_file = dir.path().join("oneroster-secret.key");
    assert!(!key_file.exists(), "made only at first need");
    let first = run_cli(&database, &connect, None, Some(&secret)).await;
    assert!(first.status.success(), "{first:?}");
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains("generated a new key") && said.contains("oneroster-secret.key"),
        "{said}"
    );
    let made = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(made.trim().len(), 64, "{made}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let synced = run_cli(
        &database,
        &["sync", "oneroster", "--tenant", "nyc", "--json"],
        None,
        None,
    )
    .await;
    assert!(
        synced.status.success(),
        "a second process reuses the key: {synced:?}"
    );
    assert!(!String::from_utf8_lossy(&synced.stderr).contains("generated"));
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), made);

    // A configured key wins: the secret stored under it does not open with the file's key.
    let again = run_cli(&database, &connect, Some(KEY), Some(&secret)).await;
    assert!(again.status.success(), "{again:?}");
    let with_key = run_cli(
        &database,
        &["sync", "oneroster", "--tenant", "nyc"],
        Some(KEY),
        None,
    )
    .await;
    assert!(with_key.status.success(), "{with_key:?}");
    let with_file = run_cli(
        &database,
        &["sync", "oneroster", "--tenant", "nyc"],
        None,
        None,
    )
    .await;
    assert_eq!(with_file.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&with_file.stderr).contains("cannot be decrypted"),
        "{with_file:?}"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), made);

    if support::postgres_url().is_none() {
        return;
    }
    let pg = TestDb::new(Backend::Postgres).await;
    let created = run_cli(&pg.url, &["tenant", "create", "nyc"], None, None).await;
    assert!(created.status.success(), "{created:?}");
    let refused = run_cli(&pg.url, &connect, None, Some(&secret)).await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(reason.lines().count(), 1, "{reason}");
    assert!(
        reason.contains("PARENT_CONNECTION__ONEROSTER__SECRET_KEY")
            && reason.contains("PostgreSQL"),
        "{reason}"
    );
}

/// An `aide`, an `administrator`, a `proctor` and an SDS `principal` enrolled in a class
/// are staff of it, as its `teacher` is (docs/sync.md); a delta that deletes one such
/// enrollment ends it.
async fn enrollments_of_every_staff_role_make_class_staff(backend: Backend) {
    let mut data = district();
    let staff = [
        ("aid-1", "aide", "aide"),
        ("adm-1", "administrator", "Administrator"),
        ("prc-1", "proctor", "proctor"),
        ("prn-1", "principal", "PRINCIPAL"),
    ];
    for (i, (id, role, enrolled_as)) in staff.iter().enumerate() {
        let users = data["users"].as_array_mut().unwrap();
        users.push(user(id, role, &[], json!({})));
        let enrollments = data["enrollments"].as_array_mut().unwrap();
        enrollments.push(enrollment(&format!("enr-s{i}"), "cls-1", id, enrolled_as));
    }
    let s = Setup::new(backend, data, 100).await;
    let report = s.applied(false).await;
    assert_eq!(report.entities.staff.created, 5, "{:#?}", report.warnings);
    assert_eq!(report.entities.enrollments.created, 7);
    assert!(
        report
            .warnings
            .iter()
            .all(|w| w.column.as_deref() != Some("role"))
    );
    let tenant = parent_connection::tenants::find(&s.db.conn, "nyc")
        .await
        .unwrap();
    for (id, role, _) in staff {
        assert!(
            parent_connection::roster::teacher_reaches_student(&s.db.conn, tenant.id, id, "stu-1")
                .await
                .unwrap(),
            "{id} ({role}) is staff of cls-1"
        );
        assert_eq!(
            s.db.texts(
                "SELECT role FROM staff WHERE source_id = $1",
                vec![id.into()]
            )
            .await,
            vec![role.to_string()]
        );
    }
    let again = s.applied(false).await;
    assert_eq!(again.rows_written, 0, "{:#?}", again.entities);

    s.provider.patch(
        "enrollments",
        "enr-s0",
        json!({"status": "tobedeleted", "dateLastModified": "2026-02-01T00:00:00.000Z"}),
    );
    let delta = s.applied(true).await;
    assert_eq!(delta.entities.enrollments.deactivated, 1);
    assert!(
        !parent_connection::roster::teacher_reaches_student(
            &s.db.conn, tenant.id, "aid-1", "stu-1"
        )
        .await
        .unwrap()
    );
    assert!(
        parent_connection::roster::teacher_reaches_student(&s.db.conn, tenant.id, "adm-1", "stu-1")
            .await
            .unwrap()
    );
}
