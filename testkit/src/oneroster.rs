//! A OneRoster 1.1 test provider: a real axum server on 127.0.0.1:0 implementing the
//! subset the sync reads (`POST /token` with client credentials, `GET /ims/oneroster/v1p1/
//! {orgs,users,classes,enrollments}` with limit/offset paging, `X-Total-Count` and
//! `filter=dateLastModified>'…'`, `GET …/users/{id}`), plus injected faults: 429 with
//! Retry-After, 500, malformed JSON, slow or held answers, revoked tokens, a `Link` header
//! that always says next, and a server that ignores `offset`.
//!
//! It serves either JSON records given whole ([`Provider::start`], the tests' districts) or
//! the district [`crate::generate`] writes for `bench import`, page by page from its seed
//! ([`Provider::start_generated`], see [`District`]): nothing is held per record, so it
//! serves a million students in a few megabytes.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use district::{Changes, District};

mod district;

/// The client id the provider accepts.
pub const CLIENT_ID: &str = "pc-client";
/// The client secret the provider accepts.
pub const CLIENT_SECRET: &str = "pc-secret-value-42";

/// A fault served instead of (or before) a normal answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 200 that is JSON without the collection's array.
    WrongShape,
    /// A 200 whose body is an HTML error page (a proxy in front of the provider).
    Html,
    /// Answer normally after this long.
    Slow(Duration),
    /// Answer normally once the test calls `notify_one` on it (a provider that stalls
    /// in the middle of a pull until told).
    Hold(Arc<tokio::sync::Notify>),
}

/// Everything the provider serves and records.
#[derive(Debug, Default)]
pub struct ProviderState {
    /// The records served per collection (`users` → its records, in order).
    pub collections: HashMap<String, Vec<Value>>,
    /// Rows served per page at most, whatever `limit` asks (short pages).
    pub max_page: Option<usize>,
    /// Send `X-Total-Count`.
    pub total_header: bool,
    /// Rows added to `X-Total-Count` that are never served (a truncating provider).
    pub total_bonus: usize,
    /// Send `Link: <…offset=0…>; rel="next"` on every page.
    pub link_always_next: bool,
    /// Serve the first page whatever `offset` says.
    pub ignore_offset: bool,
    /// Faults served once each, in order, per collection (or `token`).
    pub faults: HashMap<String, VecDeque<Fault>>,
    /// A fault served on every request to a collection.
    pub always: HashMap<String, Fault>,
    /// A fault served once on the page of a collection at an offset (`("users", 2)`): the
    /// provider breaks in the middle of paging.
    pub page_faults: HashMap<(String, usize), Fault>,
    /// Tokens currently valid.
    pub tokens: HashSet<String>,
    /// Tokens issued so far.
    pub issued: usize,
    /// Revoke every token after this many API requests (once).
    pub revoke_after: Option<usize>,
    /// `path?query` of every API request, in order.
    pub requests: Vec<String>,
    /// The generated district served for the collections `collections` does not hold.
    pub generated: Option<Arc<District>>,
}

/// A running provider.
pub struct Provider {
    /// The API's base URL (`…/ims/oneroster/v1p1`).
    pub base_url: String,
    /// The OAuth2 token URL.
    pub token_url: String,
    /// What it serves and records.
    pub state: Arc<Mutex<ProviderState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// Starts a provider serving `data` (`{"orgs": [...], "users": [...], ...}`).
    pub async fn start(data: Value) -> Self {
        let mut state = ProviderState {
            total_header: true,
            ..ProviderState::default()
        };
        for name in ["orgs", "users", "classes", "enrollments"] {
            let items = data[name].as_array().cloned().unwrap_or_default();
            state.collections.insert(name.into(), items);
        }
        Self::serve(state).await
    }

    /// Starts a provider serving the district `generate(dir, students, seed)` writes, made
    /// page by page ([`District`]).
    pub async fn start_generated(students: u64, seed: u64) -> anyhow::Result<Self> {
        let state = ProviderState {
            total_header: true,
            generated: Some(Arc::new(District::new(students, seed)?)),
            ..ProviderState::default()
        };
        Ok(Self::serve(state).await)
    }

    /// The generated district, changed by [`District::changed`] (1% of the contacts get
    /// a new phone and email, 0.5% of the links are dropped from both sides' `agents`,
    /// each changed user with a later `dateLastModified`). Returns what changed.
    pub fn change_generated(&self) -> Changes {
        self.with(|s| {
            let district = s
                .generated
                .as_ref()
                .expect("a generated district")
                .changed();
            let changes = district.changes();
            s.generated = Some(Arc::new(district));
            changes
        })
    }

    async fn serve(state: ProviderState) -> Self {
        let state = Arc::new(Mutex::new(state));
        let app = Router::new()
            .route("/token", post(token))
            .route("/ims/oneroster/v1p1/users/{id}", get(one_user))
            .route("/ims/oneroster/v1p1/{collection}", get(collection))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url: format!("http://{address}/ims/oneroster/v1p1"),
            token_url: format!("http://{address}/token"),
            state,
            task,
        }
    }

    /// Changes the state.
    pub fn with<R>(&self, change: impl FnOnce(&mut ProviderState) -> R) -> R {
        change(&mut self.state.lock().unwrap())
    }

    /// Replaces (by sourcedId) or adds a record.
    pub fn upsert(&self, collection: &str, record: Value) {
        self.with(|s| {
            let items = s.collections.get_mut(collection).unwrap();
            let id = record["sourcedId"].clone();
            match items.iter_mut().find(|r| r["sourcedId"] == id) {
                Some(existing) => *existing = record,
                None => items.push(record),
            }
        })
    }

    /// Changes fields of a record.
    pub fn patch(&self, collection: &str, id: &str, fields: Value) {
        self.with(|s| {
            let record = s
                .collections
                .get_mut(collection)
                .unwrap()
                .iter_mut()
                .find(|r| r["sourcedId"] == id)
                .unwrap_or_else(|| panic!("no {collection} {id}"));
            for (key, value) in fields.as_object().unwrap() {
                record[key] = value.clone();
            }
        })
    }

    /// Queues a fault for the next request to `collection` (or `token`).
    pub fn fault(&self, collection: &str, fault: Fault) {
        self.with(|s| {
            s.faults
                .entry(collection.into())
                .or_default()
                .push_back(fault)
        });
    }

    /// The API requests so far.
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
}

fn next_fault(state: &mut ProviderState, name: &str) -> Option<Fault> {
    state
        .faults
        .get_mut(name)
        .and_then(VecDeque::pop_front)
        .or_else(|| state.always.get(name).cloned())
}

/// Serves a fault, or `None` to answer normally (after a slow fault's delay).
async fn serve_fault(fault: Option<Fault>, name: &str) -> Option<Response> {
    match fault? {
        Fault::Status(status, retry_after) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                axum::Json(json!({"error": "injected"})),
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&seconds.to_string()).unwrap(),
                );
            }
            Some(response)
        }
        Fault::Malformed => Some(
            (
                [(header::CONTENT_TYPE, "application/json")],
                format!("{{\"{name}\": [{{\"sourcedId\": \"x\", "),
            )
                .into_response(),
        ),
        Fault::WrongShape => Some(axum::Json(json!({"items": []})).into_response()),
        Fault::Html => Some(
            (
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response(),
        ),
        Fault::Slow(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Fault::Hold(gate) => {
            gate.notified().await;
            None
        }
    }
}

async fn token(
    State(state): State<Arc<Mutex<ProviderState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fault = next_fault(&mut state.lock().unwrap(), "token");
    if let Some(response) = serve_fault(fault, "token").await {
        return response;
    }
    let expected = format!(
        "Basic {}",
        base64(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes())
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.to_str().unwrap_or("") == expected);
    if !authorized || !body.contains("grant_type=client_credentials") {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut state = state.lock().unwrap();
    state.issued += 1;
    let value = format!("token-{}", state.issued);
    state.tokens.insert(value.clone());
    axum::Json(json!({"access_token": value, "token_type": "bearer", "expires_in": 3600}))
        .into_response()
}

/// Logs the request and checks its bearer token.
fn authorized(state: &mut ProviderState, headers: &HeaderMap, logged: String) -> bool {
    state.requests.push(logged);
    if let Some(after) = state.revoke_after
        && state.requests.len() > after
    {
        state.tokens.clear();
        state.revoke_after = None;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    state.tokens.contains(token)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "invalid_token"})),
    )
        .into_response()
}

async fn collection(
    State(state): State<Arc<Mutex<ProviderState>>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let logged = format!("/{name}?{}", sorted_query(&query));
    let fault = {
        let mut state = state.lock().unwrap();
        if !authorized(&mut state, &headers, logged) {
            return unauthorized();
        }
        let offset = query
            .get("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        next_fault(&mut state, &name).or_else(|| state.page_faults.remove(&(name.clone(), offset)))
    };
    if let Some(response) = serve_fault(fault, &name).await {
        return response;
    }
    let state = state.lock().unwrap();
    if !state.collections.contains_key(&name)
        && let Some(district) = state.generated.clone()
    {
        drop(state);
        return generated_page(&district, &name, &query);
    }
    let Some(items) = state.collections.get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such collection"})),
        )
            .into_response();
    };
    let since = since(&query);
    let matching: Vec<&Value> = items
        .iter()
        .filter(|r| since.is_none_or(|s| r["dateLastModified"].as_str().unwrap_or("") > s))
        .collect();
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100);
    let limit = state.max_page.map_or(limit, |max| limit.min(max));
    let offset: usize = if state.ignore_offset {
        0
    } else {
        query
            .get("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0)
    };
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    let mut body = serde_json::Map::new();
    body.insert(name.clone(), Value::Array(page));
    let mut response = axum::Json(Value::Object(body)).into_response();
    if state.total_header {
        response.headers_mut().insert(
            "x-total-count",
            HeaderValue::from_str(&(matching.len() + state.total_bonus).to_string()).unwrap(),
        );
    }
    if state.link_always_next {
        response.headers_mut().insert(
            header::LINK,
            HeaderValue::from_str(&format!(
                "</ims/oneroster/v1p1/{name}?limit={limit}&offset=0>; rel=\"next\""
            ))
            .unwrap(),
        );
    }
    response
}

async fn one_user(
    State(state): State<Arc<Mutex<ProviderState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut state = state.lock().unwrap();
    if !authorized(&mut state, &headers, format!("/users/{id}")) {
        return unauthorized();
    }
    let generated = match &state.generated {
        Some(district) if !state.collections.contains_key("users") => district.user_by_id(&id),
        _ => None,
    };
    match generated.as_ref().or_else(|| {
        state
            .collections
            .get("users")?
            .iter()
            .find(|u| u["sourcedId"] == id.as_str())
    }) {
        Some(user) => axum::Json(json!({ "user": user })).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "unknown user"})),
        )
            .into_response(),
    }
}

fn sorted_query(query: &HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join("&")
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A user record.
pub fn user(id: &str, role: &str, agents: &[&str], extra: Value) -> Value {
    let mut record = json!({
        "sourcedId": id,
        "status": "active",
        "dateLastModified": "2026-01-10T08:00:00.000Z",
        "enabledUser": "true",
        "givenName": format!("Given-{id}"),
        "familyName": format!("Family-{id}"),
        "role": role,
        "agents": agents.iter().map(|a| json!({"sourcedId": a, "type": "user"})).collect::<Vec<_>>(),
    });
    for (key, value) in extra.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

/// An enrollment record.
pub fn enrollment(id: &str, class: &str, user: &str, role: &str) -> Value {
    json!({
        "sourcedId": id, "status": "active", "dateLastModified": "2026-01-10T08:00:00.000Z",
        "role": role, "user": {"sourcedId": user, "type": "user"},
        "class": {"sourcedId": class, "type": "class"}, "school": {"sourcedId": "sch-1", "type": "org"},
    })
}

/// The district of the tests. Links: stu-1 ↔ par-1 only on the student's `agents`; stu-2 ↔
/// gdn-1 only on the guardian's; stu-3 ↔ par-2 on both (one link); stu-1 ↔ par-2 on the
/// parent's only. rel-1 is disabled, par-3 is `tobedeleted`: neither links. `enabledUser`
/// is spelled "true", true, 1, "1" and "false".
pub fn district() -> Value {
    json!({
        "orgs": [
            {"sourcedId": "dist-1", "status": "active", "dateLastModified": "2026-01-01T00:00:00.000Z", "name": "District", "type": "district"},
            {"sourcedId": "sch-1", "status": "active", "dateLastModified": "2026-01-01T00:00:00.000Z", "name": "North High", "type": "school"},
        ],
        "users": [
            user("stu-1", "student", &["par-1"], json!({"enabledUser": true})),
            user("stu-2", "student", &[], json!({"enabledUser": "1"})),
            user("stu-3", "student", &["par-2"], json!({"enabledUser": 1})),
            user("tch-1", "teacher", &[], json!({"email": "t1@school.example"})),
            user("par-1", "parent", &[], json!({"email": "Par1@Example.com", "sms": "+1 212 555 0101"})),
            user("gdn-1", "guardian", &["stu-2"], json!({"email": "gdn1@example.com", "phone": "(212) 555-0102"})),
            user("par-2", "parent", &["stu-3", "stu-1"], json!({"email": "par2@example.com"})),
            user("rel-1", "relative", &["stu-1"], json!({"enabledUser": "false", "email": "rel1@example.com"})),
            user("par-3", "parent", &["stu-2"], json!({"status": "tobedeleted", "email": "par3@example.com"})),
        ],
        "classes": [
            {"sourcedId": "cls-1", "status": "active", "dateLastModified": "2026-01-01T00:00:00.000Z", "title": "Algebra",
             "school": {"sourcedId": "sch-1", "type": "org"}},
        ],
        "enrollments": [
            enrollment("enr-1", "cls-1", "stu-1", "student"),
            enrollment("enr-2", "cls-1", "stu-2", "student"),
            enrollment("enr-3", "cls-1", "tch-1", "teacher"),
        ],
    })
}

/// A page of a collection of the generated district (`limit` 100 and `offset` 0 unless
/// asked), with `X-Total-Count`.
fn generated_page(district: &District, name: &str, query: &HashMap<String, String>) -> Response {
    if !["orgs", "users", "classes", "enrollments"].contains(&name) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such collection"})),
        )
            .into_response();
    }
    let number = |key: &str, default: u64| {
        query
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (limit, offset) = (number("limit", 100), number("offset", 0));
    let since = since(query);
    let mut body = format!("{{\"{name}\":[");
    district.write_page(&mut body, name, since, offset, limit);
    body.push_str("]}");
    let total = district.count(name, since);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static("x-total-count"),
                HeaderValue::from(total),
            ),
        ],
        body,
    )
        .into_response()
}

/// The `dateLastModified>'…'` of a `filter`.
fn since(query: &HashMap<String, String>) -> Option<&str> {
    query
        .get("filter")
        .and_then(|f| f.strip_prefix("dateLastModified>'"))
        .and_then(|f| f.strip_suffix('\''))
}
