//! Rate limits (docs/api.md, "Rate limits"): the client address behind trusted proxies
//! (`X-Forwarded-For`, `Forwarded`, IPv6), spoofed headers from untrusted peers, the pages,
//! the per-subject budget shared by a subject's tokens, made-up tokens, and the defaults
//! for a school of 600 teachers behind one address.
//!
//! Buckets are probed with `DELETE /api/v1/classes`: past the limiters it is a 405 that
//! touches no database, so the probes are fast; refused, it is a 429.

use crate::api_support::*;
use crate::db_tests;
use crate::support::Backend;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use parent_connection::auth::Role;
use parent_connection::auth::claims::Claims;
use parent_connection::config::Config;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

db_tests!(
    trusted_proxies_limit_each_real_client,
    untrusted_peers_are_limited_on_the_peer_whatever_they_send,
    forwarded_header_forms,
    ipv6_clients_and_proxies,
    pages_use_the_same_client_address,
    one_subject_shares_one_bucket_across_its_tokens,
    made_up_tokens_count_against_the_address,
    six_hundred_teachers_behind_one_address_under_the_defaults,
);

const PROBE_PATH: &str = "/api/v1/classes";

/// Where a request comes from and what it carries.
#[derive(Debug, Clone)]
struct Probe {
    peer: SocketAddr,
    headers: Vec<(String, String)>,
    token: Option<String>,
}

/// A request from TCP peer `peer` (`10.0.0.1:5000`, `[fd00::1]:443`) with `headers`.
fn from(peer: &str, headers: &[(&str, &str)]) -> Probe {
    Probe {
        peer: peer.parse().unwrap(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        token: None,
    }
}

impl Probe {
    /// The same, with a bearer token.
    fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }
}

/// Sends `method path` as `probe` describes.
async fn call(api: &Api, method: &str, path: &str, probe: &Probe) -> Reply {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in &probe.headers {
        builder = builder.header(name, value);
    }
    if let Some(token) = &probe.token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(probe.peer));
    let response = api.app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

/// True when the limiters refuse `probe` (429); false when it gets past them (405).
async fn refused(api: &Api, probe: &Probe) -> bool {
    let reply = call(api, "DELETE", PROBE_PATH, probe).await;
    match reply.status {
        StatusCode::TOO_MANY_REQUESTS => {
            assert_eq!(reply.error(429), "rate_limited");
            assert!(reply.headers.contains_key("retry-after"));
            true
        }
        StatusCode::METHOD_NOT_ALLOWED => false,
        other => panic!("{probe:?}: {other} {}", reply.body),
    }
}

/// Spends `probe`'s bucket: probes until refused; returns how many got past.
async fn spend(api: &Api, probe: &Probe) -> usize {
    for passed in 0..200 {
        if refused(api, probe).await {
            return passed;
        }
    }
    panic!("{probe:?} was never refused");
}

/// True when `other` is refused right after `probe`'s bucket is spent. The test rates
/// refill one request a second: should a second pass between the two on a busy machine,
/// the attempt is repeated (at most three times; a separate bucket with a burst of at least
/// three is never refused by this).
async fn shares_bucket(api: &Api, probe: &Probe, other: &Probe) -> bool {
    for _ in 0..3 {
        spend(api, probe).await;
        if refused(api, other).await {
            return true;
        }
    }
    false
}

/// The test API with per-address limits of `burst` at 1/s, `change` applied after.
async fn limited_api(backend: Backend, burst: u32, change: impl FnOnce(&mut Config)) -> Api {
    Api::with(backend, |config| {
        config.api.client_requests_per_second = 1;
        config.api.client_burst = burst;
        change(config);
    })
    .await
}

async fn trusted_proxies_limit_each_real_client(backend: Backend) {
    let api = limited_api(backend, 5, |config| {
        config.api.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    let xff = "x-forwarded-for";
    let teacher_a = from("10.0.0.1:5000", &[(xff, "203.0.113.7")]);
    let passed = spend(&api, &teacher_a).await;
    assert!((5..=7).contains(&passed), "{passed}");
    // The rightmost address that is not a trusted proxy is the client: whatever the client
    // wrote to the left, and whichever proxies relayed it.
    for same in [
        from("10.0.0.2:6000", &[(xff, "203.0.113.7")]),
        from("10.0.0.1:5000", &[(xff, "198.51.100.1, 203.0.113.7")]),
        from("10.0.0.1:5000", &[(xff, "203.0.113.7, 10.9.9.9")]),
        from(
            "10.0.0.1:5000",
            &[(xff, "198.51.100.1"), (xff, "203.0.113.7")],
        ),
        from("[::ffff:10.0.0.3]:5000", &[(xff, "203.0.113.7:4711")]),
    ] {
        assert!(shares_bucket(&api, &teacher_a, &same).await, "{same:?}");
    }
    // Another teacher behind the same proxy has a bucket of their own, so has the proxy.
    let teacher_b = from("10.0.0.1:5000", &[(xff, "203.0.113.8")]);
    assert!(!refused(&api, &teacher_b).await);
    assert!(!refused(&api, &from("10.0.0.1:5000", &[])).await);
    assert!(
        !refused(
            &api,
            &from("10.0.0.1:5000", &[(xff, "203.0.113.7, unknown")])
        )
        .await,
        "an entry that is not an address is keyed on the proxy that wrote it"
    );
    let reply = call(&api, "GET", PROBE_PATH, &teacher_b.token(&api.teacher())).await;
    reply.ok();
}

async fn untrusted_peers_are_limited_on_the_peer_whatever_they_send(backend: Backend) {
    let api = limited_api(backend, 5, |config| {
        config.api.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    let xff = "x-forwarded-for";
    let spoofer = from("192.0.2.50:7000", &[(xff, "203.0.113.20")]);
    spend(&api, &spoofer).await;
    for same in [
        from("192.0.2.50:7001", &[(xff, "203.0.113.21")]),
        from("192.0.2.50:7002", &[(xff, "10.0.0.1")]),
        from("192.0.2.50:7003", &[("forwarded", "for=203.0.113.22")]),
        from("192.0.2.50:7004", &[]),
        // Through a trusted proxy, the spoofer is the address the proxy reports.
        from("10.0.0.1:5000", &[(xff, "203.0.113.20, 192.0.2.50")]),
    ] {
        assert!(shares_bucket(&api, &spoofer, &same).await, "{same:?}");
    }
    // The address it pretended to be was never charged.
    assert!(!refused(&api, &from("10.0.0.1:5000", &[(xff, "203.0.113.20")])).await);
    assert!(!refused(&api, &from("192.0.2.51:7000", &[(xff, "203.0.113.20")])).await);

    // With no trusted proxy (the default) nobody's headers are read.
    let api = limited_api(backend, 5, |_| {}).await;
    let proxy = from("127.0.0.1:9000", &[(xff, "203.0.113.30")]);
    spend(&api, &proxy).await;
    let other = from("127.0.0.1:9001", &[(xff, "203.0.113.31")]);
    assert!(shares_bucket(&api, &proxy, &other).await);
}

async fn forwarded_header_forms(backend: Backend) {
    let api = limited_api(backend, 5, |config| {
        config.api.trusted_proxies = vec!["10.0.0.0/8".into(), "fd00::/8".into()];
        config.api.client_address_header = "forwarded".into();
    })
    .await;
    let fwd = "forwarded";
    let client = from("10.0.0.1:5000", &[(fwd, "for=192.0.2.60;proto=https")]);
    spend(&api, &client).await;
    for same in [
        from("10.0.0.1:5000", &[(fwd, "For=\"192.0.2.60:4711\"")]),
        from("10.0.0.1:5000", &[(fwd, "for=6.6.6.6, for=192.0.2.60")]),
        from("10.0.0.1:5000", &[(fwd, "for=192.0.2.60, for=10.1.1.1")]),
        from(
            "10.0.0.1:5000",
            &[(fwd, "for=6.6.6.6"), (fwd, "for=192.0.2.60")],
        ),
        from(
            "[fd00::1]:443",
            &[(fwd, "proto=https;for=192.0.2.60;host=\"a,b;c\"")],
        ),
    ] {
        assert!(shares_bucket(&api, &client, &same).await, "{same:?}");
    }
    assert!(!refused(&api, &from("10.0.0.1:5000", &[(fwd, "for=192.0.2.61")])).await);

    // Quoted IPv6 with a port, keyed per /64.
    let v6 = from(
        "10.0.0.1:5000",
        &[(fwd, "for=\"[2001:db8:cafe::17]:4711\"")],
    );
    spend(&api, &v6).await;
    let same = from("10.0.0.1:5000", &[(fwd, "for=\"[2001:db8:cafe::18]\"")]);
    assert!(shares_bucket(&api, &v6, &same).await);
    let other = from("10.0.0.1:5000", &[(fwd, "for=\"[2001:db8:cafe:1::17]\"")]);
    assert!(!refused(&api, &other).await);

    // `unknown`, obfuscated and missing identifiers, and X-Forwarded-For (not the
    // configured header), leave the request on the proxy that sent it.
    let proxy = from("10.0.0.9:5000", &[]);
    spend(&api, &proxy).await;
    for same in [
        from("10.0.0.9:5000", &[(fwd, "for=192.0.2.70, for=unknown")]),
        from("10.0.0.9:5000", &[(fwd, "for=192.0.2.70, for=_hidden")]),
        from("10.0.0.9:5000", &[(fwd, "for=192.0.2.70, proto=https")]),
        from("10.0.0.9:5000", &[("x-forwarded-for", "192.0.2.70")]),
    ] {
        assert!(shares_bucket(&api, &proxy, &same).await, "{same:?}");
    }
    assert!(!refused(&api, &from("10.0.0.9:5000", &[(fwd, "for=192.0.2.70")])).await);
}

async fn ipv6_clients_and_proxies(backend: Backend) {
    let api = limited_api(backend, 5, |config| {
        config.api.trusted_proxies = vec!["fd00::/8".into()];
    })
    .await;
    let xff = "x-forwarded-for";
    let client = from("[fd00::1]:443", &[(xff, "2001:db8::1")]);
    spend(&api, &client).await;
    for same in [
        from("[fd00::2]:443", &[(xff, "[2001:db8::2]:4711")]),
        from("[fd00::1]:443", &[(xff, "2001:db8::ffff:1, fd00::7")]),
    ] {
        assert!(shares_bucket(&api, &client, &same).await, "{same:?}");
    }
    assert!(!refused(&api, &from("[fd00::1]:443", &[(xff, "2001:db8:0:1::1")])).await);
    assert!(!refused(&api, &from("[fd00::1]:443", &[(xff, "192.0.2.80")])).await);

    // An untrusted IPv6 peer: its /64, whatever it claims.
    let peer = from("[2001:db8:1::5]:5000", &[(xff, "2001:db8:2::1")]);
    spend(&api, &peer).await;
    let same = from("[2001:db8:1::6]:5000", &[(xff, "2001:db8:3::1")]);
    assert!(shares_bucket(&api, &peer, &same).await);
    assert!(!refused(&api, &from("[2001:db8:2::1]:5000", &[])).await);
}

async fn pages_use_the_same_client_address(backend: Backend) {
    let api = limited_api(backend, 3, |config| {
        config.api.trusted_proxies = vec!["10.0.0.0/8".into()];
    })
    .await;
    let page = |probe: &Probe| {
        let probe = probe.clone();
        let api = &api;
        async move { call(api, "GET", "/static/web.css", &probe).await.status }
    };
    let xff = "x-forwarded-for";
    let guardian = from("10.0.0.1:5000", &[(xff, "203.0.113.40")]);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(page(&guardian).await);
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(
        page(&from("10.0.0.1:5000", &[(xff, "203.0.113.41")])).await,
        StatusCode::OK
    );
    // An untrusted peer's header changes nothing.
    let spoofer = from("192.0.2.90:5000", &[(xff, "203.0.113.42")]);
    for _ in 0..10 {
        page(&spoofer).await;
    }
    let again = from("192.0.2.90:5001", &[(xff, "203.0.113.43")]);
    let mut refused_again = false;
    for _ in 0..3 {
        for _ in 0..5 {
            page(&spoofer).await;
        }
        refused_again |= page(&again).await == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(refused_again);
    // The API keeps its own buckets.
    assert!(!refused(&api, &guardian).await);
}

/// Claims of `sub` in `tenant` with token id `jti` (so two tokens differ).
fn claims_with_id(api: &Api, tenant: &str, sub: &str, jti: &str) -> Claims {
    let mut claims = claims(&api.config, tenant, sub, &["teacher"]);
    claims.jti = Some(jti.into());
    claims
}

async fn one_subject_shares_one_bucket_across_its_tokens(backend: Backend) {
    let api = Api::with(backend, |config| {
        config.api.token_requests_per_second = 1;
        config.api.token_burst = 3;
    })
    .await;
    let secret = SECRET.as_bytes();
    let first = hs256(&claims_with_id(&api, "nyc", "tch-1", "one"), secret);
    let second = hs256(&claims_with_id(&api, "nyc", "tch-1", "two"), secret);
    let rs256 = rs256(&claims_with_id(&api, "nyc", "tch-1", "three"), "a", None);
    assert!(first != second && second != rs256);
    let at = |token: &str| from("192.0.2.1:5000", &[]).token(token);
    // The first token spends the bucket; the others, and a fresh token of the person, are
    // refused with it.
    for other in [&second, &rs256, &api.teacher()] {
        assert!(shares_bucket(&api, &at(&first), &at(other)).await);
    }
    let reply = call(&api, "GET", PROBE_PATH, &at(&second)).await;
    assert_eq!(reply.error(429), "rate_limited");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");

    // Another person, the same subject in another tenant, an app with that name, and
    // another address of the spent subject's colleagues are their own buckets.
    let colleague = hs256(&claims_with_id(&api, "nyc", "tch-2", "x"), secret);
    let elsewhere = hs256(&claims_with_id(&api, "bos", "tch-1", "x"), secret);
    let mut app = claims_with_id(&api, "nyc", "tch-1", "x");
    app.idtyp = Some("app".into());
    app.roles.clear();
    app.scp = Some("EduRoster.Read.All".into());
    let app = hs256(&app, secret);
    for token in [&colleague, &elsewhere, &app] {
        assert!(!refused(&api, &at(token)).await);
    }
    call(&api, "GET", PROBE_PATH, &at(&colleague)).await.ok();
    // Refused by its subject, not its address: the same token from elsewhere is refused.
    assert!(refused(&api, &from("198.51.100.1:5000", &[]).token(&first)).await);
}

async fn made_up_tokens_count_against_the_address(backend: Backend) {
    let api = limited_api(backend, 5, |config| {
        config.api.token_requests_per_second = 1;
        config.api.token_burst = 2;
    })
    .await;
    let attacker = "192.0.2.66:5000";
    let forged = |i: usize| {
        // A token for a real subject, signed with the wrong secret, and plain junk.
        let claims = claims_with_id(&api, "nyc", "tch-1", &i.to_string());
        if i.is_multiple_of(2) {
            hs256(&claims, b"not-the-secret-0123456789abcdef-0123456789")
        } else {
            format!("junk.{i}.token")
        }
    };
    let mut statuses = Vec::new();
    for i in 0..30 {
        let reply = call(
            &api,
            "GET",
            PROBE_PATH,
            &from(attacker, &[]).token(&forged(i)),
        )
        .await;
        if reply.status == StatusCode::UNAUTHORIZED {
            assert_eq!(reply.code(), "invalid_token");
        }
        statuses.push(reply.status.as_u16());
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    // Each made-up token would have had a bucket of 2 of its own: the address's 5 ran out.
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!((5..=8).contains(&(statuses.len() - 1)), "{statuses:?}");
    // The real person was not charged for the forgeries of their subject.
    let teacher = from("192.0.2.67:5000", &[]).token(&api.teacher());
    call(&api, "GET", PROBE_PATH, &teacher).await.ok();
    call(&api, "GET", PROBE_PATH, &teacher).await.ok();
}

async fn six_hundred_teachers_behind_one_address_under_the_defaults(backend: Backend) {
    let defaults = Config::defaults().unwrap().api;
    let api = Api::with(backend, |config| {
        config.api.client_requests_per_second = defaults.client_requests_per_second;
        config.api.client_burst = defaults.client_burst;
        config.api.token_requests_per_second = defaults.token_requests_per_second;
        config.api.token_burst = defaults.token_burst;
    })
    .await;
    let tokens: Vec<String> = (0..600)
        .map(|i| api.user("nyc", &format!("teacher-{i}"), &[Role::Teacher]))
        .collect();
    // Each opens the app from the school's one address, all within the same few seconds:
    // one real read and three probes each (the probes count like any request and are
    // cheaper to run), 2,400 requests, within the address's burst and each teacher's own.
    let school = "198.51.100.10:40000";
    for (i, token) in tokens.iter().enumerate() {
        let teacher = from(school, &[]).token(token);
        let reply = call(&api, "GET", PROBE_PATH, &teacher).await;
        assert_eq!(reply.status, StatusCode::OK, "teacher {i}: {}", reply.body);
    }
    for round in 0..3 {
        for (i, token) in tokens.iter().enumerate() {
            let teacher = from(school, &[]).token(token);
            assert!(!refused(&api, &teacher).await, "teacher {i}, round {round}");
        }
    }
    // One of them past their own budget is refused, the school is not.
    let busy = from(school, &[]).token(&tokens[0]);
    spend(&api, &busy).await;
    let reply = call(
        &api,
        "GET",
        PROBE_PATH,
        &from(school, &[]).token(&tokens[1]),
    )
    .await;
    reply.ok();
}
