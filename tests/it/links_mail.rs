//! Every link in every message works, and the digest follows the bulk-mail rules (issue 15,
//! items 4 and 5): the join page (accept, expired, cancelled, unknown), invitation states
//! in the API, the digest's one-click unsubscribe (RFC 8058) and its admin side, every URL
//! of every rendered template fetched from a real server, the counts of a real digest run,
//! and a DKIM signature checked by an independent verifier (dkimpy).

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings, post};
use crate::db_tests;
use crate::digest::two_assignments;
use crate::invitations::start_chat;
use crate::support::Backend;
use parent_connection::auth::Role;
use parent_connection::digest::{self, IsoWeek, NoProgress, RunReport, RunRequest};
use parent_connection::domain::TenantId;
use parent_connection::invites::{InvitationMessages, RenderConfig};
use parent_connection::links::{self, Links, Purpose};
use parent_connection::outbox::Claimed;
use parent_connection::outbox::email::{DkimSettings, MailTarget, Mailer};
use parent_connection::outbox::port::{MessageKindHandler, Rendered};
use parent_connection::outbox::{Channel, MessageKind};
use parent_connection::outbox::{ListUnsubscribe, Outgoing};
use parent_connection::tenants;
use sea_orm::Value;
use serde_json::json;

db_tests!(
    every_url_in_every_message_works,
    the_join_page_accepts_an_invitation_once,
    expired_cancelled_and_unknown_invitations_get_clear_pages,
    one_click_unsubscribes_from_the_digest_only,
    a_real_run_counts_what_it_queued,
);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Status, content type and body of a GET or POST.
async fn fetch(url: &str, post: Option<(&str, &str)>) -> (u16, String, String) {
    let request = match post {
        None => client().get(url),
        Some((content_type, body)) => client()
            .post(url)
            .header("content-type", content_type)
            .body(body.to_string()),
    };
    let response = request.send().await.expect(url);
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.text().await.unwrap();
    if content_type.starts_with("text/html") {
        assert!(
            csp.contains("script-src 'none'") && !csp.contains("unsafe-inline"),
            "{url}: CSP {csp:?}"
        );
        assert!(body.contains("<main"), "{url}: {body}");
        assert!(body.contains("name=\"viewport\""), "{url}");
    }
    (status, content_type, body)
}

async fn enable_digest(api: &Api) {
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(api, &tenant_admin, json!({"digestEnabled": true})).await;
}

async fn run(api: &Api, dry_run: bool) -> RunReport {
    let tenant = tenants::find(&api.db.conn, "nyc").await.unwrap();
    let request = RunRequest {
        week: Some(IsoWeek::parse("2026-W48").unwrap()),
        dry_run,
        sample_size: 1,
        page_size: 1,
    };
    digest::run(
        &api.db.conn,
        &tenant,
        request,
        &NoProgress,
        &Links::from_config(&api.config),
    )
    .await
    .expect("digest run")
}

fn claimed(tenant: i64, kind: &str, ref_id: i64, channel: &str, to: &str) -> Claimed {
    Claimed {
        id: 1_000 + ref_id,
        tenant_id: parent_connection::domain::TenantId(tenant),
        kind: MessageKind::parse(kind).expect("a kind"),
        ref_id,
        channel: Channel::parse(channel).expect("a channel"),
        recipient: to.into(),
        attempts: 1,
        token: 1,
    }
}

/// The message a kind rendered, if it is ready to send.
fn ready(rendered: &Rendered) -> Option<Outgoing> {
    match rendered {
        Rendered::Ready(message) => Some(message.clone()),
        _ => None,
    }
}

fn urls(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == ',')
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .map(|word| word.trim_end_matches(['.', ')', ';']).to_string())
        .collect()
}

async fn nyc(api: &Api) -> i64 {
    tenants::find(&api.db.conn, "nyc").await.unwrap().id.0
}

async fn every_url_in_every_message_works(backend: Backend) {
    let (api, base) = served(backend).await;
    let tenant = nyc(&api).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let invitation: i64 = chat["invitations"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let render = RenderConfig {
        links: Links::from_config(&api.config),
        sms_sender: "Parent Connection".into(),
        message_id_domain: "pc.test".into(),
    };
    let mut messages: Vec<Outgoing> = Vec::new();
    for channel in ["email", "sms"] {
        let row = claimed(tenant, "invitation", invitation, channel, "x");
        let rendered = InvitationMessages::new(render.clone())
            .render(&api.db.conn, &[&row])
            .await
            .unwrap();
        messages.push(ready(&rendered[&row.id]).expect("an invitation message"));
    }
    enable_digest(&api).await;
    two_assignments(&api).await;
    assert!(run(&api, false).await.queued > 0);
    let delivery: i64 = api
        .db
        .texts(
            "SELECT CAST(MIN(id) AS TEXT) FROM digest_deliveries",
            vec![],
        )
        .await
        .pop()
        .unwrap()
        .parse()
        .unwrap();
    let row = claimed(tenant, "digest", delivery, "email", "x");
    let rendered = digest::DigestMessages::new("pc.test", render.links.clone())
        .render(&api.db.conn, &[&row])
        .await
        .unwrap();
    messages.push(ready(&rendered[&row.id]).expect("a digest"));
    let mut all = Vec::new();
    for message in &messages {
        let mut found = urls(&message.body);
        if let Some(list) = &message.list_unsubscribe {
            found.push(list.url.clone());
        }
        assert!(!found.is_empty(), "a message without a link: {message:?}");
        all.extend(found);
    }
    assert!(all.len() >= 4, "{all:?}");
    for url in &all {
        assert!(url.starts_with(&base), "{url} is not on {base}");
        let (status, content_type, body) = fetch(url, None).await;
        assert!(
            status != 404 && status < 500,
            "{url} answered {status}: {body}"
        );
        assert!(
            !content_type.contains("json"),
            "{url} answered {content_type}: {body}"
        );
    }
}

async fn the_join_page_accepts_an_invitation_once(backend: Backend) {
    let (api, base) = served(backend).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = start_chat(&api, &[&par1]).await;
    let id = chat["invitations"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(chat["invitations"][0]["state"], "pending", "{chat}");
    let url = format!("{base}/join/{}", join_token(&api, &id).await);
    let (status, content_type, page) = fetch(&url, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        page.contains("<button type=\"submit\">Accept</button>"),
        "{page}"
    );
    assert!(page.contains("method=\"post\""), "{page}");
    assert!(
        page.contains("Ava") || page.contains("stu-1"),
        "names the child: {page}"
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contacts WHERE joined_at IS NOT NULL")
            .await,
        0,
        "opening the page changes nothing"
    );
    let (status, _, page) = fetch(&url, Some(("application/x-www-form-urlencoded", ""))).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You joined"), "{page}");
    let (status, _, page) = fetch(&url, Some(("application/x-www-form-urlencoded", ""))).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("already accepted"), "{page}");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM invitations WHERE accepted_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM contacts WHERE joined_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'invitation.accept'")
            .await,
        1,
        "accepted once, audited once"
    );
    let chat_id = chat["id"].as_str().unwrap();
    let listed = api
        .get(
            &format!("/api/v1/chats/{chat_id}/invitations"),
            Some(&api.teacher()),
        )
        .await;
    assert_eq!(
        listed.ok()["items"][0]["state"],
        "accepted",
        "{}",
        listed.body
    );
    assert!(listed.body["items"][0]["acceptedAt"].is_string());
    let by_contact = api
        .get(
            &format!("/api/v1/contacts/{par1}/invitations"),
            Some(&api.admin("nyc")),
        )
        .await;
    assert_eq!(by_contact.ok()["items"][0]["state"], "accepted");
    // A joined guardian is not invited again.
    let resend = post(
        &api,
        &format!("/api/v1/chats/{chat_id}/invitations"),
        &api.teacher(),
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(resend.error(422), "invitation_not_sent", "{}", resend.body);
    assert_eq!(resend.body["error"]["details"]["reason"], "already_joined");
}

async fn expired_cancelled_and_unknown_invitations_get_clear_pages(backend: Backend) {
    let (api, base) = served(backend).await;
    let (par1, par2) = (
        contact_id(&api, "nyc", "par-1").await,
        contact_id(&api, "nyc", "par-2").await,
    );
    let chat = start_chat(&api, &[&par1, &par2]).await;
    let ids: Vec<String> = chat["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{chat}");
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let patched = patch_settings(&api, &tenant_admin, json!({"invitationValidityDays": 3})).await;
    assert_eq!(
        patched.ok()["invitationValidityDays"],
        3,
        "{}",
        patched.body
    );
    // par-1's invitation is 4 days old: expired.
    parent_connection::db::exec(
        &api.db.conn,
        "UPDATE invitations SET created_at = $1 WHERE id = $2",
        vec![
            Value::ChronoDateTimeUtc(Some(chrono::Utc::now() - chrono::Duration::days(4))),
            Value::BigInt(Some(ids[0].parse().unwrap())),
        ],
    )
    .await
    .unwrap();
    // par-2 is no longer an active contact of stu-1: cancelled.
    parent_connection::db::exec(
        &api.db.conn,
        "UPDATE student_contacts SET status = 'inactive' WHERE contact_id = $1",
        vec![Value::BigInt(Some(par2.parse().unwrap()))],
    )
    .await
    .unwrap();
    for (id, word) in [(&ids[0], "expired"), (&ids[1], "cancelled")] {
        let url = format!("{base}/join/{}", join_token(&api, id).await);
        for post in [None, Some(("application/x-www-form-urlencoded", ""))] {
            let (status, content_type, page) = fetch(&url, post).await;
            assert_eq!(status, 410, "{word}: {page}");
            assert!(content_type.starts_with("text/html"), "{content_type}");
            assert!(page.to_lowercase().contains(word), "{page}");
        }
        let item = api
            .get(&format!("/api/v1/invitations/{id}"), Some(&api.teacher()))
            .await;
        assert_eq!(item.ok()["state"], word, "{}", item.body);
    }
    // Active again, but no longer a parent or guardian of the child: still cancelled.
    parent_connection::db::exec(
        &api.db.conn,
        "UPDATE student_contacts SET status = 'active', relationship = 'relative' WHERE contact_id = $1",
        vec![Value::BigInt(Some(par2.parse().unwrap()))],
    )
    .await
    .unwrap();
    let url = format!("{base}/join/{}", join_token(&api, &ids[1]).await);
    let (status, _, page) = fetch(&url, None).await;
    assert_eq!(status, 410, "a relative is not invited: {page}");
    assert!(page.to_lowercase().contains("cancelled"), "{page}");
    // Erased from the child (and so from the district): still a clear 410, not a 404.
    let erased = crate::approvals::post(
        &api,
        &format!("/api/v1/students/stu-1/contacts/{par2}/erase"),
        &api.admin("nyc"),
        Some(json!({"reason": "court order"})),
        &[],
    )
    .await;
    assert!(erased.status.is_success(), "{}", erased.body);
    let (status, _, page) = fetch(&url, None).await;
    assert_eq!(status, 410, "an erased guardian's link: {page}");
    assert!(page.to_lowercase().contains("cancelled"), "{page}");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM invitations WHERE accepted_at IS NOT NULL")
            .await,
        0
    );
    for path in [
        "/join/0123456789abcdef0123456789abcdef",
        "/join/not-a-token!",
        "/join/",
        "/unsubscribe/AAAA",
    ] {
        let (status, content_type, page) = fetch(&format!("{base}{path}"), None).await;
        assert_eq!(status, 404, "{path}: {page}");
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
    }
    let response = client()
        .put(format!("{base}/join/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn one_click_unsubscribes_from_the_digest_only(backend: Backend) {
    let (api, base) = served(backend).await;
    enable_digest(&api).await;
    two_assignments(&api).await;
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let contact: i64 = par1.parse().unwrap();
    let before = run(&api, true).await;
    assert!(before.digests >= 1);
    let tenant = TenantId(nyc(&api).await);
    let secret = links::tenant_secret(&api.db.conn, tenant)
        .await
        .unwrap()
        .expect("every tenant has a link secret");
    let token = links::sign(&secret, Purpose::DigestUnsubscribe, tenant, contact);
    let url = format!("{base}/unsubscribe/{token}");
    assert!(
        before.sample[0]
            .unsubscribe
            .url
            .starts_with(&format!("{base}/unsubscribe/")),
        "{:?}",
        before.sample[0].unsubscribe
    );
    assert!(
        before.sample[0]
            .body
            .contains(&before.sample[0].unsubscribe.url),
        "the digest text says how to unsubscribe"
    );
    // GET shows the button and changes nothing.
    let (status, _, page) = fetch(&url, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Unsubscribe</button>"), "{page}");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM digest_unsubscribes")
            .await,
        0
    );
    // A forged token (another contact, same MAC) is refused.
    let other = links::sign(&secret, Purpose::DigestUnsubscribe, tenant, contact + 1);
    let forged = format!("{}{}", &other[..23], &token[23..]);
    let (status, _, _) = fetch(
        &format!("{base}/unsubscribe/{forged}"),
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    )
    .await;
    assert_eq!(status, 404);
    // RFC 8058: form-urlencoded, then multipart; no cookie, no sign-in; idempotent.
    let (status, _, page) = fetch(
        &url,
        Some((
            "application/x-www-form-urlencoded",
            "List-Unsubscribe=One-Click",
        )),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let multipart = "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
    let (status, _, _) = fetch(&url, Some(("multipart/form-data; boundary=b", multipart))).await;
    assert_eq!(status, 200);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM digest_unsubscribes")
            .await,
        1
    );
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'digest.unsubscribe'")
            .await,
        1
    );
    // Every later run leaves the guardian out.
    let after = run(&api, true).await;
    assert_eq!(after.digests, before.digests - 1);
    run(&api, false).await;
    assert_eq!(
        api.db
            .count(&format!(
                "SELECT COUNT(*) FROM digest_deliveries WHERE contact_id = {contact}"
            ))
            .await,
        0
    );
    // Invitations still go out.
    let chat = start_chat(&api, &[&par1]).await;
    assert_eq!(chat["invitations"][0]["status"], "queued", "{chat}");
    // Admins list and lift it; teachers may not.
    let admin = api.admin("nyc");
    let listed = api.get("/api/v1/digest/unsubscribes", Some(&admin)).await;
    assert_eq!(listed.ok()["items"][0]["contactId"], par1.as_str());
    assert_eq!(listed.body["items"][0]["source"], "guardian");
    let denied = api
        .get("/api/v1/digest/unsubscribes", Some(&api.teacher()))
        .await;
    assert_eq!(denied.status.as_u16(), 403);
    let lift = |token: String| {
        let app = api.app.clone();
        let path = format!("/api/v1/digest/unsubscribes/{par1}");
        async move {
            send(
                &app,
                axum::http::Request::delete(path)
                    .header("authorization", format!("Bearer {token}"))
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    assert_eq!(lift(admin.clone()).await.status.as_u16(), 204);
    assert_eq!(lift(admin.clone()).await.status.as_u16(), 404);
    assert_eq!(run(&api, true).await.digests, before.digests);
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM audit_log WHERE action = 'digest.resubscribe'")
            .await,
        1
    );
    // An admin may unsubscribe on a guardian's behalf.
    let added = post(
        &api,
        "/api/v1/digest/unsubscribes",
        &admin,
        Some(json!({"contactId": par1})),
        &[],
    )
    .await;
    assert_eq!(added.status.as_u16(), 204, "{}", added.body);
    let listed = api.get("/api/v1/digest/unsubscribes", Some(&admin)).await;
    assert_eq!(listed.ok()["items"][0]["source"], "admin");
}

async fn a_real_run_counts_what_it_queued(backend: Backend) {
    let api = Api::new(backend).await;
    enable_digest(&api).await;
    two_assignments(&api).await;
    let dry = run(&api, true).await;
    assert!(dry.children > 0 && dry.assignments > 0, "{dry:?}");
    let real = run(&api, false).await;
    assert_eq!(real.queued, dry.digests);
    assert_eq!(
        (real.children, real.assignments),
        (dry.children, dry.assignments),
        "a real run reports what it queued"
    );
    let again = run(&api, false).await;
    assert_eq!((again.queued, again.children, again.assignments), (0, 0, 0));
}

/// An RSA key pair from openssl: (PKCS#1 private PEM, base64 DER public key for DNS).
fn rsa_key(dir: &std::path::Path) -> (String, String) {
    let private = dir.join("dkim.pem");
    let status = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&private)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&private)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("openssl");
    assert!(public.status.success());
    use base64::Engine;
    (
        std::fs::read_to_string(&private).unwrap(),
        base64::engine::general_purpose::STANDARD.encode(public.stdout),
    )
}

#[test]
fn a_signed_digest_verifies_with_dkimpy() {
    if std::process::Command::new("python3")
        .args(["-c", "import dkim"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        assert!(
            std::env::var("REQUIRE_POSTGRES").is_err(),
            "dkimpy is missing (python3 -m pip install dkimpy)"
        );
        eprintln!("dkimpy missing: DKIM verification skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (private_key_pem, public) = rsa_key(dir.path());
    let mailer = Mailer::new(
        MailTarget::Files(dir.path().join("mail")),
        "Parent Connection <no-reply@pc.example>",
        1,
        std::time::Duration::from_secs(5),
    )
    .unwrap()
    .with_dkim(Some(&DkimSettings {
        selector: "pc2026".into(),
        domain: "pc.example".into(),
        private_key_pem,
    }))
    .unwrap();
    let message = mailer
        .build(&Outgoing {
            message_id: "<outbox.7@pc.example>".into(),
            to: "linda.ng@example.com".into(),
            subject: Some("NYC: assignments for Ava (week of Nov 28, 2026)".into()),
            body: "Hello Linda,\n\nFractions — due Monday.\n\nTo stop: https://pc.example/unsubscribe/abc\n".into(),
            list_unsubscribe: Some(ListUnsubscribe {
                url: "https://pc.example/unsubscribe/abc".into(),
                mailto: None,
            }),
            language: Some("en"),
        })
        .unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message.formatted()).unwrap();
    let script = format!(
        r#"
import sys, dkim
record = b"v=DKIM1; k=rsa; p={public}"
def dns(name, timeout=5):
    return record if name == b"pc2026._domainkey.pc.example." else None
message = open(sys.argv[1], "rb").read()
ok = dkim.verify(message, dnsfunc=dns)
tampered = message.replace(b"Fractions", b"Fractionz")
bad = dkim.verify(tampered, dnsfunc=dns)
signed = dkim.DKIM(message)
sys.stdout.write("%s %s" % (ok, bad))
"#
    );
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "True False",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(message.formatted()).unwrap();
    let signature = text.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
    let h = signature
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_lowercase();
    assert!(
        h.contains("list-unsubscribe") && h.contains("list-unsubscribe-post"),
        "RFC 8058 wants both headers signed: {h}"
    );
}
