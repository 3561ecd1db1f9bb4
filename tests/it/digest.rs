//! The weekly digest's composition (SPEC §6): one digest per guardian covering every
//! child, the windows in the tenant's zone across DST changes, each exclusion rule,
//! nothing-to-report, plain-text rendering, dry runs that write nothing, and the CLI.

use crate::api_support::Api;
use crate::approvals::{contact_id, post};
use crate::db_tests;
use crate::support::Backend;
use parent_connection::assignments::{self as store, NewAssignment};
use parent_connection::digest::{self, DigestError, NoProgress, RunReport, RunRequest};
use parent_connection::digest::{Composer, Digest, IsoWeek};
use parent_connection::tenants::{self, settings};
use sea_orm::Value;
use std::path::Path;
use std::process::Command;

db_tests!(
    one_digest_per_guardian_covers_every_child,
    nothing_to_report_gets_nothing,
    each_exclusion_rule_leaves_guardians_out,
    windows_follow_the_tenant_zone_across_dst,
    the_email_is_plain_text,
    a_dry_run_writes_nothing_and_a_disabled_tenant_queues_nothing,
);

/// Adds assignment `id` due at `due` (RFC 3339) to class `class` of `tenant`.
pub async fn assign(api: &Api, tenant: &str, class: &str, id: &str, title: &str, due: &str) {
    let t = tenants::find(&api.db.conn, tenant).await.unwrap();
    let class_id: i64 = api
        .db
        .texts(
            "SELECT CAST(id AS TEXT) FROM classes WHERE tenant_id = $1 AND source_id = $2",
            vec![Value::BigInt(Some(t.id.0)), class.into()],
        )
        .await
        .pop()
        .expect("class exists")
        .parse()
        .unwrap();
    let assignment = NewAssignment {
        external_id: id.into(),
        title: title.into(),
        due_at: chrono::DateTime::parse_from_rfc3339(due).unwrap(),
        points: Some(10.0),
        instructions: None,
    };
    store::upsert(&api.db.conn, t.id, class_id, &assignment, "test")
        .await
        .unwrap();
}

/// Every digest of `week` for `tenant`, `page_size` guardians per page.
async fn digests_paged(api: &Api, tenant: &str, week: &str, page_size: u64) -> Vec<Digest> {
    let t = tenants::find(&api.db.conn, tenant).await.unwrap();
    let (_, windows) = digest::windows(&t, Some(week.parse().unwrap())).unwrap();
    let mut composer = Composer::new(&api.db.conn, t.id, windows, page_size);
    let mut all = Vec::new();
    while let Some(page) = composer.next_page().await.unwrap() {
        assert!(page.len() as u64 <= page_size);
        all.extend(page);
    }
    assert_eq!(composer.count().await.unwrap(), all.len() as u64);
    all
}

pub async fn digests(api: &Api, week: &str) -> Vec<Digest> {
    digests_paged(api, "nyc", week, 500).await
}

/// `email: child (class: previous ids / upcoming ids), …` per digest, for compact asserts.
pub fn summary(digests: &[Digest]) -> Vec<String> {
    digests
        .iter()
        .map(|d| {
            let children: Vec<String> = d
                .children
                .iter()
                .map(|c| {
                    let classes: Vec<String> = c
                        .classes
                        .iter()
                        .map(|k| {
                            let ids = |items: &[digest::DueItem]| {
                                items
                                    .iter()
                                    .map(|i| i.external_id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            };
                            format!("{}: {} / {}", k.title, ids(&k.previous), ids(&k.upcoming))
                        })
                        .collect();
                    format!("{} ({})", c.name, classes.join("; "))
                })
                .collect();
            format!("{}: {}", d.email, children.join(", "))
        })
        .collect()
}

/// Both nyc guardians of the fixture with hw-1 (previous) and hw-2 (upcoming) in Math 3A.
fn baseline() -> Vec<String> {
    vec![
        "linda.ng@example.com: Ava Ng (Math 3A: hw-1 / hw-2), Ben Ng (Math 3A: hw-1 / hw-2)"
            .to_string(),
        "tom.ng@example.com: Ava Ng (Math 3A: hw-1 / hw-2)".to_string(),
    ]
}

/// hw-1 due in the previous window of 2026-W48 and hw-2 in the upcoming one.
pub async fn two_assignments(api: &Api) {
    assign(
        api,
        "nyc",
        "cls-1",
        "hw-1",
        "Fractions",
        "2026-11-24T23:59:00-05:00",
    )
    .await;
    assign(
        api,
        "nyc",
        "cls-1",
        "hw-2",
        "Reading log",
        "2026-12-02T08:00:00-05:00",
    )
    .await;
}

async fn one_digest_per_guardian_covers_every_child(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    let all = digests(&api, "2026-W48").await;
    // Linda is the parent of Ava and Ben: one digest with both. Tom (guardian) of Ava.
    // The relative and the doctor of Ava get nothing; Rosa's child is in no class.
    assert_eq!(summary(&all), baseline());
    assert_eq!(all[0].display_name, "Linda Ng");
    assert_eq!(
        all[0].contact_id.to_string(),
        contact_id(&api, "nyc", "par-1").await
    );
    // Paging one guardian at a time streams the same digests.
    assert_eq!(digests_paged(&api, "nyc", "2026-W48", 1).await, all);
    // A second class of Ava's appears under her, by title.
    crate::approvals::add_second_teacher(&api).await;
    api.db
        .exec(
            "INSERT INTO enrollments (tenant_id, class_id, role, person_id, status, created_at, updated_at) \
             SELECT s.tenant_id, k.id, 'student', s.id, 'active', s.created_at, s.updated_at \
             FROM students s JOIN classes k ON k.tenant_id = s.tenant_id AND k.source_id = 'cls-2' \
             WHERE s.source_id = 'stu-1'",
        )
        .await;
    assign(
        &api,
        "nyc",
        "cls-2",
        "art-1",
        "Collage",
        "2026-11-30T09:00:00-05:00",
    )
    .await;
    let all = digests(&api, "2026-W48").await;
    assert_eq!(
        summary(&all)[0],
        "linda.ng@example.com: Ava Ng (Art 3B:  / art-1; Math 3A: hw-1 / hw-2), Ben Ng (Math 3A: hw-1 / hw-2)"
    );
}

async fn nothing_to_report_gets_nothing(backend: Backend) {
    let api = Api::new(backend).await;
    assert!(digests(&api, "2026-W48").await.is_empty());
    // Outside both windows of 2026-W48 ([Nov 21 13:00Z, Dec 5 13:00Z)): nothing.
    assign(
        &api,
        "nyc",
        "cls-1",
        "late",
        "Too late",
        "2026-12-05T13:00:00Z",
    )
    .await;
    assign(
        &api,
        "nyc",
        "cls-1",
        "early",
        "Too early",
        "2026-11-21T12:59:59Z",
    )
    .await;
    assert!(digests(&api, "2026-W48").await.is_empty());
    assign(
        &api,
        "nyc",
        "cls-1",
        "edge",
        "Just in",
        "2026-11-21T13:00:00Z",
    )
    .await;
    let all = digests(&api, "2026-W48").await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0].children[0].classes[0].previous[0].external_id,
        "edge"
    );
    // W48's end is W49's send instant: "late" is upcoming there, and "edge" is gone.
    let next = digests(&api, "2026-W49").await;
    assert_eq!(
        summary(&next)[1],
        "tom.ng@example.com: Ava Ng (Math 3A:  / late)"
    );
}

async fn each_exclusion_rule_leaves_guardians_out(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    let tom = contact_id(&api, "nyc", "par-2").await;
    let linda_ben_only = vec!["linda.ng@example.com: Ben Ng (Math 3A: hw-1 / hw-2)".to_string()];
    let linda_ava_only = vec![
        "linda.ng@example.com: Ava Ng (Math 3A: hw-1 / hw-2)".to_string(),
        baseline()[1].clone(),
    ];
    let cases: [(String, String, Vec<String>); 7] = [
        (
            format!("UPDATE student_contacts SET status = 'inactive' WHERE contact_id = {tom}"),
            format!("UPDATE student_contacts SET status = 'active' WHERE contact_id = {tom}"),
            vec![baseline()[0].clone()],
        ),
        (
            format!("UPDATE student_contacts SET relationship = 'relative' WHERE contact_id = {tom}"),
            format!("UPDATE student_contacts SET relationship = 'guardian' WHERE contact_id = {tom}"),
            vec![baseline()[0].clone()],
        ),
        (
            format!("UPDATE contacts SET email = NULL WHERE id = {tom}"),
            format!("UPDATE contacts SET email = 'tom.ng@example.com' WHERE id = {tom}"),
            vec![baseline()[0].clone()],
        ),
        (
            "UPDATE students SET status = 'inactive' WHERE source_id = 'stu-1'".into(),
            "UPDATE students SET status = 'active' WHERE source_id = 'stu-1'".into(),
            linda_ben_only,
        ),
        (
            "UPDATE enrollments SET status = 'inactive' WHERE person_id = (SELECT id FROM students WHERE source_id = 'stu-2')".into(),
            "UPDATE enrollments SET status = 'active' WHERE person_id = (SELECT id FROM students WHERE source_id = 'stu-2')".into(),
            linda_ava_only,
        ),
        (
            "UPDATE classes SET status = 'inactive' WHERE source_id = 'cls-1'".into(),
            "UPDATE classes SET status = 'active' WHERE source_id = 'cls-1'".into(),
            vec![],
        ),
        (
            "INSERT INTO class_digest_settings (class_id, tenant_id, notify_guardians, updated_by, updated_at) \
             SELECT id, tenant_id, FALSE, 'test', updated_at FROM classes WHERE source_id = 'cls-1'".into(),
            "DELETE FROM class_digest_settings".into(),
            vec![],
        ),
    ];
    for (change, undo, expected) in cases {
        api.db.exec(&change).await;
        assert_eq!(
            summary(&digests(&api, "2026-W48").await),
            expected,
            "{change}"
        );
        api.db.exec(&undo).await;
        assert_eq!(
            summary(&digests(&api, "2026-W48").await),
            baseline(),
            "{undo}"
        );
    }
    // An erased contact is gone: its link no longer exists.
    let erased = post(
        &api,
        &format!("/api/v1/students/stu-1/contacts/{tom}/erase"),
        &api.admin("nyc"),
        None,
        &[],
    )
    .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(
        summary(&digests(&api, "2026-W48").await),
        vec![baseline()[0].clone()]
    );
    // Another tenant's assignments never reach nyc, and nyc's never reach bos.
    assign(
        &api,
        "bos",
        "SEC1",
        "bos-1",
        "Boston homework",
        "2026-11-25T12:00:00Z",
    )
    .await;
    let nyc = summary(&digests(&api, "2026-W48").await);
    assert_eq!(nyc, vec![baseline()[0].clone()]);
    let bos = digests_paged(&api, "bos", "2026-W48", 500).await;
    assert!(!bos.is_empty());
    for d in &bos {
        for c in &d.children {
            for k in &c.classes {
                assert!(
                    k.previous
                        .iter()
                        .chain(&k.upcoming)
                        .all(|i| i.external_id == "bos-1")
                );
            }
        }
    }
}

async fn set(api: &Api, key: &str, value: &str) {
    let t = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let key = settings::Key::parse(key).unwrap();
    let value = key.parse_text(value).unwrap();
    settings::update(&api.db.conn, t.id, &[(key, value)], "test")
        .await
        .unwrap();
}

/// The external ids of the first digest: `(previous, upcoming)`.
async fn ids(api: &Api, week: &str) -> (Vec<String>, Vec<String>) {
    let all = digests(api, week).await;
    let Some(first) = all.first() else {
        return (vec![], vec![]);
    };
    let class = &first.children[0].classes[0];
    let ids = |items: &[digest::DueItem]| items.iter().map(|i| i.external_id.clone()).collect();
    (ids(&class.previous), ids(&class.upcoming))
}

async fn windows_follow_the_tenant_zone_across_dst(backend: Backend) {
    let api = Api::new(backend).await;
    // New York, spring forward (Sun 2026-03-08): W10 is due Sat Mar 7 08:00 EST (13:00Z)
    // and its upcoming window ends Sat Mar 14 08:00 EDT = 12:00Z, 167 hours later.
    for (id, due) in [
        ("prev-out", "2026-02-28T12:59:00Z"),
        ("prev-in", "2026-02-28T13:00:00Z"),
        ("up-in", "2026-03-14T11:59:00Z"),
        ("up-out", "2026-03-14T12:30:00Z"),
    ] {
        assign(&api, "nyc", "cls-1", id, id, due).await;
    }
    assert_eq!(
        ids(&api, "2026-W10").await,
        (vec!["prev-in".into()], vec!["up-in".into()])
    );
    // Fall back (Sun 2026-11-01): W44 ends Sat Nov 7 08:00 EST = 13:00Z, 169 hours on.
    assign(
        &api,
        "nyc",
        "cls-1",
        "fall-in",
        "fall-in",
        "2026-11-07T12:30:00Z",
    )
    .await;
    assign(
        &api,
        "nyc",
        "cls-1",
        "fall-out",
        "fall-out",
        "2026-11-07T13:00:00Z",
    )
    .await;
    assert_eq!(ids(&api, "2026-W44").await.1, vec!["fall-in".to_string()]);
    // The day and hour are the tenant's: Sunday 18:00 moves W44's send instant to
    // Sun Nov 1 18:00 EST (23:00Z), so fall-in is now upcoming and so is fall-out.
    set(&api, "digest-day", "sunday").await;
    set(&api, "digest-hour", "18").await;
    assert_eq!(
        ids(&api, "2026-W44").await.1,
        vec!["fall-in".to_string(), "fall-out".to_string()]
    );
    // Sydney leaves DST on Sun 2026-04-05: W14 (Saturday 08:00) is due Apr 3 21:00Z and
    // its upcoming window ends Apr 10 22:00Z, 169 hours later.
    set(&api, "digest-day", "saturday").await;
    set(&api, "digest-hour", "8").await;
    set(&api, "digest-time-zone", "Australia/Sydney").await;
    for (id, due) in [
        ("syd-prev-out", "2026-03-27T20:59:00Z"),
        ("syd-prev-in", "2026-03-27T21:00:00Z"),
        ("syd-send", "2026-04-03T21:00:00Z"),
        ("syd-up-in", "2026-04-10T21:59:00Z"),
        ("syd-up-out", "2026-04-10T22:00:00Z"),
    ] {
        assign(&api, "nyc", "cls-1", id, id, due).await;
    }
    assert_eq!(
        ids(&api, "2026-W14").await,
        (
            vec!["syd-prev-in".into()],
            vec!["syd-send".into(), "syd-up-in".into()]
        )
    );
}

pub async fn report(api: &Api, dry_run: bool, page_size: u64) -> Result<RunReport, DigestError> {
    let t = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let request = RunRequest {
        week: Some(IsoWeek::parse("2026-W48").unwrap()),
        dry_run,
        sample_size: 3,
        page_size,
    };
    let links = parent_connection::links::Links::from_config(&api.config);
    digest::run(&api.db.conn, &t, request, &NoProgress, &links).await
}

async fn the_email_is_plain_text(backend: Backend) {
    let api = Api::new(backend).await;
    let title = r#"Read <b>Ch. 3</b> & answer "why""#;
    assign(
        &api,
        "nyc",
        "cls-1",
        "hw-1",
        title,
        "2026-11-24T23:59:00-05:00",
    )
    .await;
    let report = report(&api, true, 500).await.unwrap();
    let email = &report.sample[0];
    assert_eq!(email.to, "linda.ng@example.com");
    assert_eq!(
        email.subject,
        "nyc: assignments for Ava Ng and Ben Ng (week of Nov 28, 2026)"
    );
    assert!(!email.subject.contains('\n'));
    let body = &email.body;
    assert!(body.starts_with("Hello Linda Ng,\n"), "{body}");
    assert!(
        body.contains(&format!("  - Tue Nov 24, 11:59 PM  {title} (10 points)")),
        "{body}"
    );
    for escaped in ["&lt;", "&amp;", "&quot;", "&#", "<html", "<p>", "<br"] {
        assert!(!body.contains(escaped), "{escaped} in {body}");
    }
    assert!(body.contains("Due in the past week:"), "{body}");
    assert!(!body.contains("Due in the coming week:"), "{body}");
    assert!(body.contains("Times are in America/New_York."), "{body}");
}

async fn a_dry_run_writes_nothing_and_a_disabled_tenant_queues_nothing(backend: Backend) {
    let api = Api::new(backend).await;
    two_assignments(&api).await;
    let before = api.db.fingerprint().await;
    let audit = api.db.count("SELECT COUNT(*) FROM audit_log").await;
    let report = report(&api, true, 500).await.unwrap();
    assert_eq!(
        (report.digests, report.children, report.assignments),
        (2, 3, 6)
    );
    assert!(!report.digest_enabled);
    assert_eq!(report.send_at.to_rfc3339(), "2026-11-28T13:00:00+00:00");
    let paged = self::report(&api, true, 1).await.unwrap();
    assert_eq!(paged.sample, report.sample);
    assert_eq!(paged.digests, report.digests);
    assert!(matches!(
        self::report(&api, false, 500).await,
        Err(DigestError::Disabled)
    ));
    assert_eq!(api.db.fingerprint().await, before);
    assert_eq!(api.db.count("SELECT COUNT(*) FROM audit_log").await, audit);
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_parent-connection"))
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("cli.db").display()),
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs")
}

#[test]
fn the_cli_imports_assignments_and_dry_runs_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = format!(
        "{}/tests/fixtures/sds-v21/basic",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        cli(dir.path(), &["tenant", "create", "nyc"])
            .status
            .success()
    );
    assert!(
        cli(
            dir.path(),
            &[
                "import", "--tenant", "nyc", "--format", "sds-v2.1", &fixture
            ]
        )
        .status
        .success()
    );
    let csv = dir.path().join("assignments.csv");
    std::fs::write(
        &csv,
        "classSourcedId,externalId,title,dueAt,points,instructions\n\
         cls-1,hw-1,Fractions,2026-11-24T23:59:00-05:00,10,\n\
         cls-1,hw-2,Reading log,2026-12-02T08:00:00-05:00,,\n",
    )
    .unwrap();
    let csv = csv.display().to_string();
    let imported = cli(
        dir.path(),
        &["assignments", "import", "--tenant", "nyc", &csv, "--json"],
    );
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(
        (report["status"].as_str(), report["created"].as_u64()),
        (Some("applied"), Some(2))
    );
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "classSourcedId,externalId,title,dueAt\ncls-1,x,Naive,2026-11-24T23:59:00\n",
    )
    .unwrap();
    let refused = cli(
        dir.path(),
        &[
            "assignments",
            "import",
            "--tenant",
            "nyc",
            &bad.display().to_string(),
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("bad.csv, record 2, column 'dueAt'"),
        "{stderr}"
    );

    let dry = cli(
        dir.path(),
        &[
            "digest",
            "run",
            "--tenant",
            "nyc",
            "--week",
            "2026-W48",
            "--dry-run",
            "--json",
        ],
    );
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(report["digests"], 2);
    assert_eq!(report["sample"].as_array().unwrap().len(), 2);
    assert_eq!(report["dryRun"], true);
    let human = cli(
        dir.path(),
        &[
            "digest",
            "run",
            "--tenant",
            "nyc",
            "--week",
            "2026-W48",
            "--dry-run",
        ],
    );
    assert!(String::from_utf8_lossy(&human.stdout).contains("2 digest(s)"));
    let real = cli(
        dir.path(),
        &["digest", "run", "--tenant", "nyc", "--week", "2026-W48"],
    );
    assert_eq!(real.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&real.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("off for this tenant") && stderr.contains("nothing was queued"),
        "{stderr}"
    );
    let week = cli(
        dir.path(),
        &[
            "digest",
            "run",
            "--tenant",
            "nyc",
            "--week",
            "2026-48",
            "--dry-run",
        ],
    );
    assert!(!week.status.success());
    assert!(String::from_utf8_lossy(&week.stderr).contains("YYYY-Www"));
    let zone = cli(
        dir.path(),
        &[
            "settings",
            "set",
            "--tenant",
            "nyc",
            "digest-time-zone",
            "Mars/Base",
        ],
    );
    assert_eq!(zone.status.code(), Some(2), "a malformed value");
    assert!(String::from_utf8_lossy(&zone.stderr).contains("IANA"));
}
