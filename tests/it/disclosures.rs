//! The disclosure log (issue 19, item 6): each invitation and digest sent is recorded when
//! the server accepted it, with the recipient, the students, the exact text handed to the
//! transport and its hash; admins read it (by student, by guardian); the text goes after
//! the retention; an erasure redacts the guardian's entries.

use crate::api_support::*;
use crate::approvals::contact_id;
use crate::db_tests;
use crate::invitations::start_chat;
use crate::support::Backend;
use parent_connection::auth::Role;
use parent_connection::domain::TenantId;
use parent_connection::outbox::disclosures;

db_tests!(
    an_invitation_sent_is_logged_as_sent_and_erasure_redacts_it,
    texts_are_stored_compressed_and_entries_from_before_stay_readable,
    a_batch_of_entries_keeps_each_ones_students,
);

/// The log at `path` as a global admin of `tenant` sees it.
async fn read_log(api: &Api, path: &str, tenant: &str) -> serde_json::Value {
    api.get(path, Some(&api.admin(tenant))).await.ok().clone()
}

async fn an_invitation_sent_is_logged_as_sent_and_erasure_redacts_it(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let url = format!("file://{}", files.path().display());
    let api = Api::with(backend, move |config| {
        config.mail.url = url;
        config.web.token_signin = true;
    })
    .await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    start_chat(&api, &[&par1]).await;
    let before = chrono::Utc::now();
    let stats = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .unwrap()
        .drain()
        .await
        .unwrap();
    assert_eq!(stats.sent, 1, "{stats:?}");
    let page = read_log(&api, "/api/v1/disclosures?studentId=stu-1", "nyc").await;
    let entry = &page["items"][0];
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(entry["kind"], "invitation");
    assert_eq!(entry["channel"], "email");
    assert_eq!(entry["recipient"], "linda.ng@example.com");
    assert_eq!(entry["contactId"], par1.as_str());
    assert_eq!(entry["students"], serde_json::json!(["stu-1"]));
    let accepted: chrono::DateTime<chrono::Utc> =
        entry["acceptedAt"].as_str().unwrap().parse().unwrap();
    assert!(accepted >= before - chrono::Duration::seconds(1));
    // The exact text that went out: the file the transport wrote holds the body.
    let body = entry["body"].as_str().unwrap();
    let sent = std::fs::read_dir(files.path())
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect::<String>();
    let first_line = body.lines().next().unwrap();
    assert!(sent.contains(first_line), "{sent}");
    assert_eq!(
        entry["contentSha256"],
        disclosures::content_sha256(entry["subject"].as_str(), body)
    );
    let by_guardian = read_log(
        &api,
        &format!("/api/v1/disclosures?contactId={par1}"),
        "nyc",
    )
    .await;
    assert_eq!(by_guardian["items"][0]["id"], entry["id"]);
    for token in [api.teacher(), api.user("nyc", "ta-1", &[Role::TenantAdmin])] {
        assert_eq!(
            api.get("/api/v1/disclosures", Some(&token))
                .await
                .error(403),
            "forbidden"
        );
    }
    let boston = read_log(&api, "/api/v1/disclosures", "bos").await;
    assert_eq!(boston["items"], serde_json::json!([]));
    let admin = page_session(&api, &api.admin("nyc")).await;
    let page = page_get(&api, "/admin/disclosures?student=stu-1", Some(&admin)).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert!(html(&page).contains("linda.ng@example.com"));
    let teacher = page_session(&api, &api.teacher()).await;
    let refused = page_get(&api, "/admin/disclosures", Some(&teacher)).await;
    assert_eq!(refused.status, 403);
    // Past the retention only the hash stays; the erasure removes the address and contact.
    let now = chrono::Utc::now();
    let conn = &api.db.conn;
    assert_eq!(
        disclosures::expire_texts(conn, before - chrono::Duration::days(1), 10, now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        disclosures::expire_texts(conn, now + chrono::Duration::seconds(1), 10, now)
            .await
            .unwrap(),
        1
    );
    let tenant = TenantId(
        api.db
            .count("SELECT id FROM tenants WHERE slug = 'nyc'")
            .await,
    );
    let contact: i64 = par1.parse().unwrap();
    assert_eq!(
        disclosures::erase_contact(conn, tenant, contact, now)
            .await
            .unwrap(),
        1
    );
    let page = read_log(&api, "/api/v1/disclosures?studentId=stu-1", "nyc").await;
    let erased = &page["items"][0];
    for gone in ["recipient", "subject", "body", "contactId"] {
        assert!(erased[gone].is_null(), "{gone}: {erased}");
    }
    assert_eq!(erased["contentSha256"], entry["contentSha256"]);
    assert_eq!(erased["students"], serde_json::json!(["stu-1"]));
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM disclosures WHERE recipient LIKE '%linda%' OR body LIKE '%Linda%' OR body_deflate IS NOT NULL")
            .await,
        0
    );
}

/// Sends one invitation; the tenant id, the guardian and the log entry's id.
async fn one_sent(api: &Api) -> (TenantId, String, String) {
    let par1 = contact_id(api, "nyc", "par-1").await;
    start_chat(api, &[&par1]).await;
    let stats = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .unwrap()
        .drain()
        .await
        .unwrap();
    assert_eq!(stats.sent, 1, "{stats:?}");
    let tenant = TenantId(
        api.db
            .count("SELECT id FROM tenants WHERE slug = 'nyc'")
            .await,
    );
    let page = read_log(api, "/api/v1/disclosures?studentId=stu-1", "nyc").await;
    let id = page["items"][0]["id"].as_str().unwrap().to_string();
    (tenant, par1, id)
}

async fn texts_are_stored_compressed_and_entries_from_before_stay_readable(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let url = format!("file://{}", files.path().display());
    let api = Api::with(backend, move |config| config.mail.url = url).await;
    let (_, _, id) = one_sent(&api).await;
    // Stored compressed: no plain body, and fewer bytes than the text.
    let entry = &read_log(&api, "/api/v1/disclosures", "nyc").await["items"][0];
    let body = entry["body"].as_str().unwrap().to_string();
    assert!(body.contains("Join here"), "{body}");
    assert_eq!(
        api.db
            .count(&format!(
                "SELECT COUNT(*) FROM disclosures WHERE id = {id} AND body IS NULL \
                 AND body_deflate IS NOT NULL AND LENGTH(body_deflate) < {}",
                body.len()
            ))
            .await,
        1
    );
    // An entry written before the texts were compressed (migration 000023) reads as it was.
    api.db
        .exec(&format!(
            "UPDATE disclosures SET body = 'Hello Linda, the text as it was kept.', body_deflate = NULL WHERE id = {id}"
        ))
        .await;
    let old = &read_log(&api, "/api/v1/disclosures", "nyc").await["items"][0];
    assert_eq!(old["body"], "Hello Linda, the text as it was kept.");
    assert_eq!(old["contentSha256"], entry["contentSha256"]);
}

async fn a_batch_of_entries_keeps_each_ones_students(backend: Backend) {
    use parent_connection::outbox::disclosures::{About, Accepted, Sealed};
    use parent_connection::outbox::{Channel, MessageKind, Outgoing};
    let api = Api::new(backend).await;
    let tenant = TenantId(
        api.db
            .count("SELECT id FROM tenants WHERE slug = 'nyc'")
            .await,
    );
    let contact: i64 = contact_id(&api, "nyc", "par-1").await.parse().unwrap();
    let message = |n: usize| Outgoing {
        message_id: format!("<{n}@test>"),
        to: format!("g{n}@example.com"),
        subject: Some(format!("Digest {n}")),
        body: format!("Hello {n},\n\nYour digest.\n"),
        list_unsubscribe: None,
        language: None,
    };
    // 250 messages (three INSERT chunks), the last about the same digest as the first (a
    // digest sent again after its claim ran out): each entry keeps its own students.
    let n = 250;
    let messages: Vec<Outgoing> = (0..n).map(message).collect();
    let abouts: Vec<About> = (0..n)
        .map(|i| About {
            contact_id: contact,
            students: vec![format!("s{i}"), format!("s{i}"), "shared".into()],
        })
        .collect();
    let sealed: Vec<Sealed> = messages.iter().map(Sealed::of).collect();
    let at = chrono::Utc::now();
    let accepted: Vec<Accepted<'_>> = (0..n)
        .map(|i| Accepted {
            tenant,
            kind: MessageKind::Digest,
            ref_id: if i == n - 1 { 0 } else { i as i64 },
            channel: Channel::Email,
            message: &messages[i],
            sealed: &sealed[i],
            at,
            about: &abouts[i],
        })
        .collect();
    disclosures::record(&api.db.conn, &accepted).await.unwrap();
    assert_eq!(
        api.db.count("SELECT COUNT(*) FROM disclosures").await,
        n as i64
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM disclosure_students")
            .await,
        2 * n as i64
    );
    for i in [0, 99, 100, 248, 249] {
        let page = read_log(&api, &format!("/api/v1/disclosures?studentId=s{i}"), "nyc").await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "s{i}: {page}");
        assert_eq!(
            items[0]["students"],
            serde_json::json!([format!("s{i}"), "shared"])
        );
        assert_eq!(items[0]["recipient"], format!("g{i}@example.com"));
        assert_eq!(items[0]["body"], format!("Hello {i},\n\nYour digest.\n"));
        let m = &messages[i];
        assert_eq!(
            items[0]["contentSha256"],
            disclosures::content_sha256(m.subject.as_deref(), &m.body)
        );
    }
}
