//! Outbound requests (issue 19, item 5): OneRoster and SMS gateway URLs that reach loopback,
//! private or link-local addresses are refused unless `outbound.allow_private`; names are
//! checked when resolved; redirects are not followed; bodies past the cap are refused.

use crate::db_tests;
use crate::support::{Backend, TestDb};
use parent_connection::config::{OutboundConfig, SmsConfig};
use parent_connection::domain::TenantId;
use parent_connection::outbound::{OutboundError, Policy};
use parent_connection::outbox::Outgoing;
use parent_connection::outbox::sms::SmsGateway;
use parent_connection::sync::oneroster::client::{Client, ClientSettings, ProviderError};
use parent_connection::sync::oneroster::connection::{self, ConnectionError, NewConnection};
use parent_connection::sync::oneroster::connection::{Connection, Secret};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn outbound(allow_private: bool, max_response_bytes: usize) -> OutboundConfig {
    OutboundConfig {
        allow_private,
        max_response_bytes,
    }
}

fn sms_config(url: &str) -> SmsConfig {
    let mut sms = crate::support::config().sms;
    sms.url = url.into();
    sms.account_sid = "AC123".into();
    sms.auth_token = "sms-auth-token-value".into();
    sms.from = "+12025550100".into();
    sms
}

fn connection(base: &str) -> Connection {
    Connection {
        tenant_id: TenantId(1),
        base_url: format!("{base}/ims/oneroster/v1p1"),
        token_url: format!("{base}/oauth/token"),
        client_id: "client".into(),
        client_secret: Secret::new("client-secret"),
        page_size: 100,
        watermark: None,
    }
}

fn client(base: &str, outbound: &OutboundConfig) -> Result<Client, ProviderError> {
    let mut config = crate::support::config().oneroster;
    config.max_retries = 0;
    Client::new(
        &connection(base),
        ClientSettings::new(&config, 100).with_outbound(outbound),
    )
}

fn text(to: &str) -> Outgoing {
    Outgoing {
        message_id: "<outbox.1@pc.example>".into(),
        to: to.into(),
        subject: None,
        body: "hello".into(),
        list_unsubscribe: None,
        language: None,
    }
}

/// Loopback, private and metadata addresses are refused by default, for both clients,
/// with a line naming the setting; `outbound.allow_private` allows them.
#[tokio::test]
async fn internal_addresses_are_refused_unless_allowed() {
    let deny = outbound(false, 1 << 20);
    for base in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://[::1]:9",
        "http://10.0.0.7",
        "http://169.254.169.254",
    ] {
        let refused = SmsGateway::from_config(&sms_config(base), &deny).unwrap_err();
        assert!(
            refused.contains("outbound.allow_private"),
            "{base}: {refused}"
        );
        let refused = client(base, &deny).unwrap_err();
        assert_eq!(
            refused.code(),
            "provider_address_refused",
            "{base}: {refused}"
        );
    }
    let allow = outbound(true, 1 << 20);
    assert!(
        SmsGateway::from_config(&sms_config("http://127.0.0.1:9"), &allow)
            .unwrap()
            .is_some()
    );
    assert!(client("http://127.0.0.1:9", &allow).is_ok());
}

/// A name is checked on the address it resolves to, at every connection (a custom
/// resolver): `localhost` resolves to loopback and is refused there, not only by its name.
#[tokio::test]
async fn names_are_checked_when_they_are_resolved() {
    use reqwest::dns::Resolve;
    let resolver = Policy::default().resolver();
    let refused = match resolver.resolve("localhost".parse().unwrap()).await {
        Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
        Err(e) => e,
    };
    let refused = refused
        .downcast_ref::<OutboundError>()
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(
        matches!(refused, OutboundError::Internal { .. }),
        "{refused}"
    );
    let allowed = Policy {
        allow_private: true,
    }
    .resolver();
    assert!(allowed.resolve("localhost".parse().unwrap()).await.is_ok());
}

/// A 3xx is an error naming where it pointed; the target is never asked.
#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = format!("{}/elsewhere", server.uri());
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", elsewhere.as_str()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", elsewhere.as_str()))
        .mount(&server)
        .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .expect(0)
        .mount(&server)
        .await;
    let allow = outbound(true, 1 << 20);
    let mut oneroster = client(&server.uri(), &allow).unwrap();
    let failed = oneroster.user("u1").await.unwrap_err();
    assert_eq!(failed.code(), "provider_redirect", "{failed}");
    assert!(failed.to_string().contains("/elsewhere"), "{failed}");

    let sms = SmsGateway::from_config(&sms_config(&server.uri()), &allow)
        .unwrap()
        .unwrap();
    let failed = sms.send(&text("+12025550199")).await.unwrap_err();
    assert!(!failed.transient, "{failed:?}");
    assert!(failed.reason.contains("redirect"), "{failed:?}");
    server.verify().await;
}

/// A body larger than `outbound.max_response_bytes` fails with a clear error instead of
/// being read (or cut and reported as malformed).
#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = MockServer::start().await;
    let big = format!(
        "{{\"access_token\":\"{}\",\"expires_in\":3600}}",
        "x".repeat(4096)
    );
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string(big.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(400).set_body_string(big))
        .mount(&server)
        .await;
    let capped = outbound(true, 1024);
    let mut oneroster = client(&server.uri(), &capped).unwrap();
    let failed = oneroster.user("u1").await.unwrap_err();
    assert_eq!(failed.code(), "provider_too_large", "{failed}");
    assert!(failed.to_string().contains("1024 bytes"), "{failed}");

    let sms = SmsGateway::from_config(&sms_config(&server.uri()), &capped)
        .unwrap()
        .unwrap();
    let failed = sms.send(&text("+12025550199")).await.unwrap_err();
    assert!(
        failed.reason.contains("larger than 1024 bytes"),
        "{failed:?}"
    );
}

/// Storing a connection whose URLs reach internal addresses is refused (the page, the API
/// and `oneroster connect` all store through `connection::save`).
async fn a_connection_to_an_internal_address_is_not_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let tenant = db.tenant("nyc").await;
    let mut config = crate::support::config();
    config.oneroster.secret_key = "ab".repeat(32);
    config.outbound.allow_private = false;
    for (base, token) in [
        (
            "http://127.0.0.1:8080/ims/oneroster/v1p1",
            "https://sis.example.org/token",
        ),
        (
            "https://sis.example.org/ims/oneroster/v1p1",
            "http://169.254.169.254/token",
        ),
        (
            "http://localhost/ims/oneroster/v1p1",
            "http://localhost/token",
        ),
    ] {
        let new = NewConnection {
            base_url: base.into(),
            token_url: token.into(),
            client_id: "client".into(),
            client_secret: Secret::new("client-secret"),
            page_size: None,
        };
        match connection::save(&db.conn, &config, tenant.id, &new, "test").await {
            Err(ConnectionError::Invalid(message)) => {
                assert!(message.contains("outbound.allow_private"), "{message}")
            }
            other => panic!("{base} {token}: {other:?}"),
        }
    }
}

db_tests!(a_connection_to_an_internal_address_is_not_stored);
