//! Harness of the HTTP API tests: the real router over a fresh database holding two tenants
//! (`nyc` with the SDS v2.1 fixture, `bos` with the SDS v1 fixture), tokens minted with the
//! same code as `parent-connection token`, hand-forged tokens, and multipart bodies.

#![allow(dead_code)]

use crate::support::{APPLY, Backend, Fixture, TestDb};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use parent_connection::api::{self, AppState};
use parent_connection::auth::Role;
use parent_connection::auth::Scope;
use parent_connection::auth::claims::{Audience, Claims};
use parent_connection::auth::mint::{self, SigningKey, Subject};
use parent_connection::config::Config;
use parent_connection::sync::Format;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tower::ServiceExt;

/// A route of the route table ([`api::routes`]).
pub struct DeclaredRoute {
    /// Its method.
    pub method: axum::http::Method,
    /// Its path as the OpenAPI document writes it (`/api/v1/chats/{id}`).
    pub path: String,
    /// A request target for it: each path parameter is `x1`.
    pub uri: String,
}

impl DeclaredRoute {
    /// Whether `doc` (the served OpenAPI document) secures this route with the bearer token.
    pub fn needs_bearer(&self, doc: &Value) -> bool {
        let operation = &doc["paths"][&self.path][self.method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{} {}", self.method, self.path);
        operation["security"][0].get("bearer").is_some()
    }

    /// The request `method uri` with no header and an empty body.
    pub fn bare_request(&self) -> Request<Body> {
        Request::builder()
            .method(self.method.clone())
            .uri(&self.uri)
            .body(Body::empty())
            .unwrap()
    }
}

/// Every route of the route table.
pub fn declared_routes() -> Vec<DeclaredRoute> {
    api::routes()
        .into_iter()
        .map(|(method, path)| {
            let uri = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x1"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            DeclaredRoute { method, path, uri }
        })
        .collect()
}

/// The development secret of the tests.
pub const SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// A test key file.
pub fn key(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
        .display()
        .to_string()
}

/// The configuration of the tests: HS256 development secret, RS256 key `a` as PEM and as
/// JWKS, generous rate limits.
pub fn api_config() -> Config {
    let mut config = crate::support::config();
    config.auth.jwt_secret = SECRET.into();
    config.auth.rs256_public_key_paths = vec![key("rs256-a.pub.pem")];
    config.api.client_requests_per_second = 10_000;
    config.api.client_burst = 10_000;
    config.api.token_requests_per_second = 10_000;
    config.api.token_burst = 10_000;
    config
}

/// A response: status, headers, JSON body (`Null` when empty, a string when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body ({}): {}", self.status, self.body))
    }

    /// Asserts the status and the error shape, returning the code.
    pub fn error(&self, status: u16) -> &str {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        let error = self.body["error"].as_object().expect("error object");
        assert!(error["message"].is_string(), "{}", self.body);
        assert!(error.contains_key("details"), "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/json",
            "{:?}",
            self.headers
        );
        self.code()
    }

    /// Asserts 200 and returns the body.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        &self.body
    }
}

/// The API over a test database.
pub struct Api {
    pub db: TestDb,
    pub config: Config,
    pub app: Router,
}

impl Api {
    /// Two tenants with data and the default test configuration.
    pub async fn new(backend: Backend) -> Self {
        Self::with(backend, |_| {}).await
    }

    /// Two tenants with data; `change` adjusts the configuration.
    pub async fn with(backend: Backend, change: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new(backend).await;
        db.tenant("nyc").await;
        db.tenant("bos").await;
        let report = db
            .import("nyc", Format::SdsV21, Fixture::v21().path(), APPLY)
            .await;
        assert!(report.status.is_success(), "{:?}", report.errors);
        let report = db
            .import("bos", Format::SdsV1, Fixture::v1().path(), APPLY)
            .await;
        assert!(report.status.is_success(), "{:?}", report.errors);
        let mut config = api_config();
        change(&mut config);
        let app = api::router(AppState::new(db.conn.clone(), config.clone()).expect("state"));
        Self { db, config, app }
    }

    /// A token minted like `parent-connection token` does.
    pub fn mint(&self, tenant: &str, subject: Subject) -> String {
        let key = SigningKey::from_config(&self.config.auth).expect("signing key");
        let claims = mint::claims(
            &self.config.auth,
            tenant,
            &subject,
            Duration::from_secs(600),
        );
        mint::sign(&key, &claims).expect("sign")
    }

    /// A person's token.
    pub fn user(&self, tenant: &str, source_id: &str, roles: &[Role]) -> String {
        self.mint(
            tenant,
            Subject::User {
                source_id: source_id.into(),
                roles: roles.to_vec(),
            },
        )
    }

    /// Teacher `tch-1` of `nyc`.
    pub fn teacher(&self) -> String {
        self.user("nyc", "tch-1", &[Role::Teacher])
    }

    /// A global admin of `tenant`.
    pub fn admin(&self, tenant: &str) -> String {
        self.user(tenant, "admin-1", &[Role::GlobalAdmin])
    }

    /// An app-only token of `tenant` with `scopes`.
    pub fn app(&self, tenant: &str, scopes: &[&str]) -> String {
        self.mint(
            tenant,
            Subject::App {
                app_id: "test-app".into(),
                scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
            },
        )
    }

    /// Sends a request through the router, as from 127.0.0.1.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        send(&self.app, request).await
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut builder = Request::get(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        self.send(builder.body(Body::empty()).unwrap()).await
    }
}

/// Sends a request through `app`, as from 127.0.0.1.
pub async fn send(app: &Router, mut request: Request<Body>) -> Reply {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Claims like the minted ones, for forging.
pub fn claims(config: &Config, tenant: &str, sub: &str, roles: &[&str]) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: config.auth.issuer.clone(),
        aud: Audience::One(config.auth.audience.clone()),
        sub: sub.into(),
        tenant: tenant.into(),
        idtyp: None,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        scp: None,
        iat: now,
        nbf: Some(now),
        exp: now + 600,
        jti: None,
    }
}

/// Signs `claims` with HS256 and `secret`.
pub fn hs256(claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Signs `claims` with RS256 and the test key `name` (`a` or `b`), with an optional `kid`.
pub fn rs256(claims: &Claims, name: &str, kid: Option<&str>) -> String {
    let pem = std::fs::read(key(&format!("rs256-{name}.key.pem"))).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
    )
    .unwrap()
}

/// An unsigned token (`alg: none`) with `claims`.
pub fn alg_none(claims: &Claims) -> String {
    format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(serde_json::to_string(claims).unwrap().as_bytes())
    )
}

/// Base64url without padding.
pub fn base64_url(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A multipart/form-data body: `(field, file name, content)`; returns the content type and
/// the body.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "XtestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (field, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{field}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The files of a fixture folder as `(name, content)`.
pub fn fixture_files(fixture: &Fixture) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(fixture.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// `POST /api/v1/imports` with `token`, text fields and files.
pub async fn upload(
    api: &Api,
    token: &str,
    fields: &[(&str, &str)],
    files: &[(String, Vec<u8>)],
) -> Reply {
    let mut parts: Vec<(&str, Option<&str>, &[u8])> = fields
        .iter()
        .map(|(k, v)| (*k, None, v.as_bytes()))
        .collect();
    for (name, content) in files {
        parts.push(("file", Some(name.as_str()), content.as_slice()));
    }
    let (content_type, body) = multipart(&parts);
    api.send(
        Request::post("/api/v1/imports")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

/// A zip of `files` (`name`, content), deflated.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Every item of a keyset-paged list, read `limit` at a time through `nextCursor`, and the
/// number of pages read. Checks that every page but the last is full and carries a cursor,
/// and that the last one's `nextCursor` is null.
pub async fn every_page(api: &Api, path: &str, token: &str, limit: u64) -> (Vec<Value>, usize) {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=100 {
        let url = match &cursor {
            None => format!("{path}{separator}limit={limit}"),
            Some(cursor) => format!("{path}{separator}limit={limit}&cursor={cursor}"),
        };
        let reply = api.get(&url, Some(token)).await;
        let body = reply.ok();
        let page = body["items"].as_array().expect("items");
        items.extend(page.iter().cloned());
        match &body["nextCursor"] {
            Value::String(next) => {
                assert_eq!(
                    page.len() as u64,
                    limit,
                    "{url}: a page before the last is full"
                );
                cursor = Some(next.clone());
            }
            Value::Null => {
                assert!(page.len() as u64 <= limit, "{url}: {body}");
                return (items, pages);
            }
            other => panic!("{url}: nextCursor is {other}"),
        }
    }
    panic!("{path}: still paging after 100 pages");
}

/// The `key` field of each item, as text.
pub fn field(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|item| {
            item[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} of {item}"))
                .to_string()
        })
        .collect()
}

/// The API served on a real TCP port (127.0.0.1:0), with `web.public_url` pointing at it:
/// the API and its base URL (`http://127.0.0.1:PORT`).
pub async fn served(backend: Backend) -> (Api, String) {
    served_with(backend, |_| {}).await
}

/// As [`served`], with `change` applied to the configuration (after the base URL is set).
pub async fn served_with(backend: Backend, change: impl FnOnce(&mut Config)) -> (Api, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let public = base.clone();
    let api = Api::with(backend, move |config| {
        config.web.public_url = public;
        config.invites.join_url = String::new();
        change(config);
    })
    .await;
    let app = api.app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (api, base)
}

/// The join token of invitation `invitation` (its id), as its join link carries it.
pub async fn join_token(api: &Api, invitation: &str) -> String {
    api.db
        .texts(
            "SELECT join_token FROM invitations WHERE id = $1",
            vec![sea_orm::Value::BigInt(Some(invitation.parse().unwrap()))],
        )
        .await
        .pop()
        .unwrap()
}

/// Opens a page session through `POST /web/session` with `token` (the configuration must
/// have `web.token_signin`): the `Cookie` header value that carries it (`pc_session=…`).
pub async fn page_session(api: &Api, token: &str) -> String {
    let reply = api
        .send(
            Request::post("/web/session")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    set_cookie(&reply)
}

/// The `name=value` of the (first) cookie `reply` sets.
pub fn set_cookie(reply: &Reply) -> String {
    let set = reply.headers["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// `GET path` with the session `cookie` (or none): the page.
pub async fn page_get(api: &Api, path: &str, cookie: Option<&str>) -> Reply {
    let mut builder = Request::get(path);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    api.send(builder.body(Body::empty()).unwrap()).await
}

/// Posts `fields` as a form to `path` with the session `cookie`.
pub async fn page_post(api: &Api, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Reply {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    api.send(
        Request::post(path)
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page's HTML.
pub fn html(reply: &Reply) -> &str {
    reply
        .body
        .as_str()
        .unwrap_or_else(|| panic!("not an HTML page ({}): {}", reply.status, reply.body))
}

/// The CSRF token the forms of a page carry.
pub fn csrf_of(reply: &Reply) -> String {
    let page = html(reply);
    let at = page
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no CSRF field on the page: {page}"));
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}
