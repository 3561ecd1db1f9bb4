//! District scale (issue 16): every request-path statement runs on an index. A district is
//! generated with the `bench import` generator and imported (which leaves the planner
//! statistics a real import leaves), every API route and page is called by the roles that use
//! it, each statement those requests ran is recorded (`db::trace`), and the engine is asked
//! how it would run it: SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN` (the plan the
//! server would choose, from the statistics the import left).
//! Then the same requests are timed on 1,000 and on the large district: a request that reads
//! in proportion to the district shows up as a ratio far above 1.
//!
//! The large district has 100,000 students; `SCALE_STUDENTS` changes it (e.g. 20000 for a
//! quick local run).

use crate::api_support::{Api, Reply, api_config, page_get, page_session};
use crate::db_tests;
use crate::support::{APPLY, Backend, TestDb};
use axum::body::Body;
use axum::http::Request;
use parent_connection::api::{self, AppState};
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::db;
use parent_connection::sync::Format;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

db_tests!(request_paths_stay_on_indexes_at_district_scale);

/// Tables whose size grows with a tenant's district: a statement may reach them only
/// through an index.
const DISTRICT_TABLES: &[&str] = &[
    "students",
    "staff",
    "classes",
    "schools",
    "enrollments",
    "contacts",
    "student_contacts",
    "chats",
    "chat_members",
    "chat_banners",
    "chat_blocks",
    "contact_requests",
    "contact_erasures",
    "class_digest_settings",
    "audit_log",
    "invitations",
    "outbox",
    "assignments",
    "digest_deliveries",
    "digest_unsubscribes",
    "email_suppressions",
    "sms_opt_outs",
    "sync_runs",
    "link_restrictions",
    "sign_in_codes",
];

fn large_district() -> u64 {
    std::env::var("SCALE_STUDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn request_paths_stay_on_indexes_at_district_scale(backend: Backend) {
    let small = District::build(backend, 1_000).await;
    let large = District::build(backend, large_district()).await;

    let (_, statements) = db::trace::record(large.every_route()).await;
    let populated = populated_tables(&large.api).await;
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for statement in statements {
        if seen.insert(statement.sql.clone(), ()).is_some() {
            continue;
        }
        if let Some(problem) = plan_problem(&large.api, &statement, &populated).await {
            problems.push(problem);
        }
    }
    assert!(
        seen.len() > 60,
        "the routes ran only {} distinct statements",
        seen.len()
    );
    assert!(
        problems.is_empty(),
        "{} request-path statements do not run on an index at {} students:\n\n{}",
        problems.len(),
        large.students,
        problems.join("\n\n")
    );

    // Warm both, then take each request's best of several runs, the two districts in turn
    // so that both meet the same load from the tests running beside this one: the fastest
    // run is the one the machine's other work disturbed least.
    small.every_read().await;
    large.every_read().await;
    let (small_time, large_time) = best_reads(&small, &large, 11).await;
    let ratio = large_time.as_secs_f64() / small_time.as_secs_f64();
    eprintln!(
        "reads: {:?} at {} students, {:?} at {} students ({ratio:.2}×)",
        small_time, small.students, large_time, large.students
    );
    assert!(
        ratio < 2.0,
        "the same reads take {ratio:.2}× as long at {} students as at {} ({large_time:?} vs {small_time:?})",
        large.students,
        small.students
    );
}

/// Each read's fastest of `runs` runs, summed, on `small` and on `large` (alternating).
async fn best_reads(small: &District, large: &District, runs: usize) -> (Duration, Duration) {
    let mut totals = [Duration::ZERO, Duration::ZERO];
    let districts = [small, large];
    let paths: Vec<_> = districts
        .iter()
        .map(|d| d.read_paths(&d.teacher_token(), &d.api.admin("nyc")))
        .collect();
    for (small_request, large_request) in paths[0].iter().zip(&paths[1]) {
        let mut best = [Duration::MAX, Duration::MAX];
        for _ in 0..runs {
            for (i, (district, (path, token))) in districts
                .iter()
                .zip([small_request, large_request])
                .enumerate()
            {
                let started = Instant::now();
                district.get(path, token).await;
                best[i] = best[i].min(started.elapsed());
            }
        }
        totals[0] += best[0];
        totals[1] += best[1];
    }
    (totals[0], totals[1])
}

/// A generated district behind the real router, and the people the requests act as.
struct District {
    api: Api,
    students: u64,
    teacher: String,
    class: String,
    student: String,
    /// Another student of the same class (erased and lifted).
    classmate: String,
    /// Active guardians of `student` (contact ids), at least two.
    guardians: Vec<String>,
}

impl District {
    async fn build(backend: Backend, students: u64) -> Self {
        let files = tempfile::tempdir().unwrap();
        let dir = files.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            parent_connection_testkit::generate::generate(&dir, students, 20_261_204)
        })
        .await
        .unwrap()
        .expect("generate the district");
        let db = TestDb::new(backend).await;
        db.tenant("nyc").await;
        let report = db.import("nyc", Format::SdsV21, files.path(), APPLY).await;
        assert!(report.status.is_success(), "{:?}", report.errors);
        let mut config = api_config();
        // The pages are visited with sessions opened from tokens.
        config.web.token_signin = true;
        let app = api::router(AppState::new(db.conn.clone(), config.clone()).expect("state"));
        let api = Api { db, config, app };

        let (teacher, class, student, classmate) = pick_class(&api).await;
        let mut district = District {
            api,
            students,
            teacher,
            class,
            student,
            classmate,
            guardians: Vec::new(),
        };
        let contacts = district
            .get(
                &format!("/api/v1/students/{}/contacts", district.student),
                &district.teacher_token(),
            )
            .await;
        district.guardians = contacts.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            !district.guardians.is_empty(),
            "the chosen student has guardians: {}",
            contacts.body
        );
        district
    }

    fn teacher_token(&self) -> String {
        self.api.user("nyc", &self.teacher, &[Role::Teacher])
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        ok(path, self.api.get(path, Some(token)).await)
    }

    async fn send(&self, method: &str, path: &str, token: &str, body: Option<Json>) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        ok(
            &format!("{method} {path}"),
            self.api.send(builder.body(body).unwrap()).await,
        )
    }

    /// Every route and page, by the roles that use it, writes included.
    async fn every_route(&self) {
        let teacher = self.teacher_token();
        let admin = self.api.admin("nyc");
        let tenant_admin = self.api.user("nyc", "ta-1", &[Role::TenantAdmin]);
        let app = self.api.app("nyc", &["EduRoster.Read.All"]);
        let assignments_app = self.api.app("nyc", &["EduAssignments.ReadWrite.All"]);
        let (student, class) = (&self.student, &self.class);
        let guardian = &self.guardians[0];
        let guardian_token = self.api.mint(
            "nyc",
            Subject::Contact {
                contact_id: guardian.clone(),
            },
        );

        self.every_read().await;

        // A teacher's day.
        let chat = self
            .send(
                "POST",
                "/api/v1/chats",
                &teacher,
                Some(json!({"studentId": student, "contactIds": [guardian]})),
            )
            .await;
        let chat = chat.body["id"].as_str().unwrap().to_string();
        self.get("/api/v1/chats", &teacher).await;
        self.get(&format!("/api/v1/chats/{chat}"), &teacher).await;
        self.get(&format!("/api/v1/chats/{chat}/invitations"), &teacher)
            .await;
        if let Some(second) = self.guardians.get(1) {
            self.send(
                "POST",
                &format!("/api/v1/chats/{chat}/members"),
                &teacher,
                Some(json!({"contactId": second})),
            )
            .await;
            self.send(
                "DELETE",
                &format!("/api/v1/chats/{chat}/members/{second}"),
                &teacher,
                None,
            )
            .await;
        }
        self.send(
            "POST",
            "/api/v1/blocks",
            &teacher,
            Some(json!({"contactId": guardian})),
        )
        .await;
        self.get("/api/v1/blocks", &teacher).await;
        self.send(
            "DELETE",
            &format!("/api/v1/blocks/{guardian}"),
            &teacher,
            None,
        )
        .await;
        let request = self
            .send(
                "POST",
                &format!("/api/v1/students/{student}/contact-requests"),
                &teacher,
                Some(json!({"action": "update", "contactId": guardian,
                            "contact": {"emailAddress": "scale@new.example"}})),
            )
            .await;
        let request = request.body["id"].as_str().unwrap().to_string();
        self.get("/api/v1/contact-requests", &teacher).await;
        self.get(&format!("/api/v1/contact-requests/{request}"), &teacher)
            .await;
        let assignments = format!("/api/v1/classes/{class}/assignments");
        let homework = json!({"externalId": "hw-1", "title": "Fractions",
            "dueAt": "2026-11-24T23:59:00-05:00", "points": 10});
        self.send("POST", &assignments, &teacher, Some(homework.clone()))
            .await;
        self.get(&assignments, &teacher).await;
        self.send(
            "PUT",
            &format!("{assignments}/hw-1"),
            &assignments_app,
            Some(homework),
        )
        .await;
        self.get(&assignments, &assignments_app).await;
        self.send("DELETE", &format!("{assignments}/hw-1"), &teacher, None)
            .await;
        let digest = format!("/api/v1/classes/{class}/digest");
        self.get(&digest, &teacher).await;
        self.send(
            "PATCH",
            &digest,
            &teacher,
            Some(json!({"notifyGuardians": false})),
        )
        .await;
        self.get("/api/v1/invitations/limits", &teacher).await;
        self.get(
            &format!("/api/v1/invitations/limits?contactId={guardian}"),
            &teacher,
        )
        .await;

        // A guardian.
        self.get("/api/v1/guardian/chats", &guardian_token).await;
        self.send(
            "POST",
            "/api/v1/guardian/chats",
            &guardian_token,
            Some(json!({"ownerId": self.teacher, "studentId": student})),
        )
        .await;

        // The district office.
        self.get("/api/v1/contact-requests?status=pending", &admin)
            .await;
        self.send(
            "POST",
            &format!("/api/v1/contact-requests/{request}/approve"),
            &admin,
            Some(json!({"reason": "checked by phone"})),
        )
        .await;
        self.get(&format!("/api/v1/contacts/{guardian}/invitations"), &admin)
            .await;
        let invitations = self
            .unrecorded(
                "SELECT CAST(id AS TEXT) FROM invitations WHERE chat_id = $1 ORDER BY id",
                vec![Value::BigInt(Some(chat.parse().unwrap()))],
            )
            .await;
        if let Some(invitation) = invitations.first() {
            self.get(&format!("/api/v1/invitations/{invitation}"), &admin)
                .await;
        }
        for path in [
            "/api/v1/audit",
            "/api/v1/imports",
            "/api/v1/erasures",
            "/api/v1/outbox",
            "/api/v1/email-suppressions",
            "/api/v1/digest/deliveries",
            "/api/v1/digest/unsubscribes",
        ] {
            self.get(path, &admin).await;
        }
        self.get(&format!("/api/v1/disclosures?studentId={student}"), &admin)
            .await;
        self.get(&format!("/api/v1/disclosures?contactId={guardian}"), &admin)
            .await;
        self.send(
            "POST",
            "/api/v1/digest/unsubscribes",
            &admin,
            Some(json!({"contactId": guardian})),
        )
        .await;
        self.send(
            "DELETE",
            &format!("/api/v1/digest/unsubscribes/{guardian}"),
            &admin,
            None,
        )
        .await;
        let classmate_contacts = self
            .get(
                &format!("/api/v1/students/{}/contacts", self.classmate),
                &admin,
            )
            .await;
        if let Some(contact) = classmate_contacts.body["items"][0]["id"].as_str() {
            let erased = self
                .send(
                    "POST",
                    &format!(
                        "/api/v1/students/{}/contacts/{contact}/erase",
                        self.classmate
                    ),
                    &admin,
                    None,
                )
                .await;
            if let Some(erasure) = erased.body["erasureId"].as_str() {
                self.send(
                    "POST",
                    &format!("/api/v1/erasures/{erasure}/lift"),
                    &admin,
                    None,
                )
                .await;
            }
        }
        // Issue 22: a restriction on one link, listed and lifted; a guardian's language
        // and time zone.
        let restriction = format!("/api/v1/students/{student}/contacts/{guardian}/restriction");
        self.send(
            "POST",
            &restriction,
            &admin,
            Some(json!({"reason": "court order"})),
        )
        .await;
        self.get(&format!("/api/v1/students/{student}/restrictions"), &admin)
            .await;
        self.send("DELETE", &restriction, &admin, None).await;
        self.send(
            "PATCH",
            &format!("/api/v1/students/{student}/contacts/{guardian}"),
            &admin,
            Some(json!({"preferredLanguage": "es", "timeZone": "America/New_York"})),
        )
        .await;
        self.get("/api/v1/settings", &tenant_admin).await;
        self.send(
            "PATCH",
            "/api/v1/settings",
            &tenant_admin,
            Some(json!({"updateParentInformation": true})),
        )
        .await;

        // An integration.
        self.get(&format!("/education/users/{student}"), &app).await;
        self.get(
            &format!("/education/users/{student}?$select=relatedContacts"),
            &app,
        )
        .await;

        // Pages.
        let tokens = self
            .unrecorded(
                "SELECT join_token FROM invitations WHERE join_token IS NOT NULL ORDER BY id",
                vec![],
            )
            .await;
        if let Some(token) = tokens.first() {
            self.page(&format!("/join/{token}")).await;
        }
        self.sign_in_with_a_code().await;
        self.signed_in_pages(&chat).await;
    }

    /// Every signed-in page a teacher, an admin, a tenant admin and a guardian open, with
    /// sessions opened from their tokens.
    async fn signed_in_pages(&self, chat: &str) {
        let (student, class) = (&self.student, &self.class);
        let teacher = page_session(&self.api, &self.teacher_token()).await;
        for path in [
            "/".to_string(),
            "/teacher/classes".into(),
            format!("/teacher/classes/{class}"),
            format!("/teacher/students/{student}"),
            format!("/teacher/students/{student}/proposals/new"),
            "/teacher/requests".into(),
            "/teacher/chats".into(),
            format!("/teacher/chats/{chat}"),
            "/teacher/blocks".into(),
        ] {
            self.page_as(&path, &teacher).await;
        }
        let admin = page_session(&self.api, &self.api.admin("nyc")).await;
        for path in [
            "/admin/imports",
            "/admin/outbox",
            "/admin/oneroster",
            "/admin/digest",
            "/admin/approvals",
            "/admin/approvals?status=rejected",
            "/admin/audit",
            "/admin/audit?action=contact_request.approve&from=2026-01-01",
        ] {
            self.page_as(path, &admin).await;
        }
        self.page_as(&format!("/admin/students/{student}"), &admin)
            .await;
        self.page_as(&format!("/admin/disclosures?student={student}"), &admin)
            .await;
        let guardian = format!(
            "/admin/digest?guardian={}&logGuardian={}",
            self.guardians[0], self.guardians[0]
        );
        self.page_as(&guardian, &admin).await;
        let tenant_admin = self.api.user("nyc", "ta-1", &[Role::TenantAdmin]);
        let tenant_admin = page_session(&self.api, &tenant_admin).await;
        self.page_as("/admin/settings", &tenant_admin).await;
        let contact = self.api.mint(
            "nyc",
            Subject::Contact {
                contact_id: self.guardians[0].clone(),
            },
        );
        let contact = page_session(&self.api, &contact).await;
        self.page_as("/guardian", &contact).await;
    }

    async fn page_as(&self, path: &str, cookie: &str) {
        let reply = page_get(&self.api, path, Some(cookie)).await;
        assert!(reply.status.is_success(), "{path}: {}", reply.status);
    }

    /// The reads a teacher and an admin make most, once each.
    async fn every_read(&self) -> Duration {
        let teacher = self.teacher_token();
        let admin = self.api.admin("nyc");
        let started = Instant::now();
        for (path, token) in self.read_paths(&teacher, &admin) {
            self.get(&path, &token).await;
        }
        started.elapsed()
    }

    fn read_paths(&self, teacher: &str, admin: &str) -> Vec<(String, String)> {
        let (student, class) = (&self.student, &self.class);
        let mut paths = Vec::new();
        for token in [teacher, admin] {
            paths.push(("/api/v1/classes".to_string(), token.to_string()));
            paths.push((
                format!("/api/v1/classes/{class}/students"),
                token.to_string(),
            ));
            paths.push((
                format!("/api/v1/students/{student}/contacts"),
                token.to_string(),
            ));
        }
        paths.push((
            format!("/api/v1/classes/{class}/assignments"),
            teacher.into(),
        ));
        paths.push(("/api/v1/chats".into(), teacher.into()));
        paths.push(("/api/v1/contact-requests".into(), admin.into()));
        paths
    }

    /// The test's own query, run on another task so that it is not recorded.
    async fn unrecorded(&self, sql: &'static str, values: Vec<Value>) -> Vec<String> {
        let conn = self.api.db.conn.clone();
        tokio::spawn(async move {
            db::query(&conn, sql, values)
                .await
                .expect("query")
                .iter()
                .map(|row| row.try_get_by_index::<String>(0).unwrap())
                .collect()
        })
        .await
        .unwrap()
    }

    /// A guardian asks for a sign-in code (the address looked up among the district's
    /// contacts) and opens the code page.
    async fn sign_in_with_a_code(&self) {
        let emails = self
            .unrecorded(
                "SELECT email FROM contacts WHERE id = $1",
                vec![Value::BigInt(Some(self.guardians[0].parse().unwrap()))],
            )
            .await;
        let ask = self
            .api
            .send(
                Request::get("/signin/code?tenant=nyc")
                    .header("accept-language", "es")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let ask = ok("/signin/code", ask);
        let cookie = crate::api_support::set_cookie(&ask);
        let flow = cookie.split_once('=').unwrap().1;
        let address = emails.first().map_or("nobody@example.com", String::as_str);
        let sent = crate::api_support::page_post(
            &self.api,
            "/signin/code",
            &cookie,
            &[("csrf", flow), ("tenant", "nyc"), ("address", address)],
        )
        .await;
        assert_eq!(sent.status, 303, "POST /signin/code: {}", sent.body);
        let verify = page_get(&self.api, "/signin/code/verify?tenant=nyc", Some(&cookie)).await;
        ok("/signin/code/verify", verify);
    }

    async fn page(&self, path: &str) {
        let reply = self
            .api
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert!(reply.status.is_success(), "{path}: {}", reply.status);
    }
}

fn ok(what: &str, reply: Reply) -> Reply {
    assert!(
        reply.status.is_success(),
        "{what}: {} {}",
        reply.status,
        reply.body
    );
    reply
}

/// A teacher, one of their classes and two active students of it with active guardians.
async fn pick_class(api: &Api) -> (String, String, String, String) {
    let rows = db::query(
        &api.db.conn,
        "SELECT t.source_id, c.source_id, s.source_id FROM staff t \
         JOIN enrollments te ON te.person_id = t.id AND te.role = 'teacher' AND te.status = 'active' \
         JOIN classes c ON c.id = te.class_id AND c.status = 'active' \
         JOIN enrollments se ON se.class_id = c.id AND se.role = 'student' AND se.status = 'active' \
         JOIN students s ON s.id = se.person_id AND s.status = 'active' \
         WHERE t.status = 'active' AND EXISTS (SELECT 1 FROM student_contacts l \
           WHERE l.student_id = s.id AND l.status = 'active' \
             AND l.relationship IN ('parent', 'guardian')) \
         ORDER BY t.source_id, s.source_id LIMIT 50",
        vec![],
    )
    .await
    .expect("pick a class");
    let text = |row: &sea_orm::QueryResult, i| row.try_get_by_index::<String>(i).unwrap();
    let first = rows.first().expect("an active class with students");
    let (teacher, class, student) = (text(first, 0), text(first, 1), text(first, 2));
    let classmate = rows
        .iter()
        .filter(|row| text(row, 1) == class)
        .map(|row| text(row, 2))
        .find(|s| *s != student)
        .expect("a classmate");
    (teacher, class, student, classmate)
}

/// Why `statement` does not run on an index, with its plan; `None` when it does.
async fn plan_problem(api: &Api, statement: &Statement, populated: &[String]) -> Option<String> {
    let conn = &api.db.conn;
    let backend = conn.get_database_backend();
    let explained = Statement {
        sql: match backend {
            DbBackend::Postgres => format!("EXPLAIN {}", statement.sql),
            _ => format!("EXPLAIN QUERY PLAN {}", statement.sql),
        },
        ..statement.clone()
    };
    let plan = conn.query_all_raw(explained).await;
    let rows = match plan {
        Ok(rows) => rows,
        // Statements on the import's own temporary tables cannot be explained later.
        Err(e) if statement.sql.contains("temp") => {
            eprintln!("not explained: {e}");
            return None;
        }
        Err(e) => return Some(format!("{}\n  cannot be explained: {e}", statement.sql)),
    };
    let lines: Vec<String> = rows
        .iter()
        .map(|row| match backend {
            DbBackend::Postgres => row.try_get_by_index::<String>(0).unwrap(),
            _ => row.try_get::<String>("", "detail").unwrap(),
        })
        .collect();
    if std::env::var("SCALE_PLANS").is_ok() {
        eprintln!("{}\n    {}\n", statement.sql, lines.join("\n    "));
    }
    let bad = reads_district(backend, &statement.sql, &lines, populated);
    bad.then(|| {
        format!(
            "{}\n  values: {:?}\n  plan:\n    {}",
            statement.sql,
            statement.values,
            lines.join("\n    ")
        )
    })
}

/// Whether a plan reads a whole district-sized table, or a whole tenant of one.
///
/// A full read: PostgreSQL `Seq Scan` of such a table (of one the statistics know to be
/// large: on a table of a few rows any plan is right), SQLite `SCAN` (every
/// row, or with `USING INDEX` every index entry). A whole tenant: an index read bounded by the
/// tenant alone (optionally with a range, as a keyset page is) whose rows are then sorted,
/// aggregated or filtered one by one: all of the tenant's rows are read before the page's
/// `LIMIT` can stop it.
fn reads_district(backend: DbBackend, sql: &str, lines: &[String], populated: &[String]) -> bool {
    match backend {
        DbBackend::Postgres => postgres_reads_district(lines, populated),
        _ => sqlite_reads_district(sql, lines),
    }
}

/// The tables the planner knows to be large. PostgreSQL picks any index of a table of a few
/// rows (all cost the same), so "which index" is only asked of these; SQLite plans by the
/// shape of the statement and is asked of every table.
async fn populated_tables(api: &Api) -> Vec<String> {
    if api.db.conn.get_database_backend() != DbBackend::Postgres {
        return Vec::new();
    }
    api.db
        .texts(
            "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND reltuples >= 1000",
            vec![],
        )
        .await
}

/// The word after `keyword` (a table or index name).
fn name_after(line: &str, keyword: &[&str]) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(keyword.len() + 1)
        .find(|w| w[..keyword.len()] == *keyword)
        .map(|w| w[keyword.len()].to_string())
}

/// A district table, or an index of one (`ix_<table>_…`, `<table>_pkey`).
fn district(name: &str) -> bool {
    DISTRICT_TABLES.iter().any(|table| {
        name == *table
            || name.strip_prefix("ix_").is_some_and(|rest| {
                rest.strip_prefix(table)
                    .is_some_and(|tail| tail.starts_with("_tenant_id"))
            })
    })
}

/// The table behind each alias of `sql` (`FROM chats c`, `JOIN enrollments te`): SQLite's
/// plan names a table by its alias.
fn aliases(sql: &str) -> HashMap<String, String> {
    let words: Vec<&str> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut map = HashMap::new();
    for w in words.windows(3) {
        if matches!(w[0], "FROM" | "JOIN") {
            let alias = if w[2] == "AS" { None } else { Some(w[2]) };
            if let Some(alias) =
                alias.filter(|a| a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                map.insert(alias.to_string(), w[1].to_string());
            }
        }
    }
    map
}

fn sqlite_reads_district(sql: &str, lines: &[String]) -> bool {
    let aliases = aliases(sql);
    let district = |name: &str| district(aliases.get(name).map_or(name, String::as_str));
    // A count or group over the whole tenant with no LIMIT reads every row it counts (a
    // count over a time window, such as today's invitations, is bounded by the limits).
    let aggregate = (sql.contains("COUNT(") || sql.contains("GROUP BY")) && !sql.contains("LIMIT");
    let sorted_or_filtered = lines
        .iter()
        .any(|line| line.contains("TEMP B-TREE") || line.contains("CORRELATED"));
    lines.iter().any(|line| {
        let searched = name_after(line, &["SEARCH"]).is_some_and(|t| district(&t));
        let tenant = line.ends_with("(tenant_id=?)");
        let tenant_range = line.contains("(tenant_id=? AND ")
            && [">?)", "<?)"].iter().any(|end| line.ends_with(end))
            && line.matches('=').count() == 1;
        name_after(line, &["SCAN"]).is_some_and(|t| district(&t))
            || (searched && tenant && (sorted_or_filtered || aggregate))
            || (searched && tenant_range && sorted_or_filtered)
    })
}

fn postgres_reads_district(lines: &[String], populated: &[String]) -> bool {
    // A district table the statistics know to be large, or an index of one.
    let large = |name: &str| {
        district(name)
            && populated.iter().any(|table| {
                name == table.as_str()
                    || name.starts_with(&format!("ix_{table}_"))
                    || name == format!("{table}_pkey")
            })
    };
    let sorted_or_filtered = lines.iter().any(|line| {
        let line = line.trim_start().trim_start_matches("->  ");
        line.starts_with("Sort")
            || line.contains("Aggregate")
            || line.starts_with("Filter:")
            || line.starts_with("SubPlan")
    });
    let mut scanned: Option<String> = None;
    for line in lines {
        if name_after(line, &["Seq", "Scan", "on"]).is_some_and(|table| large(&table)) {
            return true;
        }
        let node = name_after(line, &["Scan", "using"])
            .or_else(|| name_after(line, &["Index", "Scan", "on"]));
        if node.is_some() {
            scanned = node;
        }
        let Some(condition) = line.trim().strip_prefix("Index Cond: ") else {
            continue;
        };
        let tenant_only = condition.starts_with("(tenant_id = ")
            && condition.matches(" = ").count() == 1
            || condition.starts_with("((tenant_id = ")
                && condition.matches(" = ").count() == 1
                && (condition.contains(" > ") || condition.contains(" < "));
        if tenant_only && sorted_or_filtered && scanned.as_deref().is_some_and(large) {
            return true;
        }
    }
    false
}
