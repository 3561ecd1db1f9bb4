//! The OneRoster JSON mapping, through a sync (`oneroster::sync`, as the CLI, the API and
//! the schedule run it) against a provider on loopback that serves generated pages: the
//! records of a small district with fields replaced by any JSON value, dropped or added;
//! records that are any JSON value; pages that are any JSON, not JSON, or cut short.
//! Properties: the sync runs (no panic, no internal error); a run that did not apply has
//! errors and changed nothing; every issue has a stable code and names its collection and
//! record; bounded memory.

use crate::alloc::{Peak, exclusive};
use crate::api_json::{Mutation, json_value};
use crate::budget::{self, Bound, Tally, is_code};
use crate::support::{self, Backend, TestDb};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use parent_connection::sync::oneroster::connection::{self, NewConnection, Secret};
use parent_connection::sync::oneroster::{self, SyncRequest};
use parent_connection::sync::report::{ImportReport, RunStatus};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A sync allocates at most this: the pages read whole, the values parsed from them (a JSON
/// value takes several times its text) and the staged rows.
pub const BOUND: Bound = Bound {
    fixed: 24 << 20,
    per_input_byte: 64,
};

const COLLECTIONS: [&str; 4] = ["orgs", "users", "classes", "enrollments"];

/// The district every case starts from.
fn district() -> HashMap<&'static str, Vec<Value>> {
    HashMap::from([
        (
            "orgs",
            vec![
                json!({"sourcedId": "sch-1", "status": "active", "name": "Lincoln", "type": "school",
            "dateLastModified": "2026-01-01T00:00:00Z"}),
            ],
        ),
        (
            "users",
            vec![
                json!({"sourcedId": "stu-1", "role": "student", "givenName": "Ava", "familyName": "Ng",
                "enabledUser": "true", "agents": [{"sourcedId": "par-1", "type": "user"}]}),
                json!({"sourcedId": "par-1", "role": "parent", "givenName": "Linda", "familyName": "Ng",
                "email": "linda@example.com", "sms": "+12025550143", "agents": [{"sourcedId": "stu-1"}]}),
                json!({"sourcedId": "tch-1", "role": "teacher", "email": "lee@school.example", "enabledUser": true}),
            ],
        ),
        (
            "classes",
            vec![json!({"sourcedId": "cls-1", "title": "Math", "school": {"sourcedId": "sch-1"}})],
        ),
        (
            "enrollments",
            vec![
                json!({"sourcedId": "e-1", "role": "student", "user": {"sourcedId": "stu-1"}, "class": {"sourcedId": "cls-1"}}),
                json!({"sourcedId": "e-2", "role": "teacher", "user": {"sourcedId": "tch-1"}, "class": {"sourcedId": "cls-1"}}),
            ],
        ),
    ])
}

/// What a collection serves.
#[derive(Debug, Clone)]
pub enum Pages {
    /// The district's records, changed.
    Records(Vec<(Index, Vec<Mutation>)>, Vec<Value>),
    /// This page body, then an empty page.
    Raw(Vec<u8>),
    /// The district's records, then this page body.
    ThenRaw(Vec<u8>),
}

fn raw_page() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..128),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        json_value().prop_map(|v| serde_json::to_vec(
            &json!({"users": v, "orgs": v, "classes": v, "enrollments": v})
        )
        .unwrap()),
        proptest::sample::select(
            &[
                "{\"users\": [{\"sourcedId\": \"x\", ",
                "{\"orgs\": null}",
                "{\"classes\": {}}",
                "{\"enrollments\": [1, \"a\", null, [], {}]}",
                "{\"users\": [{\"sourcedId\": 7}]}",
                "{\"users\": [{\"sourcedId\": \"\"}]}",
                "",
                "<html>502</html>",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

fn pages() -> impl Strategy<Value = Pages> {
    let mutation = prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<Index>().prop_map(Mutation::Drop),
        1 => (proptest::sample::select(&["agents", "status", "enabledUser", "role", "school", "user", "class", "sms", "phone", "email", "dateLastModified"][..]), json_value())
            .prop_map(|(k, v)| Mutation::Add(k.to_string(), v)),
    ];
    prop_oneof![
        14 => (
            proptest::collection::vec((any::<Index>(), proptest::collection::vec(mutation, 0..3)), 0..2),
            proptest::collection::vec(json_value(), 0..2),
        ).prop_map(|(changes, extra)| Pages::Records(changes, extra)),
        1 => raw_page().prop_map(Pages::Raw),
        1 => raw_page().prop_map(Pages::ThenRaw),
    ]
}

/// The page bodies a collection serves, in order.
fn bodies(name: &str, pages: &Pages) -> Vec<Vec<u8>> {
    let mut records = district()[name].clone();
    match pages {
        Pages::Records(changes, extra) => {
            for (i, mutations) in changes {
                let at = i.index(records.len());
                if let Some(object) = records[at].as_object_mut() {
                    for mutation in mutations {
                        let keys: Vec<String> = object.keys().cloned().collect();
                        match mutation {
                            Mutation::Replace(k, v) => {
                                object.insert(keys[k.index(keys.len())].clone(), v.clone());
                            }
                            Mutation::Drop(k) => {
                                object.remove(&keys[k.index(keys.len())]);
                            }
                            Mutation::Add(k, v) => {
                                object.insert(k.clone(), v.clone());
                            }
                        }
                    }
                }
            }
            records.extend(extra.iter().cloned());
            vec![serde_json::to_vec(&json!({ name: records })).unwrap()]
        }
        Pages::Raw(body) => vec![body.clone()],
        Pages::ThenRaw(body) => vec![
            serde_json::to_vec(&json!({ name: records })).unwrap(),
            body.clone(),
        ],
    }
}

/// The provider's pages, and how many of each collection were served.
#[derive(Default)]
pub struct Served {
    pages: HashMap<String, Vec<Vec<u8>>>,
    asked: HashMap<String, usize>,
}

/// The provider's state, shared with its handlers.
pub type Shared = Arc<Mutex<Served>>;

async fn token() -> axum::Json<Value> {
    axum::Json(json!({"access_token": "t0k3n", "token_type": "bearer", "expires_in": 3600}))
}

async fn page(State(served): State<Shared>, Path(name): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut served = served.lock().unwrap();
    let n = *served
        .asked
        .entry(name.clone())
        .and_modify(|n| *n += 1)
        .or_insert(0);
    let body = served
        .pages
        .get(&name)
        .and_then(|pages| pages.get(n).cloned())
        .unwrap_or_else(|| serde_json::to_vec(&json!({ name: [] })).unwrap());
    ([("content-type", "application/json")], body).into_response()
}

/// A provider on loopback serving `served`.
async fn provider(served: Shared) -> (String, String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/token", post(token))
        .route("/ims/oneroster/v1p1/{collection}", get(page))
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (
        format!("http://{address}/ims/oneroster/v1p1"),
        format!("http://{address}/token"),
        task,
    )
}

fn config() -> parent_connection::config::Config {
    let mut config = support::config();
    config.oneroster.secret_key =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into();
    config.oneroster.max_retries = 0;
    config.oneroster.request_timeout_seconds = 5;
    config
}

fn check_report(report: &ImportReport) -> Result<(), TestCaseError> {
    match report.status {
        RunStatus::Refused | RunStatus::Failed => {
            prop_assert!(
                !report.errors.is_empty(),
                "{:?} without errors",
                report.status
            )
        }
        RunStatus::Applied | RunStatus::DryRun => {
            prop_assert!(report.errors.is_empty(), "{:?}", report.errors)
        }
    }
    for issue in report.errors.iter().chain(&report.warnings) {
        prop_assert!(is_code(issue.code), "{issue:?}");
        prop_assert!(!issue.message.trim().is_empty(), "{issue:?}");
        let known = [
            "/orgs",
            "/users",
            "/classes",
            "/enrollments",
            "(provider)",
            "(file set)",
        ];
        prop_assert!(known.contains(&issue.file.as_str()), "{issue:?}");
        if issue.code == "invalid_record" {
            prop_assert!(issue.record.is_some_and(|r| r >= 1), "{issue:?}");
        }
    }
    Ok(())
}

/// One sync over `pages` (orgs, users, classes, enrollments), checked; returns the codes of
/// its errors.
pub async fn case(
    db: &TestDb,
    served: &Shared,
    pages: &[Pages; 4],
    tally: &RefCell<Tally>,
) -> Result<Vec<&'static str>, TestCaseError> {
    let mut size = 0;
    {
        let mut served = served.lock().unwrap();
        served.asked.clear();
        for (name, pages) in COLLECTIONS.iter().zip(pages) {
            let bodies = bodies(name, pages);
            size += bodies.iter().map(Vec::len).sum::<usize>();
            served.pages.insert(name.to_string(), bodies);
        }
    }
    let before = db.fingerprint().await;
    let request = SyncRequest {
        tenant: "t".into(),
        delta: false,
        force: false,
        actor: "fuzz".into(),
    };
    let config = config();
    let peak = Peak::start();
    let report = oneroster::sync(&db.conn, &config, &request)
        .await
        .map_err(|e| TestCaseError::fail(format!("the sync did not run: {e}")))?;
    let used = peak.above_start();
    check_report(&report)?;
    if report.status != RunStatus::Applied {
        prop_assert_eq!(
            before,
            db.fingerprint().await,
            "a run that did not apply changed data"
        );
    }
    BOUND.check(used, size)?;
    let outcome = match report.errors.first() {
        Some(e) => e.code,
        None => report.status.as_str(),
    };
    Tally::see(tally, size, used, outcome);
    Ok(report.errors.iter().map(|e| e.code).collect())
}

fn target(backend: Backend, default: u32) {
    let _one = exclusive();
    if backend == Backend::Postgres && support::postgres_url().is_none() {
        return;
    }
    let runtime = budget::runtime();
    let (db, served, task) = runtime.block_on(setup(backend));
    let tally = RefCell::new(Tally::default());
    let strategy = (pages(), pages(), pages(), pages()).prop_map(|(a, b, c, d)| [a, b, c, d]);
    budget::run(budget::runner(default), &strategy, |pages| {
        runtime
            .block_on(case(&db, &served, &pages, &tally))
            .map(drop)
    });
    Tally::print(&tally, &format!("oneroster {backend:?}"));
    task.abort();
    drop(db);
}

/// A database with tenant `t` connected to a provider on loopback serving what `Shared`
/// holds.
pub async fn setup(backend: Backend) -> (TestDb, Shared, tokio::task::JoinHandle<()>) {
    let served: Shared = Arc::default();
    {
        let db = TestDb::new(backend).await;
        let tenant = db.tenant("t").await;
        let (base_url, token_url, task) = provider(served.clone()).await;
        connection::save(
            &db.conn,
            &config(),
            tenant.id,
            &NewConnection {
                base_url,
                token_url,
                client_id: "fuzz".into(),
                client_secret: Secret::new("fuzz-secret"),
                page_size: Some(100),
            },
            "fuzz",
        )
        .await
        .expect("connection stored");
        (db, served, task)
    }
}

#[test]
fn oneroster_pages_sqlite() {
    target(Backend::Sqlite, 30);
}

#[test]
#[cfg_attr(
    not(test_postgres),
    ignore = "TEST_DATABASE_URL was not set when the tests were built"
)]
fn oneroster_pages_postgres() {
    target(Backend::Postgres, 6);
}
