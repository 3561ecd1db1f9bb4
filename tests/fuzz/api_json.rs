//! The API's JSON bodies, through the real router in-process (`oneshot`): arbitrary bytes,
//! arbitrary JSON values, hostile JSON text (deep nesting, huge numbers, duplicate keys,
//! lone surrogates, NUL) and valid bodies with fields replaced, dropped or added, sent to
//! every route that reads a JSON body. Properties: never a 5xx; every 4xx is the error
//! shape `{"error":{"code","message"}}` with a stable code, as JSON; bounded memory.

use crate::alloc::{Peak, exclusive};
use crate::api_support::{Api, Reply, send};
use crate::budget::{self, Bound, Tally, is_code};
use crate::support::{self, Backend};
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use std::cell::RefCell;

/// One request allocates at most this (the router, the database round trips, the body and
/// the value parsed from it).
pub const BOUND: Bound = Bound {
    fixed: 16 << 20,
    per_input_byte: 32,
};

/// Who sends a request.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Teacher,
    Admin,
}

/// A route that reads a JSON body, and a valid body for it.
pub struct Route {
    pub method: &'static str,
    pub uri: &'static str,
    pub caller: Caller,
    pub valid: fn() -> Value,
}

/// Every JSON route the harness can call without reaching outside the machine (the
/// OneRoster connection route would call the URL it is given).
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        uri: "/api/v1/chats",
        caller: Caller::Teacher,
        valid: || json!({"studentId": "stu-1", "contactIds": ["1"], "teacherIds": []}),
    },
    Route {
        method: "POST",
        uri: "/api/v1/students/stu-1/contact-requests",
        caller: Caller::Teacher,
        valid: || {
            json!({"action": "add", "contact": {"givenName": "Ann", "familyName": "Ng",
            "emailAddress": "ann@example.org", "mobilePhone": "+12025550123", "relationship": "parent"}})
        },
    },
    Route {
        method: "POST",
        uri: "/api/v1/blocks",
        caller: Caller::Teacher,
        valid: || json!({"contactId": "1", "chatId": null, "removeFromChat": false}),
    },
    Route {
        method: "PATCH",
        uri: "/api/v1/settings",
        caller: Caller::Admin,
        valid: || {
            json!({"digestHour": 7, "deletionGuardPercent": 20, "digestTimeZone": "America/New_York",
            "inviteWindowDays": 7, "digestEnabled": true})
        },
    },
    Route {
        method: "POST",
        uri: "/api/v1/classes/cls-1/assignments",
        caller: Caller::Teacher,
        valid: || json!({"externalId": "hw-1", "title": "Reading", "dueAt": "2026-11-24T23:59:00Z", "points": 10}),
    },
    Route {
        method: "PUT",
        uri: "/api/v1/classes/cls-1/assignments/hw-2",
        caller: Caller::Teacher,
        valid: || json!({"title": "Reading", "dueAt": "2026-11-24T23:59:00Z", "points": null}),
    },
    Route {
        method: "PATCH",
        uri: "/api/v1/classes/cls-1/digest",
        caller: Caller::Teacher,
        valid: || json!({"notifyGuardians": true}),
    },
    Route {
        method: "POST",
        uri: "/api/v1/digest/unsubscribes",
        caller: Caller::Admin,
        valid: || json!({"contactId": "1"}),
    },
    Route {
        method: "POST",
        uri: "/api/v1/contact-requests/1/approve",
        caller: Caller::Admin,
        valid: || json!({"reason": "ok", "confirmStale": true}),
    },
    Route {
        method: "POST",
        uri: "/api/v1/contact-requests/1/reject",
        caller: Caller::Admin,
        valid: || json!({"reason": "no"}),
    },
    Route {
        method: "POST",
        uri: "/api/v1/chats/1/invitations",
        caller: Caller::Teacher,
        valid: || json!({"contactId": "1"}),
    },
    Route {
        method: "POST",
        uri: "/api/v1/chats/1/members",
        caller: Caller::Teacher,
        valid: || json!({"contactId": "1"}),
    },
];

/// What is sent as the body.
#[derive(Debug, Clone)]
pub enum BodyCase {
    /// Any bytes.
    Bytes(Vec<u8>),
    /// Any JSON value.
    Value(Value),
    /// Hostile JSON text.
    Text(String),
    /// The route's valid body with changes.
    Mutated(Vec<Mutation>),
}

/// A change to a valid body.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// A field's value replaced.
    Replace(Index, Value),
    /// A field dropped.
    Drop(Index),
    /// A field added.
    Add(String, Value),
}

/// Any JSON value, including the numbers and strings that trip readers.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        proptest::sample::select(&[0.5, -0.0, 1e300, 465.0, 9.1e15, -1.0][..])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z0-9@.+ -]{0,20}".prop_map(Value::String),
        proptest::sample::select(
            &[
                "",
                "\u{0}",
                "stu-1",
                "1",
                "2026-11-24T23:59:00Z",
                "parent",
                "add",
                "+12025550123"
            ][..]
        )
        .prop_map(|s| Value::String(s.into())),
        (1usize..5000).prop_map(|n| Value::String("x".repeat(n))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{0,16}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON text no value can print: deep nesting, numbers past every range, duplicate keys,
/// lone surrogates, a byte-order mark, NUL escapes, truncation.
pub fn hostile_json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (1usize..20_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        (1usize..5_000).prop_map(|n| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
        (1usize..20_000).prop_map(|n| "[".repeat(n)),
        "[0-9]{20,400}".prop_map(|d| format!("{{\"digestHour\": {d}, \"points\": {d}}}")),
        proptest::sample::select(
            &[
                "1e999999",
                "-1e999999",
                "{\"contactId\":\"1\",\"contactId\":\"2\"}",
                "{\"studentId\":\"\\ud800\"}",
                "\u{feff}{}",
                "{\"reason\":\"a\\u0000b\"}",
                "{\"a\":",
                "[1,2,",
                "nul",
                "\"",
                "{\"x\":1}garbage",
                "{}",
                "[]",
                "null",
                "",
                "{\"digestHour\": 7.0}",
                "{\"digestHour\": 7.5}",
                "{\"digestHour\": 1e2}",
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<Index>().prop_map(Mutation::Drop),
        1 => ("[a-zA-Z]{1,12}", json_value()).prop_map(|(k, v)| Mutation::Add(k, v)),
    ]
}

/// Any body.
pub fn body_case() -> impl Strategy<Value = BodyCase> {
    prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(BodyCase::Bytes),
        2 => json_value().prop_map(BodyCase::Value),
        2 => hostile_json_text().prop_map(BodyCase::Text),
        5 => proptest::collection::vec(mutation(), 0..4).prop_map(BodyCase::Mutated),
    ]
}

fn mutate(mut value: Value, mutations: &[Mutation]) -> Value {
    let Some(object) = value.as_object_mut() else {
        return value;
    };
    for mutation in mutations {
        let keys: Vec<String> = object.keys().cloned().collect();
        match mutation {
            Mutation::Replace(i, v) if !keys.is_empty() => {
                object.insert(keys[i.index(keys.len())].clone(), v.clone());
            }
            Mutation::Drop(i) if !keys.is_empty() => {
                object.remove(&keys[i.index(keys.len())]);
            }
            Mutation::Add(k, v) => {
                object.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    value
}

/// The body bytes of a case for `route`.
pub fn body_bytes(route: &Route, case: &BodyCase) -> Vec<u8> {
    match case {
        BodyCase::Bytes(bytes) => bytes.clone(),
        BodyCase::Value(value) => serde_json::to_vec(value).unwrap(),
        BodyCase::Text(text) => text.clone().into_bytes(),
        BodyCase::Mutated(mutations) => {
            serde_json::to_vec(&mutate((route.valid)(), mutations)).unwrap()
        }
    }
}

/// Checks a reply: no 5xx, and an error is the documented JSON shape with a stable code.
pub fn check_reply(reply: &Reply, what: &str) -> Result<(), TestCaseError> {
    let status = reply.status.as_u16();
    prop_assert!(status < 500, "{what}: {status} {}", reply.body);
    if status >= 400 {
        let code = reply.body["error"]["code"].as_str().unwrap_or_default();
        prop_assert!(is_code(code), "{what}: {status} {}", reply.body);
        prop_assert!(
            reply.body["error"]["message"].is_string(),
            "{what}: {}",
            reply.body
        );
        let content_type = reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        prop_assert_eq!(content_type, Some("application/json"), "{}", what);
    }
    Ok(())
}

/// Sends `body` to `route` as `caller` with `content_type`.
pub async fn call(api: &Api, route: &Route, body: Vec<u8>, content_type: &str) -> Reply {
    let token = match route.caller {
        Caller::Teacher => api.teacher(),
        Caller::Admin => api.admin("nyc"),
    };
    let request = Request::builder()
        .method(route.method)
        .uri(route.uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap();
    send(&api.app, request).await
}

async fn case(
    api: &Api,
    route: &Route,
    body: &BodyCase,
    content_type: &str,
    tally: &RefCell<Tally>,
) -> Result<(), TestCaseError> {
    let bytes = body_bytes(route, body);
    let size = bytes.len();
    let peak = Peak::start();
    let reply = call(api, route, bytes, content_type).await;
    let used = peak.above_start();
    check_reply(&reply, &format!("{} {}", route.method, route.uri))?;
    BOUND.check(used, size)?;
    let outcome = match reply.body["error"]["code"].as_str() {
        Some(code) => code.to_string(),
        None => reply.status.as_u16().to_string(),
    };
    Tally::see(tally, size, used, &outcome);
    Ok(())
}

fn target(backend: Backend, default: u32) {
    let _one = exclusive();
    if backend == Backend::Postgres && support::postgres_url().is_none() {
        return;
    }
    let runtime = budget::runtime();
    let api = runtime.block_on(Api::new(backend));
    let tally = RefCell::new(Tally::default());
    let content_types = prop_oneof![
        8 => Just("application/json"),
        1 => Just("application/json; charset=utf-8"),
        1 => proptest::sample::select(&["text/plain", "application/x-www-form-urlencoded", ""][..]),
    ];
    budget::run(
        budget::runner(default),
        &(0..ROUTES.len(), body_case(), content_types),
        |(route, body, content_type)| {
            runtime.block_on(case(&api, &ROUTES[route], &body, content_type, &tally))
        },
    );
    Tally::print(&tally, &format!("json bodies {backend:?}"));
    drop(api);
}

#[test]
fn json_bodies_sqlite() {
    target(Backend::Sqlite, 300);
}

#[test]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
fn json_bodies_postgres() {
    target(Backend::Postgres, 60);
}
