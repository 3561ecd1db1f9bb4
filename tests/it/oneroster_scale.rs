//! A full OneRoster pull at a few thousand students from the testkit's generated district
//! ([`crate::oneroster_server`]): pages are staged as they come, with a bounded read-ahead,
//! and SQLite's write lock is not held while the provider is still serving.

use crate::api_support::Api;
use crate::approvals::patch_settings;
use crate::db_tests;
use crate::oneroster::or_config;
use crate::oneroster_server::{CLIENT_ID, CLIENT_SECRET, Fault, Provider, ProviderState};
use crate::support::{self, Backend, TestDb};
use parent_connection::auth::Role;
use parent_connection::config::Config;
use parent_connection::sync::Progress;
use parent_connection::sync::oneroster::connection::{self, NewConnection, Secret};
use parent_connection::sync::oneroster::{self, SyncRequest};
use parent_connection::sync::report::RunStatus;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAGE: u64 = 50;

async fn connect(db: &TestDb, config: &Config, provider: &Provider, tenant: &str) {
    let tenant = parent_connection::tenants::find(&db.conn, tenant)
        .await
        .unwrap();
    connection::save(
        &db.conn,
        config,
        tenant.id,
        &NewConnection {
            base_url: provider.base_url.clone(),
            token_url: provider.token_url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
            page_size: Some(PAGE),
        },
        "test",
    )
    .await
    .expect("connection stored");
}

fn full(tenant: &str) -> SyncRequest {
    SyncRequest {
        tenant: tenant.into(),
        delta: false,
        force: false,
        actor: "test".into(),
    }
}

/// For each page the mapping takes (`advance`), how many pages the provider had served.
struct PageWatch {
    provider: Arc<Mutex<ProviderState>>,
    mapped: AtomicU64,
    seen: Mutex<Vec<(u64, u64)>>,
}

impl Progress for PageWatch {
    fn start(&self, _: u64) {}
    fn advance(&self, _records: u64) {
        let mapped = self.mapped.fetch_add(1, Ordering::SeqCst) + 1;
        let served = self.provider.lock().unwrap().requests.len() as u64;
        self.seen.lock().unwrap().push((mapped, served));
    }
    fn phase(&self, _: &str) {}
    fn finish(&self) {}
}

async fn a_full_pull_stages_page_by_page(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.tenant("nyc").await;
    let provider = Provider::start_generated(2_000, 5).await.unwrap();
    let config = or_config(support::config());
    connect(&db, &config, &provider, "nyc").await;
    let watch = Arc::new(PageWatch {
        provider: provider.state.clone(),
        mapped: AtomicU64::new(0),
        seen: Mutex::new(Vec::new()),
    });
    let report = oneroster::sync_with_progress(&db.conn, &config, &full("nyc"), watch.clone())
        .await
        .expect("sync ran");
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.students.created, 2_000);
    assert!(report.entities.links.created > 2_000);
    let served = provider.requests().len() as u64;
    assert!(served > 100, "{served} pages");
    let seen = watch.seen.lock().unwrap().clone();
    assert_eq!(seen.len() as u64, served, "every page is mapped once");
    // Two pages in the channel and one waiting to be sent: the pull never runs further
    // ahead of the staging (a pull held whole would have served all before the first).
    for (mapped, served) in seen {
        assert!(
            served <= mapped + 3,
            "page {mapped} was mapped when the provider had served {served} pages"
        );
    }
}

async fn api_writes_go_on_during_a_pull(backend: Backend) {
    let api = Api::with(backend, |config| {
        *config = or_config(config.clone());
        // The held page is not a timeout: the pull waits for it.
        config.oneroster.request_timeout_seconds = 300;
    })
    .await;
    api.db.tenant("big").await;
    let provider = Provider::start_generated(500, 9).await.unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    provider.with(|s| {
        s.page_faults.insert(
            ("users".into(), 2 * PAGE as usize),
            Fault::Hold(gate.clone()),
        )
    });
    connect(&api.db, &api.config, &provider, "big").await;
    let (conn, config) = (api.db.conn.clone(), api.config.clone());
    let pull = tokio::spawn(async move { oneroster::sync(&conn, &config, &full("big")).await });
    let held = format!("/users?limit={PAGE}&offset={}", 2 * PAGE);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !provider.requests().contains(&held) {
        assert!(Instant::now() < deadline, "the pull never asked {held}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The provider is holding a page: the pull has staged the pages before it.
    let admin = api.user("nyc", "ta-1", &[Role::TenantAdmin]);
    let write = patch_settings(&api, &admin, json!({"preferredInviteChannel": "sms"}));
    let reply = tokio::time::timeout(Duration::from_secs(20), write)
        .await
        .expect("a write during the pull waited for the pull's lock");
    assert!(
        !pull.is_finished(),
        "the pull is still waiting for its page"
    );
    assert!(
        reply.status.is_success(),
        "a write during the pull: {} {}",
        reply.status,
        reply.body
    );
    gate.notify_one();
    let report = pull.await.unwrap().expect("sync ran");
    assert_eq!(report.status, RunStatus::Applied, "{:#?}", report.errors);
    assert_eq!(report.entities.students.created, 500);
}

db_tests!(
    a_full_pull_stages_page_by_page,
    api_writes_go_on_during_a_pull
);
