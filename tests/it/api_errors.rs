//! The error contract, probes, the OpenAPI document, request ids, rate limits, and the
//! real server on a socket.

use crate::api_support::*;
use crate::db_tests;
use crate::support::Backend;
use axum::body::Body;
use axum::http::{Method, Request};
use std::net::SocketAddr;

async fn probes_and_a_complete_openapi_document(backend: Backend) {
    let api = Api::new(backend).await;
    assert_eq!(api.get("/healthz", None).await.ok()["status"], "ok");
    assert_eq!(api.get("/readyz", None).await.ok()["status"], "ready");
    let doc = api.get("/openapi.json", None).await.ok().clone();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let routes = parent_connection::api::routes();
    for (method, path) in &routes {
        let path = path.as_str();
        let method = method.as_str().to_lowercase();
        let method = method.as_str();
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} missing from {:?}", paths.keys()))[method];
        assert!(operation.is_object(), "{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        if path.starts_with("/api") || path.starts_with("/education") {
            // The SMS gateway's webhook is not rate limited per client (a burst of STOPs).
            let webhook = path.starts_with("/api/v1/sms/inbound");
            for status in ["401", "429"]
                .into_iter()
                .filter(|s| !(webhook && *s == "429"))
            {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            // The SMS gateway's webhook carries a shared secret, not a bearer token.
            if !path.starts_with("/api/v1/sms/inbound") {
                assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]));
            }
        }
    }
    assert_eq!(
        paths.len(),
        routes
            .iter()
            .map(|r| &r.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for schema in [
        "ErrorBody",
        "ContactItem",
        "ClassPage",
        "EducationUser",
        "ImportRun",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema} missing"
        );
    }
}

/// Every route of the table is served with its method, behind its group's layers, and no
/// other method is: without a token, no declared route answers as the fallback (404 "no
/// such route") or with 405 (`api_auth` checks that the bearer routes answer 401); with one,
/// every undeclared method of a declared path answers 405.
async fn every_declared_route_is_served(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.admin("nyc");
    let routes = declared_routes();
    assert!(routes.len() > 50, "{}", routes.len());
    for route in &routes {
        let (method, uri) = (&route.method, &route.uri);
        let reply = api.send(route.bare_request()).await;
        assert_ne!(reply.status.as_u16(), 405, "{method} {uri}: {}", reply.body);
        assert_ne!(
            reply.body["error"]["message"], "no such route",
            "{method} {uri}"
        );
    }
    for route in &routes {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let declared = routes
                .iter()
                .any(|r| r.path == route.path && r.method == method);
            if declared {
                continue;
            }
            let request = Request::builder()
                .method(method.clone())
                .uri(&route.uri)
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap();
            let reply = api.send(request).await;
            assert_eq!(
                reply.error(405),
                "method_not_allowed",
                "{method} {}",
                route.uri
            );
        }
    }
}

async fn unknown_routes_wrong_methods_and_request_ids(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.admin("nyc");
    let reply = api.get("/api/v1/nope", Some(&admin)).await;
    assert_eq!(reply.error(404), "not_found");
    assert!(reply.headers.contains_key("x-request-id"));
    for (method, path) in [
        ("DELETE", "/api/v1/classes"),
        ("POST", "/healthz"),
        ("PUT", "/api/v1/imports"),
        ("POST", "/education/users/stu-1"),
    ] {
        let reply = api
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .header("authorization", format!("Bearer {admin}"))
                    .header("content-type", "application/json")
                    .body(Body::from("{not json"))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.error(405), "method_not_allowed", "{method} {path}");
        assert!(reply.headers.contains_key("allow"), "{method} {path}");
    }
    // A cursor paged by row id is digits only, as the document's pattern says.
    for cursor in ["-5", "+5", "1e3", "0x10", "9999999999999999999"] {
        for path in [
            "/api/v1/disclosures?studentId=stu-1",
            "/api/v1/digest/deliveries?limit=5",
        ] {
            let encoded = cursor.replace('+', "%2B");
            let reply = api
                .get(&format!("{path}&cursor={encoded}"), Some(&admin))
                .await;
            assert_eq!(reply.error(400), "invalid_query", "{path} cursor {cursor}");
        }
    }
    // An oversized body, even where no body is read.
    let reply = api
        .send(
            Request::get("/api/v1/classes")
                .header("authorization", format!("Bearer {admin}"))
                .header("content-length", (2 * 1024 * 1024).to_string())
                .body(Body::from(vec![b'x'; 2 * 1024 * 1024]))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.error(413), "payload_too_large");
    // A request id the client sends comes back; otherwise one is made.
    let reply = api
        .send(
            Request::get("/healthz")
                .header("x-request-id", "trace-me-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "trace-me-42");
    let reply = api.get("/healthz", None).await;
    assert_eq!(reply.headers["x-request-id"].len(), 36);
}

/// PostgreSQL cannot store U+0000 in text: the contract fuzzer found a 500 there. Every JSON
/// body, path and query string that holds it is refused the same way on both engines.
async fn the_nul_character_is_refused_everywhere(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.admin("nyc");
    let put = |body: &str| {
        Request::put("/api/v1/oneroster/connection")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let reply = api
        .send(put(
            r#"{"baseUrl":"https://sis.example/x\u0000","tokenUrl":"https://sis.example/t","clientId":"a","clientSecret":"b"}"#,
        ))
        .await;
    assert_eq!(reply.error(400), "invalid_body", "{}", reply.body);
    assert!(reply.body.to_string().contains("NUL"), "{}", reply.body);
    let reply = api.send(put(r#"{"nested":{"k\u0000":1}}"#)).await;
    assert_eq!(reply.error(400), "invalid_body", "keys too: {}", reply.body);
    let reply = api
        .get("/api/v1/students/stu%00-1/contacts", Some(&admin))
        .await;
    assert_eq!(reply.error(400), "invalid_path");
    let reply = api.get("/api/v1/audit?actor=a%00b", Some(&admin)).await;
    assert_eq!(reply.error(400), "invalid_query");
    assert_eq!(
        api.db
            .count("SELECT COUNT(*) FROM oneroster_connections")
            .await,
        0,
        "nothing stored"
    );
}

async fn server_errors_carry_a_request_id_and_no_detail(backend: Backend) {
    let api = Api::new(backend).await;
    let admin = api.admin("nyc");
    api.db.conn.clone().close().await.expect("close the pool");
    let reply = api.get("/readyz", None).await;
    assert_eq!(reply.error(503), "database_unavailable");
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(reply.body["error"]["details"]["requestId"], id);
    let reply = api
        .get("/api/v1/students/stu-1/contacts", Some(&admin))
        .await;
    // A closed pool is a database that cannot be used (issue 20): 503, never 500.
    assert_eq!(reply.error(503), "database_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(reply.body["error"]["details"]["requestId"], id);
    let text = reply.body.to_string().to_lowercase();
    for leak in ["pool", "sqlx", "sqlite", "postgres", "connection", "closed"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

async fn rate_limits_per_token_and_per_client(backend: Backend) {
    let api = Api::with(backend, |config| {
        config.api.token_requests_per_second = 1;
        config.api.token_burst = 2;
    })
    .await;
    let teacher = api.teacher();
    let path = "/api/v1/classes";
    api.get(path, Some(&teacher)).await.ok();
    api.get(path, Some(&teacher)).await.ok();
    let reply = api.get(path, Some(&teacher)).await;
    assert_eq!(reply.error(429), "rate_limited");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(reply.body["error"]["details"]["retryAfterSeconds"], retry);
    // Another token has its own budget; probes are not limited.
    api.get(path, Some(&api.admin("nyc"))).await.ok();
    for _ in 0..5 {
        api.get("/healthz", None).await.ok();
    }

    let api = Api::with(backend, |config| {
        config.api.client_requests_per_second = 1;
        config.api.client_burst = 3;
    })
    .await;
    for i in 0..3 {
        api.get(path, Some(&api.user("nyc", &format!("t{i}"), &[])))
            .await;
    }
    let reply = api.get(path, Some(&api.admin("nyc"))).await;
    assert_eq!(reply.error(429), "rate_limited");
    assert!(reply.headers.contains_key("retry-after"));
}

async fn the_real_server_on_a_socket(backend: Backend) {
    let api = Api::new(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = api.app.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    // reqwest's rustls has no built-in crypto provider: the app installs ring's.
    parent_connection::sync::oneroster::client::install_crypto_provider();
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let reply = client
        .get(format!("{base}/api/v1/classes"))
        .bearer_auth(api.teacher())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    assert!(reply.headers().contains_key("x-request-id"));
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["items"][0]["id"], "cls-1");
    let reply = client
        .get(format!("{base}/api/v1/classes"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 401);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    server.abort();
}

db_tests!(
    probes_and_a_complete_openapi_document,
    every_declared_route_is_served,
    unknown_routes_wrong_methods_and_request_ids,
    the_nul_character_is_refused_everywhere,
    server_errors_carry_a_request_id_and_no_detail,
    rate_limits_per_token_and_per_client,
    the_real_server_on_a_socket,
);
