//! The SMS gateway client against Twilio's own API description: Prism
//! (`@stoplight/prism-cli`, npm) serves `tests/fixtures/twilio/messages.openapi.json` with
//! request validation on (`--errors`: an invalid request is answered 422, an unauthenticated
//! one 401), and the dispatcher sends real invitations to it. The test is skipped when
//! `prism` is not installed, unless `REQUIRE_PRISM` is set (as `scripts/test.sh` does).

use crate::api_support::*;
use crate::approvals::{contact_id, patch_settings, post};
use crate::db_tests;
use crate::support::Backend;
use parent_connection::auth::Role;
use parent_connection::outbox::dispatcher::Stats;
use serde_json::json;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

db_tests!(
    sms_invitations_pass_twilios_own_api_description,
    a_messaging_service_sid_passes_as_messaging_service_sid,
    prism_refuses_a_request_twilio_would_refuse,
    the_sender_field_follows_the_shape_of_sms_from,
);

/// A valid-shaped Twilio account SID (`AC` + 32 hex digits), as the description demands.
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// A Prism mock server on a free loopback port, stopped when dropped.
struct Prism {
    child: Child,
    url: String,
}

impl Prism {
    /// Starts Prism, or `None` when it is not installed and not required.
    fn start() -> Option<Self> {
        let program = std::env::var("PRISM").unwrap_or_else(|_| "prism".into());
        if Command::new(&program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var("REQUIRE_PRISM").is_ok() {
                panic!("REQUIRE_PRISM is set but `{program}` cannot be run");
            }
            eprintln!("prism not installed: the Twilio description test is skipped");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let spec = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/twilio/messages.openapi.json"
        );
        let child = Command::new(&program)
            .args([
                "mock",
                "--errors",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                spec,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prism starts");
        let prism = Prism {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "prism did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(prism)
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a chat with par-1 on a tenant that prefers SMS, with the gateway at `gateway`,
/// and dispatches what was queued.
async fn send_one_sms(backend: Backend, gateway: &str, account_sid: &str, from: &str) -> Stats {
    let files = tempfile::tempdir().unwrap();
    let (url, sid, from) = (
        gateway.to_string(),
        account_sid.to_string(),
        from.to_string(),
    );
    let mail = format!("file://{}", files.path().display());
    let api = Api::with(backend, move |config| {
        config.mail.url = mail;
        config.sms.url = url;
        config.sms.account_sid = sid;
        config.sms.auth_token = "token-secret".into();
        config.sms.from = from;
        config.sms.timeout_seconds = 10;
    })
    .await;
    let tenant_admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    patch_settings(
        &api,
        &tenant_admin,
        json!({"preferredInviteChannel": "sms"}),
    )
    .await
    .ok();
    let par1 = contact_id(&api, "nyc", "par-1").await;
    let chat = post(
        &api,
        "/api/v1/chats",
        &api.teacher(),
        Some(json!({"studentId": "stu-1", "contactIds": [par1]})),
        &[],
    )
    .await;
    assert_eq!(
        chat.body["invitations"][0]["channel"], "sms",
        "{}",
        chat.body
    );
    let stats = parent_connection::server::dispatcher(api.db.conn.clone(), &api.config)
        .expect("dispatcher")
        .drain()
        .await
        .expect("dispatch");
    assert_eq!(stats.claimed, 1, "{stats:?}");
    stats
}

async fn sms_invitations_pass_twilios_own_api_description(backend: Backend) {
    let Some(prism) = Prism::start() else { return };
    let stats = send_one_sms(backend, &prism.url, ACCOUNT_SID, "+15005550006").await;
    assert_eq!(stats.sent, 1, "Prism accepted the request: {stats:?}");
}

async fn a_messaging_service_sid_passes_as_messaging_service_sid(backend: Backend) {
    let Some(prism) = Prism::start() else { return };
    let stats = send_one_sms(
        backend,
        &prism.url,
        ACCOUNT_SID,
        "MG0123456789abcdef0123456789abcdef",
    )
    .await;
    assert_eq!(stats.sent, 1, "Prism accepted the request: {stats:?}");
}

/// The control: an account SID of the wrong shape is refused by Prism (422), so the
/// passes above mean the requests were validated.
async fn prism_refuses_a_request_twilio_would_refuse(backend: Backend) {
    let Some(prism) = Prism::start() else { return };
    let stats = send_one_sms(backend, &prism.url, "AC123", "+15005550006").await;
    assert_eq!(stats.sent, 0, "{stats:?}");
    assert_eq!(stats.failed, 1, "a 422 is final: {stats:?}");
}

/// What Prism cannot tell: which form field carries the sender. A recording gateway shows
/// `From` for a number and `MessagingServiceSid` (and no `From`) for a service SID.
async fn the_sender_field_follows_the_shape_of_sms_from(backend: Backend) {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for (from, field, absent) in [
        ("+15005550006", "From", "MessagingServiceSid"),
        (
            "MG0123456789abcdef0123456789abcdef",
            "MessagingServiceSid",
            "From",
        ),
    ] {
        let gateway = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SM1"})))
            .mount(&gateway)
            .await;
        let stats = send_one_sms(backend, &gateway.uri(), ACCOUNT_SID, from).await;
        assert_eq!(stats.sent, 1, "{stats:?}");
        let requests = gateway.received_requests().await.unwrap();
        let body = String::from_utf8_lossy(&requests[0].body).to_string();
        let fields: Vec<&str> = body
            .split('&')
            .filter_map(|pair| pair.split_once('=').map(|(k, _)| k))
            .collect();
        assert!(fields.contains(&field), "{field} in {body}");
        assert!(!fields.contains(&absent), "no {absent} in {body}");
    }
}
