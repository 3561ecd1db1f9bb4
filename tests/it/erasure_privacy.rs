//! Erasure that erases (issue 19): a contact that was synced, edited, approved, invited by
//! email and by SMS, digested, suppressed, signed in and audited is erased; then every
//! column of every table of the database is searched for the person's name, email and
//! phone in any case and spelling, and none is found. A re-sync of the same files does not
//! re-create the pair: the erasure keeps the SIS key only as a keyed hash.

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings, post};
use crate::db_tests;
use crate::digest::two_assignments;
use crate::invitations::{dispatch, start_chat};
use crate::support::{APPLY, Backend, Fixture, TestDb};
use parent_connection::auth::Role;
use parent_connection::auth::mint::Subject;
use parent_connection::digest::{self, IsoWeek, NoProgress, RunRequest};
use parent_connection::outbox as store;
use parent_connection::sync::Format;
use parent_connection::tenants;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

db_tests!(an_erased_contact_is_nowhere_in_the_database);

/// The person, as the SIS delivers them.
const ZELDA: &str = "par-2,zq,Zelda,Quill,Zelda.Quill@example.com,,+1 202 555 0177";

/// Her row once the SIS misspells her email and phone (values a report would quote).
const ZELDA_MISSPELT: &str = "par-2,zq,Zelda,Quill,Zelda.Quill@@example.com,,+1 202 555 0177 99";

/// She, again, under a new SIS key.
const ZELDA_AGAIN: &str = "par-9,zq,Zelda,Quill,Zelda.Quill@example.com,,";

/// What must be found nowhere once she is erased (compared in lower case; phone digits
/// also with their separators removed).
const NEEDLES: &[&str] = &[
    "zelda",
    "quill",
    "moreau",
    "zelda.quill@example.com",
    "2025550177",
    "5550177",
];

fn fixture() -> Fixture {
    let fixture = Fixture::v21();
    fixture.replace(
        "users.csv",
        "par-2,tom,Tom,Ng,tom.ng@example.com,,+1 202 555 0177",
        ZELDA,
    );
    fixture
}

/// Every (table, column, value) of the database whose text holds one of `needles`.
pub async fn find_everywhere(db: &TestDb, needles: &[&str]) -> Vec<String> {
    let columns_sql = match db.backend {
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c, lower(p.type) AS ty FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' ORDER BY 1, 2"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS ty FROM information_schema.columns \
             WHERE table_schema = current_schema() ORDER BY 1, 2"
        }
    };
    let rows = parent_connection::db::query(&db.conn, columns_sql, vec![])
        .await
        .expect("columns");
    let mut found = Vec::new();
    for row in rows {
        let table: String = row.try_get("", "t").unwrap();
        let column: String = row.try_get("", "c").unwrap();
        let kind: String = row.try_get("", "ty").unwrap();
        let values = if kind.contains("blob") || kind == "bytea" {
            binary_texts(db, &table, &column).await
        } else {
            db.texts(
                &format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"),
                vec![],
            )
            .await
        };
        for value in values {
            let lower = value.to_lowercase();
            let digits: String = lower.chars().filter(char::is_ascii_digit).collect();
            if needles.iter().any(|n| {
                lower.contains(n) || (n.chars().all(|c| c.is_ascii_digit()) && digits.contains(n))
            }) {
                found.push(format!("{table}.{column}: {value}"));
            }
        }
    }
    found
}

/// The values of a binary column as text: a stored disclosure text inflated (a plain search
/// of its compressed bytes would find nothing), anything else read as UTF-8 where it is.
async fn binary_texts(db: &TestDb, table: &str, column: &str) -> Vec<String> {
    let rows = parent_connection::db::query(
        &db.conn,
        &format!("SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"),
        vec![],
    )
    .await
    .expect("binary column");
    rows.iter()
        .map(|row| {
            let bytes: Vec<u8> = row.try_get_by_index(0).expect("bytes");
            parent_connection::outbox::disclosures::text::decompress(&bytes)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect()
}

async fn gateway() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1", "status": "queued"})),
        )
        .mount(&server)
        .await;
    server
}

async fn an_erased_contact_is_nowhere_in_the_database(backend: Backend) {
    let sms = gateway().await;
    let mail = tempfile::tempdir().unwrap();
    let mail_url = format!("file://{}", mail.path().display());
    let api = Api::with(backend, |config| {
        config.mail.url = mail_url;
        config.sms.url = sms.uri();
        config.sms.account_sid = "AC123".into();
        config.sms.auth_token = "token-secret".into();
        config.sms.from = "+15005550006".into();
        config.web.token_signin = true;
    })
    .await;
    // A refused run whose stored report quotes her email, then a synced one.
    let refused = fixture();
    refused.append("relationships.csv", "stu-1,zelda.quill@example.com,parent");
    let report = api
        .db
        .import("nyc", Format::SdsV21, refused.path(), APPLY)
        .await;
    assert!(!report.errors.is_empty(), "refused");
    let files = fixture();
    let report = api
        .db
        .import("nyc", Format::SdsV21, files.path(), APPLY)
        .await;
    assert!(report.status.is_success(), "{:?}", report.errors);
    let zelda = contact_id(&api, "nyc", "par-2").await;
    let admin = api.admin("nyc");
    // Edited and approved (the approver's reason names her).
    let request = post(
        &api,
        "/api/v1/students/stu-1/contact-requests",
        &api.teacher(),
        Some(json!({"action": "update", "contactId": zelda, "contact": {"familyName": "Quill-Moreau"}})),
        &[],
    )
    .await;
    let request_id = request.body["id"].as_str().expect("request id").to_string();
    post(
        &api,
        &format!("/api/v1/contact-requests/{request_id}/approve"),
        &admin,
        Some(json!({"reason": "Zelda Quill-Moreau called the office"})),
        &[],
    )
    .await
    .ok();
    // Proposed again as a new contact: rejected once, and once still pending.
    for (contact, decision) in [
        (
            json!({"givenName": "Zelda", "familyName": "Quill", "mobilePhone": "(202) 555-0177", "relationship": "parent"}),
            Some("reject"),
        ),
        (
            json!({"givenName": "Zelda", "familyName": "Quill", "emailAddress": "zelda.quill@example.com", "relationship": "guardian"}),
            None,
        ),
    ] {
        let add = post(
            &api,
            "/api/v1/students/stu-1/contact-requests",
            &api.teacher(),
            Some(json!({"action": "add", "contact": contact})),
            &[],
        )
        .await;
        assert!(add.status.is_success(), "{}", add.body);
        if let Some(decision) = decision {
            let id = add.body["id"].as_str().expect("request id");
            let decided = post(
                &api,
                &format!("/api/v1/contact-requests/{id}/{decision}"),
                &admin,
                Some(json!({"reason": "Zelda Quill is listed already"})),
                &[],
            )
            .await;
            assert!(decided.status.is_success(), "{}", decided.body);
        }
    }
    // Invited by email, then by SMS.
    start_chat(&api, &[&zelda]).await;
    dispatch(&api).await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(
        &api,
        &tenant_admin,
        json!({"preferredInviteChannel": "sms", "digestEnabled": true}),
    )
    .await
    .ok();
    start_chat(&api, &[&zelda]).await;
    dispatch(&api).await;
    // Digested.
    two_assignments(&api).await;
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let links = parent_connection::links::Links::from_config(&api.config);
    let request = RunRequest {
        week: Some(IsoWeek::parse("2026-W48").unwrap()),
        dry_run: false,
        sample_size: 0,
        page_size: 10,
    };
    digest::run(&api.db.conn, &tenant, request, &NoProgress, &links)
        .await
        .expect("digest");
    dispatch(&api).await;
    // Signed in: a code asked for her address, and a page session.
    let flow = page_get(&api, "/signin/code?tenant=nyc", None).await;
    let cookie = set_cookie(&flow);
    let flow_value = cookie.split_once('=').unwrap().1.to_string();
    page_post(
        &api,
        "/signin/code",
        &cookie,
        &[
            ("csrf", &flow_value),
            ("tenant", "nyc"),
            ("address", "zelda.quill@example.com"),
        ],
    )
    .await;
    let guardian = api.mint(
        "nyc",
        Subject::Contact {
            contact_id: zelda.clone(),
        },
    );
    page_session(&api, &guardian).await;
    dispatch(&api).await;
    // Suppressed after a final refusal that quotes the address.
    let now = chrono::Utc::now();
    store::suppress_email(
        &api.db.conn,
        tenant.id,
        "Zelda.Quill@example.com",
        "550 5.1.1 <zelda.quill@example.com> no such user",
        now,
    )
    .await
    .unwrap();
    let before = find_everywhere(&api.db, NEEDLES).await;
    for table in [
        "contacts.",
        "contact_requests.",
        "audit_log.",
        "invitations.",
        "outbox.",
        "email_suppressions.",
        "sync_runs.",
    ] {
        assert!(
            before.iter().any(|f| f.starts_with(table)),
            "{table} holds her before: {before:#?}"
        );
    }
    let sessions =
        format!("SELECT COUNT(*) FROM web_sessions WHERE kind = 'contact' AND subject = '{zelda}'");
    assert_eq!(api.db.count(&sessions).await, 1);

    let erased = post(
        &api,
        &format!("/api/v1/students/stu-1/contacts/{zelda}/erase"),
        &admin,
        Some(json!({"reason": "court order"})),
        &[],
    )
    .await;
    assert_eq!(
        erased.ok()["erased"][0]["contactDeleted"],
        true,
        "{}",
        erased.body
    );
    let left = find_everywhere(&api.db, NEEDLES).await;
    assert!(left.is_empty(), "her data is still stored: {left:#?}");
    assert_eq!(api.db.count(&sessions).await, 0, "her sessions end at once");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contact_requests WHERE status = 'pending'")
            .await,
        0,
        "a pending proposal to add her is rejected"
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
            .await,
        0,
        "nothing more is sent to her"
    );
    let suppressed = api
        .db
        .texts("SELECT email FROM email_suppressions", vec![])
        .await;
    assert!(
        suppressed[0].starts_with("hmac:"),
        "kept as a keyed hash: {suppressed:?}"
    );

    // The SIS still carries her: a re-sync does not bring her back.
    let again = api
        .db
        .import("nyc", Format::SdsV21, files.path(), APPLY)
        .await;
    assert!(again.status.is_success(), "{:?}", again.errors);
    assert_eq!(again.entities.erased_links_skipped, 1);
    assert_eq!(api.db.link("stu-1", "par-2").await, None);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contacts WHERE source_key = 'par-2'")
            .await,
        0
    );

    // The SIS now has her values wrong: the new run's report quotes none of them.
    files.replace("users.csv", ZELDA, ZELDA_MISSPELT);
    let misspelt = api
        .db
        .import("nyc", Format::SdsV21, files.path(), APPLY)
        .await;
    assert!(misspelt.status.is_success(), "{:?}", misspelt.errors);
    assert_eq!(misspelt.entities.erased_links_skipped, 1);
    let left = find_everywhere(&api.db, NEEDLES).await;
    assert!(left.is_empty(), "a re-sync stored her data: {left:#?}");

    // She comes back under another SIS key with the address the server refused: the
    // suppression, kept only as its keyed hash, still holds.
    files.append("users.csv", ZELDA_AGAIN);
    files.append("relationships.csv", "stu-1,par-9,guardian");
    let back = api
        .db
        .import("nyc", Format::SdsV21, files.path(), APPLY)
        .await;
    assert!(back.status.is_success(), "{:?}", back.errors);
    patch_settings(
        &api,
        &tenant_admin,
        json!({"preferredInviteChannel": "email"}),
    )
    .await
    .ok();
    let again = contact_id(&api, "nyc", "par-9").await;
    let mailed = mailed_to_her(mail.path());
    start_chat(&api, &[&again]).await;
    dispatch(&api).await;
    let statuses = api
        .db
        .texts(
            "SELECT status FROM outbox WHERE LOWER(recipient) = 'zelda.quill@example.com'",
            vec![],
        )
        .await;
    assert_eq!(
        statuses,
        ["suppressed"],
        "nothing is mailed to a refused address"
    );
    assert_eq!(mailed_to_her(mail.path()), mailed, "no mail went to her");
}

/// How many mails in the `file://` transport's folder went to her.
fn mailed_to_her(folder: &std::path::Path) -> usize {
    std::fs::read_dir(folder)
        .unwrap()
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .filter(|text| text.to_lowercase().contains("zelda.quill@example.com"))
        .count()
}
